"""SAC learns a continuous and a discrete task of the simulation host through ``rayagents-learn``, as a user runs it
(a real local Ray cluster, one EnvActor with a 4-area player, the learner), in CI time.

- Continuous: Pendulum with the example config ``configs/sac/Pendulum.yaml``, only ``max_steps`` cut to 14,000 (the
  example trains to 50,000). A random policy scores about -1,200 to -1,600 per 200-step episode, a good one about
  -150; the run must end with a summary mean return (``Environment/Cumulative Reward``) of at least -400, and its
  exported ``Pendulum.onnx``, acting deterministically in a fresh scene, must score -400 or more on average.
- Discrete: CartPole with the SAC config below (ML-Agents-like: a 50,000 replay buffer, 1,000 steps before the first
  update, minibatches of 128, learning rate 3e-4, initial entropy coefficient 0.5, one gradient step per two agent
  steps). A random policy scores about 20; the run must end with a summary mean return of at least 150, and its
  exported model must score 150 or more deterministically.

A seed does not fix a distributed run (which trajectories reach the learner first depends on timing), so, as in
``test_cartpole_ppo``, a second seed is trained when the first run falls short, with a :class:`SecondSeedWarning`
that pytest's warnings summary shows; two misses in a row fail the test.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from rayagents.cluster.tensorboard import read_scalars
from rayagents.configs.examples import example_config
from rayagents.sims.record import play_model

pytestmark = pytest.mark.slow

SEEDS = (0, 1)
"""The seed of the run, and the one for a second run when the first falls short."""
PLAY_TIMEOUT_S = 40
"""Room for judging a run: reading its events and playing its model in a fresh scene."""
PLAY_EPISODES = 8
"""Episodes the exported model is scored over (8 areas, one each; ``rayagents-sim record --model``'s scoring)."""
PENDULUM_RUN_TIMEOUT_S = 240
"""The most the Pendulum run may take (about 80 s on a 2-core machine of its own, 2 minutes on a busy one)."""
CARTPOLE_RUN_TIMEOUT_S = 180
"""The most the CartPole run may take (about 35 s on a 2-core machine of its own, a minute on a busy one)."""
CUMULATIVE_REWARD = "Environment/Cumulative Reward"


class SecondSeedWarning(UserWarning):
    """The first seed's run did not learn the task and a second seed was trained: learning may be getting worse."""


@dataclass(frozen=True)
class Task:
    """A scene, the SAC config that learns it, and what learned means."""

    scene: str
    config: dict[str, Any]
    """The whole trainer config (``behaviors: {scene: ...}``)."""
    threshold: float
    """The least mean episode return of the last summary, and of the exported model acting deterministically."""
    run_timeout_s: int
    """The most one training run may take."""

    @property
    def max_steps(self) -> int:
        return int(self.config["behaviors"][self.scene]["max_steps"])

    @property
    def summary_freq(self) -> int:
        return int(self.config["behaviors"][self.scene]["summary_freq"])


def pendulum_task() -> Task:
    """The example Pendulum config with only ``max_steps`` changed."""
    config = yaml.safe_load(example_config("Pendulum").read_text())
    config["behaviors"]["Pendulum"]["max_steps"] = 14_000
    return Task("Pendulum", config, threshold=-400.0, run_timeout_s=PENDULUM_RUN_TIMEOUT_S)


CARTPOLE_SAC = {
    "behaviors": {
        "CartPole": {
            "trainer_type": "sac",
            "hyperparameters": {
                "learning_rate": 0.0003,
                "learning_rate_schedule": "constant",
                "batch_size": 128,
                "buffer_size": 50000,
                "buffer_init_steps": 1000,
                "tau": 0.005,
                "steps_per_update": 2,
                "init_entcoef": 0.5,
            },
            "network_settings": {"normalize": False, "hidden_units": 64, "num_layers": 2},
            "reward_signals": {"extrinsic": {"gamma": 0.99, "strength": 1.0}},
            "checkpoint_interval": 100000,
            "max_steps": 16000,
            "time_horizon": 64,
            "summary_freq": 2000,
        }
    }
}
"""SAC for CartPole: one gradient step per two agent steps learns as fast per step as one per step here (a mean
return over 150 from about 8,000 steps on), in half the time."""


def cartpole_task() -> Task:
    return Task("CartPole", CARTPOLE_SAC, threshold=150.0, run_timeout_s=CARTPOLE_RUN_TIMEOUT_S)


def train_and_judge(work: Path, task: Task, seed: int) -> str | None:
    """Trains ``task`` with ``seed`` (1 EnvActor × 4 areas) in ``work``; None when it learned, else what fell short."""
    work.mkdir()
    config = work / f"{task.scene}.yaml"
    config.write_text(yaml.safe_dump(task.config))
    args = [str(config), "--env", f"sim:{task.scene}", "--num-envs", "1", "--num-areas", "4", "--seed", str(seed),
            "--run-id", "sac"]  # fmt: skip
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("RAY_ADDRESS", None)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "rayagents.cluster.cli", *args],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=task.run_timeout_s,
        env=env,
        check=False,
    )
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    run = work / "results" / "sac"
    returns = read_scalars(run / task.scene)[CUMULATIVE_REWARD]
    curve = ", ".join(f"{step}: {value:.0f}" for step, value in returns)
    print(f"\n{task.scene} seed {seed}: {seconds:.0f} s; mean return per summary: {curve}")
    last_step, last_return = returns[-1]  # the last summary in which episodes ended (only those write a return)
    assert last_step >= task.max_steps - task.summary_freq, curve
    if last_return < task.threshold:
        return f"{task.scene} seed {seed}: the last summary's mean return {last_return:.0f} < {task.threshold}: {curve}"
    episodes = play_model(task.scene, run / f"{task.scene}.onnx", episodes=PLAY_EPISODES, seed=1234, areas=8).returns
    played = float(np.mean(episodes)) if episodes else float("-inf")
    print(f"{task.scene} seed {seed}: the exported model scored {played:.0f} over {len(episodes)} episodes")
    if played < task.threshold:
        return f"{task.scene} seed {seed}: the exported model scored {played:.0f} < {task.threshold} (curve {curve})"
    return None


def learns(tmp_path: Path, task: Task) -> None:
    """Trains the first seed, and the second when the first falls short (with a warning); fails on two misses."""
    shortfalls: list[str] = []
    for seed in SEEDS:
        shortfall = train_and_judge(tmp_path / f"seed-{seed}", task, seed)
        if shortfall is None:
            break
        shortfalls.append(shortfall)
        if len(shortfalls) < len(SEEDS):
            warnings.warn(f"{task.scene} not learned, another seed is trained: {shortfall}", SecondSeedWarning)
    assert len(shortfalls) < len(SEEDS), "\n".join(shortfalls)


@pytest.mark.timeout(len(SEEDS) * (PENDULUM_RUN_TIMEOUT_S + PLAY_TIMEOUT_S))
def test_sac_learns_pendulum_with_the_example_config(tmp_path: Path) -> None:
    learns(tmp_path, pendulum_task())


@pytest.mark.timeout(len(SEEDS) * (CARTPOLE_RUN_TIMEOUT_S + PLAY_TIMEOUT_S))
def test_sac_learns_cartpole_with_discrete_actions(tmp_path: Path) -> None:
    learns(tmp_path, cartpole_task())
