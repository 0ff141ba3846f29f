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
from typing import Sequence

import yaml

PLAYER_LINE = re.compile(r"env actor (\d+) \(pid (\d+)\) on .*: player pid (\d+), port (\d+), log (\S+)")
PLAYER_AGAIN_LINE = re.compile(r"env actor (\d+): its player runs again, player pid (\d+)")
SUMMARY_LINE = re.compile(r"^(\w+)\. Step: (\d+)\. Time Elapsed: ([\d.]+) s\.", re.MULTILINE)

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
        return [int(m.group(2)) for m in SUMMARY_LINE.finditer(self.output)]

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        """Waits until the output matches ``pattern``; AssertionError with the output after ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.output, re.MULTILINE)
            if found:
                return found
            if self.process.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"no {pattern!r} in the output of rayagents-learn:\n{self.output}")

    def interrupt(self) -> None:
        """Ctrl+C in a terminal: SIGINT to the whole process group."""
        os.killpg(self.process.pid, signal.SIGINT)

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            raise AssertionError(f"rayagents-learn did not exit within {timeout} s:\n{self.output}") from None


def start_learn(args: Sequence[str], cwd: Path, name: str = "learn") -> LearnProcess:
    """Starts ``rayagents-learn ARGS`` in ``cwd`` in a new session."""
    output_path = cwd / f"{name}.out"
    handle = open(output_path, "wb")
    env = dict(os.environ, COLUMNS="200", PYTHONUNBUFFERED="1")
    env.pop("RAY_ADDRESS", None)
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


def run_learn(args: Sequence[str], cwd: Path, timeout: float = 240, name: str = "learn") -> tuple[int, str]:
    """Runs ``rayagents-learn ARGS`` to its end; returns the exit code and the output."""
    learn = start_learn(args, cwd, name)
    code = learn.wait(timeout)
    return code, learn.output


def alive(pid: int) -> bool:
    """Whether a process exists (and is not a zombie)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ")[-1][0] != "Z"
    except FileNotFoundError:
        return False
