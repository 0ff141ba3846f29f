"""What the groupmates of an agent did, for a trainer with a centralized critic (ML-Agents' group status).

The :class:`~rayagents.actors.trajectories.TrajectoryBuilder` uses three things from here:

- :class:`GroupRoster`: per group id, the agents in the episode that the builder has seen act, each with its latest
  observation (kept only when the builder records groupmates). The builder keeps it for every trainer: it also
  decides whether an agent's episode ended with its whole group's (the group's cumulative reward).
- :class:`ExchangeStatuses`: the :class:`AgentStatus` of every agent of a group that appeared in one exchange with a
  decision awaiting its outcome (ML-Agents' ``AgentStatus``), from which each experience's groupmate row is read.
- :func:`groupmate_steps`: a trajectory's groupmate rows and its groupmates' next observations, padded into a
  :class:`~rayagents.protocol.trajectories.GroupmateSteps`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from rayagents.protocol.trajectories import GroupmateSteps
from rayagents.protocol.types import AgentId

AgentObs = tuple[np.ndarray, ...]
"""One agent's observation: one array per sensor, without the batch axis."""


@dataclass(frozen=True)
class AgentStatus:
    """What one agent of a group did at one exchange: the decision it acted on and what came of it."""

    obs: AgentObs
    """The observation the agent acted on (its awaited decision's)."""
    continuous: np.ndarray
    """float32 ``(continuous_size,)``: its raw continuous action."""
    discrete: np.ndarray
    """int32 ``(n_branches,)``: its discrete action."""
    reward: float
    """The (own, not group) reward it received at this exchange."""
    done: bool
    """Its episode ended at this exchange (it was in the ``TerminalSteps``)."""


@dataclass(frozen=True)
class StatusLayout:
    """The trailing shapes and dtypes of a behavior's groupmate arrays, so that M = 0 arrays are well formed."""

    obs: tuple[tuple[tuple[int, ...], np.dtype], ...]
    """Per sensor, the observation's shape and dtype."""
    continuous_size: int
    """The width of the continuous actions."""
    discrete_size: int
    """The number of discrete branches."""

    @staticmethod
    def like(obs: AgentObs, continuous: np.ndarray, discrete: np.ndarray) -> StatusLayout:
        """The layout of one agent's observation and actions (every agent of a behavior shares it)."""
        return StatusLayout(
            obs=tuple((tuple(o.shape), np.dtype(o.dtype)) for o in obs),
            continuous_size=int(np.shape(continuous)[-1]),
            discrete_size=int(np.shape(discrete)[-1]),
        )


class GroupRoster:
    """Per group id (> 0), the agents in the episode that have been seen acting, and each one's latest observation.

    An agent joins when it acts in a group, moves when it acts in another group, and leaves when its episode ends
    (or when it acts in no group). The latest observation is what a groupmate's value is bootstrapped from at a
    trajectory cut; ``()`` when the builder records no groupmates.
    """

    def __init__(self) -> None:
        self._members: dict[int, dict[AgentId, AgentObs]] = {}
        self._group_of: dict[AgentId, int] = {}

    def join(self, agent_id: AgentId, group_id: int, latest_obs: AgentObs) -> None:
        """``agent_id`` acts in ``group_id`` (0: in no group) and its latest observation is ``latest_obs``."""
        if self._group_of.get(agent_id, group_id) != group_id or group_id <= 0:
            self.leave(agent_id)
        if group_id > 0:
            self._members.setdefault(group_id, {})[agent_id] = latest_obs
            self._group_of[agent_id] = group_id

    def observe(self, agent_id: AgentId, latest_obs: AgentObs) -> None:
        """A member's latest observation is now ``latest_obs`` (nothing for an agent in no group)."""
        group_id = self._group_of.get(agent_id)
        if group_id is not None:
            self._members[group_id][agent_id] = latest_obs

    def leave(self, agent_id: AgentId) -> None:
        """``agent_id`` is no longer in its group's episode (nothing if it was in none)."""
        group_id = self._group_of.pop(agent_id, None)
        if group_id is None:
            return
        members = self._members[group_id]
        del members[agent_id]
        if not members:
            del self._members[group_id]

    def group_of(self, agent_id: AgentId) -> int:
        """The group ``agent_id`` is a member of; 0 for none."""
        return self._group_of.get(agent_id, 0)

    def others(self, agent_id: AgentId) -> dict[AgentId, AgentObs]:
        """The other members of ``agent_id``'s group with their latest observations (empty for an agent in none)."""
        group_id = self._group_of.get(agent_id)
        if group_id is None:
            return {}
        return {other: obs for other, obs in self._members[group_id].items() if other != agent_id}

    def clear(self) -> None:
        """Forgets every group (a player restart)."""
        self._members.clear()
        self._group_of.clear()


class ExchangeStatuses:
    """The statuses of the agents of every group that appeared in one exchange with a decision awaiting."""

    def __init__(self) -> None:
        self._by_group: dict[int, dict[AgentId, AgentStatus]] = {}

    def add(self, group_id: int, agent_id: AgentId, status: AgentStatus) -> None:
        """Records ``agent_id``'s status in ``group_id`` (> 0)."""
        self._by_group.setdefault(group_id, {})[agent_id] = status

    def groupmates(self, group_id: int, agent_id: AgentId, *, with_done: bool) -> tuple[AgentStatus, ...]:
        """The statuses of ``agent_id``'s groupmates at this exchange; those whose episode ended with it only when
        ``with_done`` (an agent completing through a ``DecisionStep`` no longer sees them)."""
        group = self._by_group.get(group_id, {})
        return tuple(s for other, s in group.items() if other != agent_id and (with_done or not s.done))


def groupmate_steps(
    rows: Sequence[Sequence[AgentStatus]], next_obs: Sequence[AgentObs], layout: StatusLayout
) -> GroupmateSteps:
    """A trajectory's groupmates: ``rows[t]`` the groupmates' statuses at experience t, ``next_obs`` their latest
    observations after the last one; padded to M = the most of any step or of ``next_obs`` (zeros, not present)."""
    steps = len(rows)
    slots = max([len(next_obs), *(len(row) for row in rows)])
    obs = tuple(np.zeros((steps, slots, *shape), dtype=dtype) for shape, dtype in layout.obs)
    continuous = np.zeros((steps, slots, layout.continuous_size), dtype=np.float32)
    discrete = np.zeros((steps, slots, layout.discrete_size), dtype=np.int32)
    present = np.zeros((steps, slots), dtype=bool)
    dones = np.zeros((steps, slots), dtype=bool)
    rewards = np.zeros(steps, dtype=np.float32)
    for t, row in enumerate(rows):
        for slot, status in enumerate(row):
            for sensor, array in zip(obs, status.obs):
                sensor[t, slot] = array
            continuous[t, slot] = status.continuous
            discrete[t, slot] = status.discrete
            dones[t, slot] = status.done
        present[t, : len(row)] = True
        rewards[t] = sum(status.reward for status in row)
    following = tuple(np.zeros((slots, *shape), dtype=dtype) for shape, dtype in layout.obs)
    for slot, mate_obs in enumerate(next_obs):
        for sensor, array in zip(following, mate_obs):
            sensor[slot] = array
    next_present = np.zeros(slots, dtype=bool)
    next_present[: len(next_obs)] = True
    return GroupmateSteps(
        obs=obs,
        continuous_actions=continuous,
        discrete_actions=discrete,
        present=present,
        dones=dones,
        rewards=rewards,
        next_obs=following,
        next_present=next_present,
    )
