"""What the learner trains on: one agent's trajectory in, columns of an update buffer out.

A :class:`Trajectory` is up to ``time_horizon`` consecutive experiences of one agent (ML-Agents'
``AgentProcessor`` cuts one at ``time_horizon`` or when the agent's episode ends). The PPO trainer turns each into
columns (value estimates, returns, advantages) and appends them to an :class:`UpdateBuffer`, which is consumed
by an update once it holds more than ``buffer_size`` experiences.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch


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
ADVANTAGES = "advantages"


@dataclass(frozen=True)
class Trajectory:
    """Consecutive experiences of one agent, as the acting policy saw them; T = the number of experiences."""

    obs: tuple[np.ndarray, ...]
    """One array per sensor, ``(T, *shape)``: the observation each decision was made on."""
    next_obs: tuple[np.ndarray, ...]
    """One array per sensor, ``shape``: the observation after the last experience (to bootstrap from)."""
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

    def __len__(self) -> int:
        return int(self.rewards.shape[0])

    def __post_init__(self) -> None:
        length = len(self)
        for name, column in (
            ("continuous_actions", self.continuous_actions),
            ("discrete_actions", self.discrete_actions),
            ("log_probs", self.log_probs),
            *((f"obs[{i}]", o) for i, o in enumerate(self.obs)),
        ):
            if column.shape[0] != length:
                raise ValueError(f"trajectory {name} has {column.shape[0]} rows but there are {length} rewards")
        if len(self.next_obs) != len(self.obs):
            raise ValueError(f"trajectory has {len(self.obs)} sensors but {len(self.next_obs)} next observations")

    def bootstraps(self) -> bool:
        """Whether the value after the last experience is estimated (False only when done and not interrupted)."""
        return not self.done or self.interrupted


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

    def tensors(self, device: torch.device) -> dict[str, torch.Tensor]:
        """Every column concatenated into one tensor on ``device``."""
        return {
            name: torch.as_tensor(np.concatenate(parts, axis=0)).to(device) for name, parts in self._columns.items()
        }

    def clear(self) -> None:
        """Drops every experience."""
        self._columns.clear()
        self._num_experiences = 0
