"""MA-POCA learns cooperative credit assignment on ``sim:DungeonEscape`` through ``rayagents-learn``, in CI time.

Three agents of a group walk a corridor; one must walk into the dragon and leave the episode (its own reward is
always 0) so that the door opens for the others, whose escape pays the group +1. Random moves escape about 0.63 of
episodes; independent PPO, which cannot credit the agent that leaves, learns to avoid the dragon and falls towards
0 (``python -m bench.poca escape``). ``configs/poca/DungeonEscape.yaml`` at 1 EnvActor × 8 areas with
``max_steps`` cut to 150,000 must reach a mean group reward of 0.85 (the run stops there, as on Ctrl+C). The run
also writes POCA's statistics under ML-Agents' names and an ``.onnx`` each agent's policy loads from. A second seed runs when the first falls short
(:func:`example_runs.with_second_seed`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime
import pytest

from example_runs import train_example, with_second_seed
from rayagents.cluster.tensorboard import read_scalars

pytestmark = [pytest.mark.slow, pytest.mark.timeout(660)]  # two seeds' runs at most

MAX_STEPS = 150_000
THRESHOLD = 0.85
POCA_STATISTICS = (
    "Environment/Group Cumulative Reward",
    "Losses/Baseline Loss",
    "Losses/Value Loss",
    "Losses/Policy Loss",
    "Policy/Extrinsic Baseline Estimate",
    "Policy/Extrinsic Value Estimate",
)


def test_poca_credits_the_agent_that_leaves_and_the_group_escapes(tmp_path: Path) -> None:
    def check(seed: int) -> str | None:
        run = train_example(tmp_path, "poca/DungeonEscape.yaml", "sim:DungeonEscape", max_steps=MAX_STEPS, seed=seed,
                            stop_at_group_reward=THRESHOLD)  # fmt: skip
        assert run.group_rewards and all(reward == 0.0 for _, reward in run.summaries)  # only the group is paid
        scalars = read_scalars(run.results / "DungeonEscape")
        missing = [name for name in POCA_STATISTICS if name not in scalars]
        assert not missing, f"missing statistics {missing}; written: {sorted(scalars)}"
        session = onnxruntime.InferenceSession(str(run.results / "DungeonEscape.onnx"))
        feed = {"obs_0": np.zeros((3, 19), dtype=np.float32), "action_masks": np.ones((3, 3), dtype=np.float32)}
        (actions,) = session.run(["discrete_actions"], feed)
        assert actions.shape == (3, 1)
        best = max(reward for _, reward in run.group_rewards)
        return None if best >= THRESHOLD else f"best mean group reward {best:.3f} < {THRESHOLD}: {run.group_rewards}"

    with_second_seed(check)
