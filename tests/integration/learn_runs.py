"""Running ``rayagents-learn`` as a user does, in a process of its own (its own session, as a terminal's job)."""

from __future__ import annotations

import copy
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import yaml

LEARNER_LINE = re.compile(r"learner \(pid (\d+)\) on node")
PLAYER_LINE = re.compile(r"env actor (\d+) \(pid (\d+)\) on .*: player pid (\d+), port (\d+), log (\S+)")
PLAYER_AGAIN_LINE = re.compile(r"env actor (\d+): its player runs again, player pid (\d+)")
SUMMARY_LINE = re.compile(r"^([\w-]+)\. Step: (\d+)\. Time Elapsed: ([\d.]+) s\.", re.MULTILINE)
"""A behavior's summary line on the console: behavior name, step, seconds since the start."""

CARTPOLE = "CartPole"
"""The behavior of the simulation host's CartPole scene."""
CARTPOLE_CONFIG = {
    "behaviors": {
        CARTPOLE: {
            "trainer_type": "ppo",
            "hyperparameters": {"batch_size": 128, "buffer_size": 512, "num_epoch": 3, "learning_rate": 0.001},
            "network_settings": {"hidden_units": 32, "num_layers": 2},
            "max_steps": 3000,
            "summary_freq": 1000,
            "checkpoint_interval": 1000,
            "keep_checkpoints": 2,
            "time_horizon": 32,
        }
    }
}
"""A small PPO config for sim:CartPole: a checkpoint and a summary every 1,000 steps, done in seconds."""


def write_cartpole_config(path: Path, **overrides: object) -> Path:
    """Writes :data:`CARTPOLE_CONFIG` with ``overrides`` of the behavior's keys (``max_steps=5000``) to ``path``."""
    config = copy.deepcopy(CARTPOLE_CONFIG)
    config["behaviors"][CARTPOLE].update(overrides)
    path.write_text(yaml.safe_dump(config))
    return path


def cartpole_args(config: Path, results: str | Path, run_id: str, *more: str) -> list[str]:
    """``rayagents-learn`` arguments for sim:CartPole with 2 EnvActors x 4 areas, seed 7, then ``more``."""
    return [str(config), "--env", "sim:CartPole", "--num-envs", "2", "--num-areas", "4", "--seed", "7",
            "--results-dir", str(results), "--run-id", run_id, *more]  # fmt: skip


@dataclass
class LearnProcess:
    """A running ``rayagents-learn``; its output goes to a file so that it can be read while it runs."""

    process: subprocess.Popen[bytes]
    output_path: Path

    @property
    def output(self) -> str:
        """Everything the run printed so far (stdout and stderr)."""
        return self.output_path.read_text(errors="replace")

    def player_pids(self) -> dict[int, int]:
        """Env actor index -> its (latest) player's pid, from the driver's start and player-restart lines."""
        found = [(m.start(), int(m.group(1)), int(m.group(3))) for m in PLAYER_LINE.finditer(self.output)]
        found += [(m.start(), int(m.group(1)), int(m.group(2))) for m in PLAYER_AGAIN_LINE.finditer(self.output)]
        return {index: pid for _, index, pid in sorted(found)}

    def env_actor_pids(self) -> dict[int, int]:
        """Env actor index -> its (latest) process id, from the driver's start lines."""
        return {int(m.group(1)): int(m.group(2)) for m in PLAYER_LINE.finditer(self.output)}

    def summary_steps(self) -> list[int]:
        """The step of every summary line so far, in order."""
        return [int(m.group(2)) for m in SUMMARY_LINE.finditer(self.output)]

    def learner_pids(self) -> list[int]:
        """The process id of every learner the run started (a restarted learner adds one)."""
        return [int(m.group(1)) for m in LEARNER_LINE.finditer(self.output)]

    def started_pids(self) -> list[int]:
        """Every EnvActor, player and learner process the run said it started."""
        pids = [int(m.group(2)) for m in PLAYER_LINE.finditer(self.output)]
        pids += [int(m.group(3)) for m in PLAYER_LINE.finditer(self.output)]
        pids += [int(m.group(2)) for m in PLAYER_AGAIN_LINE.finditer(self.output)]
        return pids + self.learner_pids()

    def left_behind(self, grace: float = 10.0) -> list[int]:
        """The processes of :meth:`started_pids` still alive ``grace`` seconds after the run ended, at most."""
        pids = self.started_pids()
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(alive(pid) for pid in pids):
            time.sleep(0.2)
        return [pid for pid in pids if alive(pid)]

    def wait_for_step(self, step: int, timeout: float) -> int:
        """Waits until a summary line reports ``step`` or more; returns the step it reports.

        Drives a test by the run's own progress rather than by the clock: a fault made after this returns lands
        at or after ``step``, however fast the trainer is."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ended = self.process.poll() is not None  # read the output after this: nothing is missed at the end
            reached = [found for found in self.summary_steps() if found >= step]
            if reached:
                return reached[0]
            if ended:
                break
            time.sleep(0.2)
        raise AssertionError(f"no summary at step {step} or later in the output of rayagents-learn:\n{self.output}")

    def wait_for(self, pattern: str, timeout: float, start: int = 0) -> re.Match[str]:
        """Waits until the output from character ``start`` on matches ``pattern`` (multi-line); AssertionError with
        the output after ``timeout``. ``start=len(learn.output)`` before an action finds only what came after it."""
        compiled = re.compile(pattern, re.MULTILINE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ended = self.process.poll() is not None  # read the output after this: nothing is missed at the end
            found = compiled.search(self.output, start)
            if found:
                return found
            if ended:
                break
            time.sleep(0.2)
        raise AssertionError(f"no {pattern!r} in the output of rayagents-learn:\n{self.output}")

    def interrupt(self) -> None:
        """Ctrl+C in a terminal: SIGINT to the whole process group."""
        os.killpg(self.process.pid, signal.SIGINT)

    def kill_if_running(self) -> None:
        """Kills the run if it still runs (a test that failed half-way): SIGKILL to its whole process group."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self, timeout: float = 60) -> int:
        """Ctrl+C, then waits for the exit; returns the exit code."""
        self.interrupt()
        return self.wait(timeout)

    def wait(self, timeout: float) -> int:
        """Waits for the run to exit and returns its exit code; kills it and fails the test after ``timeout``."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            raise AssertionError(f"rayagents-learn did not exit within {timeout} s:\n{self.output}") from None


def start_learn(
    args: Sequence[str], cwd: Path, name: str = "learn", extra_env: Mapping[str, str] | None = None
) -> LearnProcess:
    """Starts ``rayagents-learn ARGS`` in ``cwd`` in a new session, with ``extra_env`` over this environment."""
    output_path = cwd / f"{name}.out"
    handle = open(output_path, "wb")
    env = dict(os.environ, COLUMNS="200", PYTHONUNBUFFERED="1")
    env.pop("RAY_ADDRESS", None)  # a run names its cluster itself (extra_env may)
    env.update(extra_env or {})
    process = subprocess.Popen(
        [sys.executable, "-m", "rayagents.cluster.cli", *args],
        cwd=cwd,
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=env,
    )
    handle.close()
    return LearnProcess(process, output_path)


def run_learn(
    args: Sequence[str],
    cwd: Path,
    timeout: float = 240,
    name: str = "learn",
    extra_env: Mapping[str, str] | None = None,
) -> tuple[int, str]:
    """Runs ``rayagents-learn ARGS`` to its end (``extra_env`` over this environment); returns the exit code and the
    output."""
    learn = start_learn(args, cwd, name, extra_env)
    code = learn.wait(timeout)
    return code, learn.output


def alive(pid: int) -> bool:
    """Whether a process exists (and is not a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ")[-1][0] != "Z"
    except FileNotFoundError:
        return False
