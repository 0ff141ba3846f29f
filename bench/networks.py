"""Networks beyond vectors, learning: recurrent memory on CartPole with its velocities hidden, attention over a
varying number of entities on Gather.

``python -m bench.networks memory``: ``sim:CartPoleMemory`` (CartPole-v1 seeing only the cart's position and the
pole's angle) with ``configs/ppo/CartPoleMemory.yaml`` (an LSTM of 64 trained on sequences of 16) and the same file
without its ``memory`` section, seeds 0–2 at 1 EnvActor × 8 areas, to 300,000 steps: the first summary at or
above a mean reward of 475, the mean reward at 300k, and each run's wall time. Target: with memory every seed
reaches 475 within 300k steps; without memory none does.

``python -m bench.networks gather``: ``sim:Gather`` (1 to 6 pellets seen through a BufferSensor) with
``configs/ppo/Gather.yaml``, seeds 0–2 at 1 × 8 to 100,000 steps: the first summary at or above a mean reward of 3.0
and the mean reward at 100k, beside the nearest-pellet heuristic's mean over 500 episodes (``rayagents-sim record
Gather --heuristic``) and uniformly random play's (``python -m rayagents.actors.random_play``, 4,000 exchanges of 8
areas).
"""

from __future__ import annotations

import copy
import re
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


from bench.runs import Summary, example, layout_arguments, learn, write_config
from bench.table import Row, report, seeded_arguments

COMMAND = "python -m bench.networks"
SECTIONS = {"memory": "Memory on CartPole", "gather": "Entities on Gather"}
"""The README section each part writes."""
RUN_TIMEOUT_S = 3600.0
"""The longest one training run may take."""
STEPS = 300_000
TARGET = 475.0
AREAS = 8
DEFAULT_SEEDS = (0, 1, 2)
GATHER_STEPS = 100_000
GATHER_TARGET = 3.0
SCORED_EPISODES = 500
RANDOM_EXCHANGES = 4000
RANDOM_RETURN = re.compile(r"episodes, mean return (-?\d+(?:\.\d+)?)")
MEAN_REWARD = re.compile(r"mean episode reward (-?\d+(?:\.\d+)?)")


def without_memory(config: Mapping[str, Any], behavior: str) -> dict[str, Any]:
    """``config`` with the ``memory`` section of ``behavior``'s network settings removed."""
    copied = copy.deepcopy(dict(config))
    copied["behaviors"][behavior]["network_settings"].pop("memory", None)
    return copied


@dataclass(frozen=True)
class SeedResult:
    """One seed's run, to ``steps``."""

    seed: int
    reward: float
    """The mean reward of the summary at (or first after) ``steps``."""
    step: int
    """That summary's step."""
    seconds: float
    """That summary's time since the run started."""
    reached: int | None
    """The step of the first summary at or above the target; None if none was."""

    def text(self, target: float) -> str:
        """``seed 0: 489.1 at 300,000 (150 s), ≥ 475 from 120,000``."""
        reached = f"≥ {target:.0f} from {self.reached:,}" if self.reached is not None else f"never ≥ {target:.0f}"
        return f"seed {self.seed}: {self.reward:,.1f} at {self.step:,} ({self.seconds:,.0f} s), {reached}"


def train_seeds(
    config: Mapping[str, Any],
    behavior: str,
    env: str,
    seeds: Sequence[int],
    areas: int,
    steps: int,
    target: float,
    label: str,
    stop_at_target: bool = False,
) -> list[SeedResult]:
    """Trains ``config`` on ``env`` at 1 EnvActor × ``areas`` for each seed until ``steps`` (or, with
    ``stop_at_target``, until the first summary at or above ``target``)."""
    results = []
    for seed in seeds:
        with tempfile.TemporaryDirectory(prefix="rayagents-bench-") as folder:
            path = write_config(config, Path(folder), behavior)
            arguments = [str(path), *layout_arguments(env, 1, areas, seed, "bench", Path(folder))]
            def stop(summary: Summary) -> bool:
                return summary.step >= steps or (stop_at_target and summary.reward >= target)

            output = learn(arguments, behavior, stop, RUN_TIMEOUT_S, f"{label} seed {seed}")
        at = output.reward_at(steps) or output.summaries[-1]
        reached = next((s.step for s in output.summaries if s.reward >= target and s.step <= steps), None)
        results.append(SeedResult(seed, at.reward, at.step, at.seconds, reached))
    return results


def memory_rows(seeds: Sequence[int]) -> list[Row]:
    """CartPoleMemory with and without memory."""
    with_memory = example("ppo/CartPoleMemory.yaml")
    rows = []
    for variant, config in (("with memory", with_memory), ("without memory", without_memory(with_memory, "CartPoleMemory"))):
        results = train_seeds(config, "CartPoleMemory", "sim:CartPoleMemory", seeds, AREAS, STEPS, TARGET, variant)
        reached = [r.reached is not None for r in results]
        rows.append(
            Row(
                f"PPO on sim:CartPoleMemory, 1 × {AREAS}, {variant}: mean reward at {STEPS:,} steps",
                "; ".join(r.text(TARGET) for r in results),
                f"≥ {TARGET:.0f} within {STEPS:,}, every seed" if variant == "with memory" else "stays far below",
                all(reached) if variant == "with memory" else not any(reached),
                f"{COMMAND} memory",
            )
        )
    return rows


def scored(arguments: Sequence[str]) -> float:
    """The mean episode reward ``rayagents-sim record ARGUMENTS`` reports."""
    done = subprocess.run(
        [sys.executable, "-m", "rayagents.sims", "record", *arguments], capture_output=True, text=True, check=False
    )
    found = MEAN_REWARD.search(done.stdout)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"rayagents-sim record failed ({done.returncode}): {done.stdout}{done.stderr}")
    return float(found.group(1))


def random_gather_reward(exchanges: int, seed: int) -> float:
    """A uniformly random policy's mean episode reward on Gather: ``python -m rayagents.actors.random_play`` with 8
    areas for ``exchanges`` exchanges, through the wire as a trainer plays."""
    command = [sys.executable, "-m", "rayagents.actors.random_play", "--env", "sim:Gather", "--num-areas", "8",
               "--steps", str(exchanges), "--seed", str(seed)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    found = RANDOM_RETURN.search(done.stdout)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"random play failed ({done.returncode}): {done.stdout}{done.stderr}")
    return float(found.group(1))


def gather_rows(seeds: Sequence[int]) -> list[Row]:
    """Gather learned with attention over its pellets, beside the heuristic and random play."""
    results = train_seeds(
        example("ppo/Gather.yaml"), "Gather", "sim:Gather", seeds, AREAS, GATHER_STEPS, GATHER_TARGET, "gather"
    )
    heuristic = scored(["Gather", "--heuristic", "--episodes", str(SCORED_EPISODES), "--seed", "100"])
    random = random_gather_reward(RANDOM_EXCHANGES, 100)
    return [
        Row(
            f"PPO on sim:Gather (BufferSensor of up to 6 pellets, attention), 1 × {AREAS}: mean reward at {GATHER_STEPS:,} steps",
            "; ".join(r.text(GATHER_TARGET) for r in results),
            f"≥ {GATHER_TARGET:.1f} (the heuristic: {heuristic:.2f} over {SCORED_EPISODES} episodes; random play: {random:.2f})",
            all(r.reached is not None for r in results),
            f"{COMMAND} gather",
        )
    ]


def main(argv: Sequence[str] | None = None) -> None:
    """Runs the benchmark, prints it and (unless ``--no-readme``) writes it into the README."""
    options = seeded_arguments(__doc__.split("\n\n")[0], tuple(SECTIONS), DEFAULT_SEEDS, argv)
    rows = memory_rows(options.seeds) if options.part == "memory" else gather_rows(options.seeds)
    report(SECTIONS[options.part], rows, write_readme=not options.no_readme)


if __name__ == "__main__":
    main()
