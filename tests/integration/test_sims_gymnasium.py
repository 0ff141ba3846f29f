"""The Gymnasium adapter over the real wire: builds of the simulation host driven by the trainer's UnityEnvironment.

Each test launches a build (a real player process), talks gRPC to it through ``UnityEnvironment``, and checks
what arrives against a local Gymnasium mirror of the area (seeded ``seed + area index`` as the host seeds it).
``gym_test_envs`` (beside this file) registers ``Echo-v0``, an environment that shows the actions it received.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import gymnasium
import numpy as np
import pytest

from rayagents.actors.environment import UnityEnvironment
from rayagents.protocol.side_channels import EnvironmentParametersChannel, StatsAggregationMethod, StatsSideChannel
from rayagents.protocol.side_channels.environment_parameters import uniform_sampler
from rayagents.protocol.types import ActionTuple
from rayagents.sims.adapters.spaces import image_to_chw
from rayagents.sims.adapters.wrappers import RenderedPixels
from rayagents.sims.scenes.cartpole import CartPoleDrawing
from rayagents.sims.build import write_build

HERE = Path(__file__).resolve().parent
ECHO = "gym:gym_test_envs:Echo-v0"
ECHO_BEHAVIOR = "Echo-v0?team=0"


@pytest.fixture
def test_envs(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make ``gym_test_envs`` importable here and in the player processes the test launches."""
    monkeypatch.syspath_prepend(str(HERE))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])))
    yield


def launch(tmp_path: Path, scene: str, **options: object) -> UnityEnvironment:
    """Build ``scene`` into ``tmp_path`` and launch it through the trainer's UnityEnvironment."""
    executable = write_build(scene, tmp_path / "build")
    return UnityEnvironment(str(executable), timeout_wait=15, log_folder=str(tmp_path / "logs"), **options)


def discrete(*values: int) -> ActionTuple:
    """One agent's discrete actions."""
    return ActionTuple(discrete=np.array([values], dtype=np.int32))


def test_cartpole_parameters_change_the_dynamics_and_stats_arrive(tmp_path: Path) -> None:
    """CartPole with a longer pole (fixed) and a pole mass drawn anew each episode (sampler), against a mirror."""
    parameters, stats = EnvironmentParametersChannel(), StatsSideChannel()
    parameters.set_float_parameter("length", 2.0)
    parameters.set_uniform_sampler_parameters("masspole", 0.25, 0.75, seed=7)
    parameters.set_float_parameter("no_such_attribute", 1.0)  # ignored, as Unity ignores unknown keys
    draws = uniform_sampler(0.25, 0.75, 7)
    mirror, plain = gymnasium.make("CartPole-v1"), gymnasium.make("CartPole-v1")

    def begin_episode(seed: int | None) -> np.ndarray:
        """The mirror's next episode with the parameters the host applies."""
        pole = mirror.unwrapped
        pole.length, pole.masspole = 2.0, draws()
        pole.total_mass, pole.polemass_length = pole.masspole + pole.masscart, pole.masspole * pole.length
        return mirror.reset(seed=seed)[0]

    with launch(tmp_path, "CartPole", seed=4, side_channels=[parameters, stats]) as env:
        env.reset()
        decisions, _ = env.get_steps("CartPole?team=0")
        np.testing.assert_array_equal(decisions.obs[0][0], begin_episode(4))
        plain.reset(seed=4)
        differs, lengths, length = False, [], 0
        while len(lengths) < 2:
            env.set_actions("CartPole?team=0", discrete(1))
            env.step()
            decisions, terminals = env.get_steps("CartPole?team=0")
            obs, reward, terminated, truncated, _ = mirror.step(1)
            if len(lengths) == 0 and length < 5:
                differs |= not np.allclose(plain.step(1)[0], obs)
            length += 1
            if terminated or truncated:
                assert len(terminals) == 1 and not terminals.interrupted[0] and terminals.reward[0] == 1.0
                np.testing.assert_allclose(terminals.obs[0][0], obs, rtol=1e-6)
                lengths.append(length)
                length, obs = 0, begin_episode(None)
            else:
                assert len(terminals) == 0 and decisions.reward[0] == reward
            np.testing.assert_allclose(decisions.obs[0][0], obs, rtol=1e-6, atol=1e-7)
    assert differs, "a pole 4 times as long and up to 7 times as heavy moved like the default one"
    received = stats.get_and_reset_stats()
    assert [value for value, _ in received["CartPole/Episode Length"]] == [float(n) for n in lengths]
    assert [value for value, _ in received["CartPole/Episode Return"]] == [float(n) for n in lengths]
    assert {method for _, method in received["CartPole/Episode Return"]} == {StatsAggregationMethod.AVERAGE}


def test_pendulum_continuous_actions_are_clipped_and_rescaled(tmp_path: Path) -> None:
    """Pendulum's torque lies in [-2, 2]: the trainer's [-1, 1] action is clipped, then mapped onto it."""
    mirror = gymnasium.make("Pendulum-v1")
    with launch(tmp_path, "Pendulum", seed=1) as env:
        env.reset()
        spec = env.behavior_specs["Pendulum?team=0"]
        assert spec.action_spec.continuous_size == 1 and spec.action_spec.discrete_branches == ()
        decisions, _ = env.get_steps("Pendulum?team=0")
        np.testing.assert_array_equal(decisions.obs[0][0], mirror.reset(seed=1)[0])
        for sent, torque in [(0.5, 1.0), (-1.0, -2.0), (3.0, 2.0), (-0.25, -0.5)]:
            env.set_actions("Pendulum?team=0", ActionTuple(continuous=np.array([[sent]], dtype=np.float32)))
            env.step()
            decisions, _ = env.get_steps("Pendulum?team=0")
            obs, reward, *_ = mirror.step(np.array([torque], dtype=np.float32))
            np.testing.assert_allclose(decisions.obs[0][0], obs, rtol=1e-5, atol=1e-6)
            assert decisions.reward[0] == pytest.approx(reward, rel=1e-5)


def test_cartpole_visual_png_frames(tmp_path: Path) -> None:
    """CartPoleVisual: a 3x40x60 PNG of stacked grayscale frames, decoded to [0, 1] exactly as drawn."""
    mirror = RenderedPixels(
        gymnasium.make("CartPole-v1"), height=40, width=60, grayscale_frames=3, draw=CartPoleDrawing(40, 60)
    )
    with launch(tmp_path, "CartPoleVisual", seed=2, num_areas=2) as env:
        env.reset()
        spec = env.behavior_specs["CartPoleVisual?team=0"]
        assert [(o.name, o.shape) for o in spec.observation_specs] == [("CameraSensor", (3, 40, 60))]
        decisions, _ = env.get_steps("CartPoleVisual?team=0")
        image = decisions.obs[0]
        assert image.shape == (2, 3, 40, 60) and image.dtype == np.float32
        assert 0.0 <= image.min() and image.max() <= 1.0 and image.min() < 0.5 < image.max()
        first = image_to_chw(mirror.reset(seed=2)[0])
        np.testing.assert_allclose(image[0], first, atol=1e-6)
        np.testing.assert_array_equal(image[0][0], image[0][2])  # an episode's first frame fills the stack
        for _ in range(3):
            env.set_actions("CartPoleVisual?team=0", ActionTuple(discrete=np.ones((2, 1), dtype=np.int32)))
            env.step()
            decisions, _ = env.get_steps("CartPoleVisual?team=0")
            frames = image_to_chw(mirror.step(1)[0])
            np.testing.assert_allclose(decisions.obs[0][0], frames, atol=1e-6)
        assert not np.array_equal(decisions.obs[0][0][0], decisions.obs[0][0][2])  # the cart moved


def test_cartpole_visual_uint8_observations_are_the_rounded_float32_ones(tmp_path: Path) -> None:
    """visual_observations="uint8": CartPoleVisual's frames arrive as uint8 of the spec's shape, each value
    round(255 * x) of the float32 run with the same seed and actions, terminal observations included."""
    behavior = "CartPoleVisual?team=0"

    def run(visual_observations: str) -> tuple[object, list[np.ndarray], list[np.ndarray]]:
        """The spec, and every step's decision and terminal observations of 40 steps pushing right."""
        decided, ended = [], []
        with UnityEnvironment(
            "sim:CartPoleVisual",
            seed=5,
            num_areas=2,
            timeout_wait=15,
            log_folder=str(tmp_path / visual_observations),
            visual_observations=visual_observations,
        ) as env:
            assert env.visual_observations == visual_observations
            env.reset()
            spec = env.behavior_specs[behavior]
            for _ in range(40):
                decisions, terminals = env.get_steps(behavior)
                decided.append(decisions.obs[0])
                ended.append(terminals.obs[0])
                env.set_actions(behavior, ActionTuple(discrete=np.ones((len(decisions), 1), dtype=np.int32)))
                env.step()
        return spec, decided, ended

    float_spec, float_decided, float_ended = run("float32")
    spec, decided, ended = run("uint8")
    assert spec == float_spec
    assert [(o.name, o.shape) for o in spec.observation_specs] == [("CameraSensor", (3, 40, 60))]
    assert sum(len(batch) for batch in ended) > 0, "40 steps pushing right ended no episode"
    for batch, float_batch in zip(decided + ended, float_decided + float_ended):
        assert batch.dtype == np.uint8 and float_batch.dtype == np.float32
        assert batch.shape == float_batch.shape == (len(batch), 3, 40, 60)
        np.testing.assert_array_equal(batch, np.rint(255 * float_batch.astype(np.float64)))
    assert decided[0].shape == (2, 3, 40, 60) and decided[0].min() < 128 < decided[0].max()


def test_hybrid_actions_dict_observations_terminated_and_truncated(tmp_path: Path, test_envs: None) -> None:
    """Echo: Tuple(Box, Discrete, MultiDiscrete) actions, Dict/Tuple sensors sorted by name, both episode ends."""
    parameters, stats = EnvironmentParametersChannel(), StatsSideChannel()
    with launch(tmp_path, ECHO, side_channels=[parameters, stats]) as env:
        env.reset()
        spec = env.behavior_specs[ECHO_BEHAVIOR]
        assert (spec.action_spec.continuous_size, spec.action_spec.discrete_branches) == (2, (3, 2, 4))
        assert [(o.name, o.shape) for o in spec.observation_specs] == [
            ("alpha", (4,)),
            ("Beta/0", (2,)),
            ("Beta/1", (2,)),
            ("echo", (5,)),
        ]  # sorted as Unity sorts: case-insensitively
        decisions, _ = env.get_steps(ECHO_BEHAVIOR)
        np.testing.assert_array_equal(decisions.obs[0][0], [1, 0, 0, 0])  # step 0, one-hot
        np.testing.assert_array_equal(decisions.obs[1][0], [0, 1])  # step 0 of episode 1

        def act(continuous: list[float], branches: list[int]) -> None:
            env.set_actions(
                ECHO_BEHAVIOR,
                ActionTuple(np.array([continuous], dtype=np.float32), np.array([branches], dtype=np.int32)),
            )
            env.step()

        act([-1.0, 0.5], [2, 1, 3])
        decisions, _ = env.get_steps(ECHO_BEHAVIOR)
        np.testing.assert_allclose(decisions.obs[3][0], [-3.0, 17.5, 3, 1, 3])  # box mapped, Discrete start 1
        np.testing.assert_array_equal(decisions.obs[0][0], [0, 1, 0, 0])
        np.testing.assert_array_equal(decisions.obs[2][0], [1, 0])
        assert decisions.reward[0] == 1.0
        act([7.0, -2.0], [0, 0, 0])
        np.testing.assert_allclose(env.get_steps(ECHO_BEHAVIOR)[0].obs[3][0], [5.0, 10.0, 1, 0, 0])  # clipped
        act([0.0, 0.0], [0, 0, 0])
        parameters.set_float_parameter("terminate_at", 100.0)  # applies from the next episode on
        act([0.0, 0.0], [1, 1, 1])
        decisions, terminals = env.get_steps(ECHO_BEHAVIOR)
        assert len(terminals) == 1 and not terminals.interrupted[0] and terminals.reward[0] == 4.0  # terminated
        np.testing.assert_allclose(terminals.obs[3][0], [1.0, 15.0, 2, 1, 1])
        np.testing.assert_array_equal(decisions.obs[1][0], [0, 2])  # episode 2 began in the same step
        assert terminals.agent_id[0] == decisions.agent_id[0]
        for step in range(1, 7):
            act([0.0, 0.0], [0, 0, 0])
            decisions, terminals = env.get_steps(ECHO_BEHAVIOR)
            assert len(terminals) == (1 if step == 6 else 0)
        assert terminals.interrupted[0] and terminals.reward[0] == 6.0  # cut off by the time limit of 6
    received = stats.get_and_reset_stats()
    assert [v for v, _ in received["Echo-v0/Episode Return"]] == [10.0, 21.0]
    assert [v for v, _ in received["Echo-v0/Episode Length"]] == [4.0, 6.0]


def test_decision_period_repeats_actions_and_sums_rewards(tmp_path: Path, test_envs: None) -> None:
    """decision_period=3: decisions at steps 0, 3, 6, ... with the summed rewards; an episode end reports at once,
    the next episode decides at once and then again at the next multiple of 3."""
    with launch(tmp_path, f"{ECHO}?decision_period=3&terminate_at=5") as env:
        env.reset()
        env.set_actions(ECHO_BEHAVIOR, ActionTuple(np.array([[1.0, 1.0]], np.float32), np.array([[0, 1, 2]], np.int32)))
        env.step()
        decisions, terminals = env.get_steps(ECHO_BEHAVIOR)
        assert len(terminals) == 0 and len(decisions) == 1
        np.testing.assert_array_equal(decisions.obs[1][0], [3, 1])  # three environment steps later
        assert decisions.reward[0] == 1.0 + 2.0 + 3.0
        np.testing.assert_allclose(decisions.obs[3][0], [5.0, 20.0, 1, 1, 2])  # the action, repeated
        second = ActionTuple(np.array([[-1.0, -1.0]], np.float32), np.array([[2, 0, 0]], np.int32))
        env.set_actions(ECHO_BEHAVIOR, second)
        env.step()
        decisions, terminals = env.get_steps(ECHO_BEHAVIOR)
        assert len(terminals) == 1 and terminals.reward[0] == 4.0 + 5.0 and not terminals.interrupted[0]
        np.testing.assert_array_equal(terminals.obs[1][0], [5, 1])  # ended at step 5, before the next decision
        np.testing.assert_allclose(terminals.obs[3][0], [-3.0, 10.0, 3, 0, 0])
        np.testing.assert_array_equal(decisions.obs[1][0], [0, 2])  # the next episode asks at once
        assert decisions.reward[0] == 0.0
        env.step()
        decisions, _ = env.get_steps(ECHO_BEHAVIOR)
        np.testing.assert_array_equal(decisions.obs[1][0], [1, 2])  # and again at step 6, in step with the others
        assert decisions.reward[0] == 1.0


def test_an_unknown_gymnasium_id_is_a_usage_error(tmp_path: Path) -> None:
    """gym:<an id nobody registered>: the player says why and exits 2 (a bad command line)."""
    player = subprocess.run(
        [sys.executable, "-m", "rayagents.sims", "--scene", "gym:NoSuchEnv-v0", "--mlagents-port", "1"]
        + ["-logFile", "-"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert player.returncode == 2
    assert "gym:NoSuchEnv-v0" in player.stdout and "could not be built from Gymnasium" in player.stdout
