"""``LearnerActor``: the trainers of every behavior, fed by the EnvActors, publishing weight versions.

The driver creates one as a Ray actor (on the GPU when the cluster has one). EnvActors call it directly:

- :meth:`LearnerActor.register` when a behavior appears in their player: the trainer of that behavior name is
  made on the first call (restored from ``checkpoint.pt`` on ``--resume`` / ``--initialize-from``), and the
  answer is its current weights version.
- :meth:`LearnerActor.submit` with each :class:`TrajectoryBatch`: the trajectories go to their trainers (which
  drop what an older policy acted than they allow), the ended episodes and the player's statistics are recorded,
  a trainer whose buffer is full updates, and the answer names the latest version of each behavior. Each version
  is put into Ray's object store once; every EnvActor reads the same copy.

The driver polls :meth:`LearnerActor.progress` for the summaries (TensorBoard, console), the checkpoints written
(``training_status.json``) and whether training is over, and calls :meth:`LearnerActor.save` at the end (or on
Ctrl+C) for the final checkpoint and ``<behavior>.onnx``.

The results location is a folder of the learner's node or a URI (``s3://…``: see :mod:`results_storage`). For a
URI the learner writes every file in a scratch folder and uploads it, and downloads ``checkpoint.pt`` to restore.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np
import ray
import torch

from rayagents.configs import ConfigWarning, RunOptions, behavior_settings
from rayagents.configs.behaviors import behavior_name_of
from rayagents.learner.checkpoint_files import LATEST_CHECKPOINT, CheckpointRecord
from rayagents.learner.results_storage import ResultsStorage, StorageError, is_uri, join, redact
from rayagents.learner.trainer import PPOTrainer, TrainerSummary
from rayagents.protocol.side_channels.stats import StatsAggregationMethod
from rayagents.protocol.trajectories import TrajectoryBatch
from rayagents.protocol.types import BehaviorName, BehaviorSpec
from rayagents.protocol.weights import LearnerReply, WeightsNotice

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LearnerSettings:
    """Where the learner writes and how its trainers start."""

    write_path: str
    """The run's results (``results/<run-id>``): an absolute path on the learner's node, or a URI
    (``s3://bucket/results/<run-id>``); each behavior's files go to ``<write_path>/<name>/``."""
    device: str | None = None
    """The torch device; None: ``cuda`` when this node has one, else ``cpu``."""
    seed: int = 0
    """Seeds torch and the minibatch shuffling."""
    resume: bool = False
    """Restore each trainer from ``<write_path>/<name>/checkpoint.pt`` (the step carries on)."""
    init_path: str | None = None
    """Initialize each trainer from ``<init_path>/<name>/checkpoint.pt`` (the step starts at 0); a path or a URI."""
    training: bool = True
    """False for ``--inference``: the policies act, nothing is trained or saved."""
    checkpoints: Mapping[str, tuple[CheckpointRecord, ...]] = field(default_factory=dict)
    """The checkpoints a resumed run had written, per behavior name (from ``training_status.json``)."""
    num_threads: int | None = None
    """Torch intra-op threads for the updates; None keeps torch's default."""
    restart: bool = False
    """The driver restarted this learner after the previous one was lost: with ``resume``, a behavior that has no
    ``checkpoint.pt`` yet starts afresh instead of failing."""


@dataclass(frozen=True)
class BehaviorState:
    """Where one trainer stands."""

    behavior_name: str
    """The behavior name."""
    step: int
    """The trainer's step."""
    max_steps: int
    """Its ``max_steps``."""
    version: int
    """Its weights version."""
    dropped_steps: int
    """Steps it received but did not train on, since the learner started."""
    training: bool
    """Whether it still trains."""


@dataclass(frozen=True)
class LearnerProgress:
    """What the driver learns from one :meth:`LearnerActor.progress` call."""

    behaviors: tuple[BehaviorState, ...]
    """Every trainer's state."""
    summaries: tuple[TrainerSummary, ...]
    """The summaries made since the last call, in order."""
    checkpoints: Mapping[str, tuple[CheckpointRecord, ...]]
    """Each behavior's checkpoints kept on disk, oldest first."""
    training_done: bool
    """Every trainer has reached its ``max_steps`` (never in inference)."""
    messages: tuple[str, ...]
    """Warnings for the console since the last call."""


class LearnerActor:
    """Trains every behavior's policy from the EnvActors' trajectories.

    Arguments:
        options: the run options (each behavior's trainer settings).
        settings: where to write and how to start.
    """

    def __init__(self, options: RunOptions, settings: LearnerSettings) -> None:
        self.options = options
        self.settings = settings
        if settings.num_threads is not None:
            torch.set_num_threads(max(1, settings.num_threads))
        torch.manual_seed(settings.seed)
        np.random.seed(settings.seed % 2**32)
        self._storage = open_results(settings.write_path)
        self._device = settings.device or ("cuda" if torch.cuda.is_available() else "cpu")
        self._trainers: dict[str, PPOTrainer] = {}
        self._published: dict[str, tuple[int, object]] = {}
        self._summaries: list[TrainerSummary] = []
        self._messages: list[str] = []

    # ---- behaviors -----------------------------------------------------------------------------------------------
    def device(self) -> str:
        """The torch device the trainers update on."""
        return self._device

    def node_id(self) -> str:
        """The Ray node id of the learner's node."""
        return ray.get_runtime_context().get_node_id()

    def pid(self) -> int:
        """The learner's process id."""
        return os.getpid()

    def register(self, behavior: BehaviorName, behavior_spec: BehaviorSpec) -> WeightsNotice:
        """The latest weights of ``behavior``; makes (and restores) its trainer on the first call."""
        name = behavior_name_of(behavior)
        trainer = self._trainers.get(name)
        if trainer is None:
            trainer = self._make_trainer(behavior, behavior_spec)
            self._trainers[name] = trainer
        return self._notice(behavior, trainer)

    def _make_trainer(self, behavior: BehaviorName, behavior_spec: BehaviorSpec) -> PPOTrainer:
        name = behavior_name_of(behavior)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConfigWarning)
            settings = behavior_settings(self.options, behavior)
        self._messages.extend(str(w.message) for w in caught)
        trainer = PPOTrainer(
            behavior, behavior_spec, settings, self._device, seed=self.settings.seed, training=self.settings.training
        )
        source = restore_source(self.settings, name)
        if source is None:
            return trainer
        storage = ResultsStorage(source)
        if self.settings.restart and not storage.is_file(source):
            self._messages.append(f"{name}: no checkpoint was written before the learner was lost: starts afresh")
            return trainer
        reset = not self.settings.resume
        for message in restore_trainer(trainer, source, reset_global_step=reset, storage=storage):
            self._messages.append(f"{name}: {message}")
        if self.settings.resume:
            trainer.checkpoints = list(self.settings.checkpoints.get(name, ()))
        return trainer

    def _notice(self, behavior: BehaviorName, trainer: PPOTrainer) -> WeightsNotice:
        """The published weights of the trainer's current version (putting them into the object store once)."""
        name = trainer.behavior_name
        published = self._published.get(name)
        if published is None or published[0] != trainer.version:
            weights = trainer.weights_snapshot()
            published = (weights.version, ray.put(weights))
            self._published[name] = published
        return WeightsNotice(behavior=behavior, version=published[0], weights=published[1])

    # ---- trajectories --------------------------------------------------------------------------------------------
    def submit(self, batch: TrajectoryBatch) -> LearnerReply:
        """Trains on a batch; answers with the latest weights of each behavior in it."""
        kept = dropped = 0
        seen: dict[str, BehaviorName] = {}
        for trajectory in batch.trajectories:
            trainer = self._trainer_of(trajectory.behavior)
            seen[trainer.behavior_name] = trajectory.behavior
            if not trainer.should_still_train and trainer.training:
                dropped += len(trajectory)
                continue
            if trainer.process(trajectory):
                kept += len(trajectory)
            else:
                dropped += len(trajectory)
        for episodes in batch.episodes:
            self._trainer_of(episodes.behavior).record_episodes(episodes)
        self._record_player_stats(batch)
        for name in seen:
            self._advance(self._trainers[name])
        notices = tuple(self._notice(behavior, self._trainers[name]) for name, behavior in seen.items())
        return LearnerReply(
            notices=notices, kept_steps=kept, dropped_steps=dropped, training_done=self._training_done()
        )

    def _trainer_of(self, behavior: str) -> PPOTrainer:
        trainer = self._trainers.get(behavior_name_of(behavior))
        if trainer is None:
            raise RuntimeError(
                f"a trajectory of behavior {behavior!r} arrived before the behavior was registered: an EnvActor "
                "registers each behavior (and loads its weights) before it acts"
            )
        return trainer

    def _record_player_stats(self, batch: TrajectoryBatch) -> None:
        """The player's side-channel statistics go to every trainer (ML-Agents reports them per behavior)."""
        for key, values in batch.player_stats.items():
            if not values:
                continue
            methods = {method for _, method in values}
            numbers = [value for value, _ in values]
            if methods == {StatsAggregationMethod.SUM}:
                recorded = [float(np.sum(numbers))]
            elif methods == {StatsAggregationMethod.MOST_RECENT}:
                recorded = [numbers[-1]]
            else:
                recorded = numbers
            for trainer in self._trainers.values():
                for value in recorded:
                    trainer.record_player_stat(key, value)

    def _advance(self, trainer: PPOTrainer) -> None:
        """Updates when the buffer is full; makes the summaries and checkpoints that are due."""
        if trainer.should_still_train:
            trainer.maybe_update()
        while trainer.should_summarize:
            self._summaries.append(trainer.summarize())
        if trainer.training and trainer.should_checkpoint:
            trainer.save_checkpoint(self._behavior_path(trainer), self._storage)

    def _stored(self, location: str) -> bool:
        """Whether the results storage holds the file ``location`` (False for one elsewhere: a run whose results
        were moved before it was resumed lists files of its old place)."""
        try:
            return self._storage.is_file(location)
        except StorageError:
            return False

    def _behavior_path(self, trainer: PPOTrainer) -> str:
        """The location of the behavior's checkpoints: ``<write_path>/<name>``."""
        return join(self.settings.write_path, trainer.behavior_name)

    def _training_done(self) -> bool:
        return (
            self.settings.training
            and bool(self._trainers)
            and not any(t.should_still_train for t in self._trainers.values())
        )

    # ---- the driver's calls --------------------------------------------------------------------------------------
    def progress(self) -> LearnerProgress:
        """Every trainer's state, and the summaries and warnings made since the last call."""
        summaries, self._summaries = tuple(self._summaries), []
        messages, self._messages = tuple(self._messages), []
        return LearnerProgress(
            behaviors=tuple(
                BehaviorState(
                    behavior_name=name,
                    step=t.step,
                    max_steps=t.settings.max_steps,
                    version=t.version,
                    dropped_steps=t.dropped_steps,
                    training=t.training and t.should_still_train,
                )
                for name, t in self._trainers.items()
            ),
            summaries=summaries,
            checkpoints={name: tuple(t.checkpoints) for name, t in self._trainers.items()},
            training_done=self._training_done(),
            messages=messages,
        )

    def save(self) -> dict[str, CheckpointRecord]:
        """The final checkpoint of each trainer and its model copied to ``<write_path>/<name>.onnx`` (atomically:
        a temporary name and a rename on a disk, one object on an object store).

        A checkpoint already written at the current step is not written again. Returns the final record of each
        behavior name (its ``file_path`` is the ``<name>.onnx``). In inference nothing is written.
        """
        finals: dict[str, CheckpointRecord] = {}
        if not self.settings.training:
            return finals
        for name, trainer in self._trainers.items():
            latest = trainer.checkpoints[-1] if trainer.checkpoints else None
            if latest is None or latest.steps != trainer.step or not self._stored(latest.file_path):
                latest = trainer.save_checkpoint(self._behavior_path(trainer), self._storage)
            final_path = join(self.settings.write_path, f"{name}.onnx")
            self._storage.copy_file(latest.file_path, final_path)
            finals[name] = CheckpointRecord(
                steps=latest.steps,
                file_path=final_path,
                reward=latest.reward,
                creation_time=latest.creation_time,
                auxillary_file_paths=latest.auxillary_file_paths,
            )
        return finals


def open_results(write_path: str) -> ResultsStorage:
    """The results storage of the run, as the learner's node sees it; FileNotFoundError, saying why, when the run's
    results are not there (the driver writes ``configuration.yaml`` into them before the learner starts).

    A plain path must be a folder of this node; a URI must be readable from it (its credentials, its network)."""
    if not is_uri(write_path):
        if not Path(write_path).is_dir():
            raise FileNotFoundError(
                f"the results folder {write_path} does not exist on the learner's node "
                f"({ray.util.get_node_ip_address()}): the driver made it on its own node, so the two do not share "
                "it. Give --results-dir a folder on storage that every node mounts at the same path, or a URI "
                "(s3://bucket/results)."
            )
        return ResultsStorage(write_path)
    node = ray.util.get_node_ip_address()
    try:
        storage = ResultsStorage(write_path)
        found = storage.is_dir(write_path)
    except StorageError as error:
        raise FileNotFoundError(f"the learner's node ({node}) cannot use the run's results: {error}") from error
    if not found:
        raise FileNotFoundError(
            f"the run's results {redact(write_path)} are not visible from the learner's node ({node}), though the "
            "driver wrote configuration.yaml there: give that node the same storage credentials (or, for a "
            "file:// URI, the same shared folder)"
        )
    return storage


def restore_source(settings: LearnerSettings, behavior_name: str) -> str | None:
    """Where a new trainer of ``behavior_name`` restores from: the location (a path or a URI) of a
    ``checkpoint.pt``, or None when it starts afresh.

    ``--resume`` (and ``--inference``, which needs it): ``<write_path>/<name>/checkpoint.pt``;
    ``--initialize-from``: ``<init_path>/<name>/checkpoint.pt``. Read it with :func:`restore_trainer`."""
    if settings.resume:
        return join(settings.write_path, behavior_name, LATEST_CHECKPOINT)
    if settings.init_path is not None:
        return join(settings.init_path, behavior_name, LATEST_CHECKPOINT)
    return None


def restore_trainer(
    trainer: PPOTrainer, source: str, *, reset_global_step: bool, storage: ResultsStorage | None = None
) -> list[str]:
    """Restores ``trainer`` from the ``checkpoint.pt`` at ``source`` and returns the load warnings. A URI is
    downloaded to a scratch folder first (removed afterwards); either way the file is read with
    ``torch.load(weights_only=True)``.

    ``reset_global_step`` (``--initialize-from``) keeps the trainer's step at 0. ``storage``: one already opened
    on ``source`` (else one is opened). FileNotFoundError, saying what to do, when there is no checkpoint there."""
    storage = storage if storage is not None else ResultsStorage(source)
    if not storage.is_file(source):
        raise FileNotFoundError(
            f"behavior {trainer.behavior_name!r} has no checkpoint at {redact(source)} to "
            f"{'initialize' if reset_global_step else 'resume'} from: start a new run (another --run-id) "
            "or check --results-dir and the run id"
        )
    local = storage.local_path(source)
    if local is not None:
        return trainer.restore(local, reset_global_step=reset_global_step)
    with tempfile.TemporaryDirectory(prefix="rayagents-restore-") as scratch:
        downloaded = storage.download_file(source, Path(scratch) / LATEST_CHECKPOINT)
        return trainer.restore(downloaded, reset_global_step=reset_global_step, source_name=redact(source))
