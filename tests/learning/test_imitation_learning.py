"""Imitation learns CartPole through ``rayagents-learn`` with no extrinsic reward, as a user runs it (a real local
Ray cluster, one EnvActor with a 4-area player, the learner), in CI time.

A demonstration of 10 episodes of CartPole's heuristic (500 steps each) is recorded with ``rayagents-sim record``;
``configs/imitation/CartPole.yaml`` (GAIL and behavioral cloning), with only ``demo_path`` pointed at it and
``max_steps`` cut to 20,000, trains on it. The first summary (5,000 steps, played mostly by the weights the
pretraining made) must already score at least 300, the last at least 450, and the exported model, scored over 20
episodes by ``rayagents-sim record``, at least 450. A random policy scores about 20.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rayagents.configs.examples import all_example_configs

pytestmark = pytest.mark.slow

MAX_STEPS = 20_000
PRETRAINED_THRESHOLD = 300.0
THRESHOLD = 450.0
RUN_TIMEOUT_S = 240
SUMMARY = re.compile(r"^CartPole\. Step: (\d+)\. Time Elapsed: [\d.]+ s\. Mean Reward: (-?\d+(?:\.\d+)?)", re.MULTILINE)
MEAN_REWARD = re.compile(r"mean episode reward (-?\d+(?:\.\d+)?)")


def sim(*arguments: str) -> str:
    """``rayagents-sim ARGUMENTS``' output; a failure fails the test with it."""
    done = subprocess.run(
        [sys.executable, "-m", "rayagents.sims", *arguments], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_gail_and_behavioral_cloning_learn_cartpole_from_a_recorded_demonstration(tmp_path: Path) -> None:
    demo = tmp_path / "demos" / "Heuristic.demo"
    recorded = sim("record", "CartPole", "--heuristic", "--episodes", "10", "--out", str(demo))
    assert float(MEAN_REWARD.search(recorded).group(1)) == 500.0, recorded  # type: ignore[union-attr]

    config = yaml.safe_load(all_example_configs()["imitation/CartPole.yaml"].read_text())
    behavior = config["behaviors"]["CartPole"]
    assert "extrinsic" not in behavior["reward_signals"]  # GAIL's reward is the only one
    behavior["reward_signals"]["gail"]["demo_path"] = str(demo)
    behavior["behavioral_cloning"]["demo_path"] = str(demo)
    behavior["max_steps"] = MAX_STEPS
    path = tmp_path / "imitation.yaml"
    path.write_text(yaml.safe_dump(config))
    run = subprocess.run(
        [sys.executable, "-m", "rayagents.cluster.cli", str(path), "--env", "sim:CartPole", "--num-envs", "1",
         "--num-areas", "4", "--seed", "0", "--results-dir", str(tmp_path / "results"), "--run-id", "imitation"],
        capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
    )  # fmt: skip
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    summaries = [(int(step), float(reward)) for step, reward in SUMMARY.findall(output)]
    assert summaries and summaries[-1][0] == MAX_STEPS, output
    assert summaries[0][1] >= PRETRAINED_THRESHOLD, summaries  # the pretraining already imitates
    assert summaries[-1][1] >= THRESHOLD, summaries
    model = tmp_path / "results" / "imitation" / "CartPole.onnx"
    scored = sim("record", "CartPole", "--model", str(model), "--episodes", "20", "--seed", "100")
    assert float(MEAN_REWARD.search(scored).group(1)) >= THRESHOLD, scored  # type: ignore[union-attr]
