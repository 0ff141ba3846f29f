"""The driver of a training run: the results folder, the actors on Ray, the supervision loop, the files at the end.

In the order mlagents-learn sets a run up: the results folder is checked and made (``--resume``/``--force``),
``training_status.json`` read back on resume, ``configuration.yaml`` written; then Ray: one LearnerActor and
``--num-envs`` EnvActors (the :class:`EnvFleet`: each launches its player; training starts when ``min_envs`` are
up). The loop keeps one :meth:`EnvActor.collect` call in flight per EnvActor (they stream trajectories to the
learner themselves) and every second (a quarter second while a curriculum lesson can change) asks the learner for
its progress: summaries go to TensorBoard and the console, checkpoint lists to ``training_status.json``, each
behavior's step and new episode returns to the :class:`Curriculum`, whose lesson changes go to the console,
``training_status.json`` and every EnvActor. A lost EnvActor is replaced; a lost learner is restarted from the
latest checkpoint (``--learner-max-restarts`` times). The run ends when every trainer reaches
``max_steps``, on Ctrl+C, or when a player fails past its restart budget; in each case the learner writes a
final checkpoint and ``<behavior>.onnx``, the players are stopped and ``timers.json`` and ``training_status.json``
are written.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import signal
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

import ray
from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError

from rayagents.actors.environment import DEFAULT_EDITOR_PORT as EDITOR_PORT
from rayagents.actors.env_actor import PlayerFailedError
from rayagents.cluster.console import ConsoleView
from rayagents.cluster.curriculum import BehaviorFigures, Curriculum, lesson_line
from rayagents.cluster.fleet import EnvActorLost, EnvFleet
from rayagents.cluster.placement import RayConnection, connect, kill_actor, learner_options, node_answers
from rayagents.cluster.run_directory import (
    open_results_storage,
    player_log_folder,
    prepare_run_location,
    save_configuration,
)
from rayagents.cluster.demo_paths import resolve_demo_paths
from rayagents.cluster.progress import ClusterFigures, ProgressReporter
from rayagents.cluster.tensorboard import TensorBoardWriter, import_tensorboardx_in_background
from rayagents.cluster.timers import GaugeRecorder, write_timers
from rayagents.cluster.training_status import ELO_KEY, TrainingStatus
from rayagents.configs import ConfigError, RunOptions
from rayagents.learner.checkpoints import CheckpointStore
from rayagents.learner.learner_actor import remote_learner
from rayagents.learner.learner_messages import LearnerProgress, LearnerSettings, LearnerStart
from rayagents.learner.registry import PolicyFactory
from rayagents.learner.results_storage import StorageError, absolute_location, join, redact, run_locations
from rayagents.learner.summaries import TrainerSummary
from rayagents.protocol.exceptions import first_line

logger = logging.getLogger(__name__)

TRAINING_STATUS = "training_status.json"
"""The file in ``run_logs/`` that records the checkpoints (and what ``--resume`` reads back)."""
TIMERS = "timers.json"
"""The file in ``run_logs/`` with the gauges of the run."""
PROGRESS_INTERVAL_S = 1.0
"""How often the driver asks the learner for its progress."""
POLL_S = 0.2
"""The longest the driver waits for an EnvActor's call or the learner's answer before it looks at the stop request."""
CURRICULUM_PROGRESS_INTERVAL_S = 0.25
"""How often it asks while a curriculum lesson can still change: a lesson changes at most this late (ML-Agents checks
after every environment step)."""
SAVE_TIMEOUT_S = 10.0
"""How long the driver waits for the learner's final checkpoint in a local results folder."""
SAVE_TIMEOUT_URI_S = 60.0
"""How long the driver waits for the learner's final checkpoint when it is uploaded to a results URI."""
SAVE_TIMEOUT_REPLAY_S = 300.0
"""How long the driver waits for the final checkpoint when a replay buffer is saved with it (``save_replay_buffer``:
up to ``buffer_size`` experiences, hundreds of megabytes for a large one)."""
CLOSE_TIMEOUT_S = 3.0
"""How long the driver waits for the players to say goodbye before their actors are killed."""


@dataclass(frozen=True)
class TrainingResult:
    """How a run ended."""

    write_path: str
    """The run's results: an absolute path, or the URI (``s3://bucket/results/<run-id>``) of a URI run."""
    models: dict[str, str]
    """The final ``<behavior>.onnx`` of each behavior."""
    steps: dict[str, int]
    """Each behavior's final step."""
    interrupted: bool
    """The run was stopped with Ctrl+C (or SIGTERM) before it reached max_steps."""
    player_restarts: int
    """Player restarts over the run."""
    env_actor_replacements: int = 0
    """EnvActors replaced after a loss over the run."""
    learner_restarts: int = 0
    """Learner restarts over the run."""
    lost_steps: int = 0
    """Experiences lost to failures over the run (a lower bound; see :class:`FleetStatus`)."""


class TrainingFailed(RuntimeError):
    """The run stopped on an error it could not recover from (the model was saved first, when it could be).

    Arguments:
        message: what went wrong.
        learned: whether any behavior's weights had been updated (or restored) before the failure.
        saved: whether the final models were written.
        checkpoint_steps: each behavior's step at its newest checkpoint in the results.
    """

    def __init__(self, message: str, *, learned: bool, saved: bool, checkpoint_steps: dict[str, int]) -> None:
        super().__init__(message)
        self.learned = learned
        """Whether any behavior's weights had been updated (or restored) before the failure."""
        self.saved = saved
        """Whether the final models were written."""
        self.checkpoint_steps = checkpoint_steps
        """Each behavior's step at its newest checkpoint in the results (none for a behavior without one)."""


class LearnerLost(RuntimeError):
    """The learner was lost more often than ``--learner-max-restarts`` allows."""


def resolve_seed(seed: int) -> int:
    """The run's seed: the given one, or (``-1``) a random one in 0..9999 as mlagents-learn picks."""
    return seed if seed != -1 else random.randint(0, 9999)


class RunWatcher(Protocol):
    """Something beside the run that follows its summaries and may ask it to stop (a Tune trial)."""

    def summary(self, summary: TrainerSummary) -> None:
        """Called with each summary the run writes (every ``summary_freq`` steps of a behavior)."""

    def stop_requested(self) -> bool:
        """Whether the run should stop now (it saves its model and stops its players, as on Ctrl+C)."""


class _Stopped(Exception):
    """The run's :class:`RunWatcher` asked it to stop."""


def _in_main_thread() -> bool:
    """Signal handlers can be set only there; a run in another thread (a Tune trial's) is stopped by its watcher."""
    return threading.current_thread() is threading.main_thread()


class _StopRequest:
    """Turns the first SIGTERM (a Ray job stop, a container stop) or SIGINT into KeyboardInterrupt while training,
    and ignores the ones after it until the run has saved and stopped: a second Ctrl+C cannot cut the save short.

    SIGINT gets this handler even when the run was started with SIGINT ignored (a background job of a script), so
    that Ctrl+C and ``kill -INT`` always stop the run cleanly. Outside the main thread it does nothing."""

    def __enter__(self) -> None:
        self._active = _in_main_thread()
        if self._active:
            self._previous_term = signal.signal(signal.SIGTERM, self._raise)
            self._previous_int = signal.signal(signal.SIGINT, self._raise)

    def __exit__(self, *exc_info: object) -> None:
        if self._active:
            signal.signal(signal.SIGTERM, self._previous_term)
            signal.signal(signal.SIGINT, self._previous_int)

    @staticmethod
    def _raise(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt


class TrainingRun:
    """One ``rayagents-learn`` run, from the results folder to the final models.

    Arguments:
        options: the resolved run options.
        view: where progress and messages are shown.
        command_line: the arguments the run was started with (recorded in timers.json).
        watcher: follows the summaries and may stop the run (a Tune trial); None: none.
    """

    def __init__(
        self,
        options: RunOptions,
        view: ConsoleView,
        command_line: Sequence[str] = (),
        watcher: RunWatcher | None = None,
    ) -> None:
        self.seed = resolve_seed(options.env_settings.seed)
        checkpoint = options.checkpoint_settings
        absolute = dataclasses.replace(checkpoint, results_dir=absolute_location(checkpoint.results_dir))
        self.options = resolve_demo_paths(dataclasses.replace(options, checkpoint_settings=absolute))
        self.view = view
        self.command_line = tuple(command_line)
        self.locations = run_locations(absolute.results_dir, absolute.run_id, absolute.initialize_from)
        self.storage = open_results_storage(self.locations)  # a bad URI is a ConfigError here, before Ray starts
        self.write_path = self.locations.write_path
        self.run_logs = player_log_folder(self.locations, absolute.run_id)  # where the players write their logs
        self._status_location = join(self.locations.run_logs, TRAINING_STATUS)
        self.training = not checkpoint.inference
        self.status = TrainingStatus()
        self.curriculum = Curriculum(self.options.environment_parameters or {})
        self.gauges = GaugeRecorder()
        self.tensorboard: TensorBoardWriter | None = None
        self._reporter: ProgressReporter | None = None
        self._learner: Any = None
        self._fleet: EnvFleet | None = None
        self._learner_restarts = 0
        self._learner_node: str | None = None
        self._learned = False
        self.watcher = watcher

    # ---- set up --------------------------------------------------------------------------------------------------
    def _prepare_results(self) -> None:
        """Checks and makes the run's results (a folder or a URI), reads training_status.json back on --resume,
        writes configuration.yaml and opens the TensorBoard writer; a storage error is a ConfigError."""
        checkpoint = self.options.checkpoint_settings
        prepare_run_location(checkpoint, self.locations, self.storage)
        try:
            if checkpoint.resume:
                self.status = TrainingStatus.load(self._status_location, self.storage)
            save_configuration(self.storage, self.write_path, self.options)
        except StorageError as error:
            raise ConfigError(f"--results-dir {redact(self.locations.results_dir)}: {error}") from error
        if not self.locations.is_uri:
            self.tensorboard = TensorBoardWriter(Path(self.write_path), resume=checkpoint.resume)
            return
        self.tensorboard = TensorBoardWriter.staged(self.storage, self.write_path, resume=checkpoint.resume)
        self.view.log(
            f"results go to {redact(self.write_path)}: the learner writes the checkpoints and models there, the "
            f"driver the run logs; TensorBoard events are written to {self.tensorboard.staging_folder} and uploaded "
            f"after each summary; player logs stay on each player's node in {self.run_logs}"
        )

    def _save_status(self) -> None:
        """Writes training_status.json (atomically); a storage error is a warning (the next save writes it all)."""
        try:
            self.status.save(self._status_location, self.storage)
        except StorageError as error:
            self.view.log(f"warning: {error}")

    def _upload_events(self) -> None:
        """Uploads the TensorBoard event files that grew (a URI run); a storage error is a warning (tried again)."""
        if self.tensorboard is None:
            return
        try:
            self.tensorboard.upload()
        except StorageError as error:
            self.view.log(f"warning: the TensorBoard events were not uploaded (tried again later): {error}")

    def _learner_settings(self) -> LearnerSettings:
        checkpoint = self.options.checkpoint_settings
        cluster = self.options.cluster_settings
        return LearnerSettings(
            write_path=self.locations.write_path,
            device=cluster.learner_device or self.options.torch_settings.device,
            seed=self.seed,
            resume=checkpoint.resume,
            init_path=self.locations.init_path if not checkpoint.resume else None,
            training=self.training,
            checkpoints=self._checkpoint_lists(),
            num_threads=max(1, int(cluster.learner_num_cpus)),
        )

    # ---- the run -------------------------------------------------------------------------------------------------
    def run(self) -> TrainingResult:
        """Trains until every behavior reaches max_steps (or Ctrl+C); the final models are written either way."""
        self._prepare_results()
        assert self.tensorboard is not None
        self.curriculum = self._start_curriculum()
        self._reporter = ProgressReporter(
            self.options,
            self.view,
            self.tensorboard,
            self.status,
            self.gauges,
            self._save_status,
            self._upload_events,
            self.curriculum.lesson_scalars,
            None if self.watcher is None else self.watcher.summary,
        )
        import_tensorboardx_in_background()  # a second of imports, done while Ray starts
        connection = connect(self.options)
        start = time.time()
        interrupted = False
        error: BaseException | None = None
        finals: dict[str, Any] = {}
        with _StopRequest():  # through Ray's shutdown: a second Ctrl+C while it stops changes nothing
            try:
                try:
                    self._learner, starting = self._create_learner(restart=False)
                    self._fleet = EnvFleet(
                        self.options,
                        self.seed,
                        str(self.run_logs),
                        PolicyFactory(self.options),
                        self.view.log,
                        self.curriculum.lessons,
                    )
                    self._fleet.launch(self._learner)  # the players start while the learner does
                    try:
                        self._await_learner(self._learner, starting)
                    except BaseException:
                        self._learner = None  # it never ran: there is nothing to save
                        raise
                    if self.options.env_settings.env_path is None:
                        self._wait_for_editor(self._fleet)
                    self._loop(self._fleet, start)
                except (KeyboardInterrupt, _Stopped) as stop:
                    interrupted = True
                    how = "stopped by the sweep" if isinstance(stop, _Stopped) else "interrupted"
                    if self.training:
                        self.view.log(f"Training was {how}: saving the model and stopping the players.")
                    else:
                        self.view.log("Stopping the players.")
                except (
                    RayTaskError,
                    RayActorError,
                    PlayerFailedError,
                    EnvActorLost,
                    LearnerLost,
                    FileNotFoundError,
                ) as failure:
                    error = failure
                finally:
                    finals = self._finish(self._learner, self._fleet, start)
            finally:
                if self.tensorboard is not None:
                    self.tensorboard.close()
                self._shutdown(connection)
        if error is not None:
            checkpointed = {name: records[-1].steps for name, records in self._checkpoint_lists().items() if records}
            raise TrainingFailed(
                _cause(error), learned=self._learned, saved=bool(finals), checkpoint_steps=checkpointed
            ) from error
        steps = {name: record.steps for name, record in finals.items()}
        fleet = self._fleet.status() if self._fleet is not None else None
        return TrainingResult(
            write_path=self.write_path,
            models={name: record.file_path for name, record in finals.items()},
            steps=steps,
            interrupted=interrupted,
            player_restarts=fleet.player_restarts if fleet is not None else 0,
            env_actor_replacements=fleet.replacements if fleet is not None else 0,
            learner_restarts=self._learner_restarts,
            lost_steps=fleet.lost_steps if fleet is not None else 0,
        )

    # ---- curriculum lessons --------------------------------------------------------------------------------------
    def _start_curriculum(self) -> Curriculum:
        """Each environment parameter's lesson to start in: on ``--resume`` the one saved in training_status.json
        (ML-Agents restores it), else the first; says each parameter's lesson and value, as ML-Agents does."""
        parameters = self.options.environment_parameters or {}
        lessons: dict[str, int] = {}
        for key, setting in parameters.items():
            saved = self.status.lesson(key) if self.options.checkpoint_settings.resume else None
            lesson = 0 if saved is None else saved
            last = len(setting.curriculum) - 1
            if not 0 <= lesson <= last:
                self.view.log(
                    f"warning: {TRAINING_STATUS} says environment parameter {key!r} is in lesson {lesson}, but its "
                    f"curriculum has lessons 0 to {last}: it resumes in lesson {min(max(lesson, 0), last)}"
                )
                lesson = min(max(lesson, 0), last)
            lessons[key] = lesson
            self.status.set_lesson(key, lesson)
        curriculum = Curriculum(parameters, lessons)
        for line in curriculum.lines():
            self.view.log(line)
        return curriculum

    def _advance_curriculum(self, progress: LearnerProgress, fleet: EnvFleet) -> None:
        """Feeds a progress poll to the curriculum; on a lesson change says so, saves the lesson in
        training_status.json and sends every EnvActor the new values (resetting the players when the completed
        lesson's criteria ask for it)."""
        figures = {
            state.behavior_name: BehaviorFigures(state.step, state.max_steps, state.returns)
            for state in progress.behaviors
        }
        changes = self.curriculum.update(figures)
        if not changes:
            return
        for change in changes:
            self.view.log(lesson_line(change.parameter, change.name, change.value))
            self.status.set_lesson(change.parameter, change.lesson)
        self._save_status()
        fleet.set_lessons(self.curriculum.lessons, reset=any(change.require_reset for change in changes))

    # ---- the learner ---------------------------------------------------------------------------------------------
    def _start_learner(self, restart: bool) -> Any:
        """Creates the LearnerActor and waits until it runs; a restarted one restores the latest checkpoints."""
        learner, starting = self._create_learner(restart)
        self._await_learner(learner, starting)
        return learner

    def _create_learner(self, restart: bool) -> tuple[Any, Any]:
        """Creates the LearnerActor and asks it to start; returns its handle and the start call's reference. A
        restarted one avoids the lost learner's node when that node no longer answers (a reclaimed machine)."""
        settings = self._learner_settings()
        avoid = None
        if restart:
            settings = dataclasses.replace(settings, resume=True, init_path=None, restart=True)
            if self._learner_node is not None and not node_answers(self._learner_node):
                avoid = self._learner_node
        learner = remote_learner().options(**learner_options(self.options, avoid)).remote(self.options, settings)
        return learner, learner.start.remote()

    def _await_learner(self, learner: Any, starting: Any) -> None:
        """Waits until the learner runs; a learner whose node cannot see the results is a refusal (ConfigError)."""
        try:
            started: LearnerStart = ray.get(starting)
        except RayTaskError as error:
            kill_actor(learner)
            if isinstance(error.cause, FileNotFoundError):  # the learner's node cannot see the results: refused
                raise ConfigError(str(error.cause)) from error
            raise
        self._learner_node = started.node_id
        self.view.log(f"learner (pid {started.pid}) on node {started.node_id}, torch device {started.device}")

    def _restart_learner(self, fleet: EnvFleet, lost: RayActorError) -> None:
        """Replaces a lost learner by one restored from the latest checkpoints, within ``--learner-max-restarts``
        (a new learner lost while it starts counts as another restart); the EnvActors carry on with it."""
        limit = self.options.cluster_settings.learner_max_restarts
        began = time.monotonic()
        while True:
            if 0 <= limit <= self._learner_restarts:
                raise LearnerLost(
                    f"the learner was lost {self._learner_restarts + 1} times (--learner-max-restarts {limit}): "
                    f"{first_line(lost)}"
                ) from lost
            self._learner_restarts += 1
            self.view.log(
                f"warning: the learner was lost ({first_line(lost)}); restarting it from the latest checkpoint"
            )
            kill_actor(self._learner)
            self._reconcile_checkpoints()
            try:
                self._learner = self._start_learner(restart=True)
                break
            except RayActorError as again:
                lost = again
        restored = {name: (records[-1].steps if records else 0) for name, records in self._checkpoint_lists().items()}
        last_steps = self._reporter.last_steps if self._reporter is not None else {}
        lost_steps = sum(max(0, step - restored.get(name, 0)) for name, step in last_steps.items())
        fleet.set_learner(self._learner, lost_steps)
        where = ", ".join(f"{name} at step {step}" for name, step in restored.items()) or "no checkpoint: from step 0"
        self.view.log(
            f"learner restarted in {time.monotonic() - began:.1f} s ({where}); "
            f"{lost_steps} steps trained since the last checkpoint were lost"
        )

    def _checkpoint_lists(self) -> dict[str, tuple[Any, ...]]:
        """The checkpoints each behavior has written so far (what a restarted learner restores)."""
        return {name: tuple(self.status.checkpoints(name)) for name in self.status.behavior_names()}

    def _reconcile_checkpoints(self) -> None:
        """Brings each behavior's checkpoint list up to what the results hold: a lost learner may have written and
        rotated checkpoints after the driver's last progress poll."""
        for name in self.status.behavior_names():
            store = CheckpointStore(self.storage, join(self.write_path, name), name)
            try:
                self.status.set_checkpoints(name, store.reconcile(self.status.checkpoints(name)))
            except StorageError as error:
                self.view.log(f"warning: the checkpoints of {name} could not be listed: {error}")

    # ---- the loop ------------------------------------------------------------------------------------------------
    def _wait_for_editor(self, fleet: EnvFleet) -> None:
        """Editor training: says to press Play once the Editor's EnvActor listens on its port."""
        timeout = float(self.options.env_settings.timeout_wait)
        _wait_for_listener(EDITOR_PORT, timeout=timeout, pending=fleet.first_start())
        self.view.log(
            f"Listening on port {EDITOR_PORT}. Start training by pressing the Play button in the Unity Editor."
        )

    def _loop(self, fleet: EnvFleet, start: float) -> None:
        """Keeps the EnvActors collecting and asks the learner for its progress every ``PROGRESS_INTERVAL_S`` (at
        once when an EnvActor reports the training done or the learner lost) until the training is done.

        The progress call is not waited for: the learner answers between two of its updates, and an update may take
        longer than a collect call (about a second of HalfCheetah's PPO on one core). Waiting for it left the
        EnvActors whose calls returned meanwhile without their next call, and a core idle."""
        next_progress = 0.0
        asked: Any = None  # the progress call in flight
        lost_reported = False  # an EnvActor could not reach the learner: an answer shows it is still there
        while True:
            polled = fleet.poll(timeout=POLL_S, also=() if asked is None else (asked,))
            if self.watcher is not None and self.watcher.stop_requested():
                raise _Stopped
            now = time.monotonic()
            if polled.training_done or polled.learner_lost:
                next_progress = now  # ask at once (once the call in flight, if any, is answered)
            lost_reported = lost_reported or polled.learner_lost
            if asked is None and now >= next_progress:
                asked = self._learner.progress.remote()
                next_progress = now + (
                    PROGRESS_INTERVAL_S if self.curriculum.in_last_lessons else CURRICULUM_PROGRESS_INTERVAL_S
                )
            if asked is None or not ray.wait([asked], timeout=0)[0]:
                continue
            try:
                progress: LearnerProgress = ray.get(asked)
            except RayActorError as lost:
                asked, lost_reported = None, False
                self._restart_learner(fleet, lost)
                continue
            asked = None
            if lost_reported:  # the learner answers: an EnvActor lost only its weights; it carries on
                fleet.set_learner(self._learner, 0)
                lost_reported = False
            self._show(progress, time.time() - start, fleet)
            self._advance_curriculum(progress, fleet)
            if progress.training_done:
                return

    def _show(self, progress: LearnerProgress, elapsed: float, fleet: EnvFleet | None) -> None:
        """Reports a progress poll on the console, in TensorBoard and in training_status.json."""
        self._learned = self._learned or any(state.version > 0 for state in progress.behaviors)
        if self._reporter is not None:
            figures = None if fleet is None else ClusterFigures(fleet.status(), self._learner_restarts)
            self._reporter.show(progress, elapsed, figures)

    # ---- the end -------------------------------------------------------------------------------------------------
    def _save_timeout(self) -> float:
        """How long to wait for the learner's final save: longer for a URI, longest with a replay buffer saved."""
        configured = [*self.options.behaviors.values(), *filter(None, [self.options.default_settings])]
        if any(getattr(s.hyperparameters, "save_replay_buffer", False) for s in configured):
            return SAVE_TIMEOUT_REPLAY_S
        return SAVE_TIMEOUT_URI_S if self.locations.is_uri else SAVE_TIMEOUT_S

    def _finish(self, learner: Any, fleet: EnvFleet | None, start: float) -> dict[str, Any]:
        """Saves the final models and the run logs first (a stopped Ray job is killed seconds after its SIGTERM),
        then stops the players. Runs on every way out of the loop."""
        finals: dict[str, Any] = {}
        with _IgnoreInterrupts():
            if learner is not None:
                timeout = self._save_timeout()
                try:
                    last: LearnerProgress = ray.get(learner.progress.remote(), timeout=timeout)
                    self._show(last, time.time() - start, fleet)
                    finals = ray.get(learner.save.remote(), timeout=timeout)
                    saved: LearnerProgress = ray.get(learner.progress.remote(), timeout=timeout)
                    for name, records in saved.checkpoints.items():
                        self.status.set_checkpoints(name, records)
                    for name, elo in saved.elos.items():
                        self.status.set_value(name, ELO_KEY, elo)
                except (GetTimeoutError, RayActorError, RayTaskError) as error:
                    self.view.log(f"error: the final model could not be saved: {_cause(error)}")
                    self._reconcile_checkpoints()
                for name, record in finals.items():
                    self.status.set_final(name, record)
                    self.view.log(f"Exported {redact(record.file_path)} (step {record.steps})")
            self._save_status()
            try:
                save_configuration(self.storage, self.write_path, self.options)
                write_timers(
                    join(self.locations.run_logs, TIMERS),
                    self.gauges,
                    start_time=start,
                    end_time=time.time(),
                    command_line=self.command_line,
                    storage=self.storage,
                )
            except StorageError as error:
                self.view.log(f"error: {error}")
            self._upload_events()
            if fleet is not None:
                fleet.close(CLOSE_TIMEOUT_S)
            if learner is not None:
                kill_actor(learner)
        return finals

    @staticmethod
    def _shutdown(connection: RayConnection) -> None:
        if connection.started_here:
            ray.shutdown()


def _wait_for_listener(port: int, timeout: float, pending: Any) -> None:
    """Waits until something listens on ``127.0.0.1:port`` (the Editor's EnvActor, on this node), so that the
    message asking for Play comes when pressing it works. Returns early if ``pending`` (the actor's start) ends."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            done, _ = ray.wait([pending], timeout=0.2)
            if done:
                return


class _IgnoreInterrupts:
    """Holds off a second Ctrl+C while the final model is saved (it would lose what was learned)."""

    def __enter__(self) -> None:
        self._active = _in_main_thread()
        if self._active:
            self._int = signal.signal(signal.SIGINT, signal.SIG_IGN)
            self._term = signal.signal(signal.SIGTERM, signal.SIG_IGN)

    def __exit__(self, *exc_info: object) -> None:
        if self._active:
            signal.signal(signal.SIGINT, self._int)
            signal.signal(signal.SIGTERM, self._term)


def _cause(error: BaseException) -> str:
    """The message of the error behind a Ray error (a PlayerFailedError raised in an EnvActor, say)."""
    if isinstance(error, RayTaskError):
        cause = error.cause
        if cause is not None:
            return str(cause)
    return str(error)


__all__ = ["LearnerLost", "RunWatcher", "TrainingFailed", "TrainingResult", "TrainingRun"]
