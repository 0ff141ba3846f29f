"""``EnvActor``: one player, CPU inference, trajectory building; trajectories up to the learner, weights back.

The driver creates one per ``--num-envs`` as a Ray actor (``ray.remote(EnvActor)``) and calls :meth:`EnvActor.collect`
again and again; each call plays the player for about ``seconds_per_call`` seconds. The actor streams: per
exchange and behavior, the policy acts on the agents that asked for a decision and the actions go back; while the
player steps, the :class:`TrajectoryBuilder` cuts experiences into trajectories where ML-Agents does
(``time_horizon``, episode ends) and batches go out (:func:`play_exchange`, ``step_async``/``step_wait``: the
actor's own work is not added to the player's step time). Every ``seconds_per_batch`` the trajectories completed
meanwhile go to the learner as one :class:`TrajectoryBatch` (``learner.submit.remote``) without waiting for the answer; only while
``max_calls_in_flight`` batches are unanswered does the actor wait (backpressure). It never waits for an update
to end: each experience carries the weights version that acted, and the learner decides what is recent enough to
train on. The learner answers late only when the actors are more than about an update's worth of steps ahead of it
(PPO's ``buffer_size``) or while it catches up on updates due: a fleet faster than the learner is held to its pace.

Each answer (:class:`LearnerReply`) says what every behavior id plays now (a :class:`WeightsNotice` with a
publication number); the actor checks for answers between exchanges, fetches a newer publication's weights from
the object store once and loads them before the next decision.

A behavior seen for the first time is registered with the learner (``learner.register.remote``), which answers
with what it plays. A player that crashes or stops answering is restarted within the restart budget; its
unfinished trajectories are dropped. Past the budget :class:`PlayerFailedError` names the player's log.

When the learner is lost (its node went away, its process was killed) the call says so
(:attr:`CollectReport.learner_lost`) instead of failing: what was not acknowledged is dropped, and the player
keeps running until the driver hands over the restarted learner with :meth:`EnvActor.set_learner`. Every
experience dropped this way, or with a failed player, is counted in :attr:`CollectReport.lost_steps`.

The environment parameters are sent in the curriculum lessons the actor was created with; when a lesson changes the
driver calls :meth:`EnvActor.set_lessons`, which queues the new values for the player (and resets it when the lesson
asks for ``require_reset``); a restarted player starts in the current lessons.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence

import ray
from ray.exceptions import ObjectLostError, RayActorError

from rayagents.actors.builds import is_build_archive, local_build
from rayagents.actors.environment import UnityEnvironment
from rayagents.actors.parameters import (
    engine_configuration_channel,
    environment_parameters_channel,
    lesson_values,
    queue_values,
)
from rayagents.actors.restarts import RestartBudget
from rayagents.actors.trajectories import Policy, TrajectoryBuilder
from rayagents.configs import EngineSettings, EnvironmentParameterSettings
from rayagents.protocol.exceptions import (
    UnityActionException,
    UnityException,
    UnityObservationException,
    first_line,
)
from rayagents.protocol.side_channels import EnvironmentParametersChannel, StatsSideChannel
from rayagents.protocol.trajectories import ActionTaken, Trajectory, TrajectoryBatch
from rayagents.protocol.types import AgentId, BehaviorName, BehaviorSpec, DecisionSteps, TerminalSteps
from rayagents.protocol.weights import LearnerReply, PolicyWeights, WeightsNotice

logger = logging.getLogger(__name__)

RECEIVE_INTERVAL_S = 0.005
"""How often, while playing, the actor looks for the learner's answers (and the newer weights they name)."""


class VersionedPolicy(Policy, Protocol):
    """A policy whose weights arrive as numbered versions (the learner's ``InferencePolicy``)."""

    @property
    def version(self) -> int:
        """The weights version loaded; -1 before the first."""
        ...

    def load_weights(self, version: int, state: Mapping[str, Any]) -> None:
        """Loads weights ``version``."""
        ...

    def forget(self, agent_ids: Sequence[AgentId] | None = None) -> None:
        """Forgets what the policy remembers of agents whose episodes ended (of every agent with None: the player
        restarted); a policy with memory starts their next decisions afresh."""
        ...


class PolicyFactory(Protocol):
    """Builds the policy of a behavior (built by the learner's code, handed over by the driver)."""

    def __call__(self, behavior: BehaviorName, behavior_spec: BehaviorSpec) -> VersionedPolicy:
        """A policy for ``behavior`` without weights yet."""
        ...


@dataclass(frozen=True)
class BehaviorPlay:
    """How an EnvActor plays one behavior (from its trainer settings and its algorithm's play rules)."""

    time_horizon: int
    """The most experiences in one trajectory (the trainer's ``time_horizon``)."""
    groupmates: bool = False
    """Record what each agent's groupmates did with its trajectories (the algorithm's ``PlayRules.groupmates``)."""


@dataclass(frozen=True)
class EnvActorSettings:
    """Everything an EnvActor needs to run its player."""

    index: int
    """The EnvActor's number (``Player-<index>.log``, the ``{worker}`` of the agents' global ids)."""
    env_path: str | None
    """The build, ``sim:NAME``, or None for the Unity Editor (listen on its port, launch nothing)."""
    behaviors: Mapping[str, BehaviorPlay]
    """How each configured behavior (by name, without ``?team=``) is played."""
    default_behavior: BehaviorPlay
    """How a behavior missing from ``behaviors`` is played."""
    num_areas: int = 1
    """Training areas in the player."""
    seed: int = 0
    """The seed sent to the player."""
    timeout_wait: float = 60.0
    """Seconds to wait for each message of the player."""
    env_args: tuple[str, ...] = ()
    """More arguments for the player."""
    no_graphics: bool = False
    """Launch the player with ``-nographics -batchmode``."""
    log_folder: str | None = None
    """Where ``Player-<index>.log`` is written; None: the actor's temporary folder."""
    engine: EngineSettings = field(default_factory=EngineSettings)
    """Sent to the player on the engine configuration side channel."""
    environment_parameters: Mapping[str, EnvironmentParameterSettings] = field(default_factory=dict)
    """Sent to the player on the environment parameters side channel: each parameter's value in its lesson."""
    lessons: Mapping[str, int] = field(default_factory=dict)
    """The curriculum lesson each parameter starts in (the run's current one; the first for a parameter missing
    here). :meth:`EnvActor.set_lessons` moves them on."""
    max_lifetime_restarts: int = 10
    """The most player restarts over the actor's life; -1 for no bound."""
    restarts_rate_limit_n: int = 1
    """The most player restarts within ``restarts_rate_limit_period_s``; -1 for no limit."""
    restarts_rate_limit_period_s: float = 60.0
    """The window of the restart rate limit."""
    seconds_per_call: float = 0.2
    """How long one :meth:`EnvActor.collect` call plays (at least one exchange)."""
    seconds_per_batch: float = 0.02
    """How often the trajectories completed meanwhile are sent to the learner: the longest one waits in the actor
    (the shorter, the more recent the weights that acted when the learner trains on it)."""
    max_calls_in_flight: int = 2
    """Trajectory batches sent to the learner and not answered yet, at most: with more, the actor waits."""
    port: int | None = None
    """The port to listen on; None: the OS picks a free one (the Editor's 5004 without ``env_path``)."""
    build_cache: str | None = None
    """Where a build archive (``env_path`` a ``.zip``/``.tar.gz`` or a URI) is unpacked on the actor's node; None:
    ``RAYAGENTS_BUILD_CACHE`` or ``~/.cache/rayagents/builds``."""


@dataclass(frozen=True)
class PlayerInfo:
    """Where an EnvActor's player runs."""

    index: int
    """The EnvActor's number."""
    actor_pid: int
    """The EnvActor's own process id."""
    node: str
    """The host name of the actor's node."""
    node_ip: str
    """The Ray node IP address of the actor's node."""
    node_id: str
    """The Ray node id of the actor's node (several nodes may share a machine and an IP address)."""
    pid: int | None
    """The player's process id; None for the Editor."""
    port: int
    """The port the actor listens on for its player."""
    log_path: str | None
    """The player's log file."""


@dataclass(frozen=True)
class CollectReport:
    """What one :meth:`EnvActor.collect` call did."""

    index: int
    """The EnvActor's number."""
    exchanges: int
    """Exchanges with the player."""
    steps: int
    """Experiences sent to the learner (agent decisions)."""
    episodes: int
    """Agent episodes that ended."""
    versions: Mapping[str, int]
    """The weights version each behavior acts with now."""
    player_restarts: int
    """Restarts of the player so far."""
    player_failed: str | None
    """When the player failed during this call (it is restarted on the next): what happened."""
    training_done: bool
    """The learner said every trainer reached its max_steps."""
    lost_steps: int = 0
    """Experiences dropped so far (over the actor's life) because the player failed or the learner was lost."""
    unsent_steps: int = 0
    """Experiences held by the actor at the end of the call (unfinished trajectories, batches not yet
    acknowledged): lost if the actor is lost."""
    learner_lost: bool = False
    """The learner could not be reached during this call: the actor waits for :meth:`EnvActor.set_learner`."""
    player_pid: int | None = None
    """The process id of the player at the end of the call (None for the Editor, or while it is down)."""


class PlayerFailedError(RuntimeError):
    """The player failed and may not be restarted again (the restart budget is spent)."""


BehaviorPlayers = Sequence[tuple[BehaviorName, VersionedPolicy, TrajectoryBuilder]]
"""Each behavior of an exchange with the policy that acts for it and the builder of its trajectories."""


def play_exchange(env: UnityEnvironment, behaviors: BehaviorPlayers) -> list[Trajectory]:
    """The first half of one exchange with the player; the caller ends it with ``env.step_wait()``.

    Per behavior, the policy forgets the agents whose episodes ended (their next decisions start a new episode) and
    acts for the agents that request a decision; the actions go to the player (``env.step_async()``), and while it
    steps the builders turn the steps into experiences. Returns the trajectories completed."""
    turns: list[tuple[TrajectoryBuilder, DecisionSteps, TerminalSteps, ActionTaken | None]] = []
    for behavior, policy, builder in behaviors:
        decision_steps, terminal_steps = env.get_steps(behavior)
        if len(terminal_steps):
            policy.forget(terminal_steps.agent_id.tolist())
        taken = policy.act(behavior, decision_steps) if len(decision_steps) else None
        if taken is not None:
            env.set_actions(behavior, taken.env_actions)
        turns.append((builder, decision_steps, terminal_steps, taken))
    env.step_async()
    trajectories: list[Trajectory] = []
    for builder, decision_steps, terminal_steps, taken in turns:
        trajectories += builder.add(decision_steps, terminal_steps, taken)
    return trajectories


class _PlayedBehavior:
    """One behavior as the actor plays it: its policy and its trajectory builder."""

    def __init__(self, policy: VersionedPolicy, builder: TrajectoryBuilder) -> None:
        self.policy = policy
        self.builder = builder
        self.publication = -1
        """The publication of the weights loaded (-1: none yet)."""


class EnvActor:
    """Owns one player: plays it with the latest weights and streams trajectories to the learner.

    Arguments:
        settings: the player and how to play it.
        learner: the LearnerActor's Ray handle (``register`` and ``submit``).
        policy_factory: builds a behavior's policy.
    """

    def __init__(self, settings: EnvActorSettings, learner: Any, policy_factory: PolicyFactory) -> None:
        self.settings = settings
        self._learner = learner
        self._policy_factory = policy_factory
        self._budget = RestartBudget(
            settings.max_lifetime_restarts, settings.restarts_rate_limit_n, settings.restarts_rate_limit_period_s
        )
        self._env: UnityEnvironment | None = None
        self._stats = StatsSideChannel()
        self._behaviors: dict[BehaviorName, _PlayedBehavior] = {}
        self._in_flight: list[tuple[Any, int]] = []
        self._pending: list[Trajectory] = []
        self._training_done = False
        self._lost_steps = 0
        self._learner_lost = False
        self._lessons: dict[str, int] = dict(settings.lessons)
        self._parameters: EnvironmentParametersChannel | None = None
        self._reset_failure: UnityException | None = None

    # ---- the player ----------------------------------------------------------------------------------------------
    def start(self) -> PlayerInfo:
        """Launches the player (if it is not running) and says where it runs."""
        env = self._player()
        return PlayerInfo(
            index=self.settings.index,
            actor_pid=os.getpid(),
            node=socket.gethostname(),
            node_ip=ray.util.get_node_ip_address(),
            node_id=ray.get_runtime_context().get_node_id(),
            pid=env.pid,
            port=env.port,
            log_path=env.log_path,
        )

    def _player(self) -> UnityEnvironment:
        if self._env is None:
            s = self.settings
            env_path = s.env_path
            if env_path is not None and is_build_archive(env_path):
                env_path = local_build(env_path, Path(s.build_cache) if s.build_cache else None)
            self._parameters = environment_parameters_channel(s.environment_parameters, self._lessons, s.seed)
            self._env = UnityEnvironment(
                env_path,
                worker_id=s.index,
                seed=s.seed,
                num_areas=s.num_areas,
                no_graphics=s.no_graphics,
                timeout_wait=s.timeout_wait,
                additional_args=s.env_args,
                side_channels=[
                    engine_configuration_channel(s.engine),
                    self._parameters,
                    self._stats,
                ],
                log_folder=s.log_folder,
                port=s.port,
                visual_observations="uint8",  # images travel as bytes; the network's encoder scales them
            )
            self._env.reset()
        return self._env

    def _player_failed(self, error: UnityException) -> str:
        """Drops what the failed player left unfinished, closes it, and checks the restart budget."""
        log = self._env.log_path if self._env is not None else None
        if self._env is not None:
            self._env.close()
            self._env = None
        for played in self._behaviors.values():
            self._lost_steps += played.builder.buffered_experiences
            played.builder.drop_partial()
            played.policy.forget()
        where = f"; its log is {log}" if log else ""
        refusal = self._budget.refusal()
        if refusal is not None:
            raise PlayerFailedError(
                f"the player of env actor {self.settings.index} on {socket.gethostname()} failed ({error}) and is not "
                f"restarted again: {refusal}{where}. Read the log for the player's own error."
            ) from error
        self._budget.take()
        message = f"the player of env actor {self.settings.index} failed and is restarted: {error}{where}"
        logger.warning(message)
        return message

    # ---- playing -------------------------------------------------------------------------------------------------
    def collect(self) -> CollectReport:
        """Plays for about ``seconds_per_call`` seconds and sends the trajectories completed so far to the learner."""
        if self._learner_lost:
            return self._report(exchanges=0, steps=0, episodes=0, failed=None)
        try:
            return self._collect()
        except (RayActorError, ObjectLostError) as lost:
            logger.warning("env actor %d lost the learner: %s", self.settings.index, first_line(lost))
            self._forget_learner()
            return self._report(exchanges=0, steps=0, episodes=0, failed=None)

    def _collect(self) -> CollectReport:
        exchanges = steps = episodes = 0
        failed: str | None = None
        started = last_sent = last_received = time.monotonic()
        try:
            if self._reset_failure is not None:  # the player failed in a lesson's reset: restarted as any failure
                reset_failure, self._reset_failure = self._reset_failure, None
                raise reset_failure
            env = self._player()
            env.step_wait()  # a step the last call sent before it was cut short (a lost learner)
            while exchanges == 0 or time.monotonic() < started + self.settings.seconds_per_call:
                plays = []
                for behavior, spec in env.behavior_specs.items():
                    played = self._played(behavior, spec)
                    plays.append((behavior, played.policy, played.builder))
                self._pending.extend(play_exchange(env, plays))  # the player steps from here to step_wait()
                exchanges += 1
                now = time.monotonic()
                if self._pending and now >= last_sent + self.settings.seconds_per_batch:
                    sent_steps, sent_episodes = self._send_batch()
                    steps, episodes, last_sent = steps + sent_steps, episodes + sent_episodes, now
                if now >= last_received + RECEIVE_INTERVAL_S:
                    self._receive(block=False)  # newer weights act from the next decision on
                    last_received = now
                env.step_wait()  # the player's next step
        except (UnityActionException, UnityObservationException):
            raise  # a mismatch between the policy and the player: a restart would not help
        except UnityException as error:
            failed = self._player_failed(error)
        sent_steps, sent_episodes = self._send_batch()
        return self._report(exchanges=exchanges, steps=steps + sent_steps, episodes=episodes + sent_episodes, failed=failed)

    def _send_batch(self) -> tuple[int, int]:
        """Sends the completed trajectories, the ended episodes and the player's statistics, if there are any;
        returns the steps and the episodes sent."""
        episodes = tuple(
            stats for stats in (p.builder.take_episodes() for p in self._behaviors.values()) if len(stats)
        )
        batch = TrajectoryBatch(
            env_actor=self.settings.index,
            trajectories=tuple(self._pending),
            episodes=episodes,
            player_stats={key: tuple(values) for key, values in self._stats.get_and_reset_stats().items()},
        )
        if not (batch.trajectories or batch.episodes or batch.player_stats):
            return 0, 0
        self._send(batch)  # the batch holds the trajectories now (counted in flight until answered)
        self._pending = []
        return batch.num_steps, sum(len(e) for e in episodes)

    def _held_steps(self) -> int:
        """Experiences the actor holds that the learner has not acknowledged: trajectories waiting to be sent,
        batches in flight, and the unfinished trajectories of its builders."""
        held = sum(len(t) for t in self._pending) + sum(size for _, size in self._in_flight)
        return held + sum(p.builder.buffered_experiences for p in self._behaviors.values())

    def _report(self, exchanges: int, steps: int, episodes: int, failed: str | None) -> CollectReport:
        return CollectReport(
            index=self.settings.index,
            exchanges=exchanges,
            steps=steps,
            episodes=episodes,
            versions={b: p.policy.version for b, p in self._behaviors.items()},
            player_restarts=self._budget.restarts,
            player_failed=failed,
            training_done=self._training_done,
            lost_steps=self._lost_steps,
            unsent_steps=self._held_steps(),
            learner_lost=self._learner_lost,
            player_pid=self._env.pid if self._env is not None else None,
        )

    def _forget_learner(self) -> None:
        """The learner is gone: drops what it did not acknowledge and every behavior's policy (the restarted
        learner's versions start again), counting the experiences lost."""
        self._learner_lost = True
        self._lost_steps += self._held_steps()
        self._pending = []
        self._in_flight = []
        self._behaviors.clear()

    def set_learner(self, learner: Any) -> None:
        """Plays on with a new learner (the driver restarted a lost one): each behavior registers again and loads
        the new learner's weights; what the actor held for the old one is dropped."""
        if not self._learner_lost:
            self._forget_learner()
        self._learner = learner
        self._learner_lost = False
        self._training_done = False

    def _played(self, behavior: BehaviorName, spec: BehaviorSpec) -> _PlayedBehavior:
        """The behavior's policy and builder; registers a new behavior with the learner and loads its weights."""
        played = self._behaviors.get(behavior)
        if played is None:
            name = behavior.split("?")[0]
            play = self.settings.behaviors.get(name, self.settings.default_behavior)
            policy = self._policy_factory(behavior, spec)
            builder = TrajectoryBuilder(behavior, self.settings.index, play.time_horizon, groupmates=play.groupmates)
            played = _PlayedBehavior(policy, builder)
            self._behaviors[behavior] = played
            notice: WeightsNotice = ray.get(self._learner.register.remote(behavior, spec))
            self._load(played, notice)
        return played

    @staticmethod
    def _load(played: _PlayedBehavior, notice: WeightsNotice) -> None:
        """Loads what a newer publication names (an older version too: a team may be handed a snapshot)."""
        if notice.publication <= played.publication:
            return
        weights: PolicyWeights = ray.get(notice.weights)  # type: ignore[call-overload]
        played.policy.load_weights(weights.version, weights.state)
        played.publication = notice.publication

    def _send(self, batch: TrajectoryBatch) -> None:
        """Sends a batch to the learner, first waiting for answers while ``max_calls_in_flight`` are out."""
        self._receive(block=False)
        while len(self._in_flight) >= self.settings.max_calls_in_flight:
            self._receive(block=True)
        self._in_flight.append((self._learner.submit.remote(batch), batch.num_steps))

    def _receive(self, block: bool) -> None:
        """Takes the learner's answers that arrived (with ``block``, waits for the oldest one at least)."""
        if not self._in_flight:
            return
        refs = [ref for ref, _ in self._in_flight]
        if block:
            ready = refs[:1]
            ray.wait(ready, num_returns=1)
        else:
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        for ref in ready:
            reply: LearnerReply = ray.get(ref)
            self._in_flight = [(r, size) for r, size in self._in_flight if r != ref]
            self._training_done = self._training_done or reply.training_done
            for notice in reply.notices:
                played = self._behaviors.get(notice.behavior)
                if played is not None:
                    self._load(played, notice)

    # ---- curriculum lessons --------------------------------------------------------------------------------------
    def set_lessons(self, lessons: Mapping[str, int], reset: bool) -> None:
        """Plays on in new curriculum lessons (each parameter's lesson number; the driver calls this between two
        :meth:`collect` calls): every parameter's value in its lesson is queued on the environment parameters side
        channel and reaches the player with the next message, as ML-Agents' ``set_env_parameters`` sends it (the
        player applies it from each agent's next episode on). A player started later (after a failure) starts in
        these lessons.

        With ``reset`` (a completed lesson's ``require_reset``) the player is reset at once, as ML-Agents'
        ``_reset_env`` resets its environments: the new values go with the RESET, every agent starts a new episode,
        and what the actor held of the episodes in progress is dropped, as ML-Agents' ``AgentProcessor.end_episode``
        drops it: unfinished trajectories (the parts cut at ``time_horizon`` before were sent and stay), awaited
        decisions, the policies' memories, the returns of those episodes (they never count as ended episodes).
        Trajectories completed before the reset are kept and sent. A player that fails in the reset is restarted
        by the next :meth:`collect` call, within the restart budget, in the new lessons."""
        self._lessons.update(lessons)
        if self._env is None or self._parameters is None:
            return  # the next player starts in the new lessons
        s = self.settings
        queue_values(self._parameters, lesson_values(s.environment_parameters, self._lessons, s.seed))
        if not reset:
            return
        for played in self._behaviors.values():
            played.builder.drop_partial()
            played.policy.forget()
        try:
            self._env.reset()
        except UnityException as error:  # raised again by the next collect call, which handles it as a failure
            self._reset_failure = error

    def flush(self) -> None:
        """Waits for the answers to every batch sent (the learner has them all)."""
        while self._in_flight:
            self._receive(block=True)

    def close(self) -> None:
        """Stops the player (status 400, then a kill if it does not exit) and forgets unfinished trajectories."""
        if self._env is not None:
            env, self._env = self._env, None
            env.close()
