"""Learning at scale: CartPole's example config trained by ``rayagents-learn`` at several layouts and seeds.

``python -m bench.learning`` trains ``sim:CartPole`` with ``configs/ppo/CartPole.yaml``, unchanged, at each layout
(EnvActors × areas: 1 × 4, 2 × 8, 8 × 8 by default; ``--layouts 16x8`` on a machine with the cores) and seed
(0–2), and reads from each run's summary lines the step and the time (since the run started, Ray included) at
which the mean reward of a summary period first reached 475 (CartPole-v1's "solved"), and from its TensorBoard
events the steps the learner dropped and the mean policy lag. Target: every run solves within 100,000 steps.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.runs import layout_arguments, learn
from bench.table import Row, report
from rayagents.cluster.tensorboard import read_scalars
from rayagents.configs.examples import example_config
from rayagents.learner.summaries import DROPPED_STEPS, POLICY_LAG

COMMAND = "python -m bench.learning"
SECTION = "Learning"
"""The README heading (``### Learning``) whose table this benchmark rewrites."""
SOLVED_REWARD = 475.0
"""CartPole-v1's reward threshold."""
TARGET_STEPS = 100_000
"""Every run must reach the threshold within this many steps."""
RUN_TIMEOUT_S = 1800.0
"""The longest one training run may take."""

@dataclass(frozen=True)
class Layout:
    """EnvActors × areas per player."""

    envs: int
    areas: int

    @classmethod
    def parse(cls, text: str) -> Layout:
        """``"8x8"`` → 8 EnvActors × 8 areas."""
        match = re.fullmatch(r"(\d+)[x×](\d+)", text.strip())
        if match is None:
            raise argparse.ArgumentTypeError(f"a layout is ENVSxAREAS, e.g. 8x8; got {text!r}")
        return cls(int(match.group(1)), int(match.group(2)))

    def __str__(self) -> str:
        return f"{self.envs} × {self.areas}"


DEFAULT_LAYOUTS = (Layout(1, 4), Layout(2, 8), Layout(8, 8))
"""The layouts measured by default (16 × 8 wants a machine with the cores for it)."""
DEFAULT_SEEDS = (0, 1, 2)
"""The seeds of each layout."""


@dataclass(frozen=True)
class Outcome:
    """One training run."""

    layout: Layout
    seed: int
    solved_step: int | None
    """The first summary step whose mean reward reached 475; None if none did."""
    solved_s: float | None
    """Seconds since the run started at that summary."""
    final_step: int
    """The last summary step."""
    dropped: int
    """Steps the learner dropped (acted by weights older than PPO's bound), over the run."""
    mean_lag: float | None
    """The mean of the summaries' ``Policy/Policy Lag``."""


def train(layout: Layout, seed: int, folder: Path) -> Outcome:
    """One ``rayagents-learn`` run of the CartPole example; stops it once solved (SIGINT, the model saved)."""
    arguments = [str(example_config("CartPole")), *layout_arguments(
        "sim:CartPole", layout.envs, layout.areas, seed, "cartpole", folder
    )]
    output = learn(arguments, "CartPole", lambda s: s.reward >= SOLVED_REWARD, RUN_TIMEOUT_S, f"{layout} seed {seed}")
    solved = output.first_reaching(SOLVED_REWARD)
    scalars = read_scalars(folder / "cartpole" / "CartPole")
    dropped = int(sum(value for _, value in scalars.get(DROPPED_STEPS, [])))
    lags = [value for _, value in scalars.get(POLICY_LAG, [])]
    return Outcome(
        layout,
        seed,
        None if solved is None else solved.step,
        None if solved is None else solved.seconds,
        output.summaries[-1].step,
        dropped,
        float(np.mean(lags)) if lags else None,
    )


def rows(outcomes: Sequence[Outcome]) -> list[Row]:
    """One README row per layout: each seed's steps and seconds to 475, dropped steps and mean lag."""
    result = []
    for layout in dict.fromkeys(o.layout for o in outcomes):
        mine = [o for o in outcomes if o.layout == layout]
        parts = []
        for o in mine:
            if o.solved_step is None:
                parts.append(f"seed {o.seed}: not solved by step {o.final_step:,}")
            else:
                parts.append(f"seed {o.seed}: {o.solved_step:,} steps, {o.solved_s:.0f} s")
        dropped = sum(o.dropped for o in mine)
        steps = sum(o.solved_step or o.final_step for o in mine)
        lags = [o.mean_lag for o in mine if o.mean_lag is not None]
        lag = f", mean policy lag {np.mean(lags):.2f}" if lags else ""
        value = "; ".join(parts) + f" ({dropped / max(1, steps):.1%} dropped{lag})"
        met = all(o.solved_step is not None and o.solved_step <= TARGET_STEPS for o in mine)
        result.append(
            Row(f"CartPole example config, {layout} (EnvActors × areas): steps to a mean reward of 475", value,
                f"≤ {TARGET_STEPS:,} steps, every seed", met, COMMAND)  # fmt: skip
        )
    return result


def run(layouts: Sequence[Layout], seeds: Sequence[int]) -> list[Row]:
    """Every layout × seed, as README rows."""
    outcomes = []
    for layout in layouts:
        for seed in seeds:
            with tempfile.TemporaryDirectory(prefix="rayagents-bench-learning-") as folder:
                outcome = train(layout, seed, Path(folder))
            outcomes.append(outcome)
            solved = f"solved at {outcome.solved_step:,} in {outcome.solved_s:.0f} s" if outcome.solved_step else "not solved"
            print(f"  {layout}, seed {seed}: {solved}; dropped {outcome.dropped:,}; lag {outcome.mean_lag}", file=sys.stderr)
    return rows(outcomes)


def main(argv: Sequence[str] | None = None) -> None:
    """Runs the learning benchmark, prints it and (unless ``--no-readme``) writes it into the README."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layouts", type=lambda s: [Layout.parse(p) for p in s.split(",")],
                        default=list(DEFAULT_LAYOUTS), help="e.g. 1x4,2x8,8x8,16x8")  # fmt: skip
    parser.add_argument("--seeds", type=lambda s: [int(p) for p in s.split(",")], default=list(DEFAULT_SEEDS))
    parser.add_argument("--no-readme", action="store_true", help="print only; leave README.md as it is")
    options = parser.parse_args(argv)
    report(SECTION, run(options.layouts, options.seeds), write_readme=not options.no_readme)


if __name__ == "__main__":
    main()
