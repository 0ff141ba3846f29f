"""One ``rayagents-learn`` run driven by a benchmark: started as a subprocess, its summary lines read as they come,
stopped with Ctrl+C (SIGINT: the run saves its model and exits) when the benchmark has seen enough."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from rayagents.configs.examples import all_example_configs

SUMMARY = re.compile(
    r"^(?P<behavior>\S+)\. Step: (?P<step>\d+)\. Time Elapsed: (?P<seconds>\d+(?:\.\d+)?) s\. Mean Reward: (?P<reward>-?\d+(?:\.\d+)?)"
    r"(?:\. Mean Group Reward: (?P<group>-?\d+(?:\.\d+)?))?"
)
"""A summary line with a mean reward (and, for agents in groups, a mean group reward)."""


@dataclass(frozen=True)
class Summary:
    """One summary line of a run."""

    step: int
    seconds: float
    """Since the run started (Ray's start included)."""
    reward: float
    """The mean episode reward of the summary period."""
    group_reward: float | None = None
    """The mean group reward of the summary period (``Environment/Group Cumulative Reward``); None without groups."""


@dataclass(frozen=True)
class RunOutput:
    """What a run printed: its summaries, in order, and its wall time including start-up."""

    summaries: tuple[Summary, ...]
    wall_s: float
    lines: tuple[str, ...] = ()
    """Every line the run printed, in order."""
    line_seconds: tuple[float, ...] = ()
    """When each of ``lines`` came: seconds since the command started."""

    def reward_at(self, step: int) -> Summary | None:
        """The first summary at or after ``step``."""
        return next((s for s in self.summaries if s.step >= step), None)

    def first_reaching(self, reward: float) -> Summary | None:
        """The first summary whose mean reward is at least ``reward``."""
        return next((s for s in self.summaries if s.reward >= reward), None)


def learn(
    arguments: Sequence[str],
    behavior: str,
    stop: Callable[[Summary], bool],
    timeout_s: float,
    label: str,
    env: Mapping[str, str | None] | None = None,
    on_line: Callable[[str, Sequence[str]], None] | None = None,
    check: bool = False,
) -> RunOutput:
    """Runs ``rayagents-learn ARGUMENTS`` until a summary of ``behavior`` satisfies ``stop`` (then SIGINT), the run
    ends, or ``timeout_s`` passes (then it is killed). Each summary is echoed to stderr after ``label``. A run
    that prints no summary is a RuntimeError showing its last lines.

    ``env`` sets variables of the run's environment (a None value removes one); ``on_line(line, lines so far)``
    sees each line as it comes (the lines so far end with it); with ``check``, a run that exits with an error is a
    RuntimeError too."""
    command = [sys.executable, "-m", "rayagents.cluster.cli", *arguments]
    summaries: list[Summary] = []
    lines: list[str] = []
    line_seconds: list[float] = []
    tail: list[str] = []
    started = time.monotonic()
    stopping = False
    environment = dict(os.environ, PYTHONUNBUFFERED="1")  # each summary line as it is printed
    for name, value in (env or {}).items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environment
    ) as process:
        assert process.stdout is not None
        try:
            for line in process.stdout:
                tail = (tail + [line])[-30:]
                lines.append(line.rstrip("\n"))
                line_seconds.append(time.monotonic() - started)
                if on_line is not None:
                    on_line(line, lines)
                match = SUMMARY.match(line.strip())
                if match is not None and match["behavior"] == behavior:
                    group = None if match["group"] is None else float(match["group"])
                    summaries.append(
                        Summary(int(match["step"]), float(match["seconds"]), float(match["reward"]), group)
                    )
                    print(f"    {label}: {line.strip()}", file=sys.stderr, flush=True)
                    if not stopping and stop(summaries[-1]):
                        process.send_signal(signal.SIGINT)
                        stopping = True
                if time.monotonic() - started > timeout_s:
                    process.kill()
        except BaseException:
            process.kill()
            raise
        code = process.wait()
    if check and code != 0:
        sys.stderr.write("".join(tail))
        raise RuntimeError(f"the run {label} exited with {code} (its last lines are above)")
    if not summaries:
        sys.stderr.write("".join(tail))
        raise RuntimeError(f"the run {label} printed no summary with a reward (its last lines are above)")
    return RunOutput(tuple(summaries), time.monotonic() - started, tuple(lines), tuple(line_seconds))


def layout_arguments(env: str, envs: int, areas: int, seed: int, run_id: str, folder: Path) -> list[str]:
    """The command-line arguments of a run of ``env`` at ``envs`` EnvActors × ``areas`` areas."""
    return [
        "--env", env, "--num-envs", str(envs), "--num-areas", str(areas), "--seed", str(seed),
        "--run-id", run_id, "--results-dir", str(folder),
    ]  # fmt: skip


def example(path: str) -> dict[str, Any]:
    """The example config at ``path`` under ``configs/`` (``ppo/Gather.yaml``) as a dict."""
    return yaml.safe_load(all_example_configs()[path].read_text())


def write_config(config: Mapping[str, Any], folder: Path, name: str) -> Path:
    """Writes ``config`` to ``folder/<name>.yaml``; returns the path."""
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(dict(config), sort_keys=False))
    return path
