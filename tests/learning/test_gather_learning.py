"""Attention over a varying number of entities learns ``sim:Gather`` through ``rayagents-learn`` as a user runs it, in
CI time.

``Gather``'s agent sees 1 to 6 pellets through a BufferSensor (absent pellets are zero rows) and earns +1 per
pellet it touches, -1/200 per step. ``configs/ppo/Gather.yaml`` at 1 EnvActor × 8 areas with ``max_steps`` cut to
50,000 must go from below to above a mean reward of 2.0 (a random policy scores about -0.3; gathering every pellet
scores about 3.4); the run stops there, as on Ctrl+C. A second seed runs when the first falls short (:func:`example_runs.with_second_seed`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from example_runs import train_example, with_second_seed

pytestmark = [pytest.mark.slow, pytest.mark.timeout(660)]  # two seeds' runs at most

MAX_STEPS = 50_000
THRESHOLD = 2.0


def test_attention_over_pellets_learns_to_gather(tmp_path: Path) -> None:
    def check(seed: int) -> str | None:
        def summarize_often(behavior: dict) -> None:
            behavior["summary_freq"] = 5000

        run = train_example(tmp_path, "ppo/Gather.yaml", "sim:Gather", max_steps=MAX_STEPS, seed=seed,
                            edit=summarize_often, stop_at_reward=THRESHOLD)  # fmt: skip
        assert run.summaries[0][1] < THRESHOLD, run.summaries  # it starts far from gathering
        best = max(reward for _, reward in run.summaries)
        return None if best >= THRESHOLD else f"best mean reward {best:.2f} < {THRESHOLD}: {run.summaries}"

    with_second_seed(check)
