"""The driver of a training run: the results folder, the actors on Ray, the supervision loop, the files at the end.

In the order mlagents-learn sets a run up: the results folder is checked and made (``--resume``/``--force``),
``training_status.json`` read back on resume, ``configuration.yaml`` written; then Ray: one LearnerActor and
``--num-envs`` EnvActors (each launches its player). The loop keeps one :meth:`EnvActor.collect` call in flight
per EnvActor (they stream trajectories to the learner themselves) and every second asks the learner for its
progress: summaries go to TensorBoard and the console, checkpoint lists to ``training_status.json``. It ends when
every trainer reaches ``max_steps``, on Ctrl+C, or when a player fails past its restart budget; in each case the
learner writes a final checkpoint and ``<behavior>.onnx``, the players are stopped and ``timers.json`` and
``training_status.json`` are written.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import signal
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import ray
from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError

from rayagents.actors.environment import DEFAULT_EDITOR_PORT as EDITOR_PORT
from rayagents.actors.env_actor import (
    BehaviorPlay,
    CollectReport,
    EnvActor,
    EnvActorSettings,
    PlayerFailedError,
    PlayerInfo,
)
from rayagents.cluster.console import BehaviorProgress, ClusterProgress, ConsoleView, summary_line
from rayagents.cluster.placement import RayConnection, connect, env_actor_options, learner_options
from rayagents.cluster.run_directory import prepare_run_directory, write_configuration
from rayagents.cluster.support import run_refusal
from rayagents.cluster.tensorboard import TensorBoardWriter, gauges_from_summary
from rayagents.cluster.timers import GaugeRecorder, write_timers
from rayagents.cluster.training_status import TrainingStatus
from rayagents.configs import ConfigError, RunOptions, TrainerSettings, dump_yaml, to_dict
from rayagents.learner.learner_actor import LearnerActor, LearnerProgress, LearnerSettings
from rayagents.learner.policy import InferencePolicyFactory
from rayagents.learner.trainer import CUMULATIVE_REWARD, POLICY_LAG, TrainerSummary

logger = logging.getLogger(__name__)

TRAINING_STATUS = "training_status.json"
"""The file in ``run_logs/`` that records the checkpoints (and what ``--resume`` reads back)."""
TIMERS = "timers.json"
"""The file in ``run_logs/`` with the gauges of the run."""
PROGRESS_INTERVAL_S = 1.0
"""How often the driver asks the learner for its progress."""
SAVE_TIMEOUT_S = 10.0
"""How long the driver waits for the learner's final checkpoint."""
CLOSE_TIMEOUT_S = 3.0
"""How long the driver waits for the players to say goodbye before their actors are killed."""


@dataclass(frozen=True)
class TrainingResult:
    """How a run ended."""

    write_path: Path
    """The run's results folder."""
    models: dict[str, Path]
    """The final ``<behavior>.onnx`` of each behavior."""
    steps: dict[str, int]
    """Each behavior's final step."""
    interrupted: bool
    """The run was stopped with Ctrl+C (or SIGTERM) before it reached max_steps."""
    player_restarts: int
    """Player restarts over the run."""


class TrainingFailed(RuntimeError):
    """The run stopped on an error it could not recover from (the model was saved first)."""


class EnvActorLost(RuntimeError):
    """An EnvActor was lost more often than ``--max-lifetime-restarts`` allows."""


def resolve_seed(seed: int) -> int:
    """The run's seed: the given one, or (``-1``) a random one in 0..9999 as mlagents-learn picks."""
    return seed if seed != -1 else random.randint(0, 9999)


def behavior_play(settings: TrainerSettings) -> BehaviorPlay:
    """How an EnvActor plays a behavior with these trainer settings."""
    return BehaviorPlay(time_horizon=settings.time_horizon, on_policy=not settings.threaded)


def env_actor_settings(options: RunOptions, index: int, seed: int, log_folder: Path) -> EnvActorSettings:
    """The settings of EnvActor ``index``: its player, its seed (each actor's areas get their own seeds)."""
    env = options.env_settings
    default = options.default_settings if options.default_settings is not None else TrainerSettings()
    return EnvActorSettings(
        index=index,
        env_path=env.env_path,
        behaviors={name: behavior_play(s) for name, s in options.behaviors.items()},
        default_behavior=behavior_play(default),
        num_areas=env.num_areas,
        seed=seed + index * env.num_areas,
        timeout_wait=float(env.timeout_wait),
        env_args=tuple(env.env_args or ()),
        no_graphics=options.engine_settings.no_graphics,
        log_folder=str(log_folder),
        engine=options.engine_settings,
        environment_parameters=dict(options.environment_parameters or {}),
        max_lifetime_restarts=env.max_lifetime_restarts,
        restarts_rate_limit_n=env.restarts_rate_limit_n,
        restarts_rate_limit_period_s=float(env.restarts_rate_limit_period_s),
    )


class _StopRequest:
    """Turns SIGTERM (a Ray job stop, a container stop) and SIGINT into KeyboardInterrupt while training.

    SIGINT gets Python's own handler even when the run was started with SIGINT ignored (a background job of a
    script), so that Ctrl+C and ``kill -INT`` always stop the run cleanly."""

    def __enter__(self) -> None:
        self._previous_term = signal.signal(signal.SIGTERM, self._raise)
        self._previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)

    def __exit__(self, *exc_info: object) -> None:
        signal.signal(signal.SIGTERM, self._previous_term)
        signal.signal(signal.SIGINT, self._previous_int)

    @staticmethod
    def _raise(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt


class _Rates:
    """Steps per second of each behavior, over the last few progress polls."""

    def __init__(self, window_s: float = 10.0) -> None:
        self._window_s = window_s
        self._history: dict[str, list[tuple[float, int]]] = {}

    def add(self, name: str, now: float, step: int) -> float:
        history = self._history.setdefault(name, [])
        history.append((now, step))
        while len(history) > 2 and now - history[0][0] > self._window_s:
            history.pop(0)
        (t0, s0), (t1, s1) = history[0], history[-1]
        return (s1 - s0) / (t1 - t0) if t1 > t0 else 0.0


class TrainingRun:
    """One ``rayagents-learn`` run, from the results folder to the final models.

    Arguments:
        options: the resolved run options.
        view: where progress and messages are shown.
        command_line: the arguments the run was started with (recorded in timers.json).
    """

    def __init__(self, options: RunOptions, view: ConsoleView, command_line: Sequence[str] = ()) -> None:
        refusal = run_refusal(options)
        if refusal is not None:
            raise ConfigError(refusal)
        self.seed = resolve_seed(options.env_settings.seed)
        checkpoint = options.checkpoint_settings
        absolute = dataclasses.replace(checkpoint, results_dir=str(Path(checkpoint.results_dir).resolve()))
        self.options = dataclasses.replace(options, checkpoint_settings=absolute)
        self.view = view
        self.command_line = tuple(command_line)
        self.write_path = Path(self.options.checkpoint_settings.write_path)
        self.run_logs = Path(self.options.checkpoint_settings.run_logs_dir)
        self.training = not checkpoint.inference
        self.status = TrainingStatus()
        self.gauges = GaugeRecorder()
        self.tensorboard: TensorBoardWriter | None = None
        self._last_summary: dict[str, TrainerSummary] = {}
        self._rates = _Rates()
        self._reports: dict[int, CollectReport] = {}
        self._written_hyperparameters: set[str] = set()
        self._replacements: dict[int, int] = {}

    # ---- set up --------------------------------------------------------------------------------------------------
    def _prepare_results(self) -> None:
        checkpoint = self.options.checkpoint_settings
        prepare_run_directory(checkpoint)
        if checkpoint.resume:
            self.status = TrainingStatus.load(self.run_logs / TRAINING_STATUS)
        write_configuration(self.write_path, self.options)
        self.tensorboard = TensorBoardWriter(self.write_path, resume=checkpoint.resume)

    def _learner_settings(self) -> LearnerSettings:
        checkpoint = self.options.checkpoint_settings
        cluster = self.options.cluster_settings
        return LearnerSettings(
            write_path=str(self.write_path),
            device=cluster.learner_device or self.options.torch_settings.device,
            seed=self.seed,
            resume=checkpoint.resume,
            init_path=checkpoint.maybe_init_path if not checkpoint.resume else None,
            training=self.training,
            checkpoints={name: tuple(self.status.checkpoints(name)) for name in self.status.behavior_names()},
            num_threads=max(1, int(cluster.learner_num_cpus)),
        )

    # ---- the run -------------------------------------------------------------------------------------------------
    def run(self) -> TrainingResult:
        """Trains until every behavior reaches max_steps (or Ctrl+C); the final models are written either way."""
        self._prepare_results()
        connection = connect(self.options)
        start = time.time()
        interrupted = False
        error: BaseException | None = None
        learner: Any = None
        envs: list[Any] = []
        finals: dict[str, Any] = {}
        try:
            with _StopRequest():
                try:
                    learner = ray.remote(LearnerActor).options(**learner_options(self.options.cluster_settings)).remote(
                        self.options, self._learner_settings()
                    )
                    device, node = ray.get([learner.device.remote(), learner.node_id.remote()])
                    self.view.log(f"learner on node {node}, torch device {device}")
                    envs = self._start_env_actors(learner)
                    self._loop(learner, envs, start)
                except KeyboardInterrupt:
                    interrupted = True
                    if self.training:
                        self.view.log("Training was interrupted: saving the model and stopping the players.")
                    else:
                        self.view.log("Stopping the players.")
                except (RayTaskError, RayActorError, PlayerFailedError, EnvActorLost, FileNotFoundError) as failure:
                    error = failure
                finally:
                    finals = self._finish(learner, envs, start)
        finally:
            if self.tensorboard is not None:
                self.tensorboard.close()
            self._shutdown(connection)
        if error is not None:
            raise TrainingFailed(_cause(error)) from error
        steps = {name: record.steps for name, record in finals.items()}
        return TrainingResult(
            write_path=self.write_path,
            models={name: Path(record.file_path) for name, record in finals.items()},
            steps=steps,
            interrupted=interrupted,
            player_restarts=sum(r.player_restarts for r in self._reports.values()),
        )

    def _new_env_actor(self, index: int, learner: Any) -> Any:
        """Creates EnvActor ``index`` (its player starts with its first call)."""
        editor = self.options.env_settings.env_path is None
        remote = ray.remote(EnvActor).options(**env_actor_options(self.options.cluster_settings, editor))
        settings = env_actor_settings(self.options, index, self.seed, self.run_logs)
        return remote.remote(settings, learner, InferencePolicyFactory(self.options))

    def _start_env_actors(self, learner: Any) -> list[Any]:
        env = self.options.env_settings
        envs = [self._new_env_actor(index, learner) for index in range(env.num_envs)]
        starting = [actor.start.remote() for actor in envs]
        if env.env_path is None:
            _wait_for_listener(EDITOR_PORT, timeout=float(env.timeout_wait), pending=starting[0])
            self.view.log(
                f"Listening on port {EDITOR_PORT}. Start training by pressing the Play button in the Unity Editor."
            )
        for info in ray.get(starting):
            self._log_start(info)
        return envs

    def _log_start(self, info: PlayerInfo) -> None:
        self.view.log(
            f"env actor {info.index} (pid {info.actor_pid}) on {info.node} ({info.node_ip}, node {info.node_id}): "
            f"player pid {info.pid}, "
            f"port {info.port}, log {info.log_path}"
        )

    def _replace(self, envs: list[Any], index: int, learner: Any, lost: RayActorError) -> Any:
        """A new EnvActor in place of a lost one (its node went away, its process was killed), within
        ``--max-lifetime-restarts`` per EnvActor; returns the call that starts its player."""
        replaced = self._replacements.get(index, 0)
        limit = self.options.env_settings.max_lifetime_restarts
        if 0 <= limit <= replaced:
            raise EnvActorLost(
                f"env actor {index} was lost {replaced + 1} times (--max-lifetime-restarts {limit}): {lost}"
            ) from lost
        self._replacements[index] = replaced + 1
        self.view.log(f"warning: env actor {index} was lost and is replaced ({_first_line(lost)})")
        try:
            ray.kill(envs[index])
        except (RayActorError, ValueError):
            pass
        envs[index] = self._new_env_actor(index, learner)
        return envs[index].start.remote()

    def _loop(self, learner: Any, envs: list[Any], start: float) -> None:
        in_flight = {actor.collect.remote(): index for index, actor in enumerate(envs)}
        starting: dict[Any, int] = {}
        next_progress = 0.0
        while True:
            ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=0.2)
            done = False
            for ref in ready:
                index = in_flight.pop(ref)
                try:
                    report: CollectReport = ray.get(ref)
                except RayActorError as lost:
                    starting[self._replace(envs, index, learner, lost)] = index
                    in_flight[envs[index].collect.remote()] = index
                    continue
                self._reports[index] = report
                if report.player_failed:
                    self.view.log(f"warning: {report.player_failed}")
                done = done or report.training_done
                if not report.training_done:
                    in_flight[envs[index].collect.remote()] = index
            if starting:
                started, _ = ray.wait(list(starting), num_returns=len(starting), timeout=0)
                for ref in started:
                    starting.pop(ref)
                    try:
                        self._log_start(ray.get(ref))
                    except RayActorError:
                        pass  # lost again: its collect call says so
            now = time.monotonic()
            if done or now >= next_progress:
                next_progress = now + PROGRESS_INTERVAL_S
                progress: LearnerProgress = ray.get(learner.progress.remote())
                self._show(progress, time.time() - start, len(envs))
                if progress.training_done:
                    return

    # ---- progress ------------------------------------------------------------------------------------------------
    def _show(self, progress: LearnerProgress, elapsed: float, num_envs: int) -> None:
        for message in progress.messages:
            self.view.log(f"warning: {message}")
        for summary in progress.summaries:
            self._write_summary(summary, elapsed)
        for name, records in progress.checkpoints.items():
            if records != tuple(self.status.checkpoints(name)):
                self.status.set_checkpoints(name, records)
                self.status.save(self.run_logs / TRAINING_STATUS)
        now = time.monotonic()
        behaviors = []
        for state in progress.behaviors:
            last = self._last_summary.get(state.behavior_name)
            returns = last.cumulative_rewards if last is not None else ()
            behaviors.append(
                BehaviorProgress(
                    behavior_name=state.behavior_name,
                    step=state.step,
                    max_steps=state.max_steps,
                    mean_reward=float(np.mean(returns)) if returns else None,
                    std_reward=float(np.std(returns)) if returns else None,
                    steps_per_second=self._rates.add(state.behavior_name, now, state.step),
                    policy_lag=float(last.scalars.get(POLICY_LAG, 0.0)) if last is not None else 0.0,
                    dropped_steps=state.dropped_steps,
                    training=state.training,
                )
            )
        failed_now = sum(1 for r in self._reports.values() if r.player_failed)
        self.view.update(
            behaviors,
            ClusterProgress(
                env_actors_up=num_envs - failed_now,
                env_actors_restarting=failed_now,
                env_actors_total=num_envs,
                player_restarts=sum(r.player_restarts for r in self._reports.values()),
                elapsed_s=elapsed,
            ),
        )

    def _write_summary(self, summary: TrainerSummary, elapsed: float) -> None:
        name = summary.behavior_name
        assert self.tensorboard is not None
        if name not in self._written_hyperparameters:
            settings = self.options.behaviors.get(name, self.options.default_settings or TrainerSettings())
            self.tensorboard.write_hyperparameters(name, dump_yaml_section(settings))
            self._written_hyperparameters.add(name)
        self.tensorboard.write(
            name, summary.step, summary.scalars, {CUMULATIVE_REWARD: summary.cumulative_rewards}
        )
        for gauge, value in gauges_from_summary(name, summary.scalars).items():
            self.gauges.record(gauge, value)
        returns = summary.cumulative_rewards
        self.view.log(
            summary_line(
                name,
                summary.step,
                elapsed,
                float(np.mean(returns)) if returns else None,
                float(np.std(returns)) if returns else None,
                summary.training,
            )
        )
        self._last_summary[name] = summary

    # ---- the end -------------------------------------------------------------------------------------------------
    def _finish(self, learner: Any, envs: list[Any], start: float) -> dict[str, Any]:
        """Saves the final models and the run logs first (a stopped Ray job is killed seconds after its SIGTERM),
        then stops the players. Runs on every way out of the loop."""
        finals: dict[str, Any] = {}
        with _IgnoreInterrupts():
            if learner is not None:
                try:
                    last: LearnerProgress = ray.get(learner.progress.remote(), timeout=SAVE_TIMEOUT_S)
                    self._show(last, time.time() - start, len(envs))
                    finals = ray.get(learner.save.remote(), timeout=SAVE_TIMEOUT_S)
                    saved: LearnerProgress = ray.get(learner.progress.remote(), timeout=SAVE_TIMEOUT_S)
                    for name, records in saved.checkpoints.items():
                        self.status.set_checkpoints(name, records)
                except (GetTimeoutError, RayActorError, RayTaskError) as error:
                    self.view.log(f"error: the final model could not be saved: {_cause(error)}")
                for name, record in finals.items():
                    self.status.set_final(name, record)
                    self.view.log(f"Exported {record.file_path} (step {record.steps})")
            self.status.save(self.run_logs / TRAINING_STATUS)
            write_configuration(self.write_path, self.options)
            write_timers(
                self.run_logs / TIMERS,
                self.gauges,
                start_time=start,
                end_time=time.time(),
                command_line=self.command_line,
            )
            if envs:
                closing = [actor.close.remote() for actor in envs]
                try:
                    ray.get(closing, timeout=CLOSE_TIMEOUT_S)
                except (GetTimeoutError, RayActorError, RayTaskError):
                    pass
                for actor in envs:
                    ray.kill(actor)
            if learner is not None:
                ray.kill(learner)
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
        self._int = signal.signal(signal.SIGINT, signal.SIG_IGN)
        self._term = signal.signal(signal.SIGTERM, signal.SIG_IGN)

    def __exit__(self, *exc_info: object) -> None:
        signal.signal(signal.SIGINT, self._int)
        signal.signal(signal.SIGTERM, self._term)


def dump_yaml_section(settings: TrainerSettings) -> str:
    """A behavior's trainer settings as YAML (the TensorBoard ``Hyperparameters`` text)."""
    import yaml

    return yaml.safe_dump(to_dict(settings), sort_keys=False)


def _first_line(error: BaseException) -> str:
    """The first line of an error's message (Ray's actor errors carry long explanations)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _cause(error: BaseException) -> str:
    """The message of the error behind a Ray error (a PlayerFailedError raised in an EnvActor, say)."""
    if isinstance(error, RayTaskError):
        cause = error.cause
        if cause is not None:
            return str(cause)
    return str(error)


__all__ = ["TrainingFailed", "TrainingResult", "TrainingRun", "dump_yaml"]
