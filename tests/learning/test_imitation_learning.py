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
from example_runs import train_example

pytestmark = pytest.mark.slow

MAX_STEPS = 20_000
PRETRAINED_THRESHOLD = 300.0
THRESHOLD = 450.0
RUN_TIMEOUT_S = 240
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

    def point_at_the_demonstration(behavior: dict) -> None:
        assert "extrinsic" not in behavior["reward_signals"]  # GAIL's reward is the only one
        behavior["reward_signals"]["gail"]["demo_path"] = str(demo)
        behavior["behavioral_cloning"]["demo_path"] = str(demo)

    run = train_example(
        tmp_path, "imitation/CartPole.yaml", "sim:CartPole", max_steps=MAX_STEPS, seed=0, num_areas=4,
        timeout_s=RUN_TIMEOUT_S, edit=point_at_the_demonstration,
    )  # fmt: skip
    summaries = run.summaries
    assert summaries[0][1] >= PRETRAINED_THRESHOLD, summaries  # the pretraining already imitates
    assert summaries[-1][1] >= THRESHOLD, summaries
    model = run.results / "CartPole.onnx"
    scored = sim("record", "CartPole", "--model", str(model), "--episodes", "20", "--seed", "100")
    assert float(MEAN_REWARD.search(scored).group(1)) >= THRESHOLD, scored  # type: ignore[union-attr]
