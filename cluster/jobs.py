"""``rayagents submit|status|logs|stop``: a training run as a Ray job, over the Ray Jobs API.

``rayagents submit --address http://HEAD:8265 [--working-dir DIR] -- CONFIG.yaml --env ... [rayagents-learn
options]`` submits ``rayagents-learn`` with those options as the job's entrypoint; the working directory (with
the config in it) travels in the job's runtime environment, so paths in the options are relative to it. It prints
the job id, then follows the job's log until the job ends (``--no-wait`` returns at once) and exits 0 only if the
job succeeded. ``rayagents stop JOB`` asks Ray to stop the job: the run gets SIGTERM, saves its model and stops
its players, as on Ctrl+C; Ray waits up to :data:`STOP_GRACE_S` seconds for that before it kills the run.

``rayagents tune CONFIG --search KEY=SPACE ... [-- rayagents-learn options]`` sweeps hyperparameters with Ray Tune,
each trial a rayagents-learn run on the cluster (see :mod:`rayagents.cluster.sweep`).

The address is the cluster's dashboard (``http://127.0.0.1:8265`` by default, or ``RAY_ADDRESS``); keep it on
loopback or behind a port-forward. Ray's token authentication stays on: the token is read where Ray keeps it
(``~/.ray/auth_token``, ``RAY_AUTH_TOKEN_PATH`` or ``RAY_AUTH_TOKEN``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sys
import time
from collections.abc import Sequence
from typing import Any

from rayagents.cluster.sweep_arguments import add_arguments as add_sweep_arguments
from rayagents.cluster.sweep_arguments import split_learn_args

DEFAULT_DASHBOARD = "http://127.0.0.1:8265"
"""The dashboard address used without ``--address`` or ``RAY_ADDRESS``."""
EXIT_OK = 0
"""The job succeeded (or the command did what it was asked)."""
EXIT_FAILED = 1
"""The job failed or was stopped, or the cluster could not be reached."""
STOP_GRACE_S = 120
"""How long Ray lets a stopped job's run save its model and stop its players before it kills the run (Ray's own
default, 3 s, is less than a save takes on a busy machine). Set in the job's environment as
``RAY_JOB_STOP_WAIT_TIME_S``, which Ray's job supervisor reads."""
STOP_GRACE_ENV = "RAY_JOB_STOP_WAIT_TIME_S"
"""The variable Ray's job supervisor reads its stop grace period from."""


def job_runtime_env(working_dir: str | None) -> dict[str, Any]:
    """The runtime environment of a submitted run: its working directory (when given), and a stop grace period
    long enough for the run to save what it learned (:data:`STOP_GRACE_S`)."""
    runtime_env: dict[str, Any] = {"env_vars": {STOP_GRACE_ENV: str(STOP_GRACE_S)}}
    if working_dir:
        runtime_env["working_dir"] = working_dir
    return runtime_env


def entrypoint(learn_args: Sequence[str]) -> str:
    """The job's shell command: ``rayagents-learn`` with ``learn_args``, each quoted."""
    return shlex.join(["rayagents-learn", *learn_args])


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``rayagents``."""
    parser = argparse.ArgumentParser(
        prog="rayagents",
        description="Run rayagents-learn as a Ray job on a cluster, and follow, inspect or stop it; or sweep its "
        "hyperparameters with Ray Tune.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    def with_address(command: argparse.ArgumentParser) -> None:
        command.add_argument(
            "--address",
            default=None,
            help=f"the cluster's dashboard address (default: RAY_ADDRESS, else {DEFAULT_DASHBOARD})",
        )

    submit = commands.add_parser("submit", help="submit rayagents-learn as a job; the options after -- are its own")
    with_address(submit)
    submit.add_argument("--working-dir", default=None, help="a folder uploaded with the job (the config, your files)")
    submit.add_argument("--job-id", default=None, help="the job's id (default: Ray picks one)")
    submit.add_argument("--no-wait", action="store_true", help="print the job id and return without following it")
    submit.add_argument("learn_args", nargs=argparse.REMAINDER, help="-- then the rayagents-learn options")
    for name, text in (("status", "print a job's status"), ("logs", "print a job's log"), ("stop", "stop a job")):
        command = commands.add_parser(name, help=text)
        with_address(command)
        command.add_argument("job_id", help="the job's id, as submit printed it")
        if name == "logs":
            command.add_argument("--follow", "-f", action="store_true", help="follow the log until the job ends")
    tune = commands.add_parser(
        "tune", help="sweep hyperparameters: Ray Tune trials of rayagents-learn runs; the options after -- are theirs"
    )
    add_sweep_arguments(tune)
    return parser


def client(address: str | None) -> Any:
    """A Jobs API client of the cluster, with Ray's token authentication on."""
    os.environ.setdefault("RAY_AUTH_MODE", "token")
    from ray.job_submission import JobSubmissionClient

    return JobSubmissionClient(address or os.environ.get("RAY_ADDRESS") or DEFAULT_DASHBOARD)


def _follow(jobs: Any, job_id: str) -> None:
    """Prints the job's log as it grows, until the job ends."""

    async def tail() -> None:
        async for lines in jobs.tail_job_logs(job_id):
            print(lines, end="", flush=True)

    asyncio.run(tail())


def _final_status(jobs: Any, job_id: str) -> str:
    """Waits until the job's status is terminal; returns it."""
    while True:
        status = jobs.get_job_status(job_id)
        if status.is_terminal():
            return str(status.value if hasattr(status, "value") else status)
        time.sleep(0.5)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``rayagents``; returns the exit code."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    learn_args: list[str] = []
    if arguments[:1] == ["tune"]:
        arguments, learn_args = split_learn_args(arguments)
    options = build_parser().parse_args(arguments)
    if options.command == "tune":
        try:
            from rayagents.cluster.sweep import run_sweep  # Ray Tune and torch load only for a sweep
        except ImportError as missing:
            print(
                f"error: rayagents tune needs Ray Tune ({missing}); install it with pip install 'rayagents[rllib]'",
                file=sys.stderr,
            )
            return 2
        return run_sweep(options, learn_args)
    try:
        jobs = client(options.address)
        if options.command == "submit":
            learn_args = list(options.learn_args)
            if learn_args[:1] == ["--"]:
                learn_args = learn_args[1:]
            if not learn_args:
                print("error: give the rayagents-learn options after --", file=sys.stderr)
                return 2
            job_id = jobs.submit_job(
                entrypoint=entrypoint(learn_args),
                runtime_env=job_runtime_env(options.working_dir),
                submission_id=options.job_id,
            )
            print(f"submitted job {job_id}", flush=True)
            if options.no_wait:
                return EXIT_OK
            _follow(jobs, job_id)
            status = _final_status(jobs, job_id)
            print(f"job {job_id}: {status}")
            return EXIT_OK if status == "SUCCEEDED" else EXIT_FAILED
        if options.command == "status":
            info = jobs.get_job_info(options.job_id)
            print(f"{options.job_id}: {info.status.value}" + (f" ({info.message})" if info.message else ""))
            return EXIT_OK
        if options.command == "logs":
            if options.follow:
                _follow(jobs, options.job_id)
            else:
                print(jobs.get_job_logs(options.job_id), end="")
            return EXIT_OK
        stopped = jobs.stop_job(options.job_id)
        print(f"{options.job_id}: {'stopping' if stopped else 'already ended'}")
        return EXIT_OK
    except (ConnectionError, RuntimeError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
