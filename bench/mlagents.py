"""Against ``mlagents-learn``: wall time to 40,000 PPO steps, ML-Agents' own trainer against ``rayagents-learn``.

Both trainers train the same player (the simulation host's CartPole, built once with
:func:`rayagents.sims.build.write_build`, as ``rayagents-sim build CartPole <folder>`` does) with the same YAML
(the example ``configs/ppo/CartPole.yaml`` with ``max_steps`` :data:`MAX_STEPS`, nothing else changed) and the
same flags::

    <trainer> <yaml> --env <build>/CartPole --num-envs 2 --num-areas 16 --no-graphics \\
        --run-id <fresh> --results-dir <fresh> --base-port <free>

A run is timed from process start to exit, so start-up counts: ``mlagents-learn``'s environment workers and
players, ``rayagents-learn``'s local Ray cluster (it starts one, as a run without ``--address`` does), its
actors and players. The two trainers take turns (:data:`DEFAULT_REPEATS` runs each, ``--repeats``); the rows
give each trainer's median and the ratio of the medians, ``mlagents-learn`` ÷ ``rayagents-learn`` (target
≥ :data:`RATIO_TARGET`). The steps a run reached are its final checkpoint's (``run_logs/training_status.json``,
which both trainers write), or else its last summary line's. ``--base-port`` (the same free port for both) keeps
``mlagents-learn``'s players off ports that another run on the machine holds; ``rayagents-learn`` accepts it and
gives each player a free port of its own.

``mlagents-learn`` is never a dependency of this project: install ML-Agents 1.1.0 into a scratch environment
outside the repository, with a Python 3.10 interpreter (grpcio 1.48.2, which it pins, has no wheels for 3.11)::

    python3.10 -m venv mlagents-venv
    mlagents-venv/bin/pip install torch==2.2.1
    mlagents-venv/bin/pip install --ignore-requires-python mlagents==1.1.0
    python -m bench.mlagents --mlagents-learn mlagents-venv/bin/mlagents-learn

- ``mlagents==1.1.0`` declares ``Requires-Python >=3.10.1,<=3.10.12``: with a later 3.10 patch release pip
  needs ``--ignore-requires-python`` (drop it on 3.10.1–3.10.12). pip then installs its pins: grpcio ≤ 1.48.2,
  protobuf < 3.21, numpy < 1.24, onnx 1.15.0, cattrs < 1.7, mlagents-envs 1.1.0.
- It asks for torch ≥ 2.1.1. The package index's Linux torch is a CUDA build (about 4 GB with its ``nvidia-*``
  packages) that trains on the CPU as well; where PyTorch's own index is reachable,
  ``pip install torch==2.2.1 --index-url https://download.pytorch.org/whl/cpu`` is the small CPU-only build.

The benchmark finds ``mlagents-learn`` through ``--mlagents-learn PATH``, else the environment variable
:data:`MLAGENTS_LEARN_ENV`, else ``mlagents-learn`` on ``PATH``; without one, its row says "not measured" and
nothing runs (``python -m bench`` carries on).

    python -m bench.mlagents [--mlagents-learn PATH] [--repeats N] [--no-readme]
    python -m bench              # every benchmark, and rewrites the README tables
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

import rayagents
from bench.table import Row, report
from bench.training import load_example, parse_summary_lines
from rayagents.sims.build import write_build

COMMAND = "python -m bench.mlagents"
SECTION = "Against mlagents-learn"
"""The README heading (``### Against mlagents-learn``) whose table this benchmark rewrites."""

SCENE = "CartPole"
"""The simulation host's scene both trainers train, and its example config."""
BEHAVIOR = "CartPole"
"""The behavior of :data:`SCENE` whose steps are counted."""
MAX_STEPS = 40_000
"""The YAML's ``max_steps``: both runs end there by themselves."""
NUM_ENVS = 2
"""``--num-envs``: players."""
NUM_AREAS = 16
"""``--num-areas``: areas per player."""
RATIO_TARGET = 2.5
"""``mlagents-learn`` wall time ÷ ``rayagents-learn`` wall time, at least."""
DEFAULT_REPEATS = 3
"""Runs of each trainer when ``--repeats`` is not given; the rows show the medians."""
DEFAULT_TIMEOUT_S = 900.0
"""How long one run may take before it is killed and the benchmark fails (``--timeout``)."""
MLAGENTS_LEARN_ENV = "MLAGENTS_LEARN"
"""The environment variable that names the ``mlagents-learn`` executable when ``--mlagents-learn`` is not given."""
NOT_INSTALLED = "not measured: mlagents-learn not installed (see bench/mlagents.py)"
"""The row's value when no ``mlagents-learn`` is found."""
STRAY_GRACE_S = 10.0
"""How long a run's leftover processes (players, Ray's) may take to exit by themselves after the run did."""

_LOG_LEVEL = re.compile(r"^\[(?:DEBUG|INFO|WARNING|ERROR|CRITICAL)\]\s*")
"""The level prefix ``mlagents-learn`` puts before its log lines ("[INFO] CartPole. Step: ...")."""


# ---- finding the trainers ------------------------------------------------------------------------------------------


def find_mlagents_learn(
    flag: str | None,
    environ: Mapping[str, str],
    which: Callable[[str], str | None] = shutil.which,
) -> Path | None:
    """The ``mlagents-learn`` executable: ``flag`` (``--mlagents-learn``), else ``environ[MLAGENTS_LEARN]``,
    else ``mlagents-learn`` on ``PATH``; None when none is given and none is on ``PATH``.

    A value given by the flag or the variable is a path or a command name on ``PATH``; one that names no
    executable raises ValueError (naming the flag or variable), since the user asked for it."""
    for source, value in (("--mlagents-learn", flag), (MLAGENTS_LEARN_ENV, environ.get(MLAGENTS_LEARN_ENV))):
        if value is None or not value.strip():
            continue
        found = which(value)
        if found is None:
            raise ValueError(
                f"{source} is {value!r}, which is not an executable file or a command on PATH; give the "
                f"mlagents-learn of an environment with mlagents 1.1.0 (see bench/mlagents.py for installing one)"
            )
        return Path(found)
    found = which("mlagents-learn")
    return None if found is None else Path(found)


def rayagents_learn_command(interpreter: Path = Path(sys.executable)) -> list[str]:
    """The command that starts ``rayagents-learn``: the entry point beside ``interpreter`` (this environment's),
    or ``<interpreter> -m rayagents.cluster.cli`` where there is none."""
    script = interpreter.parent / "rayagents-learn"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [str(interpreter), "-m", "rayagents.cluster.cli"]


def trainer_arguments(config: Path, env: Path, run_id: str, results_dir: Path, base_port: int) -> list[str]:
    """The arguments both trainers get after their command: the YAML, then the flags of the benchmark."""
    return [
        str(config),
        "--env", str(env), "--num-envs", str(NUM_ENVS), "--num-areas", str(NUM_AREAS), "--no-graphics",
        "--run-id", run_id, "--results-dir", str(results_dir), "--base-port", str(base_port),
    ]  # fmt: skip


def free_base_port(count: int, attempts: int = 50) -> int:
    """A port P such that P, P + 1, … P + count − 1 are free on this machine now (``mlagents-learn``'s players
    listen on ``--base-port`` + worker index). Raises RuntimeError after ``attempts`` tries."""
    for _ in range(attempts):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", 0))
            base = int(probe.getsockname()[1])
        if base + count <= 65535 and all(_port_is_free(base + offset) for offset in range(count)):
            return base
    raise RuntimeError(f"found no {count} free consecutive ports in {attempts} tries; is the machine out of ports?")


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


# ---- the YAML ------------------------------------------------------------------------------------------------------


def benchmark_config(example: Mapping[str, Any], max_steps: int = MAX_STEPS) -> dict[str, Any]:
    """``example`` (a copy) with every behavior's ``max_steps`` set to ``max_steps``; nothing else changes."""
    config: dict[str, Any] = yaml.safe_load(yaml.safe_dump(dict(example)))
    behaviors = config.get("behaviors")
    if not isinstance(behaviors, dict) or not behaviors:
        raise ValueError("the example config has no behaviors to set max_steps in")
    for name, settings in behaviors.items():
        if not isinstance(settings, dict):
            raise ValueError(f"behavior {name!r} of the example config is not a mapping")
        settings["max_steps"] = max_steps
    return config


# ---- what a run printed and wrote ----------------------------------------------------------------------------------


def summary_steps(lines: Iterable[str], behavior: str) -> int | None:
    """The highest step of ``behavior``'s summary lines, with or without ``mlagents-learn``'s "[INFO] " prefix;
    None when there is none."""
    points = parse_summary_lines((_LOG_LEVEL.sub("", line.strip()) for line in lines), behavior)
    return max((step for step, _ in points), default=None)


@dataclass(frozen=True)
class TrainingStatus:
    """What a run's ``run_logs/training_status.json`` says."""

    steps: int | None
    """The steps of the behavior's final checkpoint; None when it has none."""
    trainer_version: str | None
    """``metadata.mlagents_version``: the ML-Agents version that wrote it (or whose format it follows)."""
    torch_version: str | None
    """``metadata.torch_version``."""


def read_training_status(path: Path, behavior: str) -> TrainingStatus:
    """The final checkpoint's steps of ``behavior`` and the metadata versions in ``path``; every field None for
    a missing or unreadable file."""
    try:
        status = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return TrainingStatus(None, None, None)
    if not isinstance(status, dict):
        return TrainingStatus(None, None, None)
    metadata = _mapping(status.get("metadata"))
    steps = _mapping(_mapping(status.get(behavior)).get("final_checkpoint")).get("steps")
    return TrainingStatus(
        steps=int(steps) if isinstance(steps, (int, float)) and not isinstance(steps, bool) else None,
        trainer_version=_text(metadata.get("mlagents_version")),
        torch_version=_text(metadata.get("torch_version")),
    )


def _mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


# ---- leftover processes --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessInfo:
    """One process of the machine, as far as the benchmark looks at it."""

    ppid: int
    """Its parent's id."""
    pgid: int
    """Its process group."""
    cmdline: str
    """Its command line, arguments joined by spaces."""


def process_table(proc: Path = Path("/proc")) -> dict[int, ProcessInfo]:
    """Every process readable under ``proc`` (Linux's ``/proc``) by id; empty where there is no such folder."""
    table: dict[int, ProcessInfo] = {}
    if not proc.is_dir():
        return table
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue  # exited meanwhile, or not ours to read
        fields = stat[stat.rfind(")") + 2 :].split()  # after "pid (comm) ": state ppid pgrp ...
        if len(fields) >= 3:
            table[int(entry.name)] = ProcessInfo(ppid=int(fields[1]), pgid=int(fields[2]), cmdline=cmdline)
    return table


def run_processes(table: Mapping[int, ProcessInfo], group: int, marker: str) -> list[int]:
    """The processes a run left: those of process group ``group`` (the run's own, started in a session of its
    own), those whose command line holds ``marker`` (the run's temporary folder: its players' log files lie
    there), and every descendant of either; sorted."""
    found = {pid for pid, info in table.items() if info.pgid == group or marker in info.cmdline}
    grew = True
    while grew:
        children = {pid for pid, info in table.items() if info.ppid in found} - found
        found |= children
        grew = bool(children)
    return sorted(found)


def _clean_up(group: int, marker: str, trainer: str) -> None:
    """Waits up to STRAY_GRACE_S for the run's leftover processes to exit, then kills those still there and
    says so on stderr."""
    deadline = time.monotonic() + STRAY_GRACE_S
    left = run_processes(process_table(), group, marker)
    while left and time.monotonic() < deadline:
        time.sleep(0.5)
        left = run_processes(process_table(), group, marker)
    if not left:
        return
    table = process_table()
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            continue
        command = table[pid].cmdline[:120] if pid in table else "?"
        print(f"  {trainer} left process {pid} ({command}) after it exited; killed it", file=sys.stderr)


# ---- the runs ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimedRun:
    """One timed training run."""

    trainer: str
    """``mlagents-learn`` or ``rayagents-learn``."""
    seconds: float
    """Wall time from process start to exit."""
    steps: int
    """The steps it reached (final checkpoint, else last summary line)."""
    trainer_version: str | None
    """The ML-Agents version in its training status (for ``rayagents-learn``, the format it follows)."""
    torch_version: str | None
    """The torch version in its training status."""


def time_run(
    trainer: str, command: Sequence[str], folder: Path, run_id: str, timeout_s: float, max_steps: int = MAX_STEPS
) -> TimedRun:
    """Runs ``command`` (a trainer with its arguments, results under ``folder/results/run_id``) to its end,
    timing it from start to exit; its output goes to ``folder/<run_id>.log``. Raises RuntimeError (with the end
    of that log) when it fails, runs past ``timeout_s`` or stops short of ``max_steps``."""
    log_path = folder / f"{run_id}.log"
    environ = {key: value for key, value in os.environ.items() if key != "RAY_ADDRESS"}  # a local cluster of its own
    returncode: int | None = None
    seconds = float("nan")
    with open(log_path, "w", encoding="utf-8") as log:
        start = time.perf_counter()
        process = subprocess.Popen(
            list(command), stdout=log, stderr=subprocess.STDOUT, env=environ, start_new_session=True
        )
        try:
            returncode = process.wait(timeout=timeout_s)
            seconds = time.perf_counter() - start
        except subprocess.TimeoutExpired:
            pass  # returncode None: killed below
        finally:
            if process.poll() is None:  # past the timeout, or this benchmark interrupted: the run goes too
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            _clean_up(process.pid, str(folder), trainer)
    lines = log_path.read_text(encoding="utf-8", errors="replace").splitlines()
    tail = "\n".join(f"    {line}" for line in lines[-20:])
    shown = " ".join(command)
    if returncode is None:
        raise RuntimeError(
            f"{trainer} ran past {timeout_s:g} s (--timeout) and was killed: {shown}\n{tail}\n"
            f"give it more time with --timeout, or see what it waits for in the log above"
        )
    if returncode != 0:
        raise RuntimeError(f"{trainer} exited with {returncode}: {shown}\n{tail}")
    status = read_training_status(folder / "results" / run_id / "run_logs" / "training_status.json", BEHAVIOR)
    steps = status.steps if status.steps is not None else summary_steps(lines, BEHAVIOR)
    if steps is None or steps < max_steps:
        raise RuntimeError(
            f"{trainer} exited after {steps if steps is not None else 'no'} steps of {BEHAVIOR}, short of "
            f"max_steps {max_steps:,}: {shown}\n{tail}"
        )
    return TimedRun(trainer, seconds, steps, status.trainer_version, status.torch_version)


def measure(mlagents_learn: Path, repeats: int, timeout_s: float) -> tuple[list[TimedRun], list[TimedRun]]:
    """Builds the player, writes the YAML and runs ``mlagents-learn`` and ``rayagents-learn`` in turns,
    ``repeats`` times each; returns their runs."""
    mlagents_runs: list[TimedRun] = []
    rayagents_runs: list[TimedRun] = []
    with tempfile.TemporaryDirectory(prefix="bench-mlagents-") as tmp:
        folder = Path(tmp)
        executable = write_build(SCENE, folder / "build")
        env = executable.with_suffix("")  # <folder>/CartPole: the name mlagents-learn takes, as for a Unity build
        config = folder / "config.yaml"
        config.write_text(yaml.safe_dump(benchmark_config(load_example(SCENE)), sort_keys=False))
        trainers = (
            ("mlagents-learn", [str(mlagents_learn)], mlagents_runs),
            ("rayagents-learn", rayagents_learn_command(), rayagents_runs),
        )
        for index in range(repeats):
            for trainer, command, runs in trainers:
                run_id = f"{trainer.split('-')[0]}-{index}"
                arguments = trainer_arguments(config, env, run_id, folder / "results", free_base_port(NUM_ENVS + 1))
                run = time_run(trainer, [*command, *arguments], folder, run_id, timeout_s)
                print(
                    f"  {trainer} run {index + 1}/{repeats}: {run.seconds:.1f} s, {run.steps:,} steps "
                    f"(load average {_load_average()})",
                    file=sys.stderr,
                )
                runs.append(run)
    return mlagents_runs, rayagents_runs


def _load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


# ---- the rows ------------------------------------------------------------------------------------------------------


def command_line(repeats: int) -> str:
    """The command shown in the rows: :data:`COMMAND` with ``--repeats`` when it is not the default."""
    return COMMAND if repeats == DEFAULT_REPEATS else f"{COMMAND} --repeats {repeats}"


def not_installed_rows(command: str = COMMAND) -> list[Row]:
    """The row when no ``mlagents-learn`` was found: nothing measured."""
    return [Row(_ratio_benchmark(), NOT_INSTALLED, f"≥ {RATIO_TARGET}×", None, command)]


def _ratio_benchmark() -> str:
    return (
        f"wall time to {MAX_STEPS:,} PPO steps, `mlagents-learn` ÷ `rayagents-learn` "
        f"({SCENE}, {NUM_ENVS} × {NUM_AREAS} areas)"
    )


def _describe(runs: Sequence[TimedRun]) -> str:
    seconds = [run.seconds for run in runs]
    steps = sorted({run.steps for run in runs})
    reached = f"{steps[0]:,} steps" if len(steps) == 1 else f"{steps[0]:,}–{steps[-1]:,} steps"
    value = f"{statistics.median(seconds):.1f} s ({reached}"
    if len(runs) > 1:
        value += f"; median of {len(runs)} runs, {min(seconds):.1f}–{max(seconds):.1f} s"
    return value + ")"


def comparison_rows(
    mlagents_runs: Sequence[TimedRun],
    rayagents_runs: Sequence[TimedRun],
    command: str = COMMAND,
    load: tuple[float, float] | None = None,
) -> list[Row]:
    """README rows: each trainer's median wall time and steps, and the ratio of the medians against the target;
    ``load`` (the machine's 1-minute load average before and after the runs) is shown beside the ratio."""
    if not mlagents_runs or not rayagents_runs:
        raise ValueError("no runs to compare: each trainer needs at least one")
    ml_seconds = statistics.median(run.seconds for run in mlagents_runs)
    ra_seconds = statistics.median(run.seconds for run in rayagents_runs)
    if ra_seconds <= 0.0:
        raise ValueError(f"rayagents-learn's median wall time is {ra_seconds} s; nothing to divide by")
    ratio = ml_seconds / ra_seconds
    ml_version = mlagents_runs[0].trainer_version or "?"
    layout = f"PPO {SCENE} to {MAX_STEPS:,} steps, {NUM_ENVS} players × {NUM_AREAS} areas, start-up included"
    return [
        Row(
            f"`mlagents-learn` {ml_version} ({_torch(mlagents_runs)}), {layout}",
            _describe(mlagents_runs), "—", None, command,
        ),
        Row(
            f"`rayagents-learn` {rayagents.__version__} ({_torch(rayagents_runs)}), same player, YAML and flags, "
            f"its local Ray cluster's start-up included",
            _describe(rayagents_runs), "—", None, command,
        ),
        Row(_ratio_benchmark(), _ratio_value(ratio, load), f"≥ {RATIO_TARGET}×", ratio >= RATIO_TARGET, command),
    ]  # fmt: skip


def _ratio_value(ratio: float, load: tuple[float, float] | None) -> str:
    if load is None:
        return f"{ratio:.2f}×"
    return f"{ratio:.2f}× (load average {load[0]:.1f} before the runs, {load[1]:.1f} after)"


def _torch(runs: Sequence[TimedRun]) -> str:
    version = runs[0].torch_version
    return "PyTorch ?" if version is None else f"PyTorch {version}"


def run(
    mlagents_learn: Path | None, repeats: int = DEFAULT_REPEATS, timeout_s: float = DEFAULT_TIMEOUT_S
) -> list[Row]:
    """The comparison as README rows; the "not measured" row when ``mlagents_learn`` is None."""
    command = command_line(repeats)
    if mlagents_learn is None:
        print(f"  {NOT_INSTALLED}", file=sys.stderr)
        return not_installed_rows(command)
    print(f"  mlagents-learn: {mlagents_learn}; load average before: {_load_average()}", file=sys.stderr)
    before = os.getloadavg()[0]
    mlagents_runs, rayagents_runs = measure(mlagents_learn, repeats, timeout_s)
    load = (before, os.getloadavg()[0])
    version = mlagents_runs[0].trainer_version
    if version != "1.1.0":
        print(f"  warning: {mlagents_learn} is ML-Agents {version}, not 1.1.0 (the version compared)", file=sys.stderr)
    return comparison_rows(mlagents_runs, rayagents_runs, command, load)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m bench.mlagents``."""
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--mlagents-learn",
        default=None,
        metavar="PATH",
        help=f"the mlagents-learn to compare with (default: ${MLAGENTS_LEARN_ENV}, else mlagents-learn on PATH)",
    )
    parser.add_argument(
        "--repeats", type=_positive_int, default=DEFAULT_REPEATS, help="runs of each trainer; the medians are shown"
    )
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds one run may take before it is killed"
    )
    parser.add_argument("--no-readme", action="store_true", help="print only; leave README.md as it is")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Runs the comparison, prints it and (unless ``--no-readme``) writes it into the README."""
    parser = build_parser()
    options = parser.parse_args(argv)
    try:
        mlagents_learn = find_mlagents_learn(options.mlagents_learn, os.environ)
    except ValueError as error:
        parser.error(str(error))
    report(SECTION, run(mlagents_learn, options.repeats, options.timeout), write_readme=not options.no_readme)


if __name__ == "__main__":
    main()
