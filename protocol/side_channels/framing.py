"""Side-channel framing: the payload primitives, the channel base class and the manager.

The ``side_channel`` bytes of ``UnityRLInputProto`` (trainer → Unity) and ``UnityRLOutputProto`` (Unity →
trainer) are a concatenation of messages, each laid out as::

    [16 bytes channel UUID, .NET Guid.ToByteArray() order = uuid.UUID.bytes_le]
    [int32 little-endian payload length]
    [payload]

Payloads are built from little-endian primitives (bool: 1 byte, int32, float32, string = int32 byte length +
ASCII bytes, float list = int32 count + float32s). Reading past the end of a payload returns the default value.
"""

from __future__ import annotations

import logging
import struct
import uuid
from typing import Iterable, Mapping, Sequence

from rayagents.protocol.exceptions import UnitySideChannelException

logger = logging.getLogger(__name__)

_UUID_SIZE = 16
_HEADER_SIZE = _UUID_SIZE + 4
_INT32 = struct.Struct("<i")
_FLOAT32 = struct.Struct("<f")
_INT32_MIN = -(2**31)
_INT32_MAX = 2**31 - 1


class OutgoingMessage:
    """A payload being written: primitives are appended in order, little-endian."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    @property
    def buffer(self) -> bytes:
        """The payload written so far."""
        return bytes(self._buffer)

    def write_bool(self, value: bool) -> None:
        """Append one byte: 1 for True, 0 for False."""
        self._buffer.append(1 if value else 0)

    def write_int32(self, value: int) -> None:
        """Append a signed 32-bit integer; raises UnitySideChannelException outside its range."""
        value = int(value)
        if not _INT32_MIN <= value <= _INT32_MAX:
            raise UnitySideChannelException(
                f"Cannot write {value} to a side-channel message: it does not fit in an int32 "
                f"([{_INT32_MIN}, {_INT32_MAX}]). Pass a smaller value."
            )
        self._buffer += _INT32.pack(value)

    def write_float32(self, value: float) -> None:
        """Append a 32-bit float; raises UnitySideChannelException when the value overflows float32."""
        try:
            self._buffer += _FLOAT32.pack(float(value))
        except OverflowError as error:
            raise UnitySideChannelException(
                f"Cannot write {value!r} to a side-channel message: it is too large for a float32."
            ) from error

    def write_float32_list(self, values: Sequence[float]) -> None:
        """Append an int32 count followed by each value as a float32."""
        self.write_int32(len(values))
        for value in values:
            self.write_float32(value)

    def write_string(self, value: str) -> None:
        """Append an int32 byte length followed by the ASCII bytes of ``value``.

        Raises UnitySideChannelException when ``value`` holds a non-ASCII character (Unity decodes ASCII).
        """
        try:
            encoded = value.encode("ascii")
        except UnicodeEncodeError as error:
            raise UnitySideChannelException(
                f"Cannot write {value!r} to a side-channel message: side-channel strings are ASCII "
                f"(character {value[error.start]!r} at index {error.start}). Use ASCII characters only."
            ) from error
        self.write_int32(len(encoded))
        self._buffer += encoded

    def set_raw_bytes(self, data: bytes) -> None:
        """Replace the whole payload by ``data``."""
        self._buffer = bytearray(data)


class IncomingMessage:
    """A received payload being read in order. A read that runs past the end returns its default value."""

    def __init__(self, buffer: bytes, offset: int = 0) -> None:
        self._buffer = bytes(buffer)
        self._offset = offset

    @property
    def offset(self) -> int:
        """How many bytes have been read so far."""
        return self._offset

    def _take(self, size: int) -> bytes | None:
        """The next ``size`` bytes, or None (and the offset moved to the end) when fewer remain."""
        end = self._offset + size
        if size < 0 or end > len(self._buffer):
            self._offset = len(self._buffer)
            return None
        chunk = self._buffer[self._offset : end]
        self._offset = end
        return chunk

    def read_bool(self, default_value: bool = False) -> bool:
        """Read one byte as a bool (non-zero is True)."""
        chunk = self._take(1)
        return default_value if chunk is None else chunk[0] != 0

    def read_int32(self, default_value: int = 0) -> int:
        """Read a signed little-endian 32-bit integer."""
        chunk = self._take(4)
        return default_value if chunk is None else _INT32.unpack(chunk)[0]

    def read_float32(self, default_value: float = 0.0) -> float:
        """Read a little-endian 32-bit float."""
        chunk = self._take(4)
        return default_value if chunk is None else _FLOAT32.unpack(chunk)[0]

    def read_float32_list(self, default_value: Sequence[float] | None = None) -> list[float]:
        """Read an int32 count followed by that many float32s; the default (or ``[]``) when truncated."""
        fallback = [] if default_value is None else list(default_value)
        count_bytes = self._take(4)
        if count_bytes is None:
            return fallback
        count = _INT32.unpack(count_bytes)[0]
        chunk = self._take(4 * count)
        if chunk is None:
            return fallback
        return list(struct.unpack(f"<{count}f", chunk))

    def read_string(self, default_value: str = "") -> str:
        """Read an int32 byte length followed by that many ASCII bytes (non-ASCII bytes become U+FFFD)."""
        length_bytes = self._take(4)
        if length_bytes is None:
            return default_value
        chunk = self._take(_INT32.unpack(length_bytes)[0])
        if chunk is None:
            return default_value
        return chunk.decode("ascii", errors="replace")

    def get_raw_bytes(self) -> bytes:
        """The whole payload, whatever has been read."""
        return self._buffer


class SideChannel:
    """One channel of the side-channel stream, identified by its UUID.

    Subclasses override ``on_message_received`` and call ``queue_message_to_send`` to send; the manager
    collects the queued payloads at the next reset or step.
    """

    def __init__(self, channel_id: uuid.UUID) -> None:
        self._channel_id = channel_id
        self._message_queue: list[bytes] = []

    @property
    def channel_id(self) -> uuid.UUID:
        """The UUID that frames this channel's messages."""
        return self._channel_id

    @property
    def queued_messages(self) -> tuple[bytes, ...]:
        """The payloads waiting to be sent, oldest first."""
        return tuple(self._message_queue)

    def queue_message_to_send(self, msg: OutgoingMessage) -> None:
        """Queue ``msg`` to go out with the next reset or step."""
        self._message_queue.append(msg.buffer)

    def take_queued_messages(self) -> list[bytes]:
        """The payloads waiting to be sent, oldest first; the queue is emptied."""
        messages, self._message_queue = self._message_queue, []
        return messages

    def on_message_received(self, msg: IncomingMessage) -> None:
        """Handle one payload received for this channel."""
        raise NotImplementedError(f"{type(self).__name__} must implement on_message_received")


def encode_side_channel_messages(messages: Iterable[tuple[uuid.UUID, bytes]]) -> bytes:
    """Frame ``(channel_id, payload)`` pairs into one side-channel byte string, in order."""
    parts: list[bytes] = []
    for channel_id, payload in messages:
        parts.append(channel_id.bytes_le)
        parts.append(_INT32.pack(len(payload)))
        parts.append(bytes(payload))
    return b"".join(parts)


def decode_side_channel_messages(data: bytes) -> list[tuple[uuid.UUID, bytes]]:
    """Split a side-channel byte string into ``(channel_id, payload)`` pairs, in order.

    Raises UnitySideChannelException when a message header or payload is cut short.
    """
    messages: list[tuple[uuid.UUID, bytes]] = []
    offset = 0
    view = memoryview(data)
    while offset < len(data):
        index = len(messages)
        remaining = len(data) - offset
        if remaining < _HEADER_SIZE:
            raise UnitySideChannelException(
                f"Side-channel data is truncated: message {index} starts at byte {offset} but only "
                f"{remaining} bytes remain, fewer than the {_HEADER_SIZE}-byte header (16-byte channel id + "
                "int32 length). The player and the trainer disagree on the side-channel format: check that "
                "the player's ML-Agents package is compatible with this trainer."
            )
        channel_id = uuid.UUID(bytes_le=bytes(view[offset : offset + _UUID_SIZE]))
        (length,) = _INT32.unpack_from(data, offset + _UUID_SIZE)
        start = offset + _HEADER_SIZE
        if length < 0 or start + length > len(data):
            raise UnitySideChannelException(
                f"Side-channel data is truncated: message {index} for channel {channel_id} at byte {offset} "
                f"declares a payload of {length} bytes but only {len(data) - start} bytes remain. The player "
                "and the trainer disagree on the side-channel format: check that the player's ML-Agents "
                "package is compatible with this trainer."
            )
        messages.append((channel_id, bytes(view[start : start + length])))
        offset = start + length
    return messages


class SideChannelManager:
    """Routes the side-channel stream to and from a set of channels with distinct UUIDs."""

    def __init__(self, channels: Iterable[SideChannel]) -> None:
        self._channels: dict[uuid.UUID, SideChannel] = {}
        for channel in channels:
            existing = self._channels.get(channel.channel_id)
            if existing is not None:
                raise UnitySideChannelException(
                    f"Two side channels have the same id {channel.channel_id}: {type(existing).__name__} and "
                    f"{type(channel).__name__}. Each side channel must have a unique id: register only one."
                )
            self._channels[channel.channel_id] = channel
        self._warned_unknown: set[uuid.UUID] = set()

    @property
    def channels(self) -> Mapping[uuid.UUID, SideChannel]:
        """The registered channels by id, in registration order."""
        return dict(self._channels)

    def process_side_channel_message(self, data: bytes) -> None:
        """Deliver every message of ``data`` to its channel.

        A message for an unregistered id is skipped, with a warning the first time that id is seen (a player may
        send on it every step). The whole byte string is checked before any message is delivered: a truncated
        one raises UnitySideChannelException.
        """
        for channel_id, payload in decode_side_channel_messages(data):
            channel = self._channels.get(channel_id)
            if channel is None:
                if channel_id in self._warned_unknown:
                    continue
                self._warned_unknown.add(channel_id)
                logger.warning(
                    "Unknown side channel data received: no side channel with id %s is registered; its "
                    "message of %d bytes was skipped (later ones are skipped silently). Register a side channel with this "
                    "id to receive it.",
                    channel_id,
                    len(payload),
                )
                continue
            channel.on_message_received(IncomingMessage(payload))

    def generate_side_channel_messages(self) -> bytes:
        """Every queued message of every channel, framed and concatenated; the queues are emptied."""
        return encode_side_channel_messages(
            (channel_id, payload)
            for channel_id, channel in self._channels.items()
            for payload in channel.take_queued_messages()
        )
