"""What the learner trains on: one agent's trajectory in, columns of an update buffer out.

A :class:`~rayagents.protocol.trajectories.Trajectory` (defined in ``protocol``: the EnvActors build it) is up
to ``time_horizon`` consecutive experiences of one agent (ML-Agents' ``AgentProcessor`` cuts one at
``time_horizon`` or when the agent's episode ends). The PPO trainer turns each into columns (value estimates,
returns, advantages) and appends them to an :class:`UpdateBuffer`, which is consumed by an update once it holds
more than ``buffer_size`` experiences.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch

from rayagents.protocol.trajectories import Trajectory as Trajectory  # the one definition; re-exported here


def obs_key(index: int) -> str:
    """The update-buffer column of the observations of sensor ``index``."""
    return f"obs_{index}"


def returns_key(stream: str) -> str:
    """The update-buffer column of the returns of reward signal ``stream``."""
    return f"{stream}_returns"


def value_estimates_key(stream: str) -> str:
    """The update-buffer column of the value estimates (at collection time) of reward signal ``stream``."""
    return f"{stream}_value_estimates"


CONTINUOUS_ACTIONS = "continuous_actions"
DISCRETE_ACTIONS = "discrete_actions"
ACTION_MASKS = "action_masks"
"""Float, 1 = allowed (the opposite of the wire's mask)."""
LOG_PROBS = "log_probs"
"""The joint log probability of each action under the weights that acted (the behavior policy)."""
CURRENT_LOG_PROBS = "current_log_probs"
"""The joint log probability of each action under the learner's weights when the experience was taken in (the
weights the next update starts from)."""
ADVANTAGES = "advantages"
REWARDS = "rewards"
"""The environment reward after each experience: the agent's own reward plus its group's reward (ML-Agents' extrinsic
reward adds the group reward for every trainer)."""
LOSS_MASKS = "masks"
"""Float, 1 for an experience to train on, 0 for a sequence's padding or an experience outside the lag bound (the
update buffer of a network with memory, laid out in padded sequences)."""
CRITIC_MEMORY = "critic_memory"
"""The critic's memory at the start of the sequence of each row (a network with memory)."""
DONES = "dones"
"""1.0 where the episode ended after the experience. (SAC's replay buffer: only where it truly ended, not where it
was interrupted, since an interrupted episode is bootstrapped.)"""


def next_obs_key(index: int) -> str:
    """The column of the observations after each experience, of sensor ``index``."""
    return f"next_obs_{index}"


def next_observations(trajectories: Sequence[Trajectory], sensor: int) -> np.ndarray:
    """Sensor ``sensor``'s observation after each experience of ``trajectories``, one after the other: the next
    experience's, and the trajectory's ``next_obs`` after its last."""
    return np.concatenate([np.concatenate([t.obs[sensor][1:], t.next_obs[sensor][None]]) for t in trajectories])


def experience_columns(
    trajectories: Sequence[Trajectory], sensors: int, *, next_obs: bool, interrupted_ends: bool
) -> dict[str, np.ndarray]:
    """Every experience of ``trajectories``, one after the other, as columns: each sensor's observations (and, with
    ``next_obs``, the observations after), the actions (float32, int64), the reward (float32) and :data:`DONES`
    (see :func:`episode_ends` for ``interrupted_ends``)."""
    columns: dict[str, np.ndarray] = {}
    for k in range(sensors):
        columns[obs_key(k)] = np.concatenate([t.obs[k] for t in trajectories])
        if next_obs:
            columns[next_obs_key(k)] = next_observations(trajectories, k)
    columns[CONTINUOUS_ACTIONS] = np.concatenate([t.continuous_actions for t in trajectories]).astype(np.float32)
    columns[DISCRETE_ACTIONS] = np.concatenate([t.discrete_actions for t in trajectories]).astype(np.int64)
    columns[REWARDS] = np.concatenate([environment_rewards(t) for t in trajectories])
    columns[DONES] = episode_ends(trajectories, interrupted=interrupted_ends)
    return columns


def environment_rewards(trajectory: Trajectory) -> np.ndarray:
    """float32 ``(T,)``: the agent's reward after each experience plus its group's reward (when in a group)."""
    rewards = trajectory.rewards.astype(np.float32)
    return rewards if trajectory.group_rewards is None else rewards + trajectory.group_rewards


def episode_ends(trajectories: Sequence[Trajectory], *, interrupted: bool) -> np.ndarray:
    """float32, per experience: 1.0 at the last experience of a trajectory whose episode ended there (and, unless
    ``interrupted`` is True, only where it truly ended rather than being interrupted)."""
    ends = []
    for t in trajectories:
        end = np.zeros(len(t), dtype=np.float32)
        end[-1] = float(t.done and (interrupted or not t.interrupted))
        ends.append(end)
    return np.concatenate(ends)


def concatenate_padded(parts: Sequence[np.ndarray]) -> np.ndarray:
    """``parts`` concatenated along axis 0; parts whose axis 1 differs (a slot axis, such as POCA's groupmates, which
    each append pads to its own most) are padded with zeros at its end to the widest first."""
    widths = {part.shape[1] for part in parts if part.ndim > 1}
    if len(widths) > 1:
        width = max(widths)
        parts = [np.pad(p, [(0, 0), (0, width - p.shape[1])] + [(0, 0)] * (p.ndim - 2)) for p in parts]
    return np.concatenate(parts, axis=0)


class UpdateBuffer:
    """Columns of experiences, appended trajectory by trajectory, concatenated for an update."""

    def __init__(self) -> None:
        self._columns: dict[str, list[np.ndarray]] = {}
        self._num_experiences = 0

    @property
    def num_experiences(self) -> int:
        """How many experiences the buffer holds."""
        return self._num_experiences

    def append(self, columns: Mapping[str, np.ndarray]) -> None:
        """Appends the experiences of one trajectory: every column with the same number of rows."""
        lengths = {name: column.shape[0] for name, column in columns.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"columns of different lengths: {lengths}")
        if self._columns and set(columns) != set(self._columns):
            raise ValueError(f"columns {sorted(columns)} differ from the buffer's {sorted(self._columns)}")
        for name, column in columns.items():
            self._columns.setdefault(name, []).append(np.asarray(column))
        self._num_experiences += next(iter(lengths.values()), 0)

    def arrays(self) -> dict[str, np.ndarray]:
        """Every column concatenated into one array (see :func:`concatenate_padded`)."""
        return {name: concatenate_padded(parts) for name, parts in self._columns.items()}

    def tensors(self, device: torch.device) -> dict[str, torch.Tensor]:
        """Every column concatenated into one tensor on ``device``."""
        return {name: torch.as_tensor(column).to(device) for name, column in self.arrays().items()}

    def clear(self) -> None:
        """Drops every experience."""
        self._columns.clear()
        self._num_experiences = 0
