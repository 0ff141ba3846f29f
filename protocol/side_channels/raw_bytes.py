"""A channel carrying raw payloads both ways, on a UUID the user chooses."""

from __future__ import annotations

import uuid

from rayagents.protocol.side_channels.framing import IncomingMessage, OutgoingMessage, SideChannel


class RawBytesChannel(SideChannel):
    """Sends and receives whole payloads as bytes, unchanged."""

    def __init__(self, channel_id: uuid.UUID) -> None:
        super().__init__(channel_id)
        self._received: list[bytes] = []

    def on_message_received(self, msg: IncomingMessage) -> None:
        """Keep the payload until ``get_and_clear_received_messages``."""
        self._received.append(msg.get_raw_bytes())

    def get_and_clear_received_messages(self) -> list[bytes]:
        """The payloads received since the last call, oldest first; the store is emptied."""
        received, self._received = self._received, []
        return received

    def send_raw_data(self, data: bytes) -> None:
        """Queue ``data`` as one payload."""
        msg = OutgoingMessage()
        msg.set_raw_bytes(data)
        self.queue_message_to_send(msg)

