"""Recurrent memory learns CartPole with its velocities hidden, through ``rayagents-learn`` as a user runs it, in CI
time.

``configs/ppo/CartPoleMemory.yaml`` (an LSTM of 64 on sequences of 16) at 1 EnvActor × 8 areas with ``max_steps``
cut to 150,000: some summary must reach a mean reward of 400, and the exported ``.onnx`` model, played as
``rayagents-sim record`` plays it (each agent's ``recurrent_out`` fed back as its next ``recurrent_in``, as Unity
does), must score at least 400 over 10 episodes. Without memory the same config stays near 50
(``python -m bench.networks memory``); a random policy scores about 20. A second seed runs when the first falls
short (:func:`example_runs.with_second_seed`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rayagents.sims.record import play_model
from example_runs import train_example, with_second_seed

pytestmark = [pytest.mark.slow, pytest.mark.timeout(960)]  # two seeds' runs at most

MAX_STEPS = 150_000
THRESHOLD = 400.0


def test_an_lstm_learns_cartpole_without_velocities_and_its_onnx_model_remembers(tmp_path: Path) -> None:
    def check(seed: int) -> str | None:
        run = train_example(tmp_path, "ppo/CartPoleMemory.yaml", "sim:CartPoleMemory", max_steps=MAX_STEPS, seed=seed)
        best = max(reward for _, reward in run.summaries)
        if best < THRESHOLD:
            return f"best mean reward {best:.1f} < {THRESHOLD:.0f}: {run.summaries}"
        scored = float(np.mean(play_model("CartPoleMemory", run.results / "CartPoleMemory.onnx", 10, seed=100).returns))
        return None if scored >= THRESHOLD else f"the exported model scored {scored:.1f} < {THRESHOLD:.0f}"

    with_second_seed(check)
