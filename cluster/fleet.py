"""The EnvActors of a run: started, kept collecting, replaced when lost, handed a restarted learner.

The driver creates an :class:`EnvFleet`, calls :meth:`EnvFleet.launch` once and then :meth:`EnvFleet.poll` in its
loop. The fleet is elastic:

- All ``--num-envs`` EnvActors are asked for at once (and the cluster's autoscaler is told what they need with
  ``ray.autoscaler.sdk.request_resources``), but training starts as soon as ``min_envs`` of them are up; the
  others join as their nodes arrive. While fewer than ``min_envs`` are up no new collect call is made.
- An EnvActor that is lost (its node went away, its process was killed) is replaced by a new one with the same
  index, at most ``--max-lifetime-restarts`` times per index; the experiences it held are counted as lost.
- When the learner is lost, each EnvActor says so in its report and waits; :meth:`EnvFleet.set_learner` hands
  them the restarted one.
- When a curriculum lesson changes, :meth:`EnvFleet.set_lessons` tells every EnvActor (between two of its collect
  calls); an EnvActor created later (a replacement, one joining late) starts in the current lessons.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ray
from ray.autoscaler.sdk import request_resources
from ray.exceptions import GetTimeoutError, RayActorError, RayTaskError

from rayagents.actors.env_actor import (
    BehaviorPlay,
    CollectReport,
    EnvActor,
    EnvActorSettings,
    PlayerInfo,
    PolicyFactory,
)
from rayagents.cluster.placement import (
    env_actor_bundle,
    env_actor_options,
    in_placement_group,
    kill_actor,
    node_answers,
)
from rayagents.configs import RunOptions, TrainerSettings
from rayagents.learner.registry import play_rules
from rayagents.protocol.exceptions import first_line

logger = logging.getLogger(__name__)


class EnvActorLost(RuntimeError):
    """An EnvActor was lost more often than ``--max-lifetime-restarts`` allows."""


def behavior_play(settings: TrainerSettings) -> BehaviorPlay:
    """How an EnvActor plays a behavior with these trainer settings."""
    return BehaviorPlay(time_horizon=settings.time_horizon, groupmates=play_rules(settings).groupmates)


def env_actor_settings(
    options: RunOptions, index: int, seed: int, log_folder: str | None, lessons: Mapping[str, int] | None = None
) -> EnvActorSettings:
    """The settings of EnvActor ``index``: its player, its seed (each actor's areas get their own seeds), the
    curriculum ``lessons`` its player starts in (the run's current ones; None: every parameter's first)."""
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
        log_folder=log_folder,
        engine=options.engine_settings,
        environment_parameters=dict(options.environment_parameters or {}),
        lessons=dict(lessons or {}),
        max_lifetime_restarts=env.max_lifetime_restarts,
        restarts_rate_limit_n=env.restarts_rate_limit_n,
        restarts_rate_limit_period_s=float(env.restarts_rate_limit_period_s),
    )


def env_actor_bundles(options: RunOptions) -> list[dict[str, float]]:
    """What each EnvActor reserves, one bundle per actor, for the autoscaler."""
    bundle = env_actor_bundle(options.cluster_settings)
    return [dict(bundle) for _ in range(options.env_settings.num_envs)] if bundle else []


@dataclass(frozen=True)
class FleetStatus:
    """How the EnvActors stand (the console's and TensorBoard's ``Cluster/`` figures)."""

    up: int
    """EnvActors whose player runs and that play for the current learner (not waiting for a restarted one)."""
    starting: int
    """EnvActors asked for and not up yet (waiting for a node, launching their player)."""
    total: int
    """EnvActors the run wants (``--num-envs``)."""
    replacements: int
    """EnvActors replaced after a loss, over the run."""
    player_restarts: int
    """Players restarted by their EnvActor, over the run."""
    lost_steps: int
    """Experiences dropped by player failures, lost EnvActors and a lost learner, over the run (a lower bound:
    what a lost EnvActor collected after its last report is not known)."""


@dataclass(frozen=True)
class FleetPoll:
    """What one :meth:`EnvFleet.poll` saw."""

    training_done: bool
    """An EnvActor learned from the learner that every trainer reached its max_steps."""
    learner_lost: bool
    """An EnvActor could not reach the learner."""


@dataclass
class _Member:
    """One EnvActor index: its current actor and the calls in flight to it."""

    handle: Any
    start_ref: Any | None
    collect_ref: Any | None = None
    collect_generation: int = 0
    up: bool = False
    waiting_for_learner: bool = False
    done: bool = False
    replacements: int = 0
    report: CollectReport | None = None
    earlier_lost_steps: int = 0
    earlier_player_restarts: int = 0
    node_id: str | None = None
    """The node the actor started on; None until its start call returns."""
    avoid_node: str | None = None
    """The node this actor was asked to avoid: its lost predecessor's, which no longer answered; None for none."""


class EnvFleet:
    """The run's EnvActors.

    Arguments:
        options: the run options (``--num-envs``, ``cluster_settings``, the players).
        seed: the run's seed.
        log_folder: where the players write ``Player-<n>.log``; None: each actor's own temporary folder.
        policy_factory: builds a behavior's policy in an EnvActor.
        log: prints a line on the driver's console.
        lessons: the curriculum lesson each environment parameter starts in (a resumed run's); None: the first.
    """

    def __init__(
        self,
        options: RunOptions,
        seed: int,
        log_folder: str | None,
        policy_factory: PolicyFactory,
        log: Callable[[str], None],
        lessons: Mapping[str, int] | None = None,
    ) -> None:
        self.options = options
        self.seed = seed
        self.log_folder = log_folder
        self.policy_factory = policy_factory
        self.log = log
        cluster_min = options.cluster_settings.min_envs
        self.min_envs = min(cluster_min if cluster_min is not None else 1, options.env_settings.num_envs)
        self._members: list[_Member] = []
        self._learner: Any = None
        self._learner_generation = 0
        self._lost_steps_of_learner = 0
        self._started = False
        self._paused = False
        self._in_group = False
        self._lessons: dict[str, int] = dict(lessons or {})

    # ---- starting ------------------------------------------------------------------------------------------------
    def launch(self, learner: Any) -> None:
        """Asks for every EnvActor (they start their players as soon as Ray places them) and tells the
        autoscaler what they need."""
        self._learner = learner
        self._in_group = in_placement_group()  # a Tune trial: its placement group already asked for the resources
        if not self._in_group:
            self._request_resources(
                env_actor_bundles(self.options), dict(self.options.cluster_settings.env_actor_labels)
            )
        for index in range(self.options.env_settings.num_envs):
            handle = self._new_actor(index)
            self._members.append(_Member(handle=handle, start_ref=handle.start.remote()))
        if self.min_envs < self.options.env_settings.num_envs:
            self.log(
                f"training starts when {self.min_envs} of {self.options.env_settings.num_envs} env actors are up; "
                "the others join as they start"
            )

    def first_start(self) -> Any:
        """The start call of EnvActor 0 (the Editor's listener waits on it)."""
        return self._members[0].start_ref

    def _new_actor(self, index: int, avoid_node: str | None = None) -> Any:
        editor = self.options.env_settings.env_path is None
        remote = ray.remote(EnvActor).options(**env_actor_options(self.options, index, editor, avoid_node))
        settings = env_actor_settings(self.options, index, self.seed, self.log_folder, self._lessons)
        return remote.remote(settings, self._learner, self.policy_factory)

    @staticmethod
    def _request_resources(bundles: list[dict[str, float]], labels: dict[str, str] | None = None) -> None:
        """Tells the autoscaler what the EnvActors need (nodes with ``labels``, when given); replaces the last
        request (an empty list withdraws it)."""
        selectors = [dict(labels) for _ in bundles] if labels and bundles else None
        try:
            request_resources(bundles=bundles, bundle_label_selectors=selectors)
        except Exception as error:  # a hint to the autoscaler: never a reason to stop a run
            logger.info("could not ask the autoscaler for the env actors' resources: %s", error)

    # ---- the loop ------------------------------------------------------------------------------------------------
    def poll(self, timeout: float, also: Sequence[Any] = ()) -> FleetPoll:
        """Waits up to ``timeout`` seconds for a start or collect call to return (or for one of the object refs
        ``also``, the caller's own calls), takes every start or collect that did, and makes the next collect calls.
        Raises what an EnvActor raised (a player past its restart budget) and :class:`EnvActorLost` past the
        replacement budget."""
        self._dispatch()
        calls = {ref: (index, "start") for index, m in enumerate(self._members) if (ref := m.start_ref) is not None}
        calls.update(
            {ref: (index, "collect") for index, m in enumerate(self._members) if (ref := m.collect_ref) is not None}
        )
        done = learner_lost = False
        waited = [*calls, *also]
        if not waited:
            time.sleep(timeout)  # nothing in flight (every actor waits for the learner): no busy loop
            return FleetPoll(training_done=False, learner_lost=False)
        ray.wait(waited, num_returns=1, timeout=timeout)
        ready, _ = ray.wait(list(calls), num_returns=len(calls), timeout=0) if calls else ([], [])
        for ref in ready:
            index, kind = calls[ref]
            member = self._members[index]
            try:
                result = ray.get(ref)
            except RayTaskError:
                raise  # the actor raised: a player past its budget, a policy that does not fit the player
            except RayActorError as lost:
                self._replace(index, lost)
                continue
            if kind == "start":
                member.start_ref = None
                member.up = True
                member.node_id = result.node_id
                self._log_start(result)
                continue
            member.collect_ref = None
            report: CollectReport = result
            if member.report is not None and report.player_pid not in (None, member.report.player_pid):
                self.log(f"env actor {index}: its player runs again, player pid {report.player_pid}")
            member.report = report
            if report.player_failed:
                self.log(f"warning: {report.player_failed}")
            if report.learner_lost and member.collect_generation == self._learner_generation:
                member.waiting_for_learner = True  # (a call made before set_learner: the actor has the new one)
                learner_lost = True
            if report.training_done:
                member.done = True
                done = True
        self._dispatch()
        return FleetPoll(training_done=done, learner_lost=learner_lost)

    def _dispatch(self) -> None:
        """Makes a collect call to every up EnvActor without one, while at least ``min_envs`` are up."""
        up = sum(m.up for m in self._members)
        if up < self.min_envs:
            if self._started and not self._paused:
                self.log(f"warning: {up} env actors up, fewer than min_envs {self.min_envs}: training waits")
                self._paused = True
            return
        if not self._started:
            self.log(f"training starts with {up} of {len(self._members)} env actors up")
            self._started = True
        elif self._paused:
            self.log(f"{up} env actors up: training goes on")
            self._paused = False
        for member in self._members:
            if member.up and member.collect_ref is None and not member.waiting_for_learner and not member.done:
                member.collect_ref = member.handle.collect.remote()
                member.collect_generation = self._learner_generation

    def _log_start(self, info: PlayerInfo) -> None:
        self.log(
            f"env actor {info.index} (pid {info.actor_pid}) on {info.node} ({info.node_ip}, node {info.node_id}): "
            f"player pid {info.pid}, port {info.port}, log {info.log_path}"
        )

    def _replace(self, index: int, lost: RayActorError) -> None:
        """A new EnvActor in place of a lost one, within ``--max-lifetime-restarts`` per index."""
        member = self._members[index]
        limit = self.options.env_settings.max_lifetime_restarts
        if 0 <= limit <= member.replacements:
            raise EnvActorLost(
                f"env actor {index} was lost {member.replacements + 1} times (--max-lifetime-restarts {limit}): "
                f"{first_line(lost)}"
            ) from lost
        if member.report is not None:
            member.earlier_lost_steps += member.report.lost_steps + member.report.unsent_steps
            member.earlier_player_restarts += member.report.player_restarts
        self.log(f"warning: env actor {index} was lost and is replaced ({first_line(lost)})")
        kill_actor(member.handle)
        # Ray hands out a reclaimed node's resources until its health checks fail: avoid a node that is gone. An
        # actor lost before it started ran nowhere known: its own predecessor's node is the one to avoid.
        last_node = member.node_id if member.node_id is not None else member.avoid_node
        gone = last_node if last_node is not None and not node_answers(last_node) else None
        handle = self._new_actor(index, gone)
        self._members[index] = _Member(
            handle=handle,
            start_ref=handle.start.remote(),
            replacements=member.replacements + 1,
            earlier_lost_steps=member.earlier_lost_steps,
            earlier_player_restarts=member.earlier_player_restarts,
            avoid_node=gone,
        )

    # ---- a restarted learner -------------------------------------------------------------------------------------
    def set_learner(self, learner: Any, lost_steps: int) -> None:
        """Hands every EnvActor the restarted learner; ``lost_steps`` are the steps the learner lost (trained since
        its last checkpoint)."""
        self._learner = learner
        self._learner_generation += 1
        self._lost_steps_of_learner += lost_steps
        for member in self._members:
            member.handle.set_learner.remote(learner)  # runs after the actor's current call, before its next
            member.waiting_for_learner = False
            member.done = False

    # ---- curriculum lessons --------------------------------------------------------------------------------------
    def set_lessons(self, lessons: Mapping[str, int], reset: bool) -> None:
        """Every EnvActor plays on in ``lessons`` (each parameter's lesson number), with ``reset`` resetting its
        player (see :meth:`EnvActor.set_lessons`); the call runs after an actor's current collect call, before its
        next. EnvActors created from now on start in these lessons."""
        self._lessons.update(lessons)
        for member in self._members:
            member.handle.set_lessons.remote(dict(self._lessons), reset)

    # ---- figures and the end -------------------------------------------------------------------------------------
    def status(self) -> FleetStatus:
        """The EnvActors' figures now."""
        reports = [m.report for m in self._members]
        return FleetStatus(
            up=sum(m.up and not m.waiting_for_learner for m in self._members),
            starting=sum(not m.up for m in self._members),
            total=len(self._members),
            replacements=sum(m.replacements for m in self._members),
            player_restarts=sum(m.earlier_player_restarts for m in self._members)
            + sum(r.player_restarts for r in reports if r is not None),
            lost_steps=self._lost_steps_of_learner
            + sum(m.earlier_lost_steps for m in self._members)
            + sum(r.lost_steps for r in reports if r is not None),
        )

    @property
    def handles(self) -> list[Any]:
        """The current EnvActor handles, by index."""
        return [m.handle for m in self._members]

    def close(self, timeout: float) -> None:
        """Stops every player (waiting up to ``timeout`` seconds for their goodbyes), kills the actors and
        withdraws the request to the autoscaler."""
        closing = [m.handle.close.remote() for m in self._members]
        try:
            ray.get(closing, timeout=timeout)
        except (GetTimeoutError, RayActorError, RayTaskError):
            pass
        for member in self._members:
            kill_actor(member.handle)
        if not self._in_group:
            self._request_resources([])

