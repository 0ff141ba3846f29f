"""``rayagents-learn`` end to end for what the README claims beyond a default CartPole run: ``threaded: true`` and its
statistics, environment parameters that reach the player, continuous and hybrid actions.

Each run is the real command line in a process of its own (a local Ray cluster, 2 EnvActors with simulation-host
players, the learner), with a small config and a short ``max_steps``; the tests read what a user reads: the console,
the results folder, TensorBoard's scalars, and the exported ``.onnx`` run by onnxruntime on a fresh player.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import yaml
from learn_runs import CARTPOLE, CARTPOLE_CONFIG, SUMMARY_LINE, run_learn

from rayagents.actors.environment import UnityEnvironment
from rayagents.cluster.tensorboard import read_scalars
from rayagents.protocol.types import ActionTuple

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
"""This folder: ``gym_test_envs`` (the hybrid-action ``Echo-v0``) is imported from it by the players."""
SUMMARY_FREQ = 1000
"""Every run here summarizes (and checkpoints) every 1,000 steps."""


@dataclass(frozen=True)
class FinishedRun:
    """A ``rayagents-learn`` run that ended; tests only read it."""

    code: int
    """Its exit code."""
    output: str
    """What it printed."""
    run: Path
    """Its results folder (``<results>/<run-id>``)."""


def small_ppo(max_steps: int, **more: object) -> dict[str, object]:
    """A small PPO behavior config (the CartPole one of ``learn_runs``) with another ``max_steps`` and ``more`` keys."""
    settings = copy.deepcopy(CARTPOLE_CONFIG["behaviors"][CARTPOLE])
    settings.update(max_steps=max_steps, summary_freq=SUMMARY_FREQ, checkpoint_interval=SUMMARY_FREQ, **more)
    return settings


def train(
    work: Path, env: str, config: dict[str, object], run_id: str, extra_env: dict[str, str] | None = None
) -> FinishedRun:
    """Writes ``config`` and trains it on ``env`` with 2 EnvActors x 2 areas to its max_steps."""
    path = work / f"{run_id}.yaml"
    path.write_text(yaml.safe_dump(config))
    args = [str(path), "--env", env, "--num-envs", "2", "--num-areas", "2", "--seed", "5",
            "--results-dir", str(work / "results"), "--run-id", run_id]  # fmt: skip
    code, output = run_learn(args, work, name=run_id, extra_env=extra_env)
    return FinishedRun(code, output, work / "results" / run_id)


def assert_trained_to_max_steps(finished: FinishedRun, behavior: str, max_steps: int) -> None:
    """Exit code 0, a summary at each ``summary_freq`` up to max_steps, the final checkpoint at max_steps or later,
    and ``<behavior>.onnx`` written."""
    assert finished.code == 0, finished.output
    steps = [int(m.group(2)) for m in SUMMARY_LINE.finditer(finished.output) if m.group(1) == behavior]
    assert steps == list(range(SUMMARY_FREQ, max_steps + 1, SUMMARY_FREQ)), finished.output
    status = json.loads((finished.run / "run_logs" / "training_status.json").read_text())
    assert status[behavior]["final_checkpoint"]["steps"] >= max_steps, status
    assert Path(status[behavior]["final_checkpoint"]["file_path"]) == finished.run / f"{behavior}.onnx"
    assert (finished.run / f"{behavior}.onnx").is_file()


# ---- threaded: true, with an environment parameter -------------------------------------------------------------

GRAVITY = 10_000.0
"""CartPole's gravity in the parameter run (9.8 by default): the pole falls within a few steps whatever the policy."""
FEWEST_STEPS_AT_DEFAULT_GRAVITY = 8
"""The shortest CartPole-v1 episode at the default gravity: pushing one way all along, the pole falls at step 8."""
THREADED_MAX_STEPS = 3000


@pytest.fixture(scope="module")
def threaded_run(tmp_path_factory: pytest.TempPathFactory) -> FinishedRun:
    """CartPole with ``threaded: true`` and ``environment_parameters: {gravity: 10000}``; the tests only read it."""
    config = {
        "behaviors": {CARTPOLE: small_ppo(THREADED_MAX_STEPS, threaded=True)},
        "environment_parameters": {"gravity": GRAVITY},
    }
    return train(tmp_path_factory.mktemp("threaded"), "sim:CartPole", config, "threaded")


def test_a_threaded_run_reports_dropped_steps_and_policy_lag(threaded_run: FinishedRun) -> None:
    """``threaded: true`` trains to max_steps and writes ``Policy/Dropped Steps`` (a count of steps) and
    ``Policy/Policy Lag`` (versions, never negative) at every summary."""
    assert_trained_to_max_steps(threaded_run, CARTPOLE, THREADED_MAX_STEPS)
    scalars = read_scalars(threaded_run.run / CARTPOLE)
    summaries = list(range(SUMMARY_FREQ, THREADED_MAX_STEPS + 1, SUMMARY_FREQ))
    for tag in ("Policy/Dropped Steps", "Policy/Policy Lag"):
        assert [step for step, _ in scalars.get(tag, [])] == summaries, (tag, sorted(scalars))
    dropped = [value for _, value in scalars["Policy/Dropped Steps"]]
    assert all(value >= 0 and value == int(value) for value in dropped), dropped
    lags = [value for _, value in scalars["Policy/Policy Lag"]]
    assert all(np.isfinite(lag) and lag >= 0 for lag in lags), lags


def test_environment_parameters_reach_the_players(threaded_run: FinishedRun) -> None:
    """The run's ``gravity`` is applied by the players at each episode start: every summary's episodes, as the scene
    itself reports them on the stats side channel (``CartPole/Episode Length``) and as the learner counts them
    (``Environment/Episode Length``), are shorter than any CartPole episode at the default gravity can be."""
    assert threaded_run.code == 0, threaded_run.output
    scalars = read_scalars(threaded_run.run / CARTPOLE)
    for tag in ("CartPole/Episode Length", "Environment/Episode Length"):
        lengths = [value for _, value in scalars[tag]]
        assert len(lengths) == THREADED_MAX_STEPS // SUMMARY_FREQ, (tag, lengths)
        assert max(lengths) < FEWEST_STEPS_AT_DEFAULT_GRAVITY, (tag, lengths)


# ---- continuous and hybrid actions --------------------------------------------------------------------------------

def onnx_outputs(model: Path, env: UnityEnvironment, behavior: str, exchanges: int) -> list[dict[str, np.ndarray]]:
    """Plays ``exchanges`` steps of ``env`` with the model's deterministic actions (as Unity's inference would run
    it); returns the model's outputs at each decision."""
    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    spec = env.behavior_specs[behavior]
    outputs: list[dict[str, np.ndarray]] = []
    for _ in range(exchanges):
        decisions, _ = env.get_steps(behavior)
        if len(decisions):
            feed = {f"obs_{i}": np.asarray(obs, dtype=np.float32) for i, obs in enumerate(decisions.obs)}
            if spec.action_spec.discrete_size:
                feed["action_masks"] = np.ones((len(decisions), sum(spec.action_spec.discrete_branches)), np.float32)
            found = dict(zip(names, session.run(names, feed)))
            outputs.append(found)
            env.set_actions(
                behavior,
                ActionTuple(
                    continuous=found.get("deterministic_continuous_actions"),
                    discrete=found["deterministic_discrete_actions"].astype(np.int32)
                    if "deterministic_discrete_actions" in found
                    else None,
                ),
            )
        env.step()
    return outputs


PENDULUM_MAX_STEPS = 2000


def test_continuous_actions_train_end_to_end(tmp_path: Path) -> None:
    """sim:Pendulum (one continuous action) trains to max_steps; its ``.onnx`` has ML-Agents' continuous outputs only
    and drives a fresh player with actions in [-1, 1]."""
    config = {"behaviors": {"Pendulum": small_ppo(PENDULUM_MAX_STEPS)}}
    finished = train(tmp_path, "sim:Pendulum", config, "pendulum")
    assert_trained_to_max_steps(finished, "Pendulum", PENDULUM_MAX_STEPS)
    with UnityEnvironment("sim:Pendulum", num_areas=3, seed=11) as env:
        env.reset()
        (behavior,) = env.behavior_specs
        outputs = onnx_outputs(finished.run / "Pendulum.onnx", env, behavior, exchanges=5)
    assert len(outputs) == 5
    first = outputs[0]
    assert set(first) == {"version_number", "memory_size", "continuous_actions", "continuous_action_output_shape",
                          "deterministic_continuous_actions"}  # fmt: skip
    assert first["continuous_action_output_shape"].tolist() == [1.0]
    for found in outputs:
        for name in ("continuous_actions", "deterministic_continuous_actions"):
            assert found[name].shape == (3, 1), (name, found[name].shape)
            assert np.all(np.abs(found[name]) <= 1.0), found[name]


ECHO_SCENE = "sim:gym:gym_test_envs:Echo-v0"
"""A Gymnasium scene with hybrid actions: Tuple(Box(2), Discrete(3), MultiDiscrete([2, 4])), episodes of 4 steps."""
ECHO = "Echo-v0"
"""Its behavior."""
ECHO_BRANCHES = (3, 2, 4)
"""Its discrete branches."""
ECHO_MAX_STEPS = 2000


def test_hybrid_actions_train_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A hybrid-action scene (2 continuous actions and 3 discrete branches) trains to max_steps; its ``.onnx`` has both
    kinds of outputs with the scene's shapes and drives a fresh player."""
    python_path = os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))
    config = {"behaviors": {ECHO: small_ppo(ECHO_MAX_STEPS)}}
    finished = train(tmp_path, ECHO_SCENE, config, "hybrid", extra_env={"PYTHONPATH": python_path})
    assert_trained_to_max_steps(finished, ECHO, ECHO_MAX_STEPS)
    monkeypatch.setenv("PYTHONPATH", python_path)  # the fresh player imports gym_test_envs too
    with UnityEnvironment(ECHO_SCENE, num_areas=2, seed=11) as env:
        env.reset()
        (behavior,) = env.behavior_specs
        outputs = onnx_outputs(finished.run / f"{ECHO}.onnx", env, behavior, exchanges=6)
    assert outputs
    assert {"continuous_actions", "deterministic_continuous_actions", "discrete_actions",
            "deterministic_discrete_actions"} <= set(outputs[0])  # fmt: skip
    assert outputs[0]["continuous_action_output_shape"].tolist() == [2.0]
    assert outputs[0]["discrete_action_output_shape"].tolist() == [[float(b) for b in ECHO_BRANCHES]]
    for found in outputs:
        agents = len(found["deterministic_continuous_actions"])
        assert found["deterministic_continuous_actions"].shape == (agents, 2)
        assert np.all(np.abs(found["deterministic_continuous_actions"]) <= 1.0)
        for name in ("discrete_actions", "deterministic_discrete_actions"):
            chosen = found[name]
            assert chosen.shape == (agents, len(ECHO_BRANCHES)), (name, chosen.shape)
            assert np.all(chosen >= 0) and np.all(chosen < np.array(ECHO_BRANCHES)), (name, chosen)
