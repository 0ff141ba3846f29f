"""``rayagents tune CONFIG --search KEY=SPACE ... --num-samples N [-- rayagents-learn options]``: a hyperparameter
sweep, each Ray Tune trial one ``rayagents-learn`` run on the cluster.

The sweep connects to Ray as ``rayagents-learn`` does (``--address`` after ``--``, ``cluster_settings.address`` or
``RAY_ADDRESS``; else a local cluster with room for ``--max-concurrent-trials`` runs). Each trial gets a placement
group of its run's learner and EnvActors; ASHA stops the trials whose ``Environment/Cumulative Reward`` lags at
its rungs (in trainer steps), and a stopped run saves its model and stops its players. The sweep's Tune folder is
``<results-dir>/<run-id>``, each trial's run ``<results-dir>/<run-id>_<n>`` (exactly a normal run's results); at
the end a table of the best trials is printed and the best trial's YAML is written to
``<results-dir>/<run-id>/best.yaml``. ``--resume`` continues an interrupted sweep: the finished trials stay, the
unfinished ones resume their runs from their last checkpoints.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import ray
from rich.console import Console

from rayagents.cluster.arguments import build_parser as learn_parser
from rayagents.cluster.arguments import parse_command_line, with_user_flags
from rayagents.cluster.cli import options_from_command_line
from rayagents.cluster.placement import connect, cpus_needed, learner_gpus
from rayagents.cluster.search_spaces import SearchSpaceError, parse_searches
from rayagents.cluster.support import check_environment
from rayagents.cluster.sweep_config import check_samples, locate_keys
from rayagents.cluster.sweep_summary import TrialRecord, best_trial, summary_table
from rayagents.cluster.sweep_trial import REWARD, RUN_ID, STEP, RayagentsTrial, SweepPlan, trial_index
from rayagents.configs import ConfigError, ConfigWarning, RunOptions
from rayagents.learner.results_storage import ResultsStorage, StorageError, absolute_location, join, redact

EXIT_OK = 0
"""The sweep ran (or was interrupted and can be resumed)."""
EXIT_FAILED = 1
"""No trial reported a reward (every trial failed)."""
EXIT_USAGE = 2
"""A bad command line, configuration or search space."""
BEST_CONFIG = "best.yaml"
"""The best trial's YAML, in the sweep's folder."""
TRIALS = "trials.json"
"""Every trial's sample and (step, mean reward) history, in the sweep's folder."""
SWEEP_FLAGS = ("run_id", "results_dir", "resume", "force", "load_model")
"""rayagents-learn options that belong to the sweep (before ``--``), not to each trial."""


class SweepError(ValueError):
    """A sweep that cannot start: the message says what to change."""


def _learn_options(config: str, learn_args: Sequence[str]) -> tuple[RunOptions, dict[str, object]]:
    """The base run options (the YAML under the options after ``--``), as rayagents-learn resolves them, and the
    options that were typed."""
    try:
        command_line = parse_command_line([config, *learn_args])
    except SystemExit:
        raise SweepError("the rayagents-learn options after -- are not valid (argparse said why above)") from None
    if command_line.trainer_config_path != config:
        raise SweepError(
            f"give the trainer YAML once, before --search (found {command_line.trainer_config_path!r} after --)"
        )
    given = [dest for dest in SWEEP_FLAGS if dest in command_line.explicit]
    if given:
        flags = ", ".join("--" + dest.replace("_", "-") for dest in given)
        raise SweepError(f"{flags}: give it before -- (it is the sweep's: trials get RUN_ID_0, RUN_ID_1, ...)")
    if command_line.dry_run:
        raise SweepError("--dry-run checks one run; leave it out of a sweep")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfigWarning)
        options = options_from_command_line(command_line)
    if options.env_settings.env_path is None:
        raise SweepError(
            "a sweep needs --env after -- (a Unity build or sim:NAME): the Unity Editor plays one run at a time"
        )
    warning = check_environment(options.env_settings.env_path)
    if warning is not None:
        print(f"warning: {warning}")
    return options, dict(command_line.explicit)


def _swept_behavior(options: RunOptions, name: str | None) -> str:
    names = list(options.behaviors)
    if name is not None:
        if name not in names:
            raise SweepError(f"--behavior {name!r} is not configured; the YAML's behaviors are: {', '.join(names)}")
        return name
    if len(names) != 1:
        listed = ", ".join(names) or "none"
        raise SweepError(f"name the behavior whose reward the sweep compares with --behavior (configured: {listed})")
    return names[0]


def _max_steps(plan: SweepPlan, options: RunOptions) -> int:
    """The most steps a trial of the swept behavior trains (its max_steps, or the largest searched one)."""
    steps = [options.behaviors[plan.behavior].max_steps]
    for key in plan.keys:
        if key.path == ("behaviors", plan.behavior, "max_steps"):
            steps += [int(value) for value in key.space.probes()]
    return max(steps)


def _check_folder(storage: ResultsStorage, plan: SweepPlan, resume: bool, force: bool) -> None:
    from ray import tune

    folder = join(plan.results_dir, plan.run_id)
    if resume:
        if not tune.Tuner.can_restore(folder):
            raise SweepError(f"there is no sweep to resume at {redact(folder)}; leave out --resume to start one")
        return
    if storage.has_content(folder) and not force:
        raise SweepError(
            f"the sweep {plan.run_id!r} exists at {redact(folder)}: --resume continues it, --force starts it over, "
            "or choose another --run-id"
        )
    if not force and storage.has_content(join(plan.results_dir, plan.trial_run_id(0))):
        raise SweepError(
            f"a run {plan.trial_run_id(0)!r} exists in {redact(plan.results_dir)}: --force overwrites the runs of "
            "the sweep, or choose another --run-id"
        )


def saved_statuses(folder: str) -> dict[str, str]:
    """Each trial's status as the sweep's saved state has it (what ``--resume`` reads): an interrupted sweep saved
    its unfinished trials as PENDING or RUNNING, while the results of the run itself call every stopped trial
    TERMINATED."""
    from ray.tune import ExperimentAnalysis

    quiet = logging.getLogger("ray.tune.analysis.experiment_analysis")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # a trial that never started has no metrics to fetch, and that is fine here
    try:
        return {trial.trial_id: trial.status for trial in ExperimentAnalysis(folder).trials}
    except (OSError, ValueError, RuntimeError):
        return {}
    finally:
        quiet.setLevel(level)


def _records(results: Any, plan: SweepPlan, statuses: Mapping[str, str]) -> list[TrialRecord]:
    """Each trial's figures from Tune's results, with its ``statuses`` (by trial id) as saved."""
    records = []
    for result in results:
        frame = result.metrics_dataframe
        history: tuple[tuple[int, float], ...] = ()
        if frame is not None and REWARD in frame and STEP in frame:
            rows = frame[[STEP, REWARD]].dropna()
            history = tuple((int(step), float(reward)) for step, reward in rows.itertuples(index=False))
        metrics = result.metrics or {}
        index = trial_index(str(metrics.get("trial_id", ""))) if metrics.get("trial_id") else -1
        config = result.config or {}
        records.append(
            TrialRecord(
                index=index,
                run_id=str(metrics.get(RUN_ID, plan.trial_run_id(index))),
                values={key.space.key: config.get(key.space.key) for key in plan.keys},
                history=_deduplicated(history),
                error=None if result.error is None else str(result.error).splitlines()[0],
                finished=statuses.get(str(metrics.get("trial_id")), "TERMINATED") in ("TERMINATED", "ERROR"),
            )
        )
    return records


def _deduplicated(history: tuple[tuple[int, float], ...]) -> tuple[tuple[int, float], ...]:
    """The history without the repeat of the last summary that ends a trial that ran to its end."""
    kept: list[tuple[int, float]] = []
    for entry in history:
        if not kept or entry != kept[-1]:
            kept.append(entry)
    return tuple(kept)


def _best_yaml(plan: SweepPlan, record: TrialRecord) -> str:
    title = (
        f"the best trial of the sweep {plan.run_id}: run {record.run_id}, mean reward {record.best_reward:.3f} "
        f"first reached at step {record.best_step}"
    )
    return plan.trial_yaml(record.values, title)


def trials_json(records: Sequence[TrialRecord]) -> str:
    """The trials as JSON: run id, number, sample, history of (step, mean reward), error."""
    return json.dumps(
        [
            {
                "run_id": r.run_id,
                "index": r.index,
                "values": dict(r.values),
                "history": [list(entry) for entry in r.history],
                "error": r.error,
            }
            for r in sorted(records, key=lambda r: r.index)
        ],
        indent=1,
    )


def run_sweep(options: argparse.Namespace, learn_args: Sequence[str]) -> int:
    """Runs ``rayagents tune`` with its parsed ``options`` and the rayagents-learn options (those after ``--``);
    returns the exit code."""
    console = Console()
    if not console.is_terminal:  # a log or a pipe: wide enough for the table's sampled values
        console = Console(width=max(console.width, 160))
    learn_args = list(learn_args)
    config_path = os.path.abspath(options.config)
    try:
        with open(config_path, encoding="utf-8") as stream:
            base_text = stream.read()
    except OSError as error:
        print(f"error: cannot read the trainer configuration {options.config!r}: {error.strerror}", file=sys.stderr)
        return EXIT_USAGE
    try:
        base, explicit = _learn_options(config_path, learn_args)
        keys = locate_keys(parse_searches(options.search), base, explicit)
        check_samples(base_text, config_path, keys, explicit)
        if options.num_samples < 1 or options.max_concurrent_trials < 0 or options.reduction_factor <= 1:
            raise SweepError(
                "--num-samples must be 1 or more, --max-concurrent-trials 0 or more, --reduction-factor above 1"
            )
        behavior = _swept_behavior(base, options.behavior)
        results_dir = absolute_location(options.results_dir)
        storage = ResultsStorage(results_dir)
        plan = SweepPlan(
            base_text=base_text,
            config_path=config_path,
            keys=keys,
            learn_args=tuple(learn_args),
            run_id=options.run_id,
            results_dir=results_dir,
            behavior=behavior,
            resume_runs=options.resume,
            force=options.force,
            learner_num_gpus=0.0,
        )
        _check_folder(storage, plan, options.resume, options.force)
        connection = connect(base, local_cpus=cpus_needed(base) * max(1, options.max_concurrent_trials))
        plan = replace(plan, learner_num_gpus=learner_gpus(base.cluster_settings))
    except (SearchSpaceError, SweepError, ConfigError, StorageError) as error:
        print(f"error: {with_user_flags(str(error), learn_parser())}", file=sys.stderr)
        return EXIT_USAGE
    try:
        results = _fit(plan, base, options)
    finally:
        if connection.started_here:
            ray.shutdown()
    folder = join(plan.results_dir, plan.run_id)
    records = _records(results, plan, saved_statuses(folder))
    max_steps = _max_steps(plan, base)
    console.print(summary_table(records, [key.space.key for key in plan.keys], max_steps, options.top))
    best = best_trial(records)
    storage.write_text(join(folder, TRIALS), trials_json(records))
    if best is None:
        console.print(f"No trial reported a reward; the trials' logs are in {redact(folder)}.")
        return EXIT_FAILED
    location = join(folder, BEST_CONFIG)
    storage.write_text(location, _best_yaml(plan, best))
    values = ", ".join(f"{key}={value!r}" for key, value in best.values.items())
    console.print(
        f"Best trial: {best.run_id} ({values}): mean reward {best.best_reward:.3f} at step {best.best_step:,}; "
        f"its results are in {redact(join(plan.results_dir, best.run_id))}, its configuration in {redact(location)}",
        soft_wrap=True,
    )
    unfinished = sum(not record.finished for record in records)
    if unfinished:
        console.print(
            f"The sweep was interrupted before {unfinished} of its trials ended; continue it with the same command "
            f"and --resume (--run-id {plan.run_id})."
        )
    return EXIT_OK


def _fit(plan: SweepPlan, base: RunOptions, options: argparse.Namespace) -> Any:
    """Runs (or resumes) the Tune experiment; returns its results."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search import BasicVariantGenerator

    os.environ.setdefault("RAY_CHDIR_TO_TRIAL_DIR", "0")  # trials read paths as the user gave them
    trainable = tune.with_resources(tune.with_parameters(RayagentsTrial, plan=plan), resources=plan.trial_resources)
    folder = join(plan.results_dir, plan.run_id)
    if options.resume:
        tuner = tune.Tuner.restore(folder, trainable=trainable, resume_unfinished=True, resume_errored=True)
        return tuner.fit()
    max_steps = _max_steps(plan, base)
    summary_freq = base.behaviors[plan.behavior].summary_freq
    grace = options.grace_period or max(summary_freq, max_steps // 10)
    scheduler = ASHAScheduler(
        time_attr=STEP,
        max_t=max_steps,
        grace_period=min(grace, max_steps),
        reduction_factor=options.reduction_factor,
    )
    tuner = tune.Tuner(
        trainable,
        param_space={key.space.key: key.space.to_tune() for key in plan.keys},
        tune_config=tune.TuneConfig(
            metric=REWARD,
            mode="max",
            scheduler=scheduler,
            num_samples=options.num_samples,
            search_alg=BasicVariantGenerator(random_state=options.search_seed),
            max_concurrent_trials=options.max_concurrent_trials or None,
        ),
        run_config=tune.RunConfig(
            name=plan.run_id,
            storage_path=plan.results_dir,
            verbose=1,
            checkpoint_config=tune.CheckpointConfig(checkpoint_at_end=False),
        ),
    )
    return tuner.fit()


__all__ = ["BEST_CONFIG", "run_sweep"]
