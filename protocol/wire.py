"""Protobuf wire-format pieces, for the few hot paths that build or read messages as bytes.

Protobuf parses and serializes whole messages in C; filling or reading a repeated field from Python costs
a Python call per element. The observation and action hot paths therefore write a message's bytes with
numpy and parse them once, or serialize a message once and read its packed arrays with ``np.frombuffer``.
Everything else uses the generated classes.
"""

from __future__ import annotations

from typing import Sequence


def tag(field_number: int, wire_type: int) -> bytes:
    """The key of a field: ``field_number << 3 | wire_type`` as a varint (wire type 0 varint, 2 length-delimited)."""
    return varint(field_number << 3 | wire_type)


def varint(value: int) -> bytes:
    """The base-128 varint of ``value``; a negative int32 takes 10 bytes (two's complement), as protobuf writes it."""
    if 0 <= value < 0x80:
        return bytes((value,))
    if 0 < value < 0x4000:
        return bytes(((value & 0x7F) | 0x80, value >> 7))
    value = int(value)
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def length_delimited(key: bytes, payload: bytes) -> bytes:
    """A length-delimited field: key, varint length, payload."""
    return key + varint(len(payload)) + payload


def packed_varints(key: bytes, values: Sequence[int]) -> bytes:
    """A packed repeated varint field (int32, enum, bool); empty when ``values`` is empty, as protobuf omits it."""
    if len(values) == 0:
        return b""
    try:
        payload = bytes(values)  # one byte per value: right when every value is in 0..127 (checked next)
        if not payload.isascii():
            raise ValueError("a value needs more than one varint byte")
    except ValueError:
        payload = b"".join([varint(v) for v in values])
    return key + varint(len(payload)) + payload
