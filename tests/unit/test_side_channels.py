"""Side channels: exact bytes against hand-written ones, round trips between both ends, faults."""

from __future__ import annotations

import logging
import statistics
import struct
import uuid
from typing import Callable

import pytest

from rayagents.protocol.exceptions import UnitySideChannelException
from rayagents.protocol.side_channels import (
    ENGINE_CONFIGURATION_CHANNEL_ID,
    ENVIRONMENT_PARAMETERS_CHANNEL_ID,
    FLOAT_PROPERTIES_CHANNEL_ID,
    STATS_CHANNEL_ID,
    TRAINING_ANALYTICS_CHANNEL_ID,
    EngineConfig,
    EngineConfigurationChannel,
    EngineConfigurationReceiver,
    EnvironmentParametersChannel,
    EnvironmentParametersReceiver,
    FloatPropertiesChannel,
    IncomingMessage,
    OutgoingMessage,
    RawBytesChannel,
    SideChannel,
    SideChannelManager,
    StatsAggregationMethod,
    StatsRecorder,
    StatsSideChannel,
    TrainingAnalyticsReceiver,
    decode_side_channel_messages,
    encode_side_channel_messages,
)

# Channel ids in .NET Guid.ToByteArray() order, written out by hand.
ENGINE_ID_BYTES = bytes.fromhex("2c 34 51 e9 7e 4f ea 11 b2 38 78 4f 43 87 d1 f7")
ENV_PARAMS_ID_BYTES = bytes.fromhex("1e 89 4c 53 0f 81 ea 11 a9 d0 82 24 85 86 04 00")
STATS_ID_BYTES = bytes.fromhex("b7 f7 d8 a1 c8 ce f9 50 b7 8b d3 e1 65 a7 85 20")
FLOAT_PROPS_ID_BYTES = bytes.fromhex("d0 f7 cc 60 7e 4f ea 11 b2 38 78 4f 43 87 d1 f7")
ANALYTICS_ID_BYTES = bytes.fromhex("a9 a4 64 b6 6f d8 5f 5a 95 cb e8 35 3a 7e 83 56")
CUSTOM_ID = uuid.UUID("12345678-9abc-def0-1122-334455667788")
CUSTOM_ID_BYTES = bytes.fromhex("78 56 34 12 bc 9a f0 de 11 22 33 44 55 66 77 88")


def frame(id_bytes: bytes, payload: bytes) -> bytes:
    """One framed message, built without the code under test."""
    return id_bytes + struct.pack("<i", len(payload)) + payload


def exchange(sender: SideChannelManager, receiver: SideChannelManager) -> bytes:
    """Send everything ``sender`` has queued to ``receiver``; the bytes that travelled."""
    data = sender.generate_side_channel_messages()
    receiver.process_side_channel_message(data)
    return data


# ---------------------------------------------------------------- ids and primitives


def test_channel_ids_and_their_wire_bytes() -> None:
    assert ENGINE_CONFIGURATION_CHANNEL_ID.bytes_le == ENGINE_ID_BYTES
    assert ENVIRONMENT_PARAMETERS_CHANNEL_ID.bytes_le == ENV_PARAMS_ID_BYTES
    assert STATS_CHANNEL_ID.bytes_le == STATS_ID_BYTES
    assert FLOAT_PROPERTIES_CHANNEL_ID.bytes_le == FLOAT_PROPS_ID_BYTES
    assert TRAINING_ANALYTICS_CHANNEL_ID.bytes_le == ANALYTICS_ID_BYTES
    assert CUSTOM_ID.bytes_le == CUSTOM_ID_BYTES
    assert STATS_CHANNEL_ID == uuid.uuid5(uuid.NAMESPACE_URL, "com.unity.ml-agents/StatsSideChannel")
    assert TRAINING_ANALYTICS_CHANNEL_ID == uuid.uuid5(
        uuid.NAMESPACE_URL, "com.unity.ml-agents/TrainingAnalyticsSideChannel"
    )


def test_outgoing_primitives_exact_bytes() -> None:
    msg = OutgoingMessage()
    msg.write_bool(True)
    msg.write_bool(False)
    msg.write_int32(-2)
    msg.write_float32(1.0)
    msg.write_string("ab")
    msg.write_float32_list([1.0, -2.0])
    assert msg.buffer == bytes.fromhex(
        "01"  # True
        "00"  # False
        "fe ff ff ff"  # -2
        "00 00 80 3f"  # 1.0
        "02 00 00 00 61 62"  # "ab"
        "02 00 00 00 00 00 80 3f 00 00 00 c0"  # [1.0, -2.0]
    )
    msg.set_raw_bytes(b"\x00\xffxyz")
    assert msg.buffer == b"\x00\xffxyz"


def test_incoming_primitives_read_back() -> None:
    data = bytes.fromhex("01 fe ff ff ff 00 00 80 3f 02 00 00 00 61 62 02 00 00 00 00 00 80 3f 00 00 00 c0")
    msg = IncomingMessage(data)
    assert msg.read_bool() is True
    assert msg.read_int32() == -2
    assert msg.read_float32() == 1.0
    assert msg.read_string() == "ab"
    assert msg.read_float32_list() == [1.0, -2.0]
    assert msg.offset == len(data)
    assert msg.get_raw_bytes() == data


def test_reads_past_the_end_return_defaults() -> None:
    empty = IncomingMessage(b"")
    assert empty.read_bool() is False
    assert empty.read_bool(default_value=True) is True
    assert empty.read_int32() == 0
    assert empty.read_int32(default_value=7) == 7
    assert empty.read_float32() == 0.0
    assert empty.read_float32(default_value=2.5) == 2.5
    assert empty.read_string() == ""
    assert empty.read_string(default_value="none") == "none"
    assert empty.read_float32_list() == []
    assert empty.read_float32_list(default_value=[3.0]) == [3.0]

    # A value cut short is past the end too, and every later read as well.
    partial = IncomingMessage(bytes.fromhex("05 00 00 00 07 00"))
    assert partial.read_int32() == 5
    assert partial.read_int32(default_value=-1) == -1
    assert partial.read_bool(default_value=True) is True

    # A string whose length runs past the end.
    short_string = IncomingMessage(struct.pack("<i", 10) + b"abc")
    assert short_string.read_string(default_value="dflt") == "dflt"
    # A float list whose count runs past the end.
    short_list = IncomingMessage(struct.pack("<if", 3, 1.0))
    assert short_list.read_float32_list(default_value=[9.0]) == [9.0]


def test_write_errors_name_the_value() -> None:
    with pytest.raises(UnitySideChannelException, match="ASCII"):
        OutgoingMessage().write_string("café")
    with pytest.raises(UnitySideChannelException, match="int32"):
        OutgoingMessage().write_int32(2**31)
    with pytest.raises(UnitySideChannelException, match="float32"):
        OutgoingMessage().write_float32(1e40)


# ---------------------------------------------------------------- framing and the manager


def test_encode_decode_framing_exact_bytes() -> None:
    data = encode_side_channel_messages([(CUSTOM_ID, b"hi"), (STATS_CHANNEL_ID, b"")])
    assert data == CUSTOM_ID_BYTES + bytes.fromhex("02 00 00 00") + b"hi" + STATS_ID_BYTES + bytes(4)
    assert decode_side_channel_messages(data) == [(CUSTOM_ID, b"hi"), (STATS_CHANNEL_ID, b"")]
    assert decode_side_channel_messages(b"") == []


def test_manager_concatenates_all_queues_in_order_and_clears_them() -> None:
    first = RawBytesChannel(CUSTOM_ID)
    second = FloatPropertiesChannel()
    manager = SideChannelManager([first, second])
    assert manager.generate_side_channel_messages() == b""
    first.send_raw_data(b"a")
    second.set_property("k", 1.0)
    first.send_raw_data(b"bc")
    assert len(first.queued_messages) == 2
    data = manager.generate_side_channel_messages()
    assert data == (
        frame(CUSTOM_ID_BYTES, b"a")
        + frame(CUSTOM_ID_BYTES, b"bc")
        + frame(FLOAT_PROPS_ID_BYTES, struct.pack("<i", 1) + b"k" + struct.pack("<f", 1.0))
    )
    assert first.queued_messages == ()
    assert second.queued_messages == ()
    assert manager.generate_side_channel_messages() == b""


def test_unknown_channel_warns_with_its_id_and_skips_to_the_next(caplog: pytest.LogCaptureFixture) -> None:
    raw = RawBytesChannel(CUSTOM_ID)
    manager = SideChannelManager([raw])
    unknown = uuid.UUID("00112233-4455-6677-8899-aabbccddeeff")
    data = frame(unknown.bytes_le, b"who am i") + frame(CUSTOM_ID_BYTES, b"next")
    with caplog.at_level(logging.WARNING):
        manager.process_side_channel_message(data)
    assert raw.get_and_clear_received_messages() == [b"next"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "Unknown side channel data received" in warnings[0]
    assert str(unknown) in warnings[0]
    # A player that sends on the channel every step is not a flood of warnings: one per id is enough.
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        manager.process_side_channel_message(data)
    assert raw.get_and_clear_received_messages() == [b"next"]
    assert [r for r in caplog.records if r.levelno == logging.WARNING] == []


def test_truncated_header_raises() -> None:
    raw = RawBytesChannel(CUSTOM_ID)
    manager = SideChannelManager([raw])
    data = frame(CUSTOM_ID_BYTES, b"ok") + CUSTOM_ID_BYTES[:10]
    with pytest.raises(UnitySideChannelException, match=r"truncated: message 1 starts at byte 22 but only 10"):
        manager.process_side_channel_message(data)
    # Nothing was delivered: the stream is checked before any message goes to its channel.
    assert raw.get_and_clear_received_messages() == []


def test_truncated_payload_raises() -> None:
    manager = SideChannelManager([RawBytesChannel(CUSTOM_ID)])
    data = CUSTOM_ID_BYTES + struct.pack("<i", 10) + b"abc"
    with pytest.raises(UnitySideChannelException, match=rf"truncated: message 0 for channel {CUSTOM_ID}.*10 bytes"):
        manager.process_side_channel_message(data)
    negative = CUSTOM_ID_BYTES + struct.pack("<i", -1)
    with pytest.raises(UnitySideChannelException, match="truncated"):
        manager.process_side_channel_message(negative)


def test_duplicate_channel_ids_raise_at_construction() -> None:
    with pytest.raises(UnitySideChannelException, match=rf"same id {CUSTOM_ID}.*RawBytesChannel.*FloatProperties"):
        SideChannelManager([RawBytesChannel(CUSTOM_ID), FloatPropertiesChannel(CUSTOM_ID)])
    with pytest.raises(UnitySideChannelException, match=str(STATS_CHANNEL_ID)):
        SideChannelManager([StatsSideChannel(), StatsSideChannel()])


def test_base_channel_must_implement_receive() -> None:
    manager = SideChannelManager([SideChannel(CUSTOM_ID)])
    with pytest.raises(NotImplementedError):
        manager.process_side_channel_message(frame(CUSTOM_ID_BYTES, b""))


# ---------------------------------------------------------------- engine configuration


def test_engine_configuration_exact_bytes() -> None:
    channel = EngineConfigurationChannel()
    manager = SideChannelManager([channel])
    channel.set_configuration(EngineConfig.default_config())
    assert manager.generate_side_channel_messages() == (
        frame(ENGINE_ID_BYTES, bytes.fromhex("00 00 00 00 50 00 00 00 50 00 00 00"))  # 80 x 80
        + frame(ENGINE_ID_BYTES, bytes.fromhex("01 00 00 00 01 00 00 00"))  # quality 1
        + frame(ENGINE_ID_BYTES, bytes.fromhex("02 00 00 00 00 00 a0 41"))  # time scale 20.0
        + frame(ENGINE_ID_BYTES, bytes.fromhex("03 00 00 00 ff ff ff ff"))  # target frame rate -1
        + frame(ENGINE_ID_BYTES, bytes.fromhex("04 00 00 00 3c 00 00 00"))  # capture frame rate 60
    )
    assert EngineConfig.default_config() == EngineConfig(80, 80, 1, 20.0, -1, 60)

    channel.set_configuration_parameters(time_scale=1.5)
    assert manager.generate_side_channel_messages() == frame(ENGINE_ID_BYTES, bytes.fromhex("02000000 0000c03f"))


def test_engine_configuration_resolution_needs_width_and_height() -> None:
    channel = EngineConfigurationChannel()
    with pytest.raises(UnitySideChannelException, match="width and a height"):
        channel.set_configuration_parameters(width=84)
    with pytest.raises(UnitySideChannelException, match="width and a height"):
        channel.set_configuration(EngineConfig(height=84))
    assert channel.queued_messages == ()


def test_engine_configuration_round_trip_and_trainer_end_rejects_messages(caplog: pytest.LogCaptureFixture) -> None:
    trainer_channel = EngineConfigurationChannel()
    trainer = SideChannelManager([trainer_channel])
    receiver = EngineConfigurationReceiver()
    unity = SideChannelManager([receiver])
    assert receiver.config == EngineConfig()

    trainer_channel.set_configuration_parameters(width=84, height=84, quality_level=5, time_scale=20.0)
    exchange(trainer, unity)
    assert receiver.config == EngineConfig(84, 84, 5, 20.0, None, None)
    trainer_channel.set_configuration_parameters(target_frame_rate=-1, capture_frame_rate=60)
    exchange(trainer, unity)
    assert receiver.config == EngineConfig(84, 84, 5, 20.0, -1, 60)

    # A player clamps the time scale to at least 1.
    trainer_channel.set_configuration_parameters(time_scale=0.25)
    exchange(trainer, unity)
    assert receiver.config.time_scale == 1.0

    # An unknown setting is a warning at the Unity end.
    with caplog.at_level(logging.WARNING):
        unity.process_side_channel_message(frame(ENGINE_ID_BYTES, struct.pack("<ii", 9, 1)))
    assert any("Unknown engine configuration type 9" in r.getMessage() for r in caplog.records)
    assert receiver.config == EngineConfig(84, 84, 5, 1.0, -1, 60)

    # Unity never sends on this channel: the trainer end raises.
    with pytest.raises(UnitySideChannelException, match="engine configuration channel"):
        trainer.process_side_channel_message(frame(ENGINE_ID_BYTES, struct.pack("<ii", 1, 3)))


# ---------------------------------------------------------------- environment parameters


def test_environment_parameters_exact_bytes() -> None:
    channel = EnvironmentParametersChannel()
    manager = SideChannelManager([channel])
    channel.set_float_parameter("gravity", 2.5)
    channel.set_uniform_sampler_parameters("mass", 1.0, 3.0, 1337)
    channel.set_gaussian_sampler_parameters("size", 0.5, 0.25, -1)
    channel.set_multirangeuniform_sampler_parameters("len", [(0.0, 1.0), (2.0, 4.0)], 7)
    assert manager.generate_side_channel_messages() == (
        frame(
            ENV_PARAMS_ID_BYTES,
            bytes.fromhex("07000000") + b"gravity" + bytes.fromhex("00000000 00002040"),
        )
        + frame(
            ENV_PARAMS_ID_BYTES,
            bytes.fromhex("04000000")
            + b"mass"
            + bytes.fromhex("01000000 39050000 00000000 0000803f 00004040"),  # SAMPLER, seed 1337, UNIFORM, 1, 3
        )
        + frame(
            ENV_PARAMS_ID_BYTES,
            bytes.fromhex("04000000")
            + b"size"
            + bytes.fromhex("01000000 ffffffff 01000000 0000003f 0000803e"),  # SAMPLER, seed -1, GAUSSIAN, .5, .25
        )
        + frame(
            ENV_PARAMS_ID_BYTES,
            bytes.fromhex("03000000")
            + b"len"
            # SAMPLER, seed 7, MULTIRANGEUNIFORM, 4 floats: 0, 1, 2, 4
            + bytes.fromhex("01000000 07000000 02000000 04000000 00000000 0000803f 00000040 00008040"),
        )
    )


def test_environment_parameters_trainer_end_validates_and_rejects_messages() -> None:
    channel = EnvironmentParametersChannel()
    with pytest.raises(UnitySideChannelException, match="'len' has no intervals"):
        channel.set_multirangeuniform_sampler_parameters("len", [], 0)
    with pytest.raises(UnitySideChannelException, match=r"\(min, max\) pair"):
        channel.set_multirangeuniform_sampler_parameters("len", [(1.0, 2.0, 3.0)], 0)  # type: ignore[list-item]
    manager = SideChannelManager([channel])
    with pytest.raises(UnitySideChannelException, match="environment parameters channel"):
        manager.process_side_channel_message(frame(ENV_PARAMS_ID_BYTES, b""))


def test_environment_parameters_float_round_trip_and_callbacks() -> None:
    trainer_channel = EnvironmentParametersChannel()
    trainer = SideChannelManager([trainer_channel])
    receiver = EnvironmentParametersReceiver()
    unity = SideChannelManager([receiver])
    seen: list[float] = []
    receiver.register_callback("gravity", seen.append)

    assert receiver.get_with_default("gravity", -9.81) == -9.81
    assert receiver.keys() == []
    trainer_channel.set_float_parameter("gravity", 2.5)
    exchange(trainer, unity)
    assert receiver.get_with_default("gravity", -9.81) == 2.5
    assert receiver.get_with_default("gravity", -9.81) == 2.5
    assert seen == [2.5]
    assert receiver.keys() == ["gravity"]

    # A sampler for the same key replaces the value and does not fire the float callback.
    trainer_channel.set_uniform_sampler_parameters("gravity", 10.0, 20.0, 3)
    exchange(trainer, unity)
    assert 10.0 <= receiver.get_with_default("gravity", 0.0) <= 20.0
    assert seen == [2.5]
    # Floats are carried as float32.
    trainer_channel.set_float_parameter("gravity", 0.1)
    exchange(trainer, unity)
    assert receiver.get_with_default("gravity", 0.0) == struct.unpack("<f", struct.pack("<f", 0.1))[0]
    assert len(seen) == 2


def _receiver_with(send: Callable[[EnvironmentParametersChannel], None]) -> EnvironmentParametersReceiver:
    """A Unity-end receiver that got what ``send`` queued at a trainer end."""
    trainer_channel = EnvironmentParametersChannel()
    receiver = EnvironmentParametersReceiver()
    send(trainer_channel)
    exchange(SideChannelManager([trainer_channel]), SideChannelManager([receiver]))
    return receiver


def test_uniform_sampler_draws_anew_each_call_and_is_seeded() -> None:
    receiver = _receiver_with(lambda c: c.set_uniform_sampler_parameters("mass", 1.0, 3.0, 1337))
    draws = [receiver.get_with_default("mass", 0.0) for _ in range(200)]
    assert all(1.0 <= d <= 3.0 for d in draws)
    assert len(set(draws)) == 200
    assert min(draws) < 1.5 and max(draws) > 2.5

    same_seed = _receiver_with(lambda c: c.set_uniform_sampler_parameters("mass", 1.0, 3.0, 1337))
    assert [same_seed.get_with_default("mass", 0.0) for _ in range(200)] == draws
    other_seed = _receiver_with(lambda c: c.set_uniform_sampler_parameters("mass", 1.0, 3.0, 1338))
    assert [other_seed.get_with_default("mass", 0.0) for _ in range(200)] != draws


def test_gaussian_sampler_draws_anew_each_call_and_is_seeded() -> None:
    receiver = _receiver_with(lambda c: c.set_gaussian_sampler_parameters("size", 0.5, 0.25, 42))
    draws = [receiver.get_with_default("size", 0.0) for _ in range(2000)]
    assert len(set(draws)) == 2000
    assert abs(statistics.fmean(draws) - 0.5) < 0.03
    assert abs(statistics.stdev(draws) - 0.25) < 0.03
    same_seed = _receiver_with(lambda c: c.set_gaussian_sampler_parameters("size", 0.5, 0.25, 42))
    assert [same_seed.get_with_default("size", 0.0) for _ in range(2000)] == draws


def test_multirange_sampler_draws_inside_the_intervals() -> None:
    intervals = [(0.0, 1.0), (2.0, 4.0)]
    receiver = _receiver_with(lambda c: c.set_multirangeuniform_sampler_parameters("len", intervals, 7))
    draws = [receiver.get_with_default("len", -1.0) for _ in range(3000)]
    assert all(0.0 <= d <= 1.0 or 2.0 <= d <= 4.0 for d in draws)
    in_first = sum(1 for d in draws if d <= 1.0)
    # Each interval is chosen in proportion to its length: 1/3 and 2/3.
    assert 0.28 < in_first / len(draws) < 0.39
    assert len(set(draws)) == 3000
    same_seed = _receiver_with(lambda c: c.set_multirangeuniform_sampler_parameters("len", intervals, 7))
    assert [same_seed.get_with_default("len", -1.0) for _ in range(3000)] == draws


def test_environment_parameters_receiver_warns_on_malformed_messages(caplog: pytest.LogCaptureFixture) -> None:
    receiver = EnvironmentParametersReceiver()
    unity = SideChannelManager([receiver])
    key = struct.pack("<i", 1) + b"k"
    with caplog.at_level(logging.WARNING):
        unity.process_side_channel_message(
            frame(ENV_PARAMS_ID_BYTES, key + struct.pack("<i", 5))  # unknown data type
            + frame(ENV_PARAMS_ID_BYTES, key + struct.pack("<iii", 1, 0, 9))  # unknown sampler type
            + frame(ENV_PARAMS_ID_BYTES, key + struct.pack("<iiiifff", 1, 0, 2, 3, 0.0, 1.0, 2.0))  # odd bounds
        )
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("unknown data type 5" in m for m in messages)
    assert any("unknown sampler type 9" in m for m in messages)
    assert any("multirange uniform sampler of 3 bounds" in m for m in messages)
    assert receiver.keys() == []
    assert receiver.get_with_default("k", 4.0) == 4.0


# ---------------------------------------------------------------- stats


def test_stats_exact_bytes_and_round_trip() -> None:
    recorder = StatsRecorder()
    unity = SideChannelManager([recorder])
    stats = StatsSideChannel()
    trainer = SideChannelManager([stats])

    recorder.add("reward", 1.5, StatsAggregationMethod.MOST_RECENT)
    recorder.add("reward", 2.0)
    recorder.add("hits", 3.0, StatsAggregationMethod.SUM)
    recorder.add("dist", -0.5, StatsAggregationMethod.HISTOGRAM)
    data = exchange(unity, trainer)
    assert data == (
        frame(STATS_ID_BYTES, bytes.fromhex("06000000") + b"reward" + bytes.fromhex("0000c03f 01000000"))
        + frame(STATS_ID_BYTES, bytes.fromhex("06000000") + b"reward" + bytes.fromhex("00000040 00000000"))
        + frame(STATS_ID_BYTES, bytes.fromhex("04000000") + b"hits" + bytes.fromhex("00004040 02000000"))
        + frame(STATS_ID_BYTES, bytes.fromhex("04000000") + b"dist" + bytes.fromhex("000000bf 03000000"))
    )
    result = stats.get_and_reset_stats()
    assert result == {
        "reward": [(1.5, StatsAggregationMethod.MOST_RECENT), (2.0, StatsAggregationMethod.AVERAGE)],
        "hits": [(3.0, StatsAggregationMethod.SUM)],
        "dist": [(-0.5, StatsAggregationMethod.HISTOGRAM)],
    }
    assert all(isinstance(m, StatsAggregationMethod) for pairs in result.values() for _, m in pairs)
    assert stats.get_and_reset_stats() == {}


def test_stats_faults() -> None:
    trainer = SideChannelManager([StatsSideChannel()])
    bad = frame(STATS_ID_BYTES, struct.pack("<i", 1) + b"x" + struct.pack("<fi", 1.0, 4))
    with pytest.raises(UnitySideChannelException, match="'x'.*unknown aggregation method 4"):
        trainer.process_side_channel_message(bad)
    unity = SideChannelManager([StatsRecorder()])
    with pytest.raises(UnitySideChannelException, match="stats channel"):
        unity.process_side_channel_message(frame(STATS_ID_BYTES, b""))


# ---------------------------------------------------------------- float properties, raw bytes, analytics


def test_float_properties_exact_bytes_and_both_directions() -> None:
    trainer_channel = FloatPropertiesChannel()
    unity_channel = FloatPropertiesChannel()
    trainer = SideChannelManager([trainer_channel])
    unity = SideChannelManager([unity_channel])
    seen: list[float] = []
    unity_channel.register_callback("speed", seen.append)

    trainer_channel.set_property("speed", 0.75)
    assert trainer_channel.get_property("speed") == 0.75
    data = exchange(trainer, unity)
    assert data == frame(FLOAT_PROPS_ID_BYTES, bytes.fromhex("05000000") + b"speed" + bytes.fromhex("0000403f"))
    assert unity_channel.get_property("speed") == 0.75
    assert unity_channel.get_with_default("speed", 0.0) == 0.75
    assert unity_channel.get_with_default("other", 9.0) == 9.0
    assert unity_channel.get_property("other") is None
    assert seen == [0.75]

    unity_channel.set_property("score", 12.0)
    exchange(unity, trainer)
    assert trainer_channel.get_property_dict_copy() == {"speed": 0.75, "score": 12.0}
    assert trainer_channel.list_properties() == ["speed", "score"]
    assert seen == [0.75]  # setting locally does not fire the callback


def test_float_properties_custom_id() -> None:
    channel = FloatPropertiesChannel(CUSTOM_ID)
    channel.set_property("a", 1.0)
    data = SideChannelManager([channel]).generate_side_channel_messages()
    assert data[:16] == CUSTOM_ID_BYTES


def test_raw_bytes_exact_bytes_and_both_directions() -> None:
    trainer_channel = RawBytesChannel(CUSTOM_ID)
    unity_channel = RawBytesChannel(CUSTOM_ID)
    trainer = SideChannelManager([trainer_channel])
    unity = SideChannelManager([unity_channel])

    trainer_channel.send_raw_data(b"\x00\xffhello")
    trainer_channel.send_raw_data(b"")
    data = exchange(trainer, unity)
    assert data == frame(CUSTOM_ID_BYTES, b"\x00\xffhello") + frame(CUSTOM_ID_BYTES, b"")
    assert unity_channel.get_and_clear_received_messages() == [b"\x00\xffhello", b""]
    assert unity_channel.get_and_clear_received_messages() == []

    unity_channel.send_raw_data(b"back")
    exchange(unity, trainer)
    assert trainer_channel.get_and_clear_received_messages() == [b"back"]


def test_training_analytics_is_ignored_silently(caplog: pytest.LogCaptureFixture) -> None:
    analytics = TrainingAnalyticsReceiver()
    raw = RawBytesChannel(CUSTOM_ID)
    unity = SideChannelManager([analytics, raw])
    with caplog.at_level(logging.DEBUG):
        unity.process_side_channel_message(
            frame(ANALYTICS_ID_BYTES, b"\x0a\x05any-proto") + frame(CUSTOM_ID_BYTES, b"after")
        )
    assert analytics.messages_received == 1
    assert raw.get_and_clear_received_messages() == [b"after"]
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_all_channels_in_one_stream_both_ways() -> None:
    engine = EngineConfigurationChannel()
    params = EnvironmentParametersChannel()
    stats = StatsSideChannel()
    props = FloatPropertiesChannel()
    raw = RawBytesChannel(CUSTOM_ID)
    trainer = SideChannelManager([engine, params, stats, props, raw])

    engine_rx = EngineConfigurationReceiver()
    params_rx = EnvironmentParametersReceiver()
    recorder = StatsRecorder()
    props_rx = FloatPropertiesChannel()
    raw_rx = RawBytesChannel(CUSTOM_ID)
    analytics = TrainingAnalyticsReceiver()
    unity = SideChannelManager([engine_rx, params_rx, recorder, props_rx, raw_rx, analytics])

    engine.set_configuration_parameters(time_scale=5.0)
    params.set_float_parameter("goal", 3.0)
    props.set_property("p", 1.0)
    raw.send_raw_data(b"r")
    data = trainer.generate_side_channel_messages()
    assert [channel_id for channel_id, _ in decode_side_channel_messages(data)] == [
        ENGINE_CONFIGURATION_CHANNEL_ID,
        ENVIRONMENT_PARAMETERS_CHANNEL_ID,
        FLOAT_PROPERTIES_CHANNEL_ID,
        CUSTOM_ID,
    ]
    unity.process_side_channel_message(data)
    assert engine_rx.config.time_scale == 5.0
    assert params_rx.get_with_default("goal", 0.0) == 3.0
    assert props_rx.get_property("p") == 1.0
    assert raw_rx.get_and_clear_received_messages() == [b"r"]

    recorder.add("Environment/Cumulative Reward", 4.0)
    props_rx.set_property("q", 2.0)
    raw_rx.send_raw_data(b"s")
    exchange(unity, trainer)
    assert stats.get_and_reset_stats() == {"Environment/Cumulative Reward": [(4.0, StatsAggregationMethod.AVERAGE)]}
    assert props.get_property("q") == 2.0
    assert raw.get_and_clear_received_messages() == [b"s"]
