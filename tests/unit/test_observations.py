"""Observations on the wire, both ends: float and PNG encoding, decoding (float32, or uint8 for visual
observations kept as 8-bit values), channel mappings, errors."""

from __future__ import annotations

import io
import zlib

import numpy as np
import pytest
from PIL import Image

from rayagents.protocol.communicator_objects.agent_info_pb2 import AgentInfoProto
from rayagents.protocol.communicator_objects.observation_pb2 import NONE, PNG, ObservationProto
from rayagents.protocol.exceptions import UnityObservationException
from rayagents.protocol.observations import (
    ObservationDecoder,
    float_observation_proto,
    observation_dtype,
    observation_spec_from_proto,
    observations_to_array,
    png_observation_proto,
)
from rayagents.protocol.png import PNG_SIGNATURE, decode_png_stream, float_to_pixels, split_png_stream
from rayagents.protocol.types import DimensionProperty, ObservationSpec, ObservationType

BEHAVIOR = "Crawler?team=0"


def _over_the_wire(protos: list[ObservationProto]) -> list[ObservationProto]:
    """The protos as the other end sees them: inside AgentInfoProtos, serialized and parsed back."""
    infos = [AgentInfoProto(id=i, observations=[proto]) for i, proto in enumerate(protos)]
    return [AgentInfoProto.FromString(info.SerializeToString()).observations[0] for info in infos]


def _decode(
    protos: list[ObservationProto], spec: ObservationSpec | None = None, visual_observations: str = "float32"
) -> np.ndarray:
    protos = _over_the_wire(protos)
    spec = spec or observation_spec_from_proto(protos[0])
    return observations_to_array(protos, spec, behavior=BEHAVIOR, visual_observations=visual_observations)


def _decode_both(protos: list[ObservationProto]) -> tuple[np.ndarray, np.ndarray]:
    """The same protos decoded as float32 and as uint8 (``visual_observations="uint8"``)."""
    return _decode(protos), _decode(protos, visual_observations="uint8")


def _assert_uint8_is_rounded_float(as_float: np.ndarray, as_uint8: np.ndarray) -> None:
    """The uint8 decode has the float decode's shape and holds ``round(255 * float)``."""
    assert as_uint8.dtype == np.uint8 and as_float.dtype == np.float32
    assert as_uint8.shape == as_float.shape
    np.testing.assert_array_equal(as_uint8, np.rint(as_float.astype(np.float64) * 255))


def _png(pixels_hwc: np.ndarray, mode: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels_hwc, mode).save(buffer, format="PNG")
    return buffer.getvalue()


def _spec(shape: tuple[int, ...], name: str = "Camera") -> ObservationSpec:
    return ObservationSpec(shape, (DimensionProperty.UNSPECIFIED,) * len(shape), ObservationType.DEFAULT, name)


# ---------------------------------------------------------------------------------------------- float


@pytest.mark.parametrize("shape", [(1,), (7,), (128,), (5, 3), (2, 3, 4)])
def test_float_round_trip_is_exact_for_every_rank(shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(0)
    values = rng.standard_normal((6,) + shape).astype(np.float32)
    batch = _decode([float_observation_proto(v, "Vector") for v in values])
    assert batch.dtype == np.float32
    assert batch.shape == (6,) + shape
    np.testing.assert_array_equal(batch, values)


def test_float_proto_equals_the_message_built_field_by_field() -> None:
    values = np.arange(12, dtype=np.float64).reshape(4, 3) / 7
    proto = float_observation_proto(values, "EntityBuffer", observation_type=1)
    expected = ObservationProto(
        shape=[4, 3],
        compression_type=NONE,
        float_data=ObservationProto.FloatData(data=values.ravel().tolist()),
        dimension_properties=[4, 1],
        observation_type=1,
        name="EntityBuffer",
    )
    assert proto == expected
    assert proto.SerializeToString() == expected.SerializeToString()


def test_float_proto_default_dimension_properties_follow_unitys_sensors() -> None:
    assert list(float_observation_proto(np.zeros(3), "v").dimension_properties) == [1]
    assert list(float_observation_proto(np.zeros((2, 3)), "b").dimension_properties) == [4, 1]
    assert list(float_observation_proto(np.zeros((1, 2, 3)), "c").dimension_properties) == [1, 2, 2]
    assert list(float_observation_proto(np.zeros(3), "v", dimension_properties=[]).dimension_properties) == []
    with pytest.raises(ValueError, match="sensor 'v'"):
        float_observation_proto(np.zeros(3), "v", dimension_properties=[1, 1])


def test_observation_spec_from_proto() -> None:
    spec = observation_spec_from_proto(float_observation_proto(np.zeros((3, 2)), "Buffer", observation_type=1))
    assert spec == ObservationSpec(
        shape=(3, 2),
        dimension_property=(DimensionProperty.VARIABLE_SIZE, DimensionProperty.NONE),
        observation_type=ObservationType.GOAL_SIGNAL,
        name="Buffer",
    )
    bare = observation_spec_from_proto(ObservationProto(shape=[2, 5]))
    assert bare.dimension_property == (DimensionProperty.UNSPECIFIED, DimensionProperty.UNSPECIFIED)
    assert bare.observation_type is ObservationType.DEFAULT
    assert bare.name == ""
    visual = observation_spec_from_proto(png_observation_proto(np.zeros((3, 4, 4)), "Cam"))
    assert visual.dimension_property == (
        DimensionProperty.NONE,
        DimensionProperty.TRANSLATIONAL_EQUIVARIANCE,
        DimensionProperty.TRANSLATIONAL_EQUIVARIANCE,
    )


def test_unpacked_float_encoding_from_another_sender_decodes() -> None:
    # FloatData.data written unpacked (one key per float), which a proto3 parser must accept.
    values = np.array([1.5, -2.0, 3.25], dtype="<f4")
    float_data = b"".join(b"\x0d" + v.tobytes() for v in values)  # key 1, wire type 5 (fixed32)
    raw = b"\x0a\x01\x03" + b"\x22" + bytes([len(float_data)]) + float_data + b"\x42\x03Vec"
    proto = ObservationProto.FromString(raw)
    np.testing.assert_array_equal(_decode([proto, proto]), np.stack([values, values]))


def test_mixed_layouts_in_one_batch_decode_alike() -> None:
    # One proto carries extra fields after its data (another name), one has default dimension properties:
    # each row must still be its own values.
    a = float_observation_proto(np.array([1, 2, 3]), "Vector")
    b = float_observation_proto(np.array([4, 5, 6]), "Vector_with_a_longer_name", observation_type=1)
    c = ObservationProto(shape=[3], float_data=ObservationProto.FloatData(data=[7, 8, 9]))
    batch = _decode([a, b, c])
    np.testing.assert_array_equal(batch, [[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    assert batch.flags.writeable


def test_decoded_batches_are_writable() -> None:
    # The trainer may normalize observations in place.
    for protos in ([float_observation_proto(np.ones(4), "V")], [png_observation_proto(np.ones((3, 2, 2)), "C")]):
        batch = _decode(protos)
        batch += 1.0
        assert (batch == 2.0).all()


def test_empty_batch_has_the_spec_shape() -> None:
    batch = observations_to_array([], _spec((3, 8, 8)), behavior=BEHAVIOR)
    assert batch.shape == (0, 3, 8, 8) and batch.dtype == np.float32


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("shape", [(4,), (2, 3)])
def test_nan_or_inf_in_rank_one_or_two_names_behavior_and_sensor(bad: float, shape: tuple[int, ...]) -> None:
    values = np.zeros((5,) + shape, dtype=np.float32)
    values[3].flat[1] = bad
    protos = _over_the_wire([float_observation_proto(v, "RaySensor") for v in values])
    with pytest.raises(UnityObservationException) as error:
        observations_to_array(protos, observation_spec_from_proto(protos[0]), behavior=BEHAVIOR)
    message = str(error.value)
    assert BEHAVIOR in message and "RaySensor" in message
    assert "NaN or Inf" in message and "row 3" in message and "Check" in message


def test_nan_in_a_visual_float_observation_is_passed_through() -> None:
    # As mlagents_envs: only rank-1 and rank-2 observations are checked.
    values = np.zeros((2, 1, 2, 2), dtype=np.float32)
    values[1, 0, 1, 1] = np.nan
    batch = _decode([float_observation_proto(v, "Cam") for v in values])
    assert np.isnan(batch[1, 0, 1, 1]) and np.count_nonzero(np.isnan(batch)) == 1


def test_wrong_float_count_or_shape_names_behavior_and_sensor() -> None:
    good = float_observation_proto(np.zeros(4), "Vector")
    short = ObservationProto(shape=[4], float_data=ObservationProto.FloatData(data=[1, 2, 3]), name="Vector")
    with pytest.raises(UnityObservationException, match=r"(?s)'Vector'.*Crawler\?team=0.*3 floats.*needs 4"):
        observations_to_array(_over_the_wire([good, short]), _spec((4,), "Vector"), behavior=BEHAVIOR)
    other_shape = float_observation_proto(np.zeros((2, 2)), "Vector")
    with pytest.raises(UnityObservationException, match=r"(?s)'Vector'.*Crawler\?team=0.*\(2, 2\).*\(4,\)"):
        observations_to_array(_over_the_wire([good, other_shape]), _spec((4,), "Vector"), behavior=BEHAVIOR)


# ------------------------------------------------------------------------------------------------ PNG


@pytest.mark.parametrize(
    "channels, mapping",
    [(1, [0, 0, 0]), (3, []), (4, [0, 1, 2, 3, -1, -1]), (6, [0, 1, 2, 3, 4, 5]), (5, [0, 1, 2, 3, 4, -1])],
)
def test_png_round_trip(channels: int, mapping: list[int]) -> None:
    rng = np.random.default_rng(channels)
    images = rng.random((3, channels, 9, 7)).astype(np.float32)
    protos = [png_observation_proto(image, "CameraSensor") for image in images]
    proto = protos[0]
    assert proto.compression_type == PNG
    assert tuple(proto.shape) == (channels, 9, 7)
    assert list(proto.dimension_properties) == [1, 2, 2]
    assert list(proto.compressed_channel_mapping) == mapping
    assert len(split_png_stream(proto.compressed_data)) == -(-channels // 3)
    batch = _decode(protos)
    assert batch.shape == (3, channels, 9, 7) and batch.dtype == np.float32
    np.testing.assert_allclose(batch, images, atol=0.5 / 255 + 1e-6)
    # Exactly the 8-bit levels: decoding is value / 255.
    np.testing.assert_array_equal(batch * 255, np.rint(images * 255))


def test_png_encoding_clips_and_rounds() -> None:
    image = np.array([[[-0.5, 0.0, 0.5 / 255, 1.0, 2.0]]], dtype=np.float32)
    decoded = _decode([png_observation_proto(image, "Cam")])[0]
    np.testing.assert_array_equal(decoded * 255, [[[0, 0, 0, 255, 255]]])


def test_one_channel_png_is_three_equal_channels() -> None:
    image = np.random.default_rng(3).random((1, 4, 5))
    proto = png_observation_proto(image, "Gray")
    with Image.open(io.BytesIO(proto.compressed_data)) as decoded:
        assert decoded.mode == "RGB"
        pixels = np.asarray(decoded)
    assert (pixels[..., 0] == pixels[..., 1]).all() and (pixels[..., 1] == pixels[..., 2]).all()


def test_mapping_averages_channels_and_drops_minus_one() -> None:
    # Two RGB PNGs: decoded channels 0..5. Mapping: 0 <- mean(d0, d1), 1 <- d2, 2 <- mean(d3, d4, d5)...
    # except d4 is dropped, so 2 <- mean(d3, d5).
    first = np.zeros((2, 2, 3), dtype=np.uint8)
    second = np.zeros((2, 2, 3), dtype=np.uint8)
    first[..., 0], first[..., 1], first[..., 2] = 10, 30, 200
    second[..., 0], second[..., 1], second[..., 2] = 100, 255, 50
    proto = ObservationProto(
        shape=[3, 2, 2],
        compression_type=PNG,
        compressed_data=_png(first, "RGB") + _png(second, "RGB"),
        compressed_channel_mapping=[0, 0, 1, 2, -1, 2],
        name="Stacked",
    )
    decoded = _decode([proto])[0]
    expected = np.array([(10 + 30) / 2 / 255, 200 / 255, (100 + 50) / 2 / 255], dtype=np.float32)
    np.testing.assert_allclose(decoded, np.broadcast_to(expected[:, None, None], (3, 2, 2)), rtol=1e-6)


def test_stacked_grayscale_mapping() -> None:
    # Two stacked gray frames, as Unity sends them: mapping [0, 0, 0, 1, 1, 1].
    frames = np.stack([np.full((3, 3), 0.2), np.full((3, 3), 0.8)])
    pngs = [png_observation_proto(frame[None], "Frame") for frame in frames]
    proto = ObservationProto(
        shape=[2, 3, 3],
        compression_type=PNG,
        compressed_data=pngs[0].compressed_data + pngs[1].compressed_data,
        compressed_channel_mapping=[0, 0, 0, 1, 1, 1],
        name="StackedGray",
    )
    np.testing.assert_allclose(_decode([proto])[0], np.rint(frames * 255) / 255, rtol=1e-6)


def test_legacy_rule_without_mapping() -> None:
    rgb = np.zeros((2, 3, 3), dtype=np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 30, 60, 150
    png = _png(rgb, "RGB")
    one = ObservationProto(shape=[1, 2, 3], compression_type=PNG, compressed_data=png, name="Gray")
    np.testing.assert_allclose(_decode([one])[0], np.full((1, 2, 3), 80 / 255), rtol=1e-6)  # mean of R, G, B
    two = ObservationProto(shape=[2, 2, 3], compression_type=PNG, compressed_data=png, name="Two")
    np.testing.assert_allclose(_decode([two])[0, :, 0, 0], [30 / 255, 60 / 255], rtol=1e-6)  # the first two
    four = ObservationProto(shape=[4, 2, 3], compression_type=PNG, compressed_data=png + png, name="Four")
    np.testing.assert_allclose(_decode([four])[0, :, 0, 0], np.array([30, 60, 150, 30]) / 255, rtol=1e-6)


def test_gray_and_rgba_pngs_decode_with_their_own_channel_count() -> None:
    gray = np.arange(6, dtype=np.uint8).reshape(2, 3) * 40
    proto = ObservationProto(shape=[1, 2, 3], compression_type=PNG, compressed_data=_png(gray, "L"), name="L")
    np.testing.assert_allclose(_decode([proto])[0, 0], gray / 255, rtol=1e-6)
    rgba = np.full((2, 2, 4), 255, dtype=np.uint8)
    rgba[..., 3] = 51
    proto = ObservationProto(
        shape=[4, 2, 2],
        compression_type=PNG,
        compressed_data=_png(rgba, "RGBA"),
        compressed_channel_mapping=[0, 1, 2, 3],
    )
    np.testing.assert_allclose(_decode([proto])[0, :, 0, 0], [1, 1, 1, 0.2], rtol=1e-6)


def test_png_with_the_wrong_shape_names_behavior_and_sensor() -> None:
    proto = png_observation_proto(np.zeros((3, 8, 8)), "CameraSensor")
    proto.shape[:] = [3, 8, 9]  # what the sensor claims is not what the PNG holds
    with pytest.raises(UnityObservationException) as error:
        observations_to_array(_over_the_wire([proto]), _spec((3, 8, 9), "CameraSensor"), behavior=BEHAVIOR)
    assert "CameraSensor" in str(error.value) and BEHAVIOR in str(error.value) and "(3, 8, 8)" in str(error.value)


@pytest.mark.parametrize("mapping", [[0, 1, 2, 3], [0, 2, 2], [-2, 0, 0]])
def test_bad_mapping_names_behavior_and_sensor(mapping: list[int]) -> None:
    proto = png_observation_proto(np.zeros((3, 2, 2)), "Cam")
    proto.compressed_channel_mapping[:] = mapping
    with pytest.raises(UnityObservationException, match=r"(?s)'Cam'.*Crawler\?team=0.*mapping"):
        observations_to_array(_over_the_wire([proto]), _spec((3, 2, 2), "Cam"), behavior=BEHAVIOR)


def test_corrupt_png_names_behavior_and_sensor() -> None:
    proto = png_observation_proto(np.zeros((3, 2, 2)), "Cam")
    proto.compressed_data = proto.compressed_data[:20]
    with pytest.raises(UnityObservationException, match=r"(?s)'Cam'.*Crawler\?team=0.*truncated"):
        observations_to_array(_over_the_wire([proto]), _spec((3, 2, 2), "Cam"), behavior=BEHAVIOR)
    proto.compressed_data = b"not a png at all"
    with pytest.raises(UnityObservationException, match="PNG signature"):
        observations_to_array(_over_the_wire([proto]), _spec((3, 2, 2), "Cam"), behavior=BEHAVIOR)


def test_split_walks_chunks_so_a_signature_inside_pixel_data_does_not_cut_a_file() -> None:
    png = _png(np.zeros((2, 2, 3), dtype=np.uint8), "RGB")
    # Add a private ancillary chunk whose data is a PNG signature: splitting on the bytes alone would cut here.
    chunk_data = PNG_SIGNATURE + b"xxxx"
    crc = zlib.crc32(b"prVt" + chunk_data).to_bytes(4, "big")
    chunk = len(chunk_data).to_bytes(4, "big") + b"prVt" + chunk_data + crc
    tricky = png[:33] + chunk + png[33:]  # after the 8-byte signature and the 25-byte IHDR chunk
    assert split_png_stream(tricky + png) == [tricky, png]
    proto = ObservationProto(
        shape=[6, 2, 2], compression_type=PNG, compressed_data=tricky + png, compressed_channel_mapping=list(range(6))
    )
    assert _decode([proto]).shape == (1, 6, 2, 2)


# ------------------------------------------------------------------------ PNG kept as uint8 (opt-in)


@pytest.mark.parametrize(
    "channels, mapping",
    [(1, [0, 0, 0]), (3, []), (4, [0, 1, 2, 3, -1, -1]), (6, [0, 1, 2, 3, 4, 5]), (5, [0, 1, 2, 3, 4, -1])],
)
def test_uint8_png_round_trip_holds_the_8_bit_values(channels: int, mapping: list[int]) -> None:
    rng = np.random.default_rng(channels)
    images = rng.random((3, channels, 9, 7)).astype(np.float32)
    protos = [png_observation_proto(image, "CameraSensor") for image in images]
    assert list(protos[0].compressed_channel_mapping) == mapping
    as_float, as_uint8 = _decode_both(protos)
    assert as_uint8.shape == (3, channels, 9, 7)
    _assert_uint8_is_rounded_float(as_float, as_uint8)
    np.testing.assert_array_equal(as_uint8, float_to_pixels(images))  # exactly what the encoder stored
    assert as_uint8.flags.writeable and as_uint8.flags.c_contiguous


def test_uint8_is_the_default_off_and_float_observations_stay_float32() -> None:
    image = np.random.default_rng(1).random((3, 4, 4))
    assert _decode([png_observation_proto(image, "Cam")]).dtype == np.float32  # the default: as mlagents_envs
    values = np.random.default_rng(2).standard_normal((2, 3, 4, 4)).astype(np.float32)
    batch = _decode([float_observation_proto(v, "Cam") for v in values], visual_observations="uint8")
    assert batch.dtype == np.float32
    np.testing.assert_array_equal(batch, values)  # uncompressed: untouched, even outside [0, 1]


def test_uint8_mapping_of_distinct_channels_is_the_rounded_float_average() -> None:
    # Two RGB PNGs of random pixels; outputs that average 3 channels (never a tie), 1 channel, or drop one.
    rng = np.random.default_rng(4)
    first, second = rng.integers(0, 256, (2, 5, 6, 3), dtype=np.uint8)
    for mapping in ([0, 0, 0, 1, 1, 1], [0, 1, 0, 1, 0, 1], [1, 0, 1, -1, 1, 2], [0, 0, 0, 0, 0, 0]):
        proto = ObservationProto(
            shape=[max(mapping) + 1, 5, 6],
            compression_type=PNG,
            compressed_data=_png(first, "RGB") + _png(second, "RGB"),
            compressed_channel_mapping=mapping,
            name="Stacked",
        )
        as_float, as_uint8 = _decode_both([proto])
        decoded = np.concatenate([first, second], axis=2).transpose(2, 0, 1).astype(np.int64)
        for output in range(max(mapping) + 1):
            sources = [i for i, m in enumerate(mapping) if m == output]
            scaled = as_float[0, output].astype(np.float64) * 255
            if len(sources) % 2 == 1:  # an odd count of 8-bit values never averages to an exact half
                np.testing.assert_array_equal(as_uint8[0, output], np.rint(scaled))
            # Half up of the exact mean, whatever the count.
            expected = (decoded[sources].sum(axis=0) + len(sources) // 2) // len(sources)
            np.testing.assert_array_equal(as_uint8[0, output], expected)
            assert np.abs(as_uint8[0, output] - scaled).max() <= 0.5 + 1e-4


def test_uint8_average_of_two_channels_rounds_an_exact_half_up() -> None:
    first = np.zeros((1, 4, 3), dtype=np.uint8)
    first[0, :, 0] = [1, 10, 0, 254]
    first[0, :, 1] = [2, 30, 255, 255]
    first[0, :, 2] = 99  # dropped
    proto = ObservationProto(
        shape=[1, 1, 4], compression_type=PNG, compressed_data=_png(first, "RGB"), compressed_channel_mapping=[0, 0, -1]
    )
    as_float, as_uint8 = _decode_both([proto])
    np.testing.assert_array_equal(as_uint8[0, 0, 0], [2, 20, 128, 255])  # 1.5 -> 2, 20, 127.5 -> 128, 254.5 -> 255
    np.testing.assert_allclose(as_float[0, 0, 0] * 255, [1.5, 20, 127.5, 254.5], rtol=1e-6)


def test_uint8_grayscale() -> None:
    # One gray channel as Unity sends it (an RGB PNG of three equal channels, mapping [0, 0, 0]).
    image = np.random.default_rng(5).random((1, 6, 5))
    as_float, as_uint8 = _decode_both([png_observation_proto(image, "Gray")])
    assert as_uint8.shape == (1, 1, 6, 5)
    _assert_uint8_is_rounded_float(as_float, as_uint8)
    # A one-channel ("L") PNG.
    gray = np.arange(6, dtype=np.uint8).reshape(2, 3) * 40
    proto = ObservationProto(shape=[1, 2, 3], compression_type=PNG, compressed_data=_png(gray, "L"), name="L")
    as_float, as_uint8 = _decode_both([proto])
    np.testing.assert_array_equal(as_uint8[0, 0], gray)
    _assert_uint8_is_rounded_float(as_float, as_uint8)
    # Without a mapping (the API before 1.2.0): the mean of R, G and B, rounded (80.33 -> 80, 80.67 -> 81).
    rgb = np.zeros((1, 3, 3), dtype=np.uint8)
    rgb[0, :, 0], rgb[0, :, 1], rgb[0, :, 2] = 30, 60, [150, 151, 152]
    legacy = ObservationProto(shape=[1, 1, 3], compression_type=PNG, compressed_data=_png(rgb, "RGB"), name="Gray")
    as_float, as_uint8 = _decode_both([legacy])
    np.testing.assert_array_equal(as_uint8[0, 0, 0], [80, 80, 81])
    _assert_uint8_is_rounded_float(as_float, as_uint8)


def test_uint8_stacked_pngs() -> None:
    # Stacked gray frames as Unity sends them: one RGB PNG per frame, mapping [0, 0, 0, 1, 1, 1].
    frames = np.random.default_rng(6).random((2, 3, 3))
    pngs = [png_observation_proto(frame[None], "Frame") for frame in frames]
    stacked = ObservationProto(
        shape=[2, 3, 3],
        compression_type=PNG,
        compressed_data=pngs[0].compressed_data + pngs[1].compressed_data,
        compressed_channel_mapping=[0, 0, 0, 1, 1, 1],
        name="StackedGray",
    )
    as_float, as_uint8 = _decode_both([stacked, stacked])
    assert as_uint8.shape == (2, 2, 3, 3)
    np.testing.assert_array_equal(as_uint8[1], float_to_pixels(frames))
    _assert_uint8_is_rounded_float(as_float, as_uint8)
    # Without a mapping, channels are concatenated across the PNGs and the first ones kept.
    rgb = np.random.default_rng(7).integers(0, 256, (2, 2, 3), dtype=np.uint8)
    four = ObservationProto(shape=[4, 2, 2], compression_type=PNG, compressed_data=_png(rgb, "RGB") * 2, name="Four")
    as_float, as_uint8 = _decode_both([four])
    np.testing.assert_array_equal(as_uint8[0], np.concatenate([rgb, rgb], axis=2).transpose(2, 0, 1)[:4])
    _assert_uint8_is_rounded_float(as_float, as_uint8)


def test_uint8_sensor_keeps_its_dtype_for_floats_sent_later_and_for_empty_batches() -> None:
    # A sensor's dtype is settled by its first observation; floats it sends later (its compression turned off)
    # are quantized as the PNG encoder would, so a batch never changes dtype mid-run.
    image = np.random.default_rng(8).random((3, 4, 4)).astype(np.float32)
    png = png_observation_proto(image, "Cam")
    assert observation_dtype(png, "uint8") == "uint8"
    assert observation_dtype(png, "float32") == "float32"
    assert observation_dtype(float_observation_proto(image, "Cam"), "uint8") == "float32"
    decoder = ObservationDecoder(observation_spec_from_proto(png), BEHAVIOR, "uint8")
    out_of_range = image.copy()
    out_of_range[0, 0, :3] = [-1.0, 2.0, np.nan]
    floats = _over_the_wire([float_observation_proto(image, "Cam"), float_observation_proto(out_of_range, "Cam")])
    for protos in (floats, [floats[0], _over_the_wire([png])[0]], floats[:1]):
        batch = decoder.decode(protos)
        assert batch.dtype == np.uint8 and batch.shape == (len(protos), 3, 4, 4)
        np.testing.assert_array_equal(batch[0], float_to_pixels(image))
    np.testing.assert_array_equal(decoder.decode(floats)[1, 0, 0, :3], [0, 255, 0])
    empty = decoder.decode([])
    assert empty.shape == (0, 3, 4, 4) and empty.dtype == np.uint8
    empty = observations_to_array([], _spec((3, 4, 4)), behavior=BEHAVIOR, visual_observations="uint8")
    assert empty.dtype == np.float32  # no first observation to say it is compressed


def test_uint8_decode_errors_name_behavior_and_sensor() -> None:
    proto = png_observation_proto(np.zeros((3, 2, 2)), "Cam")
    proto.compressed_channel_mapping[:] = [0, 2, 2]
    with pytest.raises(UnityObservationException, match=r"(?s)'Cam'.*Crawler\?team=0.*mapping"):
        _decode([proto], _spec((3, 2, 2), "Cam"), visual_observations="uint8")


def test_an_unknown_visual_observations_value_says_what_to_give() -> None:
    proto = png_observation_proto(np.zeros((3, 2, 2)), "Cam")
    with pytest.raises(ValueError, match=r"visual_observations must be 'float32' .* or 'uint8' .* not 'float16'"):
        _decode([proto], visual_observations="float16")
    with pytest.raises(ValueError, match=r"'Cam' of behavior 'Crawler\?team=0' cannot be decoded to 'int8'"):
        ObservationDecoder(_spec((3, 2, 2), "Cam"), BEHAVIOR, "int8")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'float32' or 'uint8', not 'float64'"):
        decode_png_stream(proto.compressed_data, [], 3, "float64")  # type: ignore[arg-type]
