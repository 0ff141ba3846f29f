"""Demonstrations on the learner's device: what GAIL's discriminator and behavioral cloning draw from."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch

from rayagents.learner.demonstrations import load_demonstrations
from rayagents.learner.encoders import observation_tensor
from rayagents.learner.reward_providers import RewardBatch
from rayagents.protocol.demonstrations import Demonstration
from rayagents.protocol.types import BehaviorSpec

ExpertSource = Callable[[str], "ExpertData"]
"""The demonstrations of a ``demo_path`` on the learner's device."""


class ExpertData:
    """A demonstration's experiences as tensors on ``device``.

    Arguments:
        demonstration: the experiences read from the ``.demo`` file(s).
        device: where the learner trains.
    """

    def __init__(self, demonstration: Demonstration, device: torch.device) -> None:
        if len(demonstration) == 0:
            raise ValueError(f"the demonstration {', '.join(demonstration.sources)} holds no steps")
        self.sources = demonstration.sources
        self.observations = [observation_tensor(o, device) for o in demonstration.observations]
        ends = np.asarray(demonstration.dones, dtype=bool)
        following = np.minimum(np.arange(len(demonstration)) + 1, len(demonstration) - 1)
        following = np.where(ends, np.arange(len(demonstration)), following)  # no observation after an episode end
        index = torch.as_tensor(following, device=device)
        self.next_observations = [o[index] for o in self.observations]
        self.continuous_actions = torch.as_tensor(demonstration.continuous_actions, dtype=torch.float32).to(device)
        self.discrete_actions = torch.as_tensor(demonstration.discrete_actions, dtype=torch.int64).to(device)
        self.rewards = torch.as_tensor(demonstration.rewards, dtype=torch.float32).to(device)
        self.dones = torch.as_tensor(ends, dtype=torch.float32).to(device)
        self.device = device

    def __len__(self) -> int:
        return int(self.rewards.shape[0])

    def rows(self, index: torch.Tensor) -> RewardBatch:
        """The experiences at ``index`` (int64 on the device)."""
        return RewardBatch(
            observations=[o[index] for o in self.observations],
            next_observations=[o[index] for o in self.next_observations],
            continuous_actions=self.continuous_actions[index],
            discrete_actions=self.discrete_actions[index],
            environment_rewards=self.rewards[index],
            dones=self.dones[index],
        )

    def sample(self, size: int, generator: torch.Generator | None = None) -> RewardBatch:
        """``size`` experiences drawn uniformly, with replacement."""
        index = torch.randint(len(self), (size,), generator=generator).to(self.device)
        return self.rows(index)

    def minibatches(self, batch_size: int, limit: int, generator: torch.Generator | None = None) -> Iterator[RewardBatch]:
        """One shuffled pass of whole minibatches of ``batch_size`` (one smaller batch when the demonstration is
        smaller than a batch), at most ``limit`` experiences of it (0: all)."""
        size = min(batch_size, len(self))
        count = len(self) // size
        if limit > 0:
            count = max(1, min(count, limit // size))
        order = torch.randperm(len(self), generator=generator).to(self.device)
        for b in range(count):
            yield self.rows(order[b * size : (b + 1) * size])


def expert_source(spec: BehaviorSpec, device: torch.device) -> ExpertSource:
    """Reads a ``demo_path`` (a ``.demo`` file or folder, local or a URI) once, checked against ``spec``; GAIL and
    behavioral cloning of the same path share it."""
    loaded: dict[str, ExpertData] = {}

    def load(path: str) -> ExpertData:
        if path not in loaded:
            loaded[path] = ExpertData(load_demonstrations(path, spec), device)
        return loaded[path]

    return load
