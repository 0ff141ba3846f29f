"""What an EnvActor sends the learner, and what a policy hands an EnvActor: numpy only, picklable by Ray.

- :class:`ActionTaken`: a policy's answer for one ``DecisionSteps`` batch (built by the learner's policy code,
  read by the actor's trajectory building).
- :class:`Trajectory`: up to ``time_horizon`` consecutive experiences of one agent (ML-Agents' ``AgentProcessor``
  cuts one at ``time_horizon`` or when the agent's episode ends).
- :class:`EpisodeStats`: the returns and lengths of the episodes of one behavior that ended.
- :class:`TrajectoryBatch`: everything one EnvActor call produced: trajectories, ended episodes, player statistics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from rayagents.protocol.side_channels.stats import StatsAggregationMethod
from rayagents.protocol.types import ActionTuple

PlayerStats = Mapping[str, tuple[tuple[float, StatsAggregationMethod], ...]]
"""Statistics a player sent on the stats side channel: per key, the values and how each is aggregated."""


@dataclass(frozen=True)
class ActionTaken:
    """A policy's actions for one ``DecisionSteps`` batch of a behavior: row i is the agent in row i of the batch."""

    env_actions: ActionTuple
    """What the player receives (PPO/POCA: continuous ``clamp(x, -3, 3) / 3``; SAC: the squashed output)."""
    continuous: np.ndarray
    """float32 ``(n, continuous_size)``: the raw samples, stored for training."""
    discrete: np.ndarray
    """int32 ``(n, n_branches)``: the sampled branch choices."""
    log_probs: np.ndarray
    """float32 ``(n,)``: the joint log probability of each agent's action under the acting policy."""
    policy_version: int
    """The weights version that acted."""

    def __post_init__(self) -> None:
        rows = {
            "env_actions": self.env_actions.n_agents,
            "continuous": self.continuous.shape[0],
            "discrete": self.discrete.shape[0],
            "log_probs": self.log_probs.shape[0],
        }
        if len(set(rows.values())) > 1:
            raise ValueError(f"the parts of an ActionTaken have different numbers of agents: {rows}")

    @property
    def n_agents(self) -> int:
        """The number of agents acted for."""
        return int(self.log_probs.shape[0])


@dataclass(frozen=True)
class Trajectory:
    """Consecutive experiences of one agent, as the acting policy saw them; T = the number of experiences.

    The identity fields have defaults so that a trajectory can be built by hand (tests, offline data); an
    EnvActor always sets them.
    """

    obs: tuple[np.ndarray, ...]
    """One array per sensor, ``(T, *shape)``: the observation each decision was made on."""
    next_obs: tuple[np.ndarray, ...]
    """One array per sensor, ``shape``: the observation after the last experience (to bootstrap from); the
    terminal observation when ``done``."""
    continuous_actions: np.ndarray
    """float32 ``(T, continuous_size)``: the raw samples, before ``clamp(x, -3, 3) / 3``."""
    discrete_actions: np.ndarray
    """int ``(T, n_branches)``."""
    log_probs: np.ndarray
    """float32 ``(T,)``: the joint log probability of each action under the policy that acted."""
    rewards: np.ndarray
    """float32 ``(T,)``: the environment (extrinsic) reward received after each action."""
    done: bool
    """The agent's episode ended with the last experience."""
    interrupted: bool
    """The episode was cut off (max step reached) rather than ended: the value is still bootstrapped."""
    action_mask: np.ndarray | None = None
    """bool ``(T, sum(branches))``, **True = disabled** (the wire's convention); None = all allowed."""
    behavior: str = ""
    """The fully qualified behavior name (``"Name?team=0"``) whose policy acted."""
    agent_id: str = ""
    """The agent's global id, ``"agent_{env_actor}-{unity_agent_id}"`` (ML-Agents' ``agent_{worker}-{id}``)."""
    policy_version: int = 0
    """The weights version that acted: the oldest one among the experiences when a new version arrived
    mid-trajectory (the policy lag is measured from it)."""

    def __len__(self) -> int:
        return int(self.rewards.shape[0])

    def __post_init__(self) -> None:
        length = len(self)
        for name, column in (
            ("continuous_actions", self.continuous_actions),
            ("discrete_actions", self.discrete_actions),
            ("log_probs", self.log_probs),
            *((f"obs[{i}]", o) for i, o in enumerate(self.obs)),
            *((("action_mask", self.action_mask),) if self.action_mask is not None else ()),
        ):
            if column.shape[0] != length:
                raise ValueError(f"trajectory {name} has {column.shape[0]} rows but there are {length} rewards")
        if len(self.next_obs) != len(self.obs):
            raise ValueError(f"trajectory has {len(self.obs)} sensors but {len(self.next_obs)} next observations")

    def bootstraps(self) -> bool:
        """Whether the value after the last experience is estimated (False only when done and not interrupted)."""
        return not self.done or self.interrupted


@dataclass(frozen=True)
class EpisodeStats:
    """The episodes of one behavior that ended, in the order they ended (one entry per agent episode)."""

    behavior: str
    """The fully qualified behavior name."""
    returns: np.ndarray
    """float32 ``(E,)``: each episode's cumulative environment reward (``Environment/Cumulative Reward``): the
    sum of the rewards received after the agent's actions, the terminal reward included."""
    lengths: np.ndarray
    """int64 ``(E,)``: each episode's length as ML-Agents reports ``Environment/Episode Length``: the decisions
    before the terminal step, i.e. one less than the episode's experiences."""

    def __post_init__(self) -> None:
        if self.returns.shape != self.lengths.shape:
            raise ValueError(f"{self.returns.shape[0]} episode returns but {self.lengths.shape[0]} lengths")

    def __len__(self) -> int:
        return int(self.returns.shape[0])


@dataclass(frozen=True)
class TrajectoryBatch:
    """What one EnvActor call sends the learner."""

    env_actor: int
    """The index of the EnvActor that played (the ``{env_actor}`` of the trajectories' agent ids)."""
    trajectories: tuple[Trajectory, ...]
    """The trajectories completed during the call, of every behavior, in the order they were completed."""
    episodes: tuple[EpisodeStats, ...] = ()
    """Per behavior with an ended episode, the returns and lengths of the episodes that ended during the call."""
    player_stats: PlayerStats = field(default_factory=dict)
    """What the player sent on the stats side channel during the call (``StatsSideChannel.get_and_reset_stats``)."""

    @property
    def num_steps(self) -> int:
        """The experiences in the batch (ML-Agents' steps: agent decisions, summed over agents)."""
        return sum(len(t) for t in self.trajectories)

    def of_behavior(self, behavior: str) -> tuple[Trajectory, ...]:
        """The trajectories of one fully qualified behavior name."""
        return tuple(t for t in self.trajectories if t.behavior == behavior)
