"""The legacy float properties channel (both directions): ``string key, float32 value``.

The same class serves both ends: setting a property stores it locally and sends it; receiving one stores it
and fires the key's callbacks.
"""

from __future__ import annotations

import uuid
from typing import Callable

from rayagents.protocol.side_channels.framing import IncomingMessage, OutgoingMessage, SideChannel

FLOAT_PROPERTIES_CHANNEL_ID = uuid.UUID("60ccf7d0-4f7e-11ea-b238-784f4387d1f7")
"""The default id of the float properties channel."""


class FloatPropertiesChannel(SideChannel):
    """A shared dictionary of float properties, kept in step by sending each change to the other end."""

    def __init__(self, channel_id: uuid.UUID = FLOAT_PROPERTIES_CHANNEL_ID) -> None:
        super().__init__(channel_id)
        self._properties: dict[str, float] = {}
        self._callbacks: dict[str, list[Callable[[float], None]]] = {}

    def on_message_received(self, msg: IncomingMessage) -> None:
        """Store the received property and call the key's callbacks with its value."""
        key = msg.read_string()
        value = msg.read_float32()
        self._properties[key] = value
        for fn in self._callbacks.get(key, []):
            fn(value)

    def set_property(self, key: str, value: float) -> None:
        """Store ``value`` for ``key`` and queue it for the other end."""
        msg = OutgoingMessage()
        msg.write_string(key)
        msg.write_float32(value)
        self._properties[key] = value
        self.queue_message_to_send(msg)

    def get_property(self, key: str) -> float | None:
        """The value of ``key``, or None when it was never set or received."""
        return self._properties.get(key)

    def get_with_default(self, key: str, default: float) -> float:
        """The value of ``key``, or ``default`` when it was never set or received."""
        return self._properties.get(key, default)

    def list_properties(self) -> list[str]:
        """The keys set or received so far."""
        return list(self._properties)

    def get_property_dict_copy(self) -> dict[str, float]:
        """A copy of all properties."""
        return dict(self._properties)

    def register_callback(self, key: str, fn: Callable[[float], None]) -> None:
        """Call ``fn(value)`` each time a value for ``key`` arrives from the other end."""
        self._callbacks.setdefault(key, []).append(fn)
