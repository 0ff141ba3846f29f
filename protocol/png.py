"""PNG codec for compressed visual observations (``CompressionTypeProto.PNG``).

A compressed observation's ``compressed_data`` is one or more PNG files back to back, each carrying up to
three channels of a CHW observation. ``compressed_channel_mapping[i]`` names the output channel of decoded
channel ``i``: ``-1`` drops it, and channels mapped to the same output are averaged (three copies of a gray
image are sent as one RGB PNG with the mapping ``[0, 0, 0]``).

Decoded pixels come out in one of two dtypes (:data:`PixelDtype`): ``float32`` in [0, 1] (the value divided by
255, averages taken in float32 first, as ``mlagents_envs`` does) or ``uint8``, the 8-bit values themselves, an
average rounded half up to the nearest integer. For every pixel, the ``uint8`` value ``u`` and the ``float32``
value ``x`` satisfy ``|u - 255 x| <= 0.5`` (up to float32 rounding), so ``u == round(255 x)`` wherever the
average is not exactly halfway between two integers.

This module knows PNG files and channel arithmetic only; :mod:`rayagents.protocol.observations` adds the
behavior and sensor names to its errors.
"""

from __future__ import annotations

import io
import struct
from typing import Literal, Sequence, get_args

import numpy as np
from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
"""The 8 bytes every PNG file starts with."""

PNG_COMPRESS_LEVEL = 1
"""zlib level used when encoding: the fastest level; the files stay small for rendered scenes."""

_KEPT_MODES = ("L", "LA", "RGB", "RGBA")
"""Pillow modes decoded as they are (1 to 4 channels of 8 bits); any other mode is converted first."""


PixelDtype = Literal["float32", "uint8"]
"""The dtype decoded pixels come out as: ``"float32"``, the 8-bit value divided by 255 (in [0, 1]), or
``"uint8"``, the 8-bit value itself (0..255)."""

PIXEL_DTYPES: tuple[PixelDtype, ...] = get_args(PixelDtype)
"""Every :data:`PixelDtype`, in the order ``("float32", "uint8")``."""


class PngError(ValueError):
    """A compressed observation could not be split, decoded or mapped; the message says why."""


def split_png_stream(data: bytes) -> list[bytes]:
    """Splits concatenated PNG files into one ``bytes`` per file.

    Each file is walked chunk by chunk up to its ``IEND`` chunk (so signature bytes that happen to occur
    inside compressed pixel data cannot cut a file short); the next file starts at the next PNG signature.
    """
    if not data.startswith(PNG_SIGNATURE):
        raise PngError(f"the compressed data does not start with a PNG signature (first bytes: {data[:8]!r})")
    files: list[bytes] = []
    start = 0
    size = len(data)
    while start >= 0:
        position = start + len(PNG_SIGNATURE)
        while True:
            if position + 8 > size:
                raise PngError(f"PNG file {len(files)} is truncated: no IEND chunk before byte {size}")
            (length,) = struct.unpack_from(">I", data, position)
            kind = data[position + 4 : position + 8]
            position += 12 + length  # length, type, data, CRC
            if kind == b"IEND":
                break
        if position > size:
            raise PngError(f"PNG file {len(files)} is truncated: its IEND chunk ends past byte {size}")
        files.append(data[start:position])
        start = data.find(PNG_SIGNATURE, position)
    return files


def decode_png(png: bytes) -> np.ndarray:
    """Decodes one PNG file to ``uint8 (channels, height, width)``; gray images have one channel."""
    try:
        with Image.open(io.BytesIO(png)) as image:
            image.load()
            if image.mode not in _KEPT_MODES:
                has_alpha = "A" in image.getbands() or "transparency" in image.info
                image = image.convert("RGBA" if has_alpha else "RGB")
            pixels = np.asarray(image)
    except (OSError, SyntaxError) as error:  # Pillow raises these for corrupt files
        raise PngError(f"a PNG file could not be decoded: {error}") from error
    if pixels.ndim == 2:
        return pixels[np.newaxis]
    return pixels.transpose(2, 0, 1)


def decode_png_stream(
    data: bytes, mapping: Sequence[int], expected_channels: int, dtype: PixelDtype = "float32"
) -> np.ndarray:
    """Decodes concatenated PNGs to ``(channels, height, width)``: ``float32`` in [0, 1], or ``uint8`` 0..255.

    With a ``mapping``, decoded channel ``i`` goes to output channel ``mapping[i]`` (``-1``: dropped) and
    channels sharing an output are averaged. Without one (the API before 1.2.0), one expected channel is the
    mean of the first image's channels; otherwise the decoded channels are concatenated and the first
    ``expected_channels`` kept. A ``float32`` average is taken in float32 and divided by 255; a ``uint8``
    average is the integer mean rounded half up (``(sum + n // 2) // n`` of ``n`` channels).
    """
    if dtype not in PIXEL_DTYPES:
        raise ValueError(f"decoded PNG pixels can be {' or '.join(map(repr, PIXEL_DTYPES))}, not {dtype!r}")
    images = [decode_png(png) for png in split_png_stream(data)]
    sizes = {image.shape[1:] for image in images}
    if len(sizes) != 1:
        raise PngError(f"the PNG files of one observation have different sizes (height, width): {sorted(sizes)}")
    as_uint8 = dtype == "uint8"
    if len(mapping) > 0:
        channels = np.concatenate(images, axis=0) if len(images) > 1 else images[0]
        return _apply_mapping(channels, mapping, as_uint8)
    if expected_channels == 1:
        first = images[0]
        if as_uint8:
            return _rounded_mean(first)
        return (first.astype(np.float32) / np.float32(255.0)).mean(axis=0, dtype=np.float32, keepdims=True)
    channels = np.concatenate(images, axis=0) if len(images) > 1 else images[0]
    if as_uint8:
        return np.array(channels[:expected_channels])  # a copy: the decoded images are read-only
    return channels[:expected_channels].astype(np.float32) / np.float32(255.0)


def _rounded_mean(channels: np.ndarray) -> np.ndarray:
    """The mean of ``uint8 (n, H, W)`` channels as a new ``uint8 (1, H, W)``, rounded half up."""
    count = channels.shape[0]
    if count == 1:
        return channels.copy()
    # The sum is at most 255 × count: 16 bits hold it for up to 257 channels.
    wide = np.uint16 if count <= 257 else np.uint32
    total = channels.sum(axis=0, dtype=wide, keepdims=True)
    total += wide(count // 2)
    total //= wide(count)
    return total.astype(np.uint8)


def _apply_mapping(channels: np.ndarray, mapping: Sequence[int], as_uint8: bool) -> np.ndarray:
    """Gathers ``uint8 (decoded, H, W)`` channels into ``(outputs, H, W)`` following ``mapping``: ``float32``
    in [0, 1], or with ``as_uint8`` the channels themselves (an average rounded half up)."""
    mapping = [int(m) for m in mapping]
    if len(mapping) != channels.shape[0]:
        raise PngError(
            f"the PNG files hold {channels.shape[0]} channels but compressed_channel_mapping has "
            f"{len(mapping)} entries ({mapping})"
        )
    outputs = sorted({m for m in mapping if m != -1})
    if any(m < -1 for m in mapping) or outputs != list(range(len(outputs))):
        raise PngError(
            f"compressed_channel_mapping {mapping} is not valid: entries must be -1 (drop) or output channels "
            "0..K-1, each used at least once"
        )
    result = np.empty((len(outputs),) + channels.shape[1:], dtype=np.uint8 if as_uint8 else np.float32)
    for output in outputs:
        sources = [i for i, m in enumerate(mapping) if m == output]
        if len(sources) == 1:
            result[output] = channels[sources[0]]
        elif as_uint8:
            result[output] = _rounded_mean(channels[sources])[0]
        else:
            result[output] = channels[sources].mean(axis=0, dtype=np.float32)
    if not as_uint8:
        result /= np.float32(255.0)
    return result


def float_to_pixels(values: np.ndarray) -> np.ndarray:
    """``values`` (float, nominally in [0, 1]) as the 8-bit levels a PNG stores: ``uint8``, same shape.

    Values are clipped to [0, 1] (NaN to 0, +Inf to 1) and ``255 × value`` rounded to the nearest integer
    (halves to even) in the values' own float precision: the rule the PNG encoder applies.
    """
    finite = np.nan_to_num(np.asarray(values), nan=0.0, posinf=1.0, neginf=0.0)
    return np.rint(np.clip(finite, 0.0, 1.0) * 255.0).astype(np.uint8)


def encode_png(hwc: np.ndarray) -> bytes:
    """Encodes ``uint8 (height, width, 3)`` as an RGB PNG file."""
    buffer = io.BytesIO()
    Image.fromarray(hwc, "RGB").save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


def encode_png_stream(chw: np.ndarray) -> tuple[bytes, list[int]]:
    """Encodes ``float (channels, height, width)`` in [0, 1] as concatenated RGB PNGs and their channel mapping.

    Values are clipped to [0, 1] (NaN to 0) and rounded to 8 bits. One channel becomes one PNG whose three channels are
    the gray value (mapping ``[0, 0, 0]``); three channels one PNG with no mapping; other counts are padded
    with zero channels to a multiple of three, the padding mapped to ``-1``.
    """
    chw = np.asarray(chw)
    if chw.ndim != 3 or 0 in chw.shape:
        raise PngError(f"a PNG observation must be a non-empty (channels, height, width) array, got shape {chw.shape}")
    pixels = float_to_pixels(chw)
    count = pixels.shape[0]
    if count == 1:
        return encode_png(np.repeat(pixels.transpose(1, 2, 0), 3, axis=2)), [0, 0, 0]
    if count == 3:
        return encode_png(np.ascontiguousarray(pixels.transpose(1, 2, 0))), []
    padding = -count % 3
    if padding:
        pixels = np.concatenate([pixels, np.zeros((padding,) + pixels.shape[1:], dtype=np.uint8)], axis=0)
    files = [
        encode_png(np.ascontiguousarray(pixels[first : first + 3].transpose(1, 2, 0)))
        for first in range(0, pixels.shape[0], 3)
    ]
    return b"".join(files), list(range(count)) + [-1] * padding
