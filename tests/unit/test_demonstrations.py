""".demo files (spec §7): the writer's Unity layout, the reader's realigned experiences, errors, folders and URIs."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from rayagents.learner.demonstrations import load_demonstrations
from rayagents.protocol.agents import agent_info_proto
from rayagents.protocol.communicator_objects.agent_action_pb2 import AgentActionProto
from rayagents.protocol.communicator_objects.agent_info_action_pair_pb2 import AgentInfoActionPairProto
from rayagents.protocol.communicator_objects.demonstration_meta_pb2 import DemonstrationMetaProto
from rayagents.protocol.demonstration_writer import (
    DemonstrationWriter,
    demonstration_brain_parameters,
    sanitize_demonstration_name,
)
from rayagents.protocol.demonstrations import (
    BRAIN_PARAMETERS_OFFSET,
    Demonstration,
    DemonstrationError,
    check_demonstration_spec,
    concatenate_demonstrations,
    read_demonstration,
    read_demonstration_records,
)
from rayagents.protocol.observations import float_observation_proto, png_observation_proto
from rayagents.protocol.types import ActionSpec, BehaviorSpec, DimensionProperty, ObservationSpec, ObservationType

BEHAVIOR = "Walker?team=0"


@dataclass(frozen=True)
class Sensor:
    name: str
    shape: tuple[int, ...]
    png: bool = False


@dataclass
class Played:
    """A scripted agent's episodes and what the aligned experiences must be."""

    data: bytes
    observations: list[np.ndarray]
    continuous: np.ndarray
    discrete: np.ndarray
    masks: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray
    records: int
    episodes: int
    mean_reward: float
    decisions: list[tuple[list[np.ndarray], np.ndarray, np.ndarray]]
    """Per decision record (in file order, terminal records excluded): observations, continuous, discrete."""


SPECS = {
    "continuous": ((Sensor("Vector", (3,)),), ActionSpec(2, ())),
    "discrete": ((Sensor("Vector", (4,)),), ActionSpec(0, (3, 2))),
    "hybrid": ((Sensor("A", (2,)), Sensor("B", (3,))), ActionSpec(1, (2,))),
    "visual": ((Sensor("Camera", (3, 8, 8), png=True), Sensor("Vector", (2,))), ActionSpec(0, (4,))),
}


def _observation(sensor: Sensor, rng: np.random.Generator) -> tuple[np.ndarray, object]:
    """A value as an EnvActor keeps it (uint8 for PNG) and its proto."""
    if sensor.png:
        pixels = rng.integers(0, 256, size=sensor.shape).astype(np.uint8)
        return pixels, png_observation_proto(pixels.astype(np.float32) / 255.0, sensor.name)
    values = rng.normal(size=sensor.shape).astype(np.float32)
    return values, float_observation_proto(values, sensor.name)


def play(
    kind: str,
    lengths: tuple[int, ...] = (4, 1, 3),
    unfinished: int = 2,
    seed: int = 0,
    name: str = "demo",
) -> Played:
    """Writes episodes of ``lengths`` decisions (each ended by a final info) and one of ``unfinished`` decisions
    cut by the recording's end; returns the file and the experiences it must give."""
    sensors, action_spec = SPECS[kind]
    rng = np.random.default_rng(seed)
    stream = io.BytesIO()
    writer = DemonstrationWriter(stream, name, demonstration_brain_parameters(BEHAVIOR, action_spec))
    width = sum(action_spec.discrete_branches)
    expected: dict[str, list] = {k: [] for k in ("obs", "cont", "disc", "mask", "reward", "done")}
    decisions = []
    total_reward, records = 0.0, 0
    episodes = [(length, True) for length in lengths] + ([(unfinished, False)] if unfinished else [])
    for length, finishes in episodes:
        reward = 0.0  # the first info of an episode carries no reward
        for t in range(length + (1 if finishes else 0)):
            final = t == length
            pairs = [_observation(s, rng) for s in sensors]
            mask = rng.random(width) < 0.3 if width else None
            protos = [proto for _, proto in pairs]
            info = agent_info_proto(7, protos, reward=reward, done=final, max_step_reached=final, action_mask=mask)
            total_reward += reward
            records += 1
            if final:
                writer.record(info)
                break
            continuous = rng.uniform(-1, 1, action_spec.continuous_size).astype(np.float32)
            discrete = np.array([rng.integers(0, b) for b in action_spec.discrete_branches], dtype=np.int64)
            writer.record(info, continuous, discrete)
            decisions.append(([value for value, _ in pairs], continuous, discrete))
            reward = float(np.float32(rng.normal()))
            if t < length - 1 or finishes:  # the last decision of an unfinished episode has no outcome
                expected["obs"].append([value for value, _ in pairs])
                expected["cont"].append(continuous)
                expected["disc"].append(discrete)
                expected["mask"].append(mask if mask is not None else np.zeros(0, bool))
                expected["reward"].append(reward)
                expected["done"].append(finishes and t == length - 1)
    meta = writer.close()
    n_episodes = len(lengths) + (1 if unfinished else 0)
    assert meta.number_steps == records and meta.number_episodes == n_episodes
    return Played(
        data=stream.getvalue(),
        observations=[np.stack([obs[i] for obs in expected["obs"]]) for i in range(len(sensors))],
        continuous=np.array(expected["cont"], np.float32).reshape(len(expected["cont"]), action_spec.continuous_size),
        discrete=np.array(expected["disc"], np.int64).reshape(len(expected["disc"]), action_spec.discrete_size),
        masks=np.array(expected["mask"], bool).reshape(len(expected["mask"]), width),
        rewards=np.array(expected["reward"], np.float32),
        dones=np.array(expected["done"], bool),
        records=records,
        episodes=n_episodes,
        mean_reward=float(np.float32(total_reward / n_episodes)),
        decisions=decisions,
    )


@pytest.mark.parametrize("kind", sorted(SPECS))
def test_round_trip_gives_the_aligned_experiences(kind: str) -> None:
    played = play(kind)
    demo = read_demonstration(played.data, "walker.demo")
    sensors, action_spec = SPECS[kind]
    assert demo.behavior_name == BEHAVIOR
    assert demo.behavior_spec.action_spec == action_spec
    assert [s.shape for s in demo.behavior_spec.observation_specs] == [s.shape for s in sensors]
    assert [s.name for s in demo.behavior_spec.observation_specs] == [s.name for s in sensors]
    assert len(demo) == len(played.rewards) == 4 + 1 + 3 + 1
    for got, want, sensor in zip(demo.observations, played.observations, sensors):
        assert got.dtype == (np.uint8 if sensor.png else np.float32)
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(demo.continuous_actions, played.continuous)
    np.testing.assert_array_equal(demo.discrete_actions, played.discrete)
    assert demo.continuous_actions.dtype == np.float32 and demo.discrete_actions.dtype == np.int64
    np.testing.assert_array_equal(demo.action_masks, played.masks)
    np.testing.assert_array_equal(demo.rewards, played.rewards)
    np.testing.assert_array_equal(demo.dones, played.dones)
    assert demo.dones.sum() == 3
    assert demo.number_episodes == played.episodes == 4
    assert demo.sources == ("walker.demo",)
    meta = read_demonstration_records(played.data, "walker.demo").meta
    assert (meta.name, meta.number_steps, meta.number_episodes, meta.api_version) == ("demo", played.records, 4, 1)
    assert meta.mean_reward == pytest.approx(played.mean_reward)


def test_the_file_has_unitys_layout() -> None:
    """Meta delimited at 0 within 33 bytes, brain parameters at 33 (Unity's deprecated fields too), each record
    holding the previous decision's action (zeros at an episode's start), and the meta's bytes again at the end."""
    played = play("discrete", lengths=(2, 3), unfinished=0, name="Expert")
    data = played.data
    assert data[0] < BRAIN_PARAMETERS_OFFSET and all(b == 0 for b in data[1 + data[0] : BRAIN_PARAMETERS_OFFSET])
    records = read_demonstration_records(data, "x")
    assert records.brain_parameters.brain_name == BEHAVIOR
    assert not records.brain_parameters.is_training
    assert list(records.brain_parameters.vector_action_size_deprecated) == [3, 2]
    assert list(records.brain_parameters.action_spec.discrete_branch_sizes) == [3, 2]
    meta_bytes = data[1 : 1 + data[0]]
    assert data.endswith(meta_bytes)
    stored = [list(pair.action_info.discrete_actions) for pair in records.pairs]
    dones = [pair.agent_info.done for pair in records.pairs]
    assert dones == [False, False, True, False, False, False, True]
    decided = [d.tolist() for _, _, d in played.decisions]
    # Episode 1: decisions 0, 1; episode 2: decisions 2, 3, 4.
    assert stored == [[0, 0], decided[0], decided[1], [0, 0], decided[2], decided[3], decided[4]]
    assert not any(pair.action_info.vector_actions_deprecated for pair in records.pairs)


def test_counts_and_mean_reward_follow_unitys_writer() -> None:
    stream = io.BytesIO()
    writer = DemonstrationWriter(stream, "counts", demonstration_brain_parameters("B?team=0", ActionSpec(1, ())))
    obs = [float_observation_proto(np.zeros(1, np.float32), "V")]
    for reward, done in [(0.0, False), (1.5, False), (2.0, True), (0.0, False), (0.5, False)]:
        info = agent_info_proto(0, obs, reward=reward, done=done)
        writer.record(info, None if done else [0.25])
    meta = writer.close()
    # 2 episodes: one finished, one in progress when the recorder closed; all rewards / episodes.
    assert (meta.number_steps, meta.number_episodes) == (5, 2)
    assert meta.mean_reward == pytest.approx(4.0 / 2)
    demo = read_demonstration(stream.getvalue(), "counts.demo")
    np.testing.assert_array_equal(demo.rewards, [1.5, 2.0, 0.5])
    np.testing.assert_array_equal(demo.dones, [False, True, False])
    np.testing.assert_array_equal(demo.continuous_actions, [[0.25]] * 3)


def test_names_are_kept_as_unity_keeps_them() -> None:
    assert sanitize_demonstration_name("my_expert.run-1 (final) version two") == "myexpertrun-1 fi"
    stream = io.BytesIO()
    writer = DemonstrationWriter(stream, "A" * 40, demonstration_brain_parameters("B?team=0", ActionSpec(0, (2,))))
    obs = [float_observation_proto(np.zeros(1, np.float32), "V")]
    for _ in range(3):
        writer.record(agent_info_proto(0, obs), discrete=[1])
    meta = writer.close()
    assert meta.name and set(meta.name) == {"A"}
    assert stream.getvalue()[0] + 1 <= BRAIN_PARAMETERS_OFFSET
    assert read_demonstration_records(stream.getvalue(), "x").meta.name == meta.name


def test_old_demos_with_only_deprecated_actions_are_read() -> None:
    stream = io.BytesIO()
    writer = DemonstrationWriter(stream, "old", demonstration_brain_parameters("Old?team=0", ActionSpec(0, (3,))))
    obs = [float_observation_proto(np.arange(2, dtype=np.float32) + k, "V") for k in range(4)]
    stored = [0.0, 2.0, 1.0, 1.0]
    for k in range(4):
        info = agent_info_proto(0, [obs[k]], reward=float(k), done=k == 3)
        writer.record_pair(
            AgentInfoActionPairProto(
                agent_info=info, action_info=AgentActionProto(vector_actions_deprecated=[stored[k]])
            )
        )
    writer.close()
    demo = read_demonstration(stream.getvalue(), "old.demo")
    np.testing.assert_array_equal(demo.discrete_actions, [[2], [1], [1]])
    np.testing.assert_array_equal(demo.observations[0][:, 0], [0, 1, 2])
    np.testing.assert_array_equal(demo.rewards, [1, 2, 3])


def test_a_truncated_file_names_the_record() -> None:
    played = play("continuous")
    total = played.records
    records = read_demonstration_records(played.data, "x").pairs
    inside_third = played.data.rfind(records[2].SerializeToString()) + 5
    inside = rf"cut\.demo is truncated: it ends inside record 3 of {total}\b.*again"
    with pytest.raises(DemonstrationError, match=inside):
        read_demonstration(played.data[:inside_third], "cut.demo")
    before_fourth = played.data.rfind(records[3].SerializeToString()) - 1  # record 4's length byte cut off
    with pytest.raises(DemonstrationError, match=rf"ends before record 4 of {total}\b"):
        read_demonstration(played.data[:before_fourth], "cut.demo")
    with pytest.raises(DemonstrationError, match=r"before its brain parameters"):
        read_demonstration(played.data[:20], "cut.demo")


def test_a_wrong_api_version_is_refused() -> None:
    played = play("continuous")
    meta = DemonstrationMetaProto(api_version=2, demonstration_name="demo", number_steps=played.records)
    payload = meta.SerializeToString()
    data = bytes([len(payload)]) + payload + played.data[1 + len(payload) :]
    with pytest.raises(DemonstrationError, match=r"v2\.demo has demonstration api_version 2.*versions 0 and 1"):
        read_demonstration(data, "v2.demo")


@pytest.mark.parametrize(
    "data",
    [b"", b"PK\x03\x04" + bytes(100), b"\xff" * 64, b"hello, this is a text file and not a demonstration\n" * 3],
)
def test_bytes_that_are_no_demo_are_refused(data: bytes) -> None:
    with pytest.raises(DemonstrationError, match=r"notes\.demo (is empty: it is not|is not) a \.demo file"):
        read_demonstration(data, "notes.demo")


def test_a_file_with_no_steps_is_refused() -> None:
    stream = io.BytesIO()
    DemonstrationWriter(stream, "empty", demonstration_brain_parameters("B?team=0", ActionSpec(1, ()))).close()
    with pytest.raises(DemonstrationError, match=r"empty\.demo holds no steps.*never closed"):
        read_demonstration(stream.getvalue(), "empty.demo")


def test_concatenation_and_spec_checks() -> None:
    a = read_demonstration(play("hybrid", seed=1).data, "a.demo")
    b = read_demonstration(play("hybrid", seed=2, lengths=(2,), unfinished=0).data, "b.demo")
    both = concatenate_demonstrations([a, b])
    assert len(both) == len(a) + len(b) and both.number_episodes == a.number_episodes + b.number_episodes
    assert both.sources == ("a.demo", "b.demo")
    np.testing.assert_array_equal(both.observations[1], np.concatenate([a.observations[1], b.observations[1]]))
    np.testing.assert_array_equal(both.discrete_actions[len(a) :], b.discrete_actions)

    other = read_demonstration(play("continuous").data, "c.demo")
    with pytest.raises(DemonstrationError, match=r"c\.demo and a\.demo were recorded from different behaviors"):
        concatenate_demonstrations([a, other])

    check_demonstration_spec(a, a.behavior_spec)
    policy = BehaviorSpec(
        (ObservationSpec((5,), (DimensionProperty.NONE,), ObservationType.DEFAULT, "V"),), ActionSpec(0, (2,))
    )
    with pytest.raises(DemonstrationError) as raised:
        check_demonstration_spec(a, policy)
    message = str(raised.value)
    assert "a.demo" in message and "[(2,), (3,)]" in message and "[(5,)]" in message
    assert "1 continuous" in message and "Record the demonstration from this behavior" in message


def _write(path: Path, played: Played) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(played.data)


def test_loading_files_folders_and_uris(tmp_path: Path) -> None:
    first, second = play("visual", seed=3), play("visual", seed=4, lengths=(5,), unfinished=0)
    folder = tmp_path / "demos"
    _write(folder / "b.demo", second)
    _write(folder / "a.demo", first)
    (folder / "notes.txt").write_text("not a demo")
    _write(folder / "nested" / "c.demo", play("continuous"))  # subfolders are not read

    single = load_demonstrations(str(folder / "a.demo"))
    assert single.sources == (str(folder / "a.demo"),)
    np.testing.assert_array_equal(single.discrete_actions, first.discrete)

    by_path = load_demonstrations(str(folder))
    by_uri = load_demonstrations(folder.as_uri())
    assert by_path.sources == (str(folder / "a.demo"), str(folder / "b.demo"))
    assert by_uri.sources == (f"{folder.as_uri()}/a.demo", f"{folder.as_uri()}/b.demo")
    for demo in (by_path, by_uri):
        assert isinstance(demo, Demonstration)
        assert len(demo) == len(first.rewards) + len(second.rewards)
        pixels = np.concatenate([first.observations[0], second.observations[0]])
        np.testing.assert_array_equal(demo.observations[0], pixels)
        np.testing.assert_array_equal(demo.dones, np.concatenate([first.dones, second.dones]))
        assert demo.number_episodes == 4 + 1
    assert load_demonstrations((folder / "b.demo").as_uri(), expected=by_path.behavior_spec).sources == (
        f"{folder.as_uri()}/b.demo",
    )


def test_loading_errors_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(DemonstrationError, match=r"no demonstration file or folder at .*missing.*learner's node"):
        load_demonstrations(str(tmp_path / "missing"))
    with pytest.raises(DemonstrationError, match=r"no demonstration file or folder at file://"):
        load_demonstrations((tmp_path / "missing.demo").as_uri())
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.md").write_text("x")
    with pytest.raises(DemonstrationError, match=r"folder .*empty holds no \.demo files"):
        load_demonstrations(str(tmp_path / "empty"))
    mixed = tmp_path / "mixed"
    _write(mixed / "1.demo", play("discrete"))
    _write(mixed / "2.demo", play("continuous"))
    with pytest.raises(DemonstrationError, match=r"2\.demo and .*1\.demo were recorded from different behaviors"):
        load_demonstrations(str(mixed))
    one = load_demonstrations(str(mixed / "1.demo"))
    other = load_demonstrations(str(mixed / "2.demo"))
    with pytest.raises(DemonstrationError, match=r"1\.demo does not fit the policy"):
        load_demonstrations(str(mixed / "1.demo"), expected=other.behavior_spec)
    assert len(one) > 0
