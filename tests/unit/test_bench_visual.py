"""bench/visual.py's pure parts: serialized sizes, the per-step weight of trajectory batches, the random PPO-shaped
actions, and the encoder variants of the CartPoleVisual config."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from rayagents.learner.policy import ENTROPY
from rayagents.protocol.trajectories import LOG_PROBS, Trajectory, TrajectoryBatch
from rayagents.protocol.types import ActionSpec, BehaviorSpec, DimensionProperty, ObservationSpec, ObservationType

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # bench/ is a folder of the repository, not of the installed package

from bench import visual  # noqa: E402
from bench.training import load_example, trainer_settings  # noqa: E402

IMAGE = (3, 40, 60)


def image_spec() -> BehaviorSpec:
    none, translational = DimensionProperty.NONE, DimensionProperty.TRANSLATIONAL_EQUIVARIANCE
    sensor = ObservationSpec(IMAGE, (none, translational, translational), ObservationType.DEFAULT, "CameraSensor")
    return BehaviorSpec((sensor,), ActionSpec(0, (2,)))


def trajectory(length: int, rng: np.random.Generator) -> Trajectory:
    taken = visual.random_ppo_actions(image_spec(), length, rng)
    return Trajectory(
        obs=(rng.integers(0, 256, size=(length, *IMAGE), dtype=np.uint8),),
        next_obs=(rng.integers(0, 256, size=IMAGE, dtype=np.uint8),),
        continuous_actions=taken.continuous,
        discrete_actions=taken.discrete,
        rewards=np.ones(length, np.float32),
        done=True,
        interrupted=False,
        versions=np.zeros(length, np.int32),
        extras=dict(taken.extras),
        behavior=visual.BEHAVIOR,
        agent_id="agent_0-0",
    )


def test_pickle5_size_counts_arrays_out_of_band() -> None:
    value = {"image": np.zeros((10, *IMAGE), np.uint8), "rewards": np.zeros(10, np.float32), "name": "x"}
    size = visual.pickle5_size(value)
    assert size.buffers == 10 * 7200 + 40
    assert 0 < size.inband < 500 and size.total == size.inband + size.buffers
    ray_bytes = visual.ray_serialized_bytes(value)
    assert size.total <= ray_bytes < size.total + 1024  # Ray adds its metadata and aligns the buffers


def test_step_bytes_splits_images_bootstrap_images_and_the_rest() -> None:
    rng = np.random.default_rng(0)
    batches = [
        TrajectoryBatch(0, (trajectory(10, rng), trajectory(30, rng))),
        TrajectoryBatch(0, (trajectory(24, rng),)),
    ]
    sizes = [visual.ray_serialized_bytes(batch) for batch in batches]
    measured = visual.step_bytes(batches, sizes)
    assert (measured.steps, measured.trajectories, measured.batches) == (64, 3, 2)
    assert measured.observation_per_step == 7200
    assert measured.next_obs_per_step == pytest.approx(3 * 7200 / 64)
    assert measured.per_step == pytest.approx(sum(sizes) / 64)
    # Per step beyond the image: a discrete action, a reward, a version, a log probability, an entropy (4 bytes
    # each), and the framing.
    rest = measured.overhead_per_step - measured.next_obs_per_step
    assert 20 < rest < 200
    assert measured.pickle.buffers == 64 * (7200 + 20) + 3 * 7200
    with pytest.raises(ValueError, match="2 batches but 1 sizes"):
        visual.step_bytes(batches, sizes[:1])
    with pytest.raises(ValueError, match="no step"):
        visual.step_bytes([TrajectoryBatch(0, ())], [10])


def test_random_ppo_actions_keep_what_ppo_keeps() -> None:
    spec = BehaviorSpec(image_spec().observation_specs, ActionSpec(2, (3, 4)))
    taken = visual.random_ppo_actions(spec, 5, np.random.default_rng(1), version=7)
    assert taken.n_agents == 5 and taken.policy_version == 7
    assert taken.discrete.shape == (5, 2) and taken.discrete.dtype == np.int32
    assert np.all(taken.discrete[:, 0] < 3) and np.all(taken.discrete[:, 1] < 4)
    assert taken.continuous.shape == (5, 2) and np.all(np.abs(taken.env_actions.continuous) <= 1)
    assert set(taken.extras) == {LOG_PROBS, ENTROPY}
    assert all(v.shape == (5,) and v.dtype == np.float32 for v in taken.extras.values())
    expected = -np.log(12) - 0.5 * (taken.continuous**2).sum(axis=1) - np.log(2 * np.pi)
    np.testing.assert_allclose(taken.extras[LOG_PROBS], expected, rtol=1e-5)
    discrete_only = visual.random_ppo_actions(image_spec(), 3, np.random.default_rng(1))
    np.testing.assert_allclose(discrete_only.extras[LOG_PROBS], -np.log(2), rtol=1e-6)
    np.testing.assert_allclose(discrete_only.extras[ENTROPY], np.log(2), rtol=1e-6)


@pytest.mark.parametrize("encoder", visual.ENCODERS)
def test_encoder_config_changes_only_the_encoder(encoder: str) -> None:
    example = load_example(visual.SCENE)
    config = visual.encoder_config(example, encoder)
    settings = trainer_settings(config, visual.SCENE)
    assert settings.network_settings.vis_encode_type.value == encoder
    original = example["behaviors"][visual.SCENE]
    changed = config["behaviors"][visual.SCENE]
    assert {k: v for k, v in changed["network_settings"].items() if k != "vis_encode_type"} == {
        k: v for k, v in original["network_settings"].items() if k != "vis_encode_type"
    }
    assert {k: v for k, v in changed.items() if k != "network_settings"} == {
        k: v for k, v in original.items() if k != "network_settings"
    }
    assert original["network_settings"]["vis_encode_type"] == "simple"  # the example itself is left as it was
