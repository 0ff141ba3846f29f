"""What the user sees of a run's progress: summary lines and the live table, TensorBoard, training_status.json.

The driver hands each :class:`LearnerProgress` it polls to :meth:`ProgressReporter.show` with the EnvActors'
figures: the summaries become ML-Agents' summary lines and TensorBoard events (each behavior's statistics under
ML-Agents' tags, with the ``Cluster/`` figures beside them), new checkpoint lists go to ``training_status.json``,
and the live table is redrawn.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import yaml

from rayagents.cluster.console import BehaviorProgress, ClusterProgress, ConsoleView, cluster_line, summary_line
from rayagents.cluster.fleet import FleetStatus
from rayagents.cluster.tensorboard import TensorBoardWriter, gauges_from_summary
from rayagents.cluster.timers import GaugeRecorder
from rayagents.cluster.training_status import ELO_KEY, TrainingStatus
from rayagents.configs import RunOptions, TrainerSettings, to_dict
from rayagents.learner.learner_messages import LearnerProgress
from rayagents.learner.summaries import CUMULATIVE_REWARD, ELO_STAT, GROUP_CUMULATIVE_REWARD, POLICY_LAG, TrainerSummary

CLUSTER_ENV_ACTORS_UP = "Cluster/Env Actors Up"
"""TensorBoard tag: EnvActors whose player runs."""
CLUSTER_REPLACEMENTS = "Cluster/Env Actor Replacements"
"""TensorBoard tag: EnvActors replaced after a loss, over the run."""
CLUSTER_PLAYER_RESTARTS = "Cluster/Player Restarts"
"""TensorBoard tag: players restarted, over the run."""
CLUSTER_LEARNER_RESTARTS = "Cluster/Learner Restarts"
"""TensorBoard tag: learner restarts, over the run."""
CLUSTER_LOST_STEPS = "Cluster/Lost Steps"
"""TensorBoard tag: experiences lost to failures, over the run."""
CLUSTER_THROTTLED = "Cluster/Env Actors Throttled"
"""TensorBoard tag: the share of recent wall time the EnvActors waited for the learner to make the updates due
(SAC's ``steps_per_update``): near 1, the learner sets the pace."""
LEARNER_BOUND_SHARE = 0.5
"""From this throttled share on, the cluster line says the run is learner-bound ..."""
LEARNER_FREE_SHARE = 0.2
"""... until the share falls below this one (so that a share near the first does not make the line flap)."""


@dataclass(frozen=True)
class ClusterFigures:
    """The cluster's side of a progress report."""

    fleet: FleetStatus
    """The EnvActors' figures."""
    learner_restarts: int
    """Learner restarts over the run."""

    def scalars(self) -> dict[str, float]:
        """The ``Cluster/`` statistics written beside each behavior's."""
        return {
            CLUSTER_ENV_ACTORS_UP: float(self.fleet.up),
            CLUSTER_REPLACEMENTS: float(self.fleet.replacements),
            CLUSTER_PLAYER_RESTARTS: float(self.fleet.player_restarts),
            CLUSTER_LEARNER_RESTARTS: float(self.learner_restarts),
            CLUSTER_LOST_STEPS: float(self.fleet.lost_steps),
        }


class StepRates:
    """How fast a count grows (each behavior's steps; the seconds the EnvActors were throttled), over the last few
    progress polls."""

    def __init__(self, window_s: float = 10.0) -> None:
        """``window_s``: how far back the rate looks."""
        self._window_s = window_s
        self._history: dict[str, list[tuple[float, float]]] = {}

    def add(self, name: str, now: float, step: float) -> float:
        """Records count ``step`` of ``name`` at monotonic time ``now``; returns its recent rate."""
        history = self._history.setdefault(name, [])
        history.append((now, step))
        while len(history) > 2 and now - history[0][0] > self._window_s:
            history.pop(0)
        (t0, s0), (t1, s1) = history[0], history[-1]
        return (s1 - s0) / (t1 - t0) if t1 > t0 else 0.0


def dump_yaml_section(settings: TrainerSettings) -> str:
    """A behavior's trainer settings as YAML (the TensorBoard ``Hyperparameters`` text)."""
    return yaml.safe_dump(to_dict(settings), sort_keys=False)


class ProgressReporter:
    """Turns the learner's progress into console lines, TensorBoard events and ``training_status.json``.

    Without the live table (not a terminal: a Ray job's log, CI) the cluster's line is logged whenever it changes,
    so that EnvActors starting, lost and replaced, restarts and lost steps show in the log too.

    Arguments:
        options: the run options (each behavior's hyperparameters for TensorBoard).
        view: the console.
        tensorboard: the run's event writer.
        status: the run's ``training_status.json`` contents (updated in place).
        gauges: the gauges of ``timers.json``.
        save_status: writes ``status`` out.
        upload_events: uploads new events (a URI run).
        environment_scalars: more statistics written with every summary of every behavior (the curriculum's
            ``Environment/Lesson Number/<parameter>``), asked for at each summary.
        summary_listener: called with each summary once it is written (a Tune trial reports it); None: none.
    """

    def __init__(
        self,
        options: RunOptions,
        view: ConsoleView,
        tensorboard: TensorBoardWriter,
        status: TrainingStatus,
        gauges: GaugeRecorder,
        save_status: Callable[[], None],
        upload_events: Callable[[], None],
        environment_scalars: Callable[[], Mapping[str, float]] = dict,
        summary_listener: Callable[[TrainerSummary], None] | None = None,
    ) -> None:
        self.options = options
        self.view = view
        self.tensorboard = tensorboard
        self.status = status
        self.gauges = gauges
        self._save_status = save_status
        self._upload_events = upload_events
        self._environment_scalars = environment_scalars
        self._summary_listener = summary_listener
        self._last_summary: dict[str, TrainerSummary] = {}
        self._last_steps: dict[str, int] = {}
        self._rates = StepRates()
        self._throttle = StepRates()
        self._throttled_share = 0.0
        self._learner_bound = False
        self._written_hyperparameters: set[str] = set()
        self._last_cluster_line = ""

    @property
    def last_steps(self) -> dict[str, int]:
        """Each behavior's step at the last report."""
        return dict(self._last_steps)

    def show(self, progress: LearnerProgress, elapsed: float, cluster: ClusterFigures | None) -> None:
        """Reports one progress poll, ``elapsed`` seconds into the run."""
        for state in progress.behaviors:
            self._last_steps[state.behavior_name] = state.step
        self._throttled_share = min(1.0, self._throttle.add("learner", time.monotonic(), progress.throttled_s))
        threshold = LEARNER_FREE_SHARE if self._learner_bound else LEARNER_BOUND_SHARE
        self._learner_bound = self._throttled_share >= threshold
        for message in progress.messages:
            self.view.log(f"warning: {message}")
        for summary in progress.summaries:
            self._write_summary(summary, elapsed, cluster)
        for name, records in progress.checkpoints.items():
            if records != tuple(self.status.checkpoints(name)):
                self.status.set_checkpoints(name, records)
                self._save_status()
        for name, elo in progress.elos.items():
            if self.status.value(name, ELO_KEY) != elo:
                self.status.set_value(name, ELO_KEY, elo)
                self._save_status()
        if progress.summaries:
            self._upload_events()
        if cluster is not None:
            state = _cluster_progress(cluster, elapsed, self._learner_bound)
            self.view.update(self._behaviors(progress), state)
            line = cluster_line(state)
            if not self.view.is_live and line != self._last_cluster_line:
                self.view.log(line)
            self._last_cluster_line = line

    def _behaviors(self, progress: LearnerProgress) -> list[BehaviorProgress]:
        now = time.monotonic()
        rows = []
        for state in progress.behaviors:
            last = self._last_summary.get(state.behavior_name)
            returns = last.cumulative_rewards if last is not None else ()
            rows.append(
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
        return rows

    def _write_summary(self, summary: TrainerSummary, elapsed: float, cluster: ClusterFigures | None) -> None:
        name = summary.behavior_name
        if name not in self._written_hyperparameters:
            settings = self.options.behaviors.get(name, self.options.default_settings or TrainerSettings())
            self.tensorboard.write_hyperparameters(name, dump_yaml_section(settings))
            self._written_hyperparameters.add(name)
        scalars = {**summary.scalars, **(cluster.scalars() if cluster is not None else {})}
        scalars[CLUSTER_THROTTLED] = self._throttled_share
        scalars.update(self._environment_scalars())
        self.tensorboard.write(name, summary.step, scalars, {CUMULATIVE_REWARD: summary.cumulative_rewards})
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
                summary.scalars.get(GROUP_CUMULATIVE_REWARD),
                summary.scalars.get(ELO_STAT),
            )
        )
        self._last_summary[name] = summary
        if self._summary_listener is not None:
            self._summary_listener(summary)


def _cluster_progress(cluster: ClusterFigures, elapsed: float, learner_bound: bool) -> ClusterProgress:
    fleet = cluster.fleet
    return ClusterProgress(
        env_actors_up=fleet.up,
        env_actors_restarting=fleet.starting,
        env_actors_total=fleet.total,
        player_restarts=fleet.player_restarts,
        elapsed_s=elapsed,
        env_actor_replacements=fleet.replacements,
        learner_restarts=cluster.learner_restarts,
        lost_steps=fleet.lost_steps,
        learner_bound=learner_bound,
    )

