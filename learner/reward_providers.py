"""What every reward signal is: a provider that rewards a batch of experiences and may learn from it.

A provider (ML-Agents' ``BaseRewardProvider``) has a name (ML-Agents' class name less "RewardProvider":
``Extrinsic``, ``Curiosity``, ``GAIL``, ``RND``), evaluates the reward of each experience of a
:class:`RewardBatch` (before ``strength``), updates its own networks from a batch, and names the modules a
checkpoint keeps. ``ignore_done`` says whether the signal's returns stop at an episode's end: curiosity and RND
reward exploration, so an episode's end is no terminal state for them (ML-Agents' ``_ignore_done``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch.nn import functional

from rayagents.configs.reward_signals import RewardSignalSettings
from rayagents.learner.checkpoint_format import Saveable
from rayagents.learner.encoders import observation_tensor
from rayagents.learner.trajectory import CONTINUOUS_ACTIONS, DISCRETE_ACTIONS, DONES, REWARDS, next_obs_key, obs_key
from rayagents.protocol.types import ActionSpec


@dataclass(frozen=True)
class RewardBatch:
    """Experiences a reward signal rewards or learns from, as tensors on the learner's device, row for row."""

    observations: Sequence[torch.Tensor]
    """Each sensor's observation the agent acted on, ``(n, *shape)``."""
    next_observations: Sequence[torch.Tensor]
    """Each sensor's observation after the action, ``(n, *shape)``; empty where no signal of the trainer learns
    (the extrinsic signal needs none)."""
    continuous_actions: torch.Tensor
    """``(n, continuous_size)`` float."""
    discrete_actions: torch.Tensor
    """``(n, branches)`` int64."""
    environment_rewards: torch.Tensor
    """``(n,)`` float: the player's reward after the action."""
    dones: torch.Tensor
    """``(n,)`` float, 1.0 where the episode ended after the action."""

    def __len__(self) -> int:
        return int(self.environment_rewards.shape[0])


def batch_from_columns(columns: Mapping[str, torch.Tensor], sensors: int) -> RewardBatch:
    """The reward batch of update-buffer or replay-buffer columns (observations, next observations where held,
    actions, rewards, dones)."""
    return RewardBatch(
        observations=[columns[obs_key(k)] for k in range(sensors)],
        next_observations=[columns[next_obs_key(k)] for k in range(sensors) if next_obs_key(k) in columns],
        continuous_actions=columns[CONTINUOUS_ACTIONS],
        discrete_actions=columns[DISCRETE_ACTIONS],
        environment_rewards=columns[REWARDS],
        dones=columns[DONES],
    )


def batch_from_arrays(
    columns: Mapping[str, np.ndarray], observations: Sequence[torch.Tensor], device: torch.device, *, with_next: bool
) -> RewardBatch:
    """The reward batch of experience columns (:func:`~rayagents.learner.trajectory.experience_columns`), with
    the observations already on ``device``; the next observations are moved there too only ``with_next`` (a signal
    that learns needs them, the extrinsic one does not)."""
    sensors = len(observations)
    names = [CONTINUOUS_ACTIONS, REWARDS, DONES, *(next_obs_key(k) for k in range(sensors) if with_next)]
    tensors = {name: observation_tensor(columns[name], device) for name in names}
    tensors[DISCRETE_ACTIONS] = torch.as_tensor(columns[DISCRETE_ACTIONS], dtype=torch.int64).to(device)
    tensors.update({obs_key(k): o for k, o in enumerate(observations)})
    return batch_from_columns(tensors, sensors)


def flat_actions(continuous: torch.Tensor, discrete: torch.Tensor, spec: ActionSpec) -> torch.Tensor:
    """Actions as one float vector each, ``(..., continuous_size + sum(branches))``: the continuous actions, then a
    one-hot per discrete branch (ML-Agents' ``ActionFlattener``, ``AgentAction.to_flat``). Leading axes are kept."""
    parts = [continuous.float()] if spec.continuous_size > 0 else []
    for b, size in enumerate(spec.discrete_branches):
        parts.append(functional.one_hot(discrete[..., b].long(), size).float())
    return torch.cat(parts, dim=-1)


def flatten_actions(batch: RewardBatch, spec: ActionSpec) -> torch.Tensor:
    """The batch's actions as one float vector per experience (:func:`flat_actions`)."""
    return flat_actions(batch.continuous_actions, batch.discrete_actions, spec)


def flattened_action_size(spec: ActionSpec) -> int:
    """The width of :func:`flatten_actions`."""
    return spec.continuous_size + sum(spec.discrete_branches)


class RewardProvider(Protocol):
    """One reward signal on the learner."""

    @property
    def name(self) -> str:
        """ML-Agents' provider name (``Extrinsic``, ``Curiosity``, ``GAIL``, ``RND``): checkpoint entries use it."""
        ...

    @property
    def settings(self) -> RewardSignalSettings:
        """The signal's settings (``gamma``, ``strength``, its own ones)."""
        ...

    @property
    def ignore_done(self) -> bool:
        """True when an episode's end does not end the signal's returns (curiosity, RND)."""
        ...

    @property
    def learns(self) -> bool:
        """Whether :meth:`update` trains anything (everything but the extrinsic signal)."""
        ...

    def evaluate(self, batch: RewardBatch) -> torch.Tensor:
        """The reward of each experience, ``(n,)``, before ``strength``; no gradients."""
        ...

    def update(self, batch: RewardBatch) -> Mapping[str, float]:
        """One gradient step of the signal's own networks on ``batch``; its statistics under ML-Agents' names."""
        ...

    def modules(self) -> Mapping[str, Saveable]:
        """The checkpoint entries of the signal's networks and optimizer."""
        ...

    def restored(self) -> None:
        """Its modules were just restored from a checkpoint."""
        ...


class ExtrinsicReward:
    """The player's own reward."""

    name = "Extrinsic"
    ignore_done = False
    learns = False

    def __init__(self, settings: RewardSignalSettings) -> None:
        self.settings = settings

    def evaluate(self, batch: RewardBatch) -> torch.Tensor:
        """The environment's rewards."""
        return batch.environment_rewards.float()

    def update(self, batch: RewardBatch) -> dict[str, float]:
        """Nothing to learn."""
        return {}

    def modules(self) -> dict[str, Saveable]:
        """Nothing to keep."""
        return {}

    def restored(self) -> None:
        """Nothing to re-count."""
