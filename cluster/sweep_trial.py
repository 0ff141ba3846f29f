"""One trial of a sweep: a whole ``rayagents-learn`` run, driven from a Ray Tune trainable.

The trial writes its sample into a copy of the user's YAML (``trial_config.yaml`` in its Tune folder, copied to
``<results-dir>/<run-id>/<run-id>_<n>.yaml``), reads it with the trial's ``rayagents-learn`` command line exactly
as ``rayagents-learn`` does, and runs a
:class:`TrainingRun` in a thread of the trial's actor: the run's own LearnerActor and EnvActors go in the trial's
placement group (see :func:`rayagents.cluster.placement.run_bundles`), its results to
``<results-dir>/<run-id>_<trial index>`` as a normal run's. Each summary of the swept behavior is one Tune result
(``Environment/Cumulative Reward`` and the step); when the scheduler stops the trial (or the sweep is stopped), the
run saves its model and stops its players before the trial's actor goes.
"""

from __future__ import annotations

import os
import queue
import re
import threading
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ray import tune

from rayagents.cluster.arguments import PROG, parse_command_line
from rayagents.cluster.cli import options_from_command_line
from rayagents.cluster.console import ConsoleView
from rayagents.cluster.placement import run_bundles
from rayagents.cluster.sweep_config import SampledKey, sample_yaml
from rayagents.cluster.training import TrainingRun
from rayagents.configs import RunOptions, apply_cli_overrides
from rayagents.configs.loader import run_options_from_yaml_text
from rayagents.learner.results_storage import ResultsStorage, join
from rayagents.learner.summaries import CUMULATIVE_REWARD, TrainerSummary

REWARD = CUMULATIVE_REWARD
"""The metric each trial reports and the scheduler compares: the mean episode return of a summary period."""
STEP = "step"
"""The time attribute of the results: the swept behavior's trainer step."""
RUN_ID = "run_id"
"""The result key that names the trial's run (its results folder under ``--results-dir``)."""
TRIAL_CONFIG = "trial_config.yaml"
"""The trial's YAML, in its Tune folder on its node (the run reads it there); a copy goes in the sweep's folder as
``<run-id>_<n>.yaml``."""
STOP_TIMEOUT_S = 300.0
"""How long a stopped trial waits for its run to save the model and stop the players."""
_TRIAL_INDEX = re.compile(r"_(\d+)$")


@dataclass(frozen=True)
class SweepPlan:
    """What every trial of a sweep shares (handed to each trial by Tune)."""

    base_text: str
    """The trainer YAML as the user wrote it."""
    config_path: str
    """Where it was read (absolute), for messages."""
    keys: tuple[SampledKey, ...]
    """The searched keys, found in the configuration."""
    learn_args: tuple[str, ...]
    """The ``rayagents-learn`` options given after ``--``, for every trial."""
    run_id: str
    """The sweep's run id: the Tune experiment's name; the trials' runs are ``<run_id>_<trial index>``."""
    results_dir: str
    """Where the sweep's folder and the trials' runs go (absolute, or a URI)."""
    behavior: str
    """The behavior whose ``Environment/Cumulative Reward`` is reported."""
    resume_runs: bool
    """A resumed sweep: a trial whose run already has a ``training_status.json`` resumes that run."""
    force: bool
    """Trials overwrite the runs of an earlier sweep with the same run id."""
    learner_num_gpus: float
    """The GPUs of each trial's learner (``auto`` resolved against the cluster once, by the sweep)."""

    def trial_run_id(self, index: int) -> str:
        """The run id of trial ``index``."""
        return f"{self.run_id}_{index}"

    def trial_yaml(self, config: Mapping[str, Any], title: str = "") -> str:
        """The trial's YAML: the user's with the trial's sample (``config``: searched key -> value) laid in, after
        comment lines (``title``, else "a trial of the sweep ...") naming the sample."""
        values = {key.path: config[key.space.key] for key in self.keys}
        header = [title or f"a trial of the sweep {self.run_id}", f"from {os.path.basename(self.config_path)} with:"]
        header += [f"  {key.space.key}: {config[key.space.key]!r}" for key in self.keys]
        return sample_yaml(self.base_text, values, header)

    def trial_argv(self, yaml_path: str, index: int, resume: bool, force: bool = False) -> list[str]:
        """The trial's ``rayagents-learn`` command line (without the program name): ``resume`` its run, or
        ``force`` (or the sweep's ``--force``) it over."""
        first = "--resume" if resume else "--force" if force or self.force else None
        flags = ["--run-id", self.trial_run_id(index), "--results-dir", self.results_dir]
        return [yaml_path, *flags, *([first] if first else []), *self.learn_args]

    def with_learner_gpus(self, options: RunOptions) -> RunOptions:
        """``options`` with the learner's GPUs resolved the way the trial's resources were sized."""
        cluster = options.cluster_settings
        if cluster.learner_num_gpus is not None:
            return options
        return replace(options, cluster_settings=replace(cluster, learner_num_gpus=self.learner_num_gpus))

    def trial_options(self, config: Mapping[str, Any]) -> RunOptions:
        """A trial's run options without writing its YAML (to size its resources)."""
        explicit = parse_command_line(["placeholder.yaml", *self.learn_args]).explicit
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            options = apply_cli_overrides(run_options_from_yaml_text(self.trial_yaml(config)), explicit)
        return self.with_learner_gpus(options)

    def trial_resources(self, config: Mapping[str, Any]) -> tune.PlacementGroupFactory:
        """A trial's share of the cluster: nothing for the trial itself (it only drives), then the bundles of its
        run's learner and EnvActors (placed SPREAD over the nodes unless ``--env-placement DEFAULT``)."""
        options = self.trial_options(config)
        layout = run_bundles(options)
        cluster = options.cluster_settings
        strategy = "SPREAD" if cluster.env_placement == "SPREAD" else "PACK"
        if cluster.learner_labels or cluster.env_actor_labels:
            selectors = [dict(cluster.learner_labels)] if layout.learner_index >= 0 else []
            selectors += [dict(cluster.env_actor_labels) for index in layout.env_indexes if index >= 0]
            return tune.PlacementGroupFactory([{}, *layout.bundles], strategy, bundle_label_selector=selectors)
        return tune.PlacementGroupFactory([{}, *layout.bundles], strategy)

    def run_state(self, index: int) -> tuple[bool, bool]:
        """Whether trial ``index``'s run folder has content, and whether it has a ``training_status.json`` (so the
        run can be resumed)."""
        storage = ResultsStorage(self.results_dir)
        folder = join(self.results_dir, self.trial_run_id(index))
        return storage.has_content(folder), storage.is_file(join(folder, "run_logs", "training_status.json"))


def trial_index(trial_id: str) -> int:
    """The trial's number from its Tune id (``a1b2c_00003`` -> 3)."""
    match = _TRIAL_INDEX.search(trial_id)
    if match is None:
        raise ValueError(f"the Tune trial id {trial_id!r} ends in no trial number")
    return int(match.group(1))


@dataclass(frozen=True)
class _Summary:
    """A summary of the swept behavior, as Tune gets it."""

    step: int
    """The trainer's step at the summary."""
    reward: float
    """The mean episode return of the summary period."""


@dataclass(frozen=True)
class _Ended:
    """The run ended."""

    error: BaseException | None
    """What it failed with; None when it ended well (max_steps, or stopped by the sweep)."""


class _TrialWatcher:
    """The run's :class:`RunWatcher`: queues the swept behavior's summaries for Tune, and passes on a stop."""

    def __init__(self, behavior: str) -> None:
        self.behavior = behavior
        self.events: queue.Queue[_Summary | _Ended] = queue.Queue()
        self._stop = threading.Event()

    def summary(self, summary: TrainerSummary) -> None:
        """Queues a summary of the swept behavior that has episodes (one without has no reward to compare)."""
        if summary.behavior_name == self.behavior and summary.cumulative_rewards:
            rewards = summary.cumulative_rewards
            self.events.put(_Summary(summary.step, float(sum(rewards) / len(rewards))))

    def stop_requested(self) -> bool:
        """Whether Tune stopped the trial."""
        return self._stop.is_set()

    def request_stop(self) -> None:
        """Asks the run to stop (it saves and stops its players)."""
        self._stop.set()


class RayagentsTrial(tune.Trainable):
    """A Tune trainable whose trial is one ``rayagents-learn`` run; each :meth:`step` is one summary."""

    def setup(self, config: dict[str, Any], plan: SweepPlan) -> None:  # type: ignore[override]
        """Writes the trial's YAML, reads its run options as rayagents-learn does and starts the run in a thread."""
        self.plan = plan
        self.watcher = _TrialWatcher(plan.behavior)
        self.thread: threading.Thread | None = None
        self.index = trial_index(self.trial_id)
        self.run_id = plan.trial_run_id(self.index)
        yaml_path = os.path.join(self.logdir, TRIAL_CONFIG)
        text = plan.trial_yaml(config)
        with open(yaml_path, "w", encoding="utf-8") as stream:
            stream.write(text)
        ResultsStorage(plan.results_dir).write_text(join(plan.results_dir, plan.run_id, f"{self.run_id}.yaml"), text)
        started, resumable = plan.run_state(self.index) if plan.resume_runs else (False, False)
        # a resumed sweep resumes the runs that wrote their status, and starts over one stopped while it started
        argv = plan.trial_argv(yaml_path, self.index, resume=resumable, force=started and not resumable)
        options = plan.with_learner_gpus(options_from_command_line(parse_command_line(argv)))
        self.last: _Summary | None = None
        self.thread = threading.Thread(
            target=self._train, args=(options, [PROG, *argv]), name=f"run {self.run_id}", daemon=True
        )
        self.thread.start()

    def _train(self, options: RunOptions, command_line: Sequence[str]) -> None:
        error: BaseException | None = None
        try:
            with ConsoleView(live=False) as view:
                view.log(f"trial {self.index}: run {self.run_id}")
                TrainingRun(options, view, command_line, self.watcher).run()
        except BaseException as failure:  # reported to Tune by step(): the trial errs
            error = failure
        self.watcher.events.put(_Ended(error))

    def step(self) -> dict[str, Any]:
        """Waits for the run's next summary of the swept behavior; the run's end is the trial's (done)."""
        event = self.watcher.events.get()
        if isinstance(event, _Ended):
            if event.error is not None:
                raise RuntimeError(f"run {self.run_id} failed: {event.error}") from event.error
            last = self.last if self.last is not None else _Summary(0, float("nan"))  # a run without an episode
            return {"done": True, REWARD: last.reward, STEP: last.step, RUN_ID: self.run_id}
        self.last = event
        return {REWARD: event.reward, STEP: event.step, RUN_ID: self.run_id}

    def save_checkpoint(self, checkpoint_dir: str) -> dict[str, Any]:
        """Tune's checkpoint of the trial names its run and step: the run keeps its own checkpoints in its results
        folder, and a trial restored by ``--resume`` resumes its run from them."""
        return {RUN_ID: self.run_id, STEP: 0 if self.last is None else self.last.step}

    def load_checkpoint(self, checkpoint: dict[str, Any] | str | None) -> None:
        """Nothing to load: :meth:`setup` resumes the run from its results folder."""

    def cleanup(self) -> None:
        """Stops the run (saving its model, stopping its players) and waits for it."""
        self.watcher.request_stop()
        if self.thread is not None:
            self.thread.join(STOP_TIMEOUT_S)
