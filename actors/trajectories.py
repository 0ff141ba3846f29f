"""Per-agent trajectory building on the actor side, with the semantics of ML-Agents' ``AgentProcessor``.

An EnvActor's loop, per behavior, each exchange with the player::

    decision_steps, terminal_steps = env.get_steps(behavior)
    taken = policy.act(behavior, decision_steps) if len(decision_steps) else None
    if taken is not None:
        env.set_actions(behavior, taken.env_actions)
    env.step_async()  # the player steps meanwhile
    trajectories = builder.add(decision_steps, terminal_steps, taken)
    env.step_wait()

The builder remembers, per agent, the decision it was just given (the observation it was made on, the mask the
agent saw, the raw action, the weights version that acted and the policy's extras, such as PPO's log
probability). That decision becomes an *experience* when the agent's next ``DecisionStep`` or ``TerminalStep``
arrives, whose reward and group reward (and, for a terminal step, ``done`` and ``interrupted``) it takes.
Terminal steps are processed before decision steps, so an agent in both in one exchange ends one trajectory and
starts the next (its ``DecisionStep`` reward, earned before any action of the new episode, is not an
experience's, as in ML-Agents).

Trajectories are cut only where ML-Agents cuts them: at ``time_horizon`` experiences and when the agent's episode
ends; a player restart drops what was unfinished (:meth:`TrajectoryBuilder.drop_partial`). New weights arriving
mid-trajectory cut nothing: every experience carries the version that acted, and the learner decides what it
trains on.

Groups (ML-Agents' ``MultiAgentGroup``, ``group_id`` > 0 on the steps). The builder always keeps, per group id, the
agents in the episode that it has seen act (an agent joins when it acts, leaves when its episode ends), and sums
each agent's group rewards over its episode. When an agent's ``TerminalStep`` arrives and every other agent of its
group's episode ended in the same exchange (or it was the last one), that sum goes to
:attr:`EpisodeStats.group_returns` (``Environment/Group Cumulative Reward``); an agent that left its group's episode
early reports none (ML-Agents' POCA reports it only when ``all_group_dones_reached``).

With ``groupmates=True`` (a centralized critic: POCA), each trajectory of an agent in a group also carries
:class:`GroupmateSteps` (:mod:`rayagents.actors.group_status`). Within one exchange, the builder first collects the
*status* of every agent of a group that has an awaited decision and appears in the exchange: the observation it
acted on, its raw actions, the reward it now receives, done = it is in the ``TerminalSteps`` (an agent both
terminal and deciding counts as terminal), and its latest observation (the step's). An experience's groupmate row
is the statuses of the other agents of its group at that exchange: an agent completing through a ``TerminalStep``
sees all of them (those that ended with it done), one completing through a ``DecisionStep`` only those still in
the episode (ML-Agents clears dead agents before it processes decision steps). A groupmate that did not appear in
the exchange is not present at that step. At a cut, the groupmates' ``next_obs`` are the latest observations of
the other members of the group (for a member that did not step in the exchange, the last one seen): for a
terminal agent, those that ended with it included; for a deciding agent, only those still in the episode (an agent
that starts acting in this exchange joins after the cuts). Rows are padded to the most groupmates of any step or of
the next observations (zeros, not present).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from rayagents.actors.group_status import (
    AgentObs,
    AgentStatus,
    ExchangeStatuses,
    GroupRoster,
    StatusLayout,
    groupmate_steps,
)
from rayagents.protocol.trajectories import ActionTaken, EpisodeStats, GroupmateSteps, Trajectory
from rayagents.protocol.types import AgentId, BehaviorName, DecisionSteps, TerminalSteps


class Policy(Protocol):
    """What an EnvActor acts with: built by the learner's code and handed to the actor by the driver."""

    def act(self, behavior: BehaviorName, decision_steps: DecisionSteps) -> ActionTaken:
        """The actions of every agent of ``decision_steps`` (a non-empty batch of ``behavior``), row for row."""
        ...


def global_agent_id(env_actor: int, agent_id: AgentId) -> str:
    """An agent's id across the run: ML-Agents' ``agent_{worker}-{id}`` with the EnvActor as the worker."""
    return f"agent_{env_actor}-{agent_id}"


@dataclass(frozen=True)
class _Decision:
    """One decision of one agent: what the policy saw and did."""

    obs: tuple[np.ndarray, ...]
    """The observation of each sensor the decision was made on (rows of the step's arrays, not copied)."""
    action_mask: np.ndarray | None
    """bool ``(sum(branches),)``, True = disabled, as the agent saw it; None without a mask."""
    continuous: np.ndarray
    """float32 ``(continuous_size,)``: the raw sample."""
    discrete: np.ndarray
    """int32 ``(n_branches,)``."""
    extras: dict[str, np.ndarray]
    """The policy's per-agent extras for this decision (one row of each)."""
    version: int
    """The weights version that acted."""


class _AgentRecord:
    """One agent's experiences since its last trajectory, its decision awaiting an outcome, and its episode so far."""

    __slots__ = (
        "decisions",
        "rewards",
        "group_rewards",
        "groupmate_rows",
        "group_id",
        "awaiting",
        "episode_return",
        "episode_group_return",
        "episode_experiences",
    )

    def __init__(self) -> None:
        self.decisions: list[_Decision] = []
        self.rewards: list[float] = []
        self.group_rewards: list[float] = []
        self.groupmate_rows: list[tuple[AgentStatus, ...]] = []
        self.group_id = 0
        self.awaiting: _Decision | None = None
        self.episode_return = 0.0
        self.episode_group_return = 0.0
        self.episode_experiences = 0

    def complete(
        self, reward: float, group_reward: float, group_id: int, groupmates: tuple[AgentStatus, ...] | None
    ) -> None:
        """The awaited decision becomes an experience with ``reward`` and ``group_reward``, and the groupmates'
        statuses at that step (None when the builder records no groupmates)."""
        assert self.awaiting is not None
        self.decisions.append(self.awaiting)
        self.rewards.append(reward)
        self.group_rewards.append(group_reward)
        if groupmates is not None:
            self.groupmate_rows.append(groupmates)
        self.group_id = group_id
        self.awaiting = None
        self.episode_return += reward
        self.episode_group_return += group_reward
        self.episode_experiences += 1


class TrajectoryBuilder:
    """Cuts one behavior's stream of steps into per-agent trajectories.

    Arguments:
        behavior: the fully qualified behavior name the steps belong to.
        env_actor: the EnvActor's index (the ``{env_actor}`` of the agents' global ids).
        time_horizon: the most experiences in one trajectory (the trainer's ``time_horizon``).
        groupmates: record what each grouped agent's groupmates did (:attr:`Trajectory.groupmates`), for an
            algorithm with a centralized critic (``PlayRules.groupmates``).
    """

    def __init__(self, behavior: BehaviorName, env_actor: int, time_horizon: int, groupmates: bool = False) -> None:
        if time_horizon < 1:
            raise ValueError(f"time_horizon must be at least 1, got {time_horizon}")
        self.behavior = behavior
        self.env_actor = env_actor
        self.time_horizon = time_horizon
        self.groupmates = groupmates
        self._agents: dict[AgentId, _AgentRecord] = {}
        self._roster = GroupRoster()
        self._ended_returns: list[float] = []
        self._ended_lengths: list[int] = []
        self._ended_group_returns: list[float] = []

    @property
    def buffered_experiences(self) -> int:
        """Experiences completed but not yet in a trajectory (all agents)."""
        return sum(len(record.decisions) for record in self._agents.values())

    @property
    def awaiting_decisions(self) -> int:
        """Decisions whose outcome (the agent's next step) has not arrived yet (all agents)."""
        return sum(record.awaiting is not None for record in self._agents.values())

    def add(
        self, decision_steps: DecisionSteps, terminal_steps: TerminalSteps, taken: ActionTaken | None
    ) -> list[Trajectory]:
        """Takes one exchange's steps of the behavior and the actions taken on ``decision_steps``.

        ``taken`` holds one row per agent of ``decision_steps`` (None only when that is empty). Returns the
        trajectories this exchange completed: an agent's when it reached ``time_horizon`` experiences
        (``next_obs`` = its new observation, not done) or when its episode ended (``done``, ``interrupted`` from
        the terminal step, ``next_obs`` = the terminal observation; its state is cleared and its episode return
        and length recorded for :meth:`take_episodes`, with its group return when its whole group's episode ended
        with it). With ``groupmates``, the trajectories of grouped agents carry their groupmates' steps.
        """
        if taken is None:
            if len(decision_steps) > 0:
                raise ValueError(
                    f"{len(decision_steps)} agents of behavior '{self.behavior}' requested a decision but no actions "
                    "were given: pass the ActionTaken of the policy for these DecisionSteps."
                )
        elif taken.n_agents != len(decision_steps):
            raise ValueError(
                f"the actions taken for behavior '{self.behavior}' are for {taken.n_agents} agents, but "
                f"{len(decision_steps)} agents requested a decision."
            )
        trajectories: list[Trajectory] = []
        terminal_ids = set(terminal_steps.agent_id.tolist())
        statuses = self._collect_statuses(decision_steps, terminal_steps, terminal_ids) if self.groupmates else None
        self._add_terminal(terminal_steps, terminal_ids, statuses, trajectories)
        if taken is not None:
            self._add_decisions(decision_steps, taken, statuses, trajectories)
        return trajectories

    def _collect_statuses(
        self, decision_steps: DecisionSteps, terminal_steps: TerminalSteps, terminal_ids: set[AgentId]
    ) -> ExchangeStatuses:
        """The status of every grouped agent of the exchange with an awaited decision (a terminal one's from its
        ``TerminalStep``); each one's latest observation goes to the roster."""
        statuses = ExchangeStatuses()
        for steps, done in ((terminal_steps, True), (decision_steps, False)):
            group_ids = steps.group_id.tolist()
            rewards = steps.reward.tolist()
            for row, agent_id in enumerate(steps.agent_id.tolist()):
                record = self._agents.get(agent_id)
                awaited = None if record is None else record.awaiting
                if group_ids[row] <= 0 or awaited is None or (not done and agent_id in terminal_ids):
                    continue
                status = AgentStatus(awaited.obs, awaited.continuous, awaited.discrete, rewards[row], done)
                statuses.add(group_ids[row], agent_id, status)
                self._roster.observe(agent_id, tuple(o[row] for o in steps.obs))
        return statuses

    def _add_terminal(
        self,
        terminal_steps: TerminalSteps,
        terminal_ids: set[AgentId],
        statuses: ExchangeStatuses | None,
        trajectories: list[Trajectory],
    ) -> None:
        group_ids = terminal_steps.group_id.tolist()
        group_rewards = terminal_steps.group_reward.tolist()
        for row, agent_id in enumerate(terminal_steps.agent_id.tolist()):
            record = self._agents.pop(agent_id, None)
            if record is None or record.awaiting is None:
                continue  # an episode that ended before this builder saw the agent act (start, drop_partial)
            mates = None if statuses is None else statuses.groupmates(group_ids[row], agent_id, with_done=True)
            record.complete(float(terminal_steps.reward[row]), group_rewards[row], group_ids[row], mates)
            next_obs = tuple(np.array(o[row]) for o in terminal_steps.obs)
            interrupted = bool(terminal_steps.interrupted[row])
            trajectories.append(self._trajectory(agent_id, record, next_obs, done=True, interrupted=interrupted))
            self._ended_returns.append(record.episode_return)
            self._ended_lengths.append(record.episode_experiences - 1)
            if self._ended_with_its_group(agent_id, terminal_ids):
                self._ended_group_returns.append(record.episode_group_return)
        for agent_id in terminal_ids:  # after every terminal agent saw the others end with it
            self._roster.leave(agent_id)

    def _ended_with_its_group(self, agent_id: AgentId, terminal_ids: set[AgentId]) -> bool:
        """Whether ``agent_id`` is in a group whose other members in the episode all ended in this exchange."""
        return self._roster.group_of(agent_id) > 0 and self._roster.others(agent_id).keys() <= terminal_ids

    def _add_decisions(
        self,
        decision_steps: DecisionSteps,
        taken: ActionTaken,
        statuses: ExchangeStatuses | None,
        trajectories: list[Trajectory],
    ) -> None:
        masks = None if decision_steps.action_mask is None else np.concatenate(decision_steps.action_mask, axis=1)
        continuous = np.array(taken.continuous, dtype=np.float32)  # copies: the policy may reuse its arrays
        discrete = np.array(taken.discrete, dtype=np.int32)
        extras = {name: np.array(value) for name, value in taken.extras.items()}
        rewards = decision_steps.reward.tolist()
        group_ids = decision_steps.group_id.tolist()
        group_rewards = decision_steps.group_reward.tolist()
        acted: list[tuple[AgentId, int, AgentObs]] = []
        for row, agent_id in enumerate(decision_steps.agent_id.tolist()):
            record = self._agents.get(agent_id)
            if record is None:
                record = self._agents[agent_id] = _AgentRecord()
            obs = tuple(o[row] for o in decision_steps.obs)
            if record.awaiting is not None:
                mates = None if statuses is None else statuses.groupmates(group_ids[row], agent_id, with_done=False)
                record.complete(rewards[row], group_rewards[row], group_ids[row], mates)
                if len(record.decisions) >= self.time_horizon:
                    trajectories.append(self._trajectory(agent_id, record, obs, done=False, interrupted=False))
            record.awaiting = _Decision(
                obs=obs,
                action_mask=None if masks is None else masks[row],
                continuous=continuous[row],
                discrete=discrete[row],
                extras={name: value[row] for name, value in extras.items()},
                version=taken.policy_version,
            )
            acted.append((agent_id, group_ids[row], obs if self.groupmates else ()))
        for agent_id, group_id, obs in acted:  # after the cuts: an agent starting now is in no next_obs of them
            self._roster.join(agent_id, group_id, obs)

    def _trajectory(
        self,
        agent_id: AgentId,
        record: _AgentRecord,
        next_obs: tuple[np.ndarray, ...],
        *,
        done: bool,
        interrupted: bool,
    ) -> Trajectory:
        """The record's experiences as a trajectory; the record keeps its awaited decision and episode."""
        decisions = record.decisions
        masks = [d.action_mask for d in decisions]
        action_mask: np.ndarray | None = None
        if any(m is not None for m in masks):
            width = next(m.shape[0] for m in masks if m is not None)
            action_mask = np.stack([np.zeros(width, dtype=bool) if m is None else m for m in masks])
        in_group = record.group_id != 0 or any(record.group_rewards)
        trajectory = Trajectory(
            obs=tuple(np.stack([d.obs[k] for d in decisions]) for k in range(len(next_obs))),
            next_obs=tuple(np.array(o) for o in next_obs),
            continuous_actions=np.stack([d.continuous for d in decisions]),
            discrete_actions=np.stack([d.discrete for d in decisions]),
            rewards=np.array(record.rewards, dtype=np.float32),
            done=done,
            interrupted=interrupted,
            versions=np.array([d.version for d in decisions], dtype=np.int32),
            extras={name: np.stack([d.extras[name] for d in decisions]) for name in decisions[0].extras},
            action_mask=action_mask,
            group_id=record.group_id,
            group_rewards=np.array(record.group_rewards, dtype=np.float32) if in_group else None,
            behavior=self.behavior,
            agent_id=global_agent_id(self.env_actor, agent_id),
            groupmates=self._groupmates(agent_id, record),
        )
        record.decisions = []
        record.rewards = []
        record.group_rewards = []
        record.groupmate_rows = []
        return trajectory

    def _groupmates(self, agent_id: AgentId, record: _AgentRecord) -> GroupmateSteps | None:
        """The record's groupmate rows with the groupmates' latest observations now, padded; None when the builder
        records no groupmates or the agent is in no group."""
        if not self.groupmates or record.group_id <= 0:
            return None
        first = record.decisions[0]
        layout = StatusLayout.like(first.obs, first.continuous, first.discrete)
        return groupmate_steps(record.groupmate_rows, list(self._roster.others(agent_id).values()), layout)

    def take_episodes(self) -> EpisodeStats:
        """The returns, lengths and group returns of the episodes that ended since the last call (then forgotten
        here)."""
        stats = EpisodeStats(
            behavior=self.behavior,
            returns=np.array(self._ended_returns, dtype=np.float32),
            lengths=np.array(self._ended_lengths, dtype=np.int64),
            group_returns=np.array(self._ended_group_returns, dtype=np.float32),
        )
        self._ended_returns = []
        self._ended_lengths = []
        self._ended_group_returns = []
        return stats

    def drop_partial(self) -> None:
        """Forgets every unfinished trajectory, awaited decision, episode in progress and group membership (after a
        reset or a player crash, ML-Agents' ``end_episode``); the episodes that already ended stay for
        :meth:`take_episodes`."""
        self._agents.clear()
        self._roster.clear()
