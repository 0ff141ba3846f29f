"""Self-play on ConnectFour: the ELO over a run, and the final policy against fixed opponents.

``python -m bench.self_play connect-four``: ``configs/ppo/ConnectFour.yaml`` (PPO with ``self_play``) on
``sim:ConnectFour`` at :data:`ENVS` EnvActors × :data:`AREAS` areas, to the config's ``max_steps``, for each seed.
From each run it reports

- the ELO (``Self-play/ELO`` in TensorBoard, one value per summary): first and last, the least-squares slope over
  the run (ELO per million steps) and the share of summary periods in which it rose. ELO moves by less than a point
  per game (ML-Agents' K = 1), so "rises on average" is read from the slope;
- the final ``ConnectFour.onnx`` (what Unity would load) played in-process against a uniformly random legal player
  and against a one-move-lookahead player (win if you can, block if you must), :data:`GAMES` games each, half
  moving first (:mod:`bench.connect_four`).

Targets (the self-play issue): ELO rises on average; ≥ 95 % wins against random and ≥ 60 % against the lookahead.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.connect_four import OPPONENTS, OnnxPolicy, Result, evaluate
from bench.networks import DEFAULT_SEEDS
from bench.runs import Summary, example, layout_arguments, learn, write_config
from bench.table import Row, report, seeded_arguments
from rayagents.cluster.tensorboard import read_scalars

COMMAND = "python -m bench.self_play"
SECTIONS = {"connect-four": "Self-play on ConnectFour"}
"""The README section each part writes."""
BEHAVIOR = "ConnectFour"
CONFIG = "ppo/ConnectFour.yaml"
ENVS = 2
AREAS = 8
GAMES = 200
"""Games against each opponent, half moving first."""
RUN_TIMEOUT_S = 7200.0
RANDOM_TARGET = 0.95
LOOKAHEAD_TARGET = 0.60


@dataclass(frozen=True)
class EloCurve:
    """The ELO of one run, one value per summary."""

    steps: tuple[int, ...]
    elos: tuple[float, ...]

    @property
    def slope_per_million(self) -> float:
        """The least-squares slope, ELO per million steps."""
        if len(self.steps) < 2:
            return 0.0
        return float(np.polyfit(np.array(self.steps, float) / 1e6, np.array(self.elos), 1)[0])

    @property
    def rising_share(self) -> float:
        """The share of summary periods in which the ELO rose (ended above where the last one ended)."""
        rises = np.diff(np.array(self.elos)) > 0
        return float(rises.mean()) if len(rises) else 0.0


@dataclass(frozen=True)
class SeedResult:
    """One seed's run and its evaluation."""

    seed: int
    curve: EloCurve
    against_random: Result
    against_lookahead: Result
    steps: int
    seconds: float

    def text(self) -> str:
        """``seed 0: ELO 1200→1650 (+210/M, rose in 70 % of periods); random 0.98, lookahead 0.64 (1,905 s)``."""
        return (
            f"seed {self.seed}: ELO {self.curve.elos[0]:,.0f}→{self.curve.elos[-1]:,.0f} "
            f"({self.curve.slope_per_million:+,.0f}/M steps, rose in {self.curve.rising_share:.0%} of periods); "
            f"wins vs random {self.against_random.overall.win_rate:.3f}, vs lookahead "
            f"{self.against_lookahead.overall.win_rate:.3f} ({self.steps:,} steps, {self.seconds:,.0f} s)"
        )


def train_and_evaluate(seed: int) -> SeedResult:
    """Trains the example with ``seed`` to its max_steps, then reads its ELO and plays its final model."""
    with tempfile.TemporaryDirectory(prefix="rayagents-bench-") as folder:
        path = write_config(example(CONFIG), Path(folder), BEHAVIOR)
        arguments = [str(path), *layout_arguments(f"sim:{BEHAVIOR}", ENVS, AREAS, seed, "bench", Path(folder))]

        def never(summary: Summary) -> bool:
            return False

        output = learn(arguments, BEHAVIOR, never, RUN_TIMEOUT_S, f"self-play seed {seed}")
        run = Path(folder) / "bench"
        if not (run / f"{BEHAVIOR}.onnx").is_file():
            raise RuntimeError(
                f"the run of seed {seed} ended at step {output.summaries[-1].step:,} without its final model "
                "(stopped from outside?)"
            )
        elo = read_scalars(run / BEHAVIOR).get("Self-play/ELO", [])
        if not elo:
            raise RuntimeError(f"the run of seed {seed} wrote no Self-play/ELO")
        curve = EloCurve(tuple(int(s) for s, _ in elo), tuple(float(v) for _, v in elo))
        policy = OnnxPolicy(run / f"{BEHAVIOR}.onnx")
        against_random = evaluate(policy, OPPONENTS["random"], GAMES, seed)
        against_lookahead = evaluate(policy, OPPONENTS["lookahead"], GAMES, seed)
    last = output.summaries[-1]
    return SeedResult(seed, curve, against_random, against_lookahead, last.step, output.wall_s)


def connect_four_rows(seeds: Sequence[int]) -> list[Row]:
    """The ELO and the evaluation of each seed, against the targets."""
    results = [train_and_evaluate(seed) for seed in seeds]
    random_rates = [r.against_random.overall.win_rate for r in results]
    lookahead_rates = [r.against_lookahead.overall.win_rate for r in results]
    slopes = [r.curve.slope_per_million for r in results]
    layout = f"{ENVS} × {AREAS}"
    return [
        Row(
            f"ConnectFour self-play ({CONFIG}, {layout}): ELO over the run",
            "; ".join(r.text().split("; wins")[0] for r in results),
            "rises on average",
            all(slope > 0 for slope in slopes),
            f"{COMMAND} connect-four",
        ),
        Row(
            f"ConnectFour self-play: final .onnx against a random legal player, {GAMES} games, both colours",
            "; ".join(f"seed {r.seed}: {rate:.3f}" for r, rate in zip(results, random_rates)),
            f"≥ {RANDOM_TARGET:.2f}",
            all(rate >= RANDOM_TARGET for rate in random_rates),
            f"{COMMAND} connect-four",
        ),
        Row(
            f"ConnectFour self-play: final .onnx against a one-move lookahead, {GAMES} games, both colours",
            "; ".join(
                f"seed {r.seed}: {rate:.3f} ({r.steps:,} steps, {r.seconds:,.0f} s)"
                for r, rate in zip(results, lookahead_rates)
            ),
            f"≥ {LOOKAHEAD_TARGET:.2f}",
            all(rate >= LOOKAHEAD_TARGET for rate in lookahead_rates),
            f"{COMMAND} connect-four",
        ),
    ]


def main(argv: Sequence[str] | None = None) -> None:
    """Runs the benchmark, prints it and (unless ``--no-readme``) writes it into the README."""
    options = seeded_arguments(__doc__.split("\n\n")[0], tuple(SECTIONS), DEFAULT_SEEDS, argv)
    report(SECTIONS[options.part], connect_four_rows(options.seeds), write_readme=not options.no_readme)


if __name__ == "__main__":
    main()
