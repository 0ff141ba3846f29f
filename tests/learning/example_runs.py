"""An example config trained through ``rayagents-learn`` as a user runs it, for the learning tests: a real local Ray
cluster, one EnvActor with a multi-area player of the simulation host, the learner, in a process of its own."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rayagents.configs.examples import all_example_configs


class SecondSeedWarning(UserWarning):
    """The first seed's run missed its figure and a second seed was trained: learning may be getting worse."""


@dataclass(frozen=True)
class ExampleRun:
    """What one training run printed and wrote."""

    summaries: list[tuple[int, float]]
    """(step, mean reward) of each summary of the behavior, in order."""
    group_rewards: list[tuple[int, float]]
    """(step, mean group reward) of each summary that has one (agents in groups), in order."""
    results: Path
    """The run's results folder (``<results-dir>/<run-id>``)."""


def train_example(
    folder: Path,
    example: str,
    env: str,
    *,
    max_steps: int,
    seed: int,
    num_areas: int = 8,
    timeout_s: float = 480,
    edit: Callable[[dict[str, Any]], None] | None = None,
    stop_at_reward: float | None = None,
    stop_at_group_reward: float | None = None,
) -> ExampleRun:
    """Trains the example config ``example`` (e.g. ``ppo/Gather.yaml``, one behavior) on ``env`` at 1 EnvActor ×
    ``num_areas`` with ``max_steps`` cut as given (and ``edit`` applied to the behavior's settings) in ``folder``; a
    failed run fails the test with its output.

    With ``stop_at_reward`` (``stop_at_group_reward``) the run is stopped as a user stops it (Ctrl+C: the model is
    saved and exported) at the first summary whose mean reward (mean group reward) reaches it: a test whose figure
    is "reached within max_steps" needs no more. Otherwise the run must reach ``max_steps``."""
    config = yaml.safe_load(all_example_configs()[example].read_text())
    (behavior,) = config["behaviors"]
    config["behaviors"][behavior]["max_steps"] = max_steps
    if edit is not None:
        edit(config["behaviors"][behavior])
    path = folder / f"seed{seed}.yaml"
    path.write_text(yaml.safe_dump(config))
    run_id = f"seed{seed}"
    summary = re.compile(
        rf"^{re.escape(behavior)}\. Step: (\d+)\. Time Elapsed: [\d.]+ s\. Mean Reward: (-?\d+(?:\.\d+)?)", re.MULTILINE
    )
    group = re.compile(rf"^{re.escape(behavior)}\. Step: (\d+)\. .*Mean Group Reward: (-?\d+(?:\.\d+)?)", re.MULTILINE)
    process = subprocess.Popen(
        [sys.executable, "-m", "rayagents.cluster.cli", str(path), "--env", env, "--num-envs", "1",
         "--num-areas", str(num_areas), "--seed", str(seed), "--results-dir", str(folder), "--run-id", run_id],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ, PYTHONUNBUFFERED="1"),
        start_new_session=True,  # Ctrl+C reaches the run's own processes only
    )  # fmt: skip
    lines: list[str] = []
    stopped = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            reached = [
                float(found.group(2)) >= bar
                for pattern, bar in ((summary, stop_at_reward), (group, stop_at_group_reward))
                if bar is not None and (found := pattern.match(line)) is not None
            ]
            if any(reached) and not stopped.is_set():
                stopped.set()
                os.killpg(process.pid, signal.SIGINT)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        returncode = process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise AssertionError(f"the run did not end within {timeout_s:.0f} s:\n{''.join(lines)}") from None
    reader.join(timeout=10)
    if process.stdout is not None and not reader.is_alive():  # a reader still at it keeps the pipe open
        process.stdout.close()
    output = "".join(lines)
    assert returncode == 0, output
    summaries = [(int(step), float(reward)) for step, reward in summary.findall(output)]
    assert summaries, output
    assert stopped.is_set() or summaries[-1][0] == max_steps, output
    group_rewards = [(int(step), float(reward)) for step, reward in group.findall(output)]
    return ExampleRun(summaries, group_rewards, folder / run_id)


def with_second_seed(check: Callable[[int], str | None], seeds: tuple[int, int] = (0, 1)) -> None:
    """Runs ``check(seed)`` (a shortfall, or None when the figure is met) for the first seed and, when it falls
    short, warns (:class:`SecondSeedWarning`, shown in CI's warnings summary) and runs the second: a seed does not
    fix a distributed run, and two shortfalls in a row mean learning broke."""
    first = check(seeds[0])
    if first is None:
        return
    warnings.warn(f"seed {seeds[0]} fell short, another seed is trained: {first}", SecondSeedWarning)
    second = check(seeds[1])
    assert second is None, f"seed {seeds[0]}: {first}\nseed {seeds[1]}: {second}"
