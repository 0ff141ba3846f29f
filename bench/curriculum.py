"""A curriculum against the final lesson from scratch: MountainCar with its flag moved up the hill lesson by lesson.

``python -m bench.curriculum``: ``sim:MountainCar`` trained by ``rayagents-learn`` at 1 EnvActor × 8 areas, seeds
0–2, each to the config's ``max_steps`` (300,000):

- (a) ``configs/ppo/MountainCarCurriculum.yaml``: the flag (``goal_position``) starts at -0.4, just right of the
  start positions, and moves up (-0.3, -0.1, 0.2) each time the mean return of the last 80 episodes (smoothed) is
  above -140, to the real flag at 0.5;
- (b) the same file with ``goal_position: 0.5`` from the start (the final lesson from scratch, same budget).

Reported per seed: the mean reward of the last summary and the lesson it was in (a mean reward in the final lesson
compares with (b); an earlier lesson's does not), the step of each lesson change and the wall time. Each lesson
change is read twice and the two must agree: from the console (the first summary line after ML-Agents' "Parameter
'goal_position' is in lesson ..." line) and from TensorBoard (the first summary whose ``Environment/Lesson
Number/goal_position`` is the new lesson).
"""

from __future__ import annotations

import copy
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.networks import AREAS, DEFAULT_SEEDS, RUN_TIMEOUT_S
from bench.runs import Summary, example, layout_arguments, learn, write_config
from bench.table import Row, report, seeded_arguments
from rayagents.cluster.tensorboard import read_scalars

COMMAND = "python -m bench.curriculum"
SECTION = "Curriculum on MountainCar"
"""The README section this benchmark writes."""
EXAMPLE = "ppo/MountainCarCurriculum.yaml"
BEHAVIOR = "MountainCar"
ENV = "sim:MountainCar"
PARAMETER = "goal_position"
LESSON_TAG = f"Environment/Lesson Number/{PARAMETER}"
ANY_SUMMARY = re.compile(r"^(?P<behavior>\S+)\. Step: (?P<step>\d+)\. Time Elapsed: ")
"""A summary line, with or without a mean reward."""
LESSON_LINE = re.compile(rf"^Parameter '{PARAMETER}' is in lesson '(?P<name>[^']*)' and has value '(?P<value>[^']*)'\.")
"""ML-Agents' lesson line (the first one is the starting lesson)."""


def final_lesson(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with its curriculum replaced by the final lesson's value from the start."""
    copied = copy.deepcopy(dict(config))
    lessons = copied["environment_parameters"][PARAMETER]["curriculum"]
    copied["environment_parameters"][PARAMETER] = lessons[-1]["value"]
    return copied


def console_changes(lines: Sequence[str]) -> list[tuple[str, int | None]]:
    """Each lesson change the console announced (the lines after the starting one): the new lesson's name and the
    step of the first summary line after it (None when the run ended first)."""
    changes: list[tuple[str, int | None]] = []
    waiting: list[str] = []
    started = False
    for line in lines:
        lesson = LESSON_LINE.match(line)
        if lesson:
            if started:
                waiting.append(lesson["name"])
            started = True
            continue
        summary = ANY_SUMMARY.match(line)
        if summary and summary["behavior"] == BEHAVIOR:
            changes += [(name, int(summary["step"])) for name in waiting]
            waiting = []
    return changes + [(name, None) for name in waiting]


def tensorboard_changes(folder: Path) -> tuple[list[int | None], dict[int, int]]:
    """From ``Environment/Lesson Number``: for each lesson after the first that was reached, the first summary step
    in it or a later one; and the lesson at every summary."""
    lessons = {step: int(value) for step, value in read_scalars(folder).get(LESSON_TAG, [])}
    last = max(lessons.values(), default=0)
    firsts: list[int | None] = [min(s for s, n in lessons.items() if n >= lesson) for lesson in range(1, last + 1)]
    return firsts, lessons


@dataclass(frozen=True)
class CurriculumRun:
    """One seed's run."""

    seed: int
    reward: float
    """The mean reward of the last summary with one."""
    step: int
    lesson: int
    """The lesson of that summary (from TensorBoard)."""
    lessons: int
    """How many lessons the curriculum has (1 without one)."""
    console: list[int | None]
    """The step of each lesson change from the console."""
    tensorboard: list[int | None]
    """... and from TensorBoard."""
    seconds: float
    max_steps: int
    """The step the run should have reached."""

    @property
    def complete(self) -> bool:
        """The run reached its max_steps (a run stopped from outside, or failed, did not)."""
        return self.step >= self.max_steps

    @property
    def agree(self) -> bool:
        """The console and TensorBoard say the same lessons changed at the same summaries."""
        return self.console == self.tensorboard

    @property
    def in_final_lesson(self) -> bool:
        """The last summary was in the final lesson."""
        return self.lesson == self.lessons - 1

    def text(self) -> str:
        """``seed 0: -112.3 at 300,000 in lesson 4 of 0–4; lessons from 30,000, ...; 160 s``."""
        where = "" if self.lessons == 1 else f" in lesson {self.lesson} of 0–{self.lessons - 1}"
        changes = ""
        if self.lessons > 1:
            steps = ", ".join("—" if s is None else f"{s:,}" for s in self.console) or "none"
            changes = f"; lessons 1.. from {steps} (TensorBoard {'agrees' if self.agree else 'DISAGREES'})"
        ended = "" if self.complete else f" (ENDED EARLY, before {self.max_steps:,})"
        return f"seed {self.seed}: {self.reward:,.1f} at {self.step:,}{ended}{where}{changes}; {self.seconds:,.0f} s"


def train(config: Mapping[str, Any], seeds: Sequence[int], label: str) -> list[CurriculumRun]:
    """Trains ``config`` on sim:MountainCar at 1 × :data:`AREAS` for each seed to its max_steps."""
    steps = int(config["behaviors"][BEHAVIOR]["max_steps"])
    parameter = config["environment_parameters"][PARAMETER]
    lessons = len(parameter["curriculum"]) if isinstance(parameter, dict) and "curriculum" in parameter else 1
    results = []
    for seed in seeds:
        with tempfile.TemporaryDirectory(prefix="rayagents-bench-") as folder:
            path = write_config(config, Path(folder), BEHAVIOR)
            arguments = [str(path), *layout_arguments(ENV, 1, AREAS, seed, "bench", Path(folder))]

            def stop(summary: Summary) -> bool:
                return summary.step >= steps

            output = learn(arguments, BEHAVIOR, stop, RUN_TIMEOUT_S, f"{label} seed {seed}")
            firsts, at_summaries = tensorboard_changes(Path(folder) / "bench" / BEHAVIOR)
        console = [step for _, step in console_changes(output.lines)]
        last = output.summaries[-1]
        results.append(
            CurriculumRun(
                seed=seed,
                reward=last.reward,
                step=last.step,
                lesson=at_summaries.get(last.step, 0),
                lessons=lessons,
                console=console,
                tensorboard=firsts,
                seconds=output.wall_s,
                max_steps=steps,
            )
        )
    return results


def rows(seeds: Sequence[int]) -> list[Row]:
    """The curriculum and the final lesson from scratch, seeds each."""
    config = example(EXAMPLE)
    steps = int(config["behaviors"][BEHAVIOR]["max_steps"])
    taught = train(config, seeds, "curriculum")
    scratch = train(final_lesson(config), seeds, "final lesson")
    finished = [r for r in taught if r.in_final_lesson]
    taught_mean = sum(r.reward for r in finished) / len(finished) if finished else None
    scratch_mean = sum(r.reward for r in scratch) / len(scratch)
    title = f"on {ENV}, 1 × {AREAS}: mean reward at {steps:,} steps"
    summary = "no seed reached the final lesson" if taught_mean is None else (
        f"mean {taught_mean:,.1f} over the {len(finished)} seeds in the final lesson"
    )
    return [
        Row(
            f"PPO with the {PARAMETER} curriculum ({EXAMPLE}) {title}",
            f"{summary}; " + "; ".join(r.text() for r in taught),
            "every seed in the final lesson, above the final lesson from scratch; console and TensorBoard agree",
            bool(taught)
            and len(finished) == len(taught)
            and taught_mean is not None
            and taught_mean > scratch_mean
            and all(r.agree for r in taught)
            and all(r.complete for r in [*taught, *scratch]),
            COMMAND,
        ),
        Row(
            f"PPO on the final lesson from scratch ({PARAMETER} 0.5) {title}",
            f"mean {scratch_mean:,.1f}; " + "; ".join(r.text() for r in scratch),
            "(the comparison)",
            None,
            COMMAND,
        ),
    ]


def main(argv: Sequence[str] | None = None) -> None:
    """Runs the benchmark, prints it and (unless ``--no-readme``) writes it into the README."""
    options = seeded_arguments(__doc__.split("\n\n")[0], None, DEFAULT_SEEDS, argv)
    report(SECTION, rows(options.seeds), write_readme=not options.no_readme)


if __name__ == "__main__":
    main()
