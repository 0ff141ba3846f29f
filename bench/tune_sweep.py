"""A hyperparameter sweep of the CartPole example with ``rayagents tune``: its wall time and the best trial's steps to
solve.

``python -m bench.tune_sweep``: 8 trials of ``configs/ppo/CartPole.yaml`` on ``sim:CartPole`` (1 EnvActor × 8 areas
each, run seed 0), drawing ``learning_rate`` from loguniform(3e-4, 3e-3) and ``batch_size`` from {64, 128, 256}
(draw seed ``--seeds``, 0 by default), ASHA stopping the trailing trials from 10,000 steps on (the sweep's
defaults: a tenth of max_steps, reduction factor 2). On a local Ray cluster sized for one trial at a time (a trial
reserves 2 CPUs: its learner and its EnvActor).

Reported: the sweep's wall time (Ray's start included), the trials that solved CartPole (a summary's mean reward of
475 or more, CartPole-v1's "solved", as ``bench.learning`` reads it) and the best trial's steps to solve: the best
trial is the one the sweep names (highest mean reward, then fewest steps to it).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bench.table import Row, report, seeded_arguments
from rayagents.cluster.sweep_summary import TrialRecord, best_trial
from rayagents.configs.examples import all_example_configs

SECTION = "Hyperparameter sweep on CartPole"
"""The README section this benchmark writes."""
COMMAND = "python -m bench.tune_sweep"
SOLVED_REWARD = 475.0
"""CartPole-v1's "solved" mean return (as bench.learning)."""
TRIALS = 8
TIMEOUT_S = 40 * 60.0
SEARCHES = (
    "behaviors.CartPole.hyperparameters.learning_rate=loguniform(3e-4, 3e-3)",
    "behaviors.CartPole.hyperparameters.batch_size=choice([64, 128, 256])",
)


def sweep_command(config: Path, results: Path, search_seed: int) -> list[str]:
    """The ``rayagents tune`` command of the benchmark."""
    searches = [argument for search in SEARCHES for argument in ("--search", search)]
    return [
        sys.executable, "-m", "rayagents.cluster.jobs", "tune", str(config), *searches,
        "--num-samples", str(TRIALS), "--search-seed", str(search_seed),
        "--run-id", "cartpole-sweep", "--results-dir", str(results),
        "--", "--env", "sim:CartPole", "--num-envs", "1", "--num-areas", "8", "--seed", "0",
    ]  # fmt: skip


def read_trials(path: Path) -> list[TrialRecord]:
    """The trials of the sweep's ``trials.json``."""
    return [
        TrialRecord(
            index=int(entry["index"]),
            run_id=str(entry["run_id"]),
            values=dict(entry["values"]),
            history=tuple((int(step), float(reward)) for step, reward in entry["history"]),
            error=entry["error"],
        )
        for entry in json.loads(path.read_text())
    ]


def run(search_seed: int) -> list[Row]:
    """Runs the sweep once; returns the README rows."""
    config = Path(str(all_example_configs()["ppo/CartPole.yaml"]))
    with tempfile.TemporaryDirectory(prefix="bench-tune-") as folder:
        results = Path(folder) / "results"
        command = sweep_command(config, results, search_seed)
        print("    " + " ".join(command), file=sys.stderr, flush=True)
        started = time.monotonic()
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S)
        wall_s = time.monotonic() - started
        if done.returncode != 0:
            sys.stderr.write((done.stdout + done.stderr)[-5000:])
            raise RuntimeError(f"the sweep exited with {done.returncode} (its last lines are above)")
        print(done.stdout[-3000:], file=sys.stderr)
        records = read_trials(results / "cartpole-sweep" / "trials.json")
    best = best_trial(records)
    solved = [r for r in records if r.first_reaching(SOLVED_REWARD) is not None]
    stopped = [r for r in records if r.last_step < 100_000 and r.error is None]
    best_solve = None if best is None else best.first_reaching(SOLVED_REWARD)
    values = {} if best is None else best.values
    shown = ", ".join(f"{key.rsplit('.', 1)[-1]} {value:.4g}" for key, value in values.items())
    command = f"{COMMAND} --seeds {search_seed}"
    return [
        Row(f"{TRIALS}-trial sweep of the CartPole example, one trial at a time: wall time", f"{wall_s / 60:.1f} min "
            f"({len(stopped)} trials stopped early by ASHA)", "—", None, command),
        Row("trials that reached a mean reward of 475", f"{len(solved)} of {len(records)}", "—", None, command),
        Row(f"best trial ({shown}): steps to a mean reward of 475",
            "not solved" if best_solve is None else f"{best_solve:,}", "—", None, command),
    ]  # fmt: skip


def main(argv: Sequence[str] | None = None) -> None:
    """Runs the sweep with the first of ``--seeds`` as its draw seed; prints (and writes into the README) the rows."""
    options = seeded_arguments(__doc__ or "", None, (0,), argv)
    report(SECTION, run(options.seeds[0]), write_readme=not options.no_readme)


if __name__ == "__main__":
    main()
