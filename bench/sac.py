"""SAC: the learner's update rate, and the example configs learning on the simulation host.

``python -m bench.sac update``: gradient steps and samples per second of SAC's update (batch 256, two layers of
256 units, HalfCheetah's 17 observations and 6 actions) on one CPU thread and, where there is one, on CUDA.

``python -m bench.sac pendulum``: ``configs/sac/Pendulum.yaml`` trained by ``rayagents-learn`` on ``sim:Pendulum``,
seeds 0–2, at 1 EnvActor × 4 areas and at 4 EnvActors × 1 area (the same ``steps_per_update``); each run's mean
reward at 20,000 steps (the first summary at or after it). Target: ≥ −200 (Stable-Baselines3's SAC is about −157
there); the two layouts should learn alike, the second in less wall time where the cores allow.

``python -m bench.sac halfcheetah``: ``configs/sac/HalfCheetah.yaml`` on ``sim:HalfCheetah`` (1 EnvActor × 1 area,
seed 0) to 300,000 steps: the mean episode return there (target ≥ 4,000; CleanRL's SAC is about 5,000–6,000), the
steps per second and the wall time. ``--steps`` and ``--layouts`` change the length and add layouts (``4x1``: the
sample-efficiency comparison at the same ``steps_per_update``).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bench.learning import Layout
from bench.runs import RunOutput, Summary, layout_arguments, learn
from bench.table import Row, report
from rayagents.configs import run_options_from_dict
from rayagents.configs.examples import example_config
from rayagents.learner.sac import SAC
from rayagents.protocol.types import ActionSpec, BehaviorSpec, DimensionProperty, ObservationSpec, ObservationType

COMMAND = "python -m bench.sac"
RUN_TIMEOUT_S = 3 * 3600.0
"""The longest one training run may take."""

PENDULUM_STEPS = 20_000
PENDULUM_TARGET = -200.0
HALFCHEETAH_STEPS = 300_000
HALFCHEETAH_TARGET = 4_000.0

UPDATE_BATCH = 256
UPDATE_HIDDEN = 256
UPDATE_STEPS = 200
"""Gradient steps timed per device (after as many to warm up)."""


@dataclass(frozen=True)
class Run:
    """One training run: its summaries, and its wall time including start-up."""

    layout: Layout
    seed: int
    output: RunOutput

    def reward_at(self, step: int) -> Summary | None:
        """The first summary at or after ``step``."""
        return self.output.reward_at(step)

    @property
    def wall_s(self) -> float:
        """Wall time, start-up included."""
        return self.output.wall_s


def train(scene: str, layout: Layout, seed: int, stop_step: int, folder: Path) -> Run:
    """One ``rayagents-learn`` run of the scene's example config, stopped (Ctrl+C: the model saved) once a summary at
    ``stop_step`` or later is printed."""
    arguments = [str(example_config(scene)), *layout_arguments(
        f"sim:{scene}", layout.envs, layout.areas, seed, "sac", folder
    )]
    label = f"{scene} {layout} seed {seed}"
    return Run(layout, seed, learn(arguments, scene, lambda s: s.step >= stop_step, RUN_TIMEOUT_S, label))


def update_rate(device: str) -> float:
    """Gradient steps per second of SAC's update on ``device`` (one CPU thread on the CPU)."""
    spec = BehaviorSpec(
        [ObservationSpec((17,), (DimensionProperty.NONE,), ObservationType.DEFAULT, "obs")], ActionSpec(6, ())
    )
    options = run_options_from_dict(
        {
            "behaviors": {
                "B": {
                    "trainer_type": "sac",
                    "hyperparameters": {"batch_size": UPDATE_BATCH, "buffer_size": 100_000},
                    "network_settings": {"hidden_units": UPDATE_HIDDEN, "num_layers": 2},
                    "max_steps": 10**9,
                }
            }
        }
    )
    sac = SAC(spec, options.behaviors["B"], device, seed=0)
    rng = np.random.default_rng(0)
    n = 10_000
    sac.buffer.add(
        {
            "obs_0": rng.normal(size=(n, 17)).astype(np.float32),
            "next_obs_0": rng.normal(size=(n, 17)).astype(np.float32),
            "continuous_actions": rng.uniform(-1, 1, (n, 6)).astype(np.float32),
            "discrete_actions": np.zeros((n, 0), np.int64),
            "action_masks": np.zeros((n, 0), np.float32),
            "rewards": rng.normal(size=n).astype(np.float32),
            "dones": np.zeros(n, np.float32),
        }
    )
    due = 10**9  # a step count that leaves gradient steps due for the whole measurement

    def steps(count: int) -> None:
        made = 0
        while made < count:
            sac.update(due)
            made += 32
        if device != "cpu":
            torch.cuda.synchronize()

    steps(UPDATE_STEPS)
    started = time.perf_counter()
    steps(UPDATE_STEPS)
    return UPDATE_STEPS / (time.perf_counter() - started)


def update_rows() -> list[Row]:
    """The update rate on one CPU thread and, where there is one, on CUDA."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cpu = update_rate("cpu")
    finally:
        torch.set_num_threads(threads)
    what = f"SAC update, batch {UPDATE_BATCH}, 2 × {UPDATE_HIDDEN} units (17 obs, 6 actions)"
    rows = [Row(f"{what}, one CPU thread", rate(cpu), "—", None, f"{COMMAND} update")]
    if torch.cuda.is_available():
        cuda = update_rate("cuda")
        rows.append(Row(f"{what}, CUDA ({torch.cuda.get_device_name()})", rate(cuda), "—", None, f"{COMMAND} update"))
    return rows


def rate(steps_per_s: float) -> str:
    """Gradient steps per second, and the samples per second they train on."""
    return f"{steps_per_s:,.0f} gradient steps/s = {steps_per_s * UPDATE_BATCH:,.0f} samples/s"


def learning_rows(scene: str, layouts: Sequence[Layout], seeds: Sequence[int], steps: int, target: float) -> list[Row]:
    """Each layout's runs: the mean reward at ``steps`` per seed, the wall time and the rate."""
    rows = []
    for layout in layouts:
        runs = []
        for seed in seeds:
            with tempfile.TemporaryDirectory(prefix="rayagents-bench-sac-") as folder:
                runs.append(train(scene, layout, seed, steps, Path(folder)))
        parts = []
        met = True
        for run in runs:
            at = run.reward_at(steps)
            if at is None:
                last = run.output.summaries[-1]
                parts.append(f"seed {run.seed}: stopped at step {last.step:,} (reward {last.reward:,.1f})")
                met = False
                continue
            speed = at.step / at.seconds
            parts.append(f"seed {run.seed}: {at.reward:,.1f} at step {at.step:,}, {at.seconds:,.0f} s ({speed:,.0f} steps/s)")
            met = met and at.reward >= target
        rows.append(
            Row(f"SAC example config on sim:{scene}, {layout} (EnvActors × areas): mean reward at {steps:,} steps",
                "; ".join(parts), f"≥ {target:,.0f}, every seed", met, f"{COMMAND} {scene.lower()}")  # fmt: skip
        )
    return rows


SECTIONS = {"update": "SAC updates", "pendulum": "SAC on Pendulum", "halfcheetah": "SAC on HalfCheetah"}
"""The README heading each part rewrites."""


def main(argv: Sequence[str] | None = None) -> None:
    """Runs one part of the SAC benchmark, prints it and (unless ``--no-readme``) writes it into the README."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("part", choices=sorted(SECTIONS))
    parser.add_argument("--layouts", type=lambda s: [Layout.parse(p) for p in s.split(",")], default=None)
    parser.add_argument("--seeds", type=lambda s: [int(p) for p in s.split(",")], default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--no-readme", action="store_true", help="print only; leave README.md as it is")
    options = parser.parse_args(argv)
    if options.part == "update":
        rows = update_rows()
    elif options.part == "pendulum":
        rows = learning_rows(
            "Pendulum", options.layouts or [Layout(1, 4), Layout(4, 1)], options.seeds or [0, 1, 2],
            options.steps or PENDULUM_STEPS, PENDULUM_TARGET,
        )  # fmt: skip
    else:
        rows = learning_rows(
            "HalfCheetah", options.layouts or [Layout(1, 1)], options.seeds or [0],
            options.steps or HALFCHEETAH_STEPS, HALFCHEETAH_TARGET,
        )  # fmt: skip
    report(SECTIONS[options.part], rows, write_readme=not options.no_readme)


if __name__ == "__main__":
    main()
