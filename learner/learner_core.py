"""``Learner``: what the :class:`~rayagents.learner.learner_actor.LearnerActor` runs, the trainers of every behavior,
fed by the EnvActors, publishing weight versions.

The driver creates one LearnerActor as a Ray actor (on the GPU when the cluster has one), which makes a ``Learner``
in its process and passes every call on to it. EnvActors call it directly:

- :meth:`Learner.register` when a behavior id appears in their player: the trainer of that behavior name is
  made on the first call (restored from its checkpoint on ``--resume`` / ``--initialize-from``), and the answer
  is what the behavior id plays.
- :meth:`Learner.submit` with each :class:`TrajectoryBatch`: the batch joins the learner's inbox and the
  answer names what every behavior id plays now. The inbox is bounded: while it is full, ``submit`` waits, and so
  do the EnvActors that have too many batches unanswered (backpressure).

A training thread empties the inbox: the trajectories that arrived are taken together, per behavior, in one
batched pass on the learner's device (:meth:`Trainer.take_in`, up to an update's worth), the ended episodes and the
player's statistics are recorded, a trainer whose update is due updates, and each new version is put into Ray's
object store once and published to every id of its behavior (``Name?team=N``) with a publication number of its own.
A behavior with ``self_play`` goes through :class:`~rayagents.learner.self_play.SelfPlay` first: only its learning
team's trajectories reach the trainer, and the ids of its other teams are pinned to the league's opponent. EnvActors
do not wait for an on-policy update to end: what they send while one runs joins the inbox and is taken after it, up
to about an update's worth of steps (:func:`inbox_step_limit`); beyond it ``submit`` waits. When more than one
update is due at once (SAC's gradient steps, one per ``steps_per_update`` agent steps, run behind the steps taken
in; PPO's, when more than ``buffer_size`` experiences arrived while one ran), the learner runs them all before it
takes more in, and ``submit`` waits meanwhile: the EnvActors are throttled to the pace of the learner instead of
the ratio of updates to steps drifting (:attr:`LearnerProgress.throttled_s` says how long they waited).

The driver polls :meth:`Learner.progress` for the summaries (TensorBoard, console), the checkpoints written
(``training_status.json``) and whether training is over, and calls :meth:`Learner.save` at the end (or on
Ctrl+C) for the final checkpoint and ``<behavior>.onnx``. An error in the training thread is raised by the next
call, so the driver sees it.

The results location is a folder of the learner's node or a URI (``s3://…``: see :mod:`results_storage`); each
behavior's checkpoints are written and read by its :class:`CheckpointStore`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

import numpy as np
import ray
import torch

from rayagents.configs import ConfigWarning, RunOptions, behavior_settings
from rayagents.configs.behaviors import behavior_name_of
from rayagents.learner.checkpoints import CheckpointRecord, CheckpointStore
from rayagents.learner.learner_messages import (
    BehaviorState,
    LearnerProgress,
    LearnerSettings,
    LearnerStart,
    restore_source,
)
from rayagents.learner.publisher import WeightsPublisher
from rayagents.learner.results_storage import ResultsStorage, StorageError, is_uri, join, redact
from rayagents.learner.self_play import SelfPlay
from rayagents.learner.summaries import TrainerSummary
from rayagents.learner.trainer import Trainer
from rayagents.protocol.side_channels.stats import StatsAggregationMethod
from rayagents.protocol.trajectories import Trajectory, TrajectoryBatch
from rayagents.protocol.types import BehaviorName, BehaviorSpec
from rayagents.protocol.weights import LearnerReply, WeightsNotice

logger = logging.getLogger(__name__)

INBOX_BATCHES = 512
"""Trajectory batches waiting for the training thread, at most; ``submit`` waits while the inbox is full. Enough
for what the EnvActors send during an update (each sends a batch every few hundredths of a second), so that they
wait only when the learner cannot keep up."""
INBOX_POLL_S = 0.05
"""How long the training thread waits for a batch before it looks again (and notices a stop)."""

_Result = TypeVar("_Result")


def load_lazy_imports() -> None:
    """Imports now what torch and the exporter import on first use: ``torch._dynamo`` (a second or more of CPU), which
    torch's optimizers import when the first one is made, and ``onnx`` (half a second), which the first ``.onnx``
    export imports.

    A :class:`Learner` is made while the EnvActors start their players, so these imports overlap with them; made at
    the first behavior's registration they held up every EnvActor waiting for its first weights, and at the first
    checkpoint they held up training. A missing ``onnx`` is left to the export, which says what to install."""
    import torch._dynamo  # noqa: F401

    with contextlib.suppress(ImportError):
        import onnx  # noqa: F401


class Learner:
    """Trains every behavior's policy from the EnvActors' trajectories (the LearnerActor's work).

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
        self._storage: ResultsStorage | None = None
        self._device = settings.device or ("cuda" if torch.cuda.is_available() else "cpu")
        self._trainers: dict[str, Trainer] = {}
        self._publisher = WeightsPublisher()
        self._self_play = SelfPlay(self._publisher, settings.seed)
        self._summaries: list[TrainerSummary] = []
        self._saved_elos: dict[str, float] = {}
        self._messages: list[str] = []
        self._training_done = False
        self._lock = threading.RLock()
        self._inbox: queue.Queue[TrajectoryBatch] = queue.Queue(maxsize=INBOX_BATCHES)
        self._inbox_steps = 0  # the steps of the batches in the inbox
        self._inbox_step_limit: int | None = None  # the most the inbox takes more of (see _register)
        self._room = threading.Condition()  # notified when the training thread empties the inbox
        self._open = threading.Event()  # cleared while the trainers catch up on updates due: submits wait
        self._open.set()
        self._throttled_s = 0.0
        self._stop = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._train, name="rayagents-learner", daemon=True)
        load_lazy_imports()

    def start(self) -> LearnerStart:
        """Opens the run's results on this node and starts training; the first call a driver makes. Raises
        FileNotFoundError, saying why, when this node cannot see the results."""
        if self._storage is None:
            self._storage = open_results(self.settings.write_path)
            self._thread.start()
        return LearnerStart(device=self._device, node_id=ray.get_runtime_context().get_node_id(), pid=os.getpid())

    # ---- behaviors -----------------------------------------------------------------------------------------------
    def register(self, behavior: BehaviorName, behavior_spec: BehaviorSpec) -> WeightsNotice:
        """What ``behavior`` (a behavior id) plays; makes (and restores) its trainer on the first call."""
        return self._guarded(lambda: self._register(behavior, behavior_spec))

    def _register(self, behavior: BehaviorName, behavior_spec: BehaviorSpec) -> WeightsNotice:
        self.start()  # an EnvActor may ask before the driver's start call is served
        name = behavior_name_of(behavior)
        trainer = self._trainers.get(name)
        if trainer is None:
            trainer = self._make_trainer(behavior, behavior_spec)
            self._trainers[name] = trainer
            self._inbox_step_limit = inbox_step_limit(self._trainers.values())
        self._publisher.add(behavior, trainer.version, trainer.weights_snapshot)
        self._self_play.register(behavior, trainer)
        return self._publisher.notice(behavior)

    def _make_trainer(self, behavior: BehaviorName, behavior_spec: BehaviorSpec) -> Trainer:
        name = behavior_name_of(behavior)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConfigWarning)
            settings = behavior_settings(self.options, behavior)
        self._messages.extend(str(w.message) for w in caught)
        trainer = Trainer(
            behavior, behavior_spec, settings, self._device, seed=self.settings.seed, training=self.settings.training
        )
        self._self_play.attach(trainer)
        source = restore_source(self.settings, name)
        if source is None:
            trainer.pretrain()
            return trainer
        store = CheckpointStore(ResultsStorage(source), source, name)
        if self.settings.restart and not store.has_checkpoint():
            self._messages.append(f"{name}: no checkpoint was written before the learner was lost: starts afresh")
            trainer.pretrain()
            return trainer
        for message in trainer.restore(store, reset_global_step=not self.settings.resume):
            self._messages.append(f"{name}: {message}")
        if self.settings.resume:
            trainer.checkpoints = list(self.settings.checkpoints.get(name, ()))
        return trainer

    # ---- trajectories --------------------------------------------------------------------------------------------
    def submit(self, batch: TrajectoryBatch) -> LearnerReply:
        """Takes a batch into the inbox (waiting while the trainers catch up on the updates due, while the inbox holds
        an update's worth of steps, and while it is full); answers with what every behavior id plays."""
        self._raise_failure()
        waited_from = time.monotonic()
        while not self._open.wait(INBOX_POLL_S) and not self._stop.is_set():
            self._raise_failure()
        with self._room:
            while not self._has_room() and not self._stop.is_set():
                self._room.wait(INBOX_POLL_S)
                self._raise_failure()
            self._inbox_steps += batch.num_steps
        waited = time.monotonic() - waited_from
        if waited > INBOX_POLL_S / 10:  # a gate was closed (not the few microseconds of passing open ones)
            self._throttled_s += waited
        while not self._stop.is_set():
            try:
                self._inbox.put(batch, timeout=INBOX_POLL_S)
                break
            except queue.Full:
                self._raise_failure()
        return LearnerReply(notices=self._publisher.notices, training_done=self._training_done)

    def _has_room(self) -> bool:
        """Whether the inbox takes another batch: it holds fewer steps than :func:`inbox_step_limit` allows."""
        return self._inbox_step_limit is None or self._inbox_steps < self._inbox_step_limit

    def _train(self) -> None:
        """The training thread: takes what arrived, trains, publishes; keeps the first error for the next call."""
        try:
            while not self._stop.is_set():
                batches = self._take()
                if batches:
                    with self._lock:
                        self._train_on(batches)
                    self._catch_up()
        except BaseException as error:  # raised to the driver by the next call
            logger.exception("the learner's training thread failed")
            self._failure = error

    def _catch_up(self) -> None:
        """Runs the updates still due after the first (SAC's gradient steps behind the steps taken in, PPO's updates
        of the trajectories waiting beyond the first update's), a turn of one update per trainer at a time, the
        submits waiting meanwhile; the lock is let go between turns so the driver's calls get through."""
        try:
            while not self._stop.is_set():
                with self._lock:
                    due = [trainer for trainer in self._trainers.values() if trainer.behind]
                    if not due:
                        return
                    self._open.clear()
                    for trainer in due:
                        self._advance(trainer)
        finally:
            self._open.set()

    def _take(self) -> list[TrajectoryBatch]:
        """Every batch in the inbox (waiting up to ``INBOX_POLL_S`` for the first)."""
        try:
            batches = [self._inbox.get(timeout=INBOX_POLL_S)]
        except queue.Empty:
            return []
        while True:
            try:
                batches.append(self._inbox.get_nowait())
            except queue.Empty:
                break
        with self._room:
            self._inbox_steps -= sum(batch.num_steps for batch in batches)
            self._room.notify_all()
        return batches

    def _train_on(self, batches: list[TrajectoryBatch]) -> None:
        """Hands what arrived to each behavior's trainer, records the episodes and player statistics, then takes the
        trajectories in (up to an update's worth, in one batched pass), updates (and publishes), summarizes and
        checkpoints what is due. What is left waits for that update and is taken in by :meth:`_catch_up`, the
        EnvActors waiting meanwhile: an update comes every ``buffer_size`` experiences however much arrived while
        the last one ran."""
        arrived: dict[str, list[Trajectory]] = {}
        for batch in batches:
            for trajectory in batch.trajectories:
                arrived.setdefault(self._trainer_of(trajectory.behavior).behavior_name, []).append(trajectory)
        for name, trajectories in arrived.items():
            trainer = self._trainers[name]
            trainer.receive(self._self_play.take(trainer, trajectories))
        for batch in batches:
            for episodes in batch.episodes:
                self._trainer_of(episodes.behavior).record_episodes(episodes)
            self._record_player_stats(batch)
        for name in arrived:
            self._advance(self._trainers[name])
        self._training_done = self._all_done()

    def _trainer_of(self, behavior: str) -> Trainer:
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

    def _advance(self, trainer: Trainer) -> None:
        """Takes in what waits (up to an update's worth), updates (and publishes) when an update is due; makes the
        checkpoints that are due, and the summaries once the trainer caught up (so that a summary's losses and
        ``Policy/Updates per Step`` include the end of the catch-up, whose updates count in its period anyway)."""
        trainer.take_in()
        if trainer.maybe_update():
            self._publisher.publish(trainer.behavior_name, trainer.version, trainer.weights_snapshot)
        self._self_play.advance(trainer)
        while trainer.should_summarize and not trainer.behind:
            self._summaries.append(trainer.summarize())
        if trainer.training and trainer.should_checkpoint:
            self._save_checkpoint(trainer, self._store(trainer))

    def _save_checkpoint(self, trainer: Trainer, store: CheckpointStore) -> CheckpointRecord:
        """Writes ``trainer``'s checkpoint and notes its league's ELO as saved in it."""
        record = trainer.save_checkpoint(store)
        league = self._self_play.league_of(trainer.behavior_name)
        if league is not None:
            self._saved_elos[trainer.behavior_name] = league.current_elo
        return record

    def _store(self, trainer: Trainer) -> CheckpointStore:
        """The trainer's checkpoints: ``<write_path>/<name>``."""
        folder = join(self.settings.write_path, trainer.behavior_name)
        return CheckpointStore(self._results(), folder, trainer.behavior_name)

    def _results(self) -> ResultsStorage:
        if self._storage is None:
            raise RuntimeError("the learner was not started: call LearnerActor.start first")
        return self._storage

    def _stored(self, location: str) -> bool:
        """Whether the results storage holds the file ``location`` (False for one elsewhere: a run whose results
        were moved before it was resumed lists files of its old place)."""
        try:
            return self._results().is_file(location)
        except StorageError:
            return False

    def _all_done(self) -> bool:
        return (
            self.settings.training
            and bool(self._trainers)
            and not any(t.should_still_train for t in self._trainers.values())
        )

    # ---- the driver's calls --------------------------------------------------------------------------------------
    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise RuntimeError(f"the learner's training thread failed: {self._failure}") from self._failure

    def _guarded(self, call: Callable[[], _Result]) -> _Result:
        """Runs ``call`` holding the trainers (not while the training thread updates), after raising its error."""
        self._raise_failure()
        with self._lock:
            return call()

    def progress(self) -> LearnerProgress:
        """Every trainer's state, and the summaries and warnings made since the last call."""
        return self._guarded(self._progress)

    def _progress(self) -> LearnerProgress:
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
                    returns=t.take_returns(),
                )
                for name, t in self._trainers.items()
            ),
            summaries=summaries,
            checkpoints={name: tuple(t.checkpoints) for name, t in self._trainers.items()},
            elos=dict(self._saved_elos),
            training_done=self._all_done(),
            messages=messages,
            throttled_s=self._throttled_s,
        )

    def save(self) -> dict[str, CheckpointRecord]:
        """Stops training, then writes the final checkpoint of each trainer and copies its model to
        ``<write_path>/<name>.onnx`` (atomically: a temporary name and a rename on a disk, one object on an object
        store).

        A checkpoint already written at the current step is not written again. Returns the final record of each
        behavior name (its ``file_path`` is the ``<name>.onnx``). In inference nothing is written.
        """
        self._stop.set()
        self._open.set()
        if self._thread.is_alive():
            self._thread.join()
        finals: dict[str, CheckpointRecord] = {}
        if not self.settings.training:
            return finals
        with self._lock:
            for name, trainer in self._trainers.items():
                store = self._store(trainer)
                latest = trainer.checkpoints[-1] if trainer.checkpoints else None
                if latest is None or latest.steps != trainer.step or not self._stored(latest.file_path):
                    latest = self._save_checkpoint(trainer, store)
                finals[name] = store.write_final_model(latest, join(self.settings.write_path, f"{name}.onnx"))
        return finals


def inbox_step_limit(trainers: Iterable[Trainer]) -> int | None:
    """The steps the learner's inbox holds before ``submit`` waits: one update's worth of each training trainer whose
    algorithm has such a bound (PPO's and POCA's ``buffer_size``), summed; None when none has one (SAC only, or
    ``--inference``).

    So the EnvActors play at most about an update ahead of the learner. Left to play on while a slow learner updates,
    they sent several updates' worth, which either made fewer, larger updates (fewer updates per step than
    ML-Agents) or, taken in an update's worth at a time, aged past the lag bound and were dropped."""
    limits = [
        limit
        for trainer in trainers
        if trainer.training and (limit := trainer.algorithm.experiences_per_update()) is not None
    ]
    return sum(limits) if limits else None


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
