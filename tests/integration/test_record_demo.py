"""``rayagents-sim record``: the real command in a subprocess, its .demo read back, and the pairing checked against
the policy that acted (the scene's heuristic, or an exported model through onnxruntime)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch

from rayagents.configs.network import NetworkSettings
from rayagents.learner.demonstrations import load_demonstrations
from rayagents.learner.export import export_policy_model
from rayagents.learner.networks import Actor
from rayagents.protocol.demonstrations import read_demonstration_records
from rayagents.protocol.types import ActionSpec, DimensionProperty, ObservationSpec, ObservationType
from rayagents.sims.scene import AgentReport
from rayagents.sims.scenes.cartpole import balance_heuristic

pytestmark = pytest.mark.timeout(120)


def vector(size: int) -> tuple[ObservationSpec, ...]:
    """The observation specs of a scene with one VectorSensor of ``size`` floats."""
    return (ObservationSpec((size,), (DimensionProperty.NONE,), ObservationType.DEFAULT, "VectorSensor"),)


def record(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rayagents.sims", "record", *args], capture_output=True, text=True, timeout=100
    )


def heuristic_choice(observation: np.ndarray) -> int:
    return int(balance_heuristic(AgentReport("agent", "CartPole?team=0", (observation,))).discrete[0])


def test_heuristic_recording_pairs_each_observation_with_the_action_taken_on_it(tmp_path: Path) -> None:
    out = tmp_path / "tmp" / "x.demo"
    done = record("CartPole", "--heuristic", "--episodes", "3", "--seed", "0", "--out", str(out))
    assert done.returncode == 0, done.stderr

    records = read_demonstration_records(out.read_bytes(), str(out))
    demo = load_demonstrations(str(out))
    spec = demo.behavior_spec
    assert [s.shape for s in spec.observation_specs] == [(4,)]
    assert spec.action_spec == ActionSpec(0, (2,))
    assert demo.behavior_name == "CartPole?team=0" and records.meta.name == "x"

    # Every episode is its decisions then its final info: records = sum of (length + 1), experiences = sum of lengths.
    finals = [k for k, pair in enumerate(records.pairs) if pair.agent_info.done]
    lengths = np.diff([-1, *finals]) - 1
    assert len(finals) == 3 and finals[-1] == len(records.pairs) - 1
    assert records.meta.number_steps == len(records.pairs) == int(lengths.sum()) + 3
    assert len(demo) == int(lengths.sum()) and demo.number_episodes == records.meta.number_episodes == 3
    assert np.flatnonzero(demo.dones).tolist() == (np.cumsum(lengths) - 1).tolist()
    assert records.meta.mean_reward == pytest.approx(demo.rewards.sum() / 3)
    assert f"3 episodes, {len(demo)} steps, mean episode reward {records.meta.mean_reward:.3f}" in done.stdout

    # The realigned experiences: the action at row t is the heuristic applied to the observation at row t.
    expected = [heuristic_choice(o) for o in demo.observations[0]]
    np.testing.assert_array_equal(demo.discrete_actions[:, 0], expected)
    assert 0 < demo.discrete_actions.mean() < 1
    # The file as Unity lays it out: record t + 1 holds the action decided on record t's observation.
    for k in range(len(records.pairs) - 1):
        if not records.pairs[k].agent_info.done:
            observation = np.array(records.pairs[k].agent_info.observations[0].float_data.data, np.float32)
            assert list(records.pairs[k + 1].action_info.discrete_actions) == [heuristic_choice(observation)]
        else:
            assert list(records.pairs[k + 1].action_info.discrete_actions) == [0]


def test_model_recording_acts_with_the_models_deterministic_actions(tmp_path: Path) -> None:
    torch.manual_seed(3)
    actor = Actor(vector(4), ActionSpec(0, (2,)), NetworkSettings(hidden_units=16, num_layers=1))
    model = export_policy_model(actor, tmp_path / "run" / "CartPole.onnx")
    out = tmp_path / "demos" / "FromModel.demo"
    playing = ("CartPole", "--model", str(model), "--episodes", "4", "--seed", "5", "--areas", "2")
    done = record(*playing, "--out", str(out))
    assert done.returncode == 0, done.stderr

    demo = load_demonstrations(out.as_uri())
    assert demo.number_episodes == 4 and demo.dones.sum() == 4
    assert 0 < demo.discrete_actions.mean() < 1  # the untrained model does not always choose the same
    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    (chosen,) = session.run(
        ["deterministic_discrete_actions"],
        {"obs_0": demo.observations[0], "action_masks": np.ones((len(demo), 2), np.float32)},
    )
    np.testing.assert_array_equal(demo.discrete_actions, chosen)

    # Without --out the command only evaluates: the same seed gives the same episodes.
    evaluated = record(*playing)
    assert evaluated.returncode == 0, evaluated.stderr
    first_line = done.stdout.splitlines()[0]
    assert evaluated.stdout.strip() == first_line
    assert f"4 episodes, {len(demo)} steps" in first_line


def test_usage_errors_say_what_to_do(tmp_path: Path) -> None:
    no_heuristic = record("Pendulum", "--heuristic", "--episodes", "1")
    assert no_heuristic.returncode == 2
    assert "scene 'Pendulum' has no heuristic (scenes with one: CartPole" in no_heuristic.stderr
    assert "--model" in no_heuristic.stderr
    not_demo = record("CartPole", "--heuristic", "--out", str(tmp_path / "x.txt"))
    assert not_demo.returncode == 2 and "--out must name a .demo file" in not_demo.stderr
    torch.manual_seed(0)
    actor = Actor(vector(3), ActionSpec(0, (2,)), NetworkSettings(hidden_units=8))
    model = export_policy_model(actor, tmp_path / "P.onnx")
    mismatch = record("CartPole", "--model", str(model), "--episodes", "1")
    assert mismatch.returncode == 1
    assert "does not fit behavior 'CartPole'" in mismatch.stderr and "obs_0 (4,)" in mismatch.stderr

