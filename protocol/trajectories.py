"""What an EnvActor sends the learner, and what a policy hands an EnvActor: numpy only, picklable by Ray.

- :class:`ActionTaken`: a policy's answer for one ``DecisionSteps`` batch (built by the learner's policy code,
  read by the actor's trajectory building): the actions, the weights version that acted, and the named per-agent
  values the algorithm asked to keep (:attr:`ActionTaken.extras`: PPO's log probabilities, later memories, ...).
- :class:`Trajectory`: up to ``time_horizon`` consecutive experiences of one agent (ML-Agents' ``AgentProcessor``
  cuts one at ``time_horizon``, when the agent's episode ends, or drops it when its player restarts). An open
  record: the fixed fields every algorithm reads, and per step the extras of the acting policy, stacked.
- :class:`EpisodeStats`: the returns and lengths of the episodes of one behavior that ended.
- :class:`TrajectoryBatch`: what one EnvActor sends in one call: trajectories, ended episodes, player statistics.

Observations keep the dtype the player's wire delivered them in: float32 for vector sensors, uint8 for visual ones
when the EnvActor decodes them so (scaled to [0, 1] by the network's encoder, on the learner's device).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from rayagents.protocol.side_channels.stats import StatsAggregationMethod
from rayagents.protocol.types import ActionTuple

PlayerStats = Mapping[str, tuple[tuple[float, StatsAggregationMethod], ...]]
"""Statistics a player sent on the stats side channel: per key, the values and how each is aggregated."""

LOG_PROBS = "log_probs"
"""The extra of a stochastic policy: float32 ``(n,)``, the joint log probability of each agent's action under the
weights that acted (what PPO's clipped ratio is taken against)."""


def _rows(array: np.ndarray) -> int:
    return int(np.shape(array)[0])


@dataclass(frozen=True)
class ActionTaken:
    """A policy's actions for one ``DecisionSteps`` batch of a behavior: row i is the agent in row i of the batch."""

    env_actions: ActionTuple
    """What the player receives (PPO/POCA: continuous ``clamp(x, -3, 3) / 3``; SAC: the squashed output)."""
    continuous: np.ndarray
    """float32 ``(n, continuous_size)``: the raw samples, stored for training."""
    discrete: np.ndarray
    """int32 ``(n, n_branches)``: the sampled branch choices."""
    policy_version: int
    """The weights version that acted."""
    extras: Mapping[str, np.ndarray] = field(default_factory=dict)
    """Per-agent values the algorithm keeps with each step, by name, each ``(n, ...)``: :data:`LOG_PROBS` for a
    stochastic policy; memories, model outputs and the like for others. The trajectory stacks them per step."""

    def __post_init__(self) -> None:
        rows = {"env_actions": self.env_actions.n_agents, "continuous": _rows(self.continuous)}
        rows["discrete"] = _rows(self.discrete)
        rows.update({f"extras[{name!r}]": _rows(value) for name, value in self.extras.items()})
        if len(set(rows.values())) > 1:
            raise ValueError(f"the parts of an ActionTaken have different numbers of agents: {rows}")

    @property
    def n_agents(self) -> int:
        """The number of agents acted for."""
        return _rows(self.continuous)


@dataclass(frozen=True)
class GroupmateSteps:
    """What an agent's groupmates did at each of its experiences (ML-Agents' group status), for an algorithm with a
    centralized critic (POCA). T = the trajectory's experiences; M = groupmate slots, the most groupmates present at
    any of its steps or after its last (slots beyond a step's groupmates are padding, ``present`` False).

    A groupmate is present at a step when it acted at the same exchange as the agent and had not left the episode
    before it; its observation is the one it acted on, its action the one it took, its reward the one it received
    after (ML-Agents' ``AgentStatus``). Slots are in no particular order: a centralized critic must not depend on it.
    """

    obs: tuple[np.ndarray, ...]
    """One array per sensor, ``(T, M, *shape)``: each groupmate's observation at the step (zeros for padding)."""
    continuous_actions: np.ndarray
    """float32 ``(T, M, continuous_size)``: each groupmate's raw action at the step."""
    discrete_actions: np.ndarray
    """int32 ``(T, M, n_branches)``."""
    present: np.ndarray
    """bool ``(T, M)``: the slot holds a groupmate at the step."""
    dones: np.ndarray
    """bool ``(T, M)``: the groupmate's episode ended with the step."""
    rewards: np.ndarray
    """float32 ``(T,)``: the sum of the present groupmates' rewards after the step (ML-Agents adds it to the agent's
    extrinsic reward under POCA)."""
    next_obs: tuple[np.ndarray, ...]
    """One array per sensor, ``(M, *shape)``: each groupmate's latest observation after the trajectory's last step
    (its terminal one if it left with the agent), to bootstrap the group's value from."""
    next_present: np.ndarray
    """bool ``(M,)``: the slot of ``next_obs`` holds a groupmate."""

    def __post_init__(self) -> None:
        steps, slots = np.shape(self.present)
        shapes = {
            "continuous_actions": np.shape(self.continuous_actions)[:2],
            "discrete_actions": np.shape(self.discrete_actions)[:2],
            "dones": np.shape(self.dones),
            **{f"obs[{i}]": np.shape(o)[:2] for i, o in enumerate(self.obs)},
        }
        for name, shape in shapes.items():
            if tuple(shape) != (steps, slots):
                raise ValueError(f"groupmate {name} has leading shape {tuple(shape)}, expected {(steps, slots)}")
        if np.shape(self.rewards) != (steps,):
            raise ValueError(f"groupmate rewards have shape {np.shape(self.rewards)}, expected ({steps},)")
        if len(self.next_obs) != len(self.obs) or any(_rows(o) != slots for o in self.next_obs):
            raise ValueError(f"groupmate next observations must be {len(self.obs)} arrays of {slots} rows")
        if np.shape(self.next_present) != (slots,):
            raise ValueError(f"groupmate next_present has shape {np.shape(self.next_present)}, expected ({slots},)")

    @property
    def slots(self) -> int:
        """M, the groupmate slots."""
        return int(np.shape(self.present)[1])

    def all_done_at_end(self) -> bool:
        """Every groupmate present at the last step left the episode with it (vacuously true with none): with the
        agent's own end, the whole group's episode ended (ML-Agents' ``all_group_dones_reached``)."""
        return bool(np.all(self.dones[-1][self.present[-1]])) if len(self.present) else True


@dataclass(frozen=True)
class Trajectory:
    """Consecutive experiences of one agent, as the acting policy saw them; T = the number of experiences.

    The identity fields have defaults so that a trajectory can be built by hand (tests, offline data); an
    EnvActor always sets them.
    """

    obs: tuple[np.ndarray, ...]
    """One array per sensor, ``(T, *shape)``: the observation each decision was made on (float32, or uint8 for a
    visual sensor decoded as bytes)."""
    next_obs: tuple[np.ndarray, ...]
    """One array per sensor, ``shape``: the observation after the last experience (to bootstrap from); the
    terminal observation when ``done``."""
    continuous_actions: np.ndarray
    """float32 ``(T, continuous_size)``: the raw samples, before ``clamp(x, -3, 3) / 3``."""
    discrete_actions: np.ndarray
    """int ``(T, n_branches)``."""
    rewards: np.ndarray
    """float32 ``(T,)``: the environment (extrinsic) reward received after each action."""
    done: bool
    """The agent's episode ended with the last experience."""
    interrupted: bool
    """The episode was cut off (max step reached) rather than ended: the value is still bootstrapped."""
    versions: np.ndarray
    """int32 ``(T,)``: the weights version that acted at each step (the learner measures the policy lag from it)."""
    extras: Mapping[str, np.ndarray] = field(default_factory=dict)
    """The acting policy's :attr:`ActionTaken.extras`, stacked per step: each ``(T, ...)``."""
    action_mask: np.ndarray | None = None
    """bool ``(T, sum(branches))``, **True = disabled** (the wire's convention); None = all allowed."""
    group_id: int = 0
    """The agent's group (ML-Agents' ``MultiAgentGroup``); 0 = in no group."""
    group_rewards: np.ndarray | None = None
    """float32 ``(T,)``: the group reward received after each action; None when the agent is in no group."""
    behavior: str = ""
    """The fully qualified behavior name (``"Name?team=0"``) whose policy acted."""
    agent_id: str = ""
    """The agent's global id, ``"agent_{env_actor}-{unity_agent_id}"`` (ML-Agents' ``agent_{worker}-{id}``)."""
    groupmates: GroupmateSteps | None = None
    """What the agent's groupmates did at each step; only for an algorithm that asks for it (POCA) and an agent in a
    group, else None."""

    def __len__(self) -> int:
        return int(self.rewards.shape[0])

    def __post_init__(self) -> None:
        length = len(self)
        columns: list[tuple[str, np.ndarray]] = [
            ("continuous_actions", self.continuous_actions),
            ("discrete_actions", self.discrete_actions),
            ("versions", self.versions),
            *((f"obs[{i}]", o) for i, o in enumerate(self.obs)),
            *((f"extras[{name!r}]", value) for name, value in self.extras.items()),
        ]
        if self.action_mask is not None:
            columns.append(("action_mask", self.action_mask))
        if self.group_rewards is not None:
            columns.append(("group_rewards", self.group_rewards))
        for name, column in columns:
            if _rows(column) != length:
                raise ValueError(f"trajectory {name} has {_rows(column)} rows but there are {length} rewards")
        if len(self.next_obs) != len(self.obs):
            raise ValueError(f"trajectory has {len(self.obs)} sensors but {len(self.next_obs)} next observations")
        if self.groupmates is not None and len(self.groupmates.present) != length:
            raise ValueError(f"trajectory groupmates have {len(self.groupmates.present)} steps but there are {length}")

    def bootstraps(self) -> bool:
        """Whether the value after the last experience is estimated (False only when done and not interrupted)."""
        return not self.done or self.interrupted

    def extra(self, name: str) -> np.ndarray:
        """The per-step extra ``name``; a KeyError names the extras the acting policy kept."""
        if name not in self.extras:
            raise KeyError(
                f"trajectory of behavior {self.behavior!r} has no per-step {name!r} (it has: {sorted(self.extras)}): "
                "the acting policy does not keep what this algorithm trains on; check the trainer_type"
            )
        return self.extras[name]


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

    group_returns: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    """float32 ``(G,)``: for each agent whose episode ended with its whole group's, the group rewards it received over
    the episode (``Environment/Group Cumulative Reward``; ML-Agents reports it from POCA's trainer). Agents that left
    their group's episode early report none."""

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
    """The trajectories completed since the EnvActor's last batch, of every behavior, in the order completed."""
    episodes: tuple[EpisodeStats, ...] = ()
    """Per behavior with an ended episode, the returns and lengths of the episodes that ended since the last batch."""
    player_stats: PlayerStats = field(default_factory=dict)
    """What the player sent on the stats side channel since the last batch (``StatsSideChannel.get_and_reset_stats``)."""

    @property
    def num_steps(self) -> int:
        """The experiences in the batch (ML-Agents' steps: agent decisions, summed over agents)."""
        return sum(len(t) for t in self.trajectories)

    def of_behavior(self, behavior: str) -> tuple[Trajectory, ...]:
        """The trajectories of one fully qualified behavior name."""
        return tuple(t for t in self.trajectories if t.behavior == behavior)
