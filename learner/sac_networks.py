"""SAC's own networks and replay columns (ML-Agents' ``TorchSACOptimizer``): twin Q networks that take the
continuous actions with the observations and give one value per discrete action, the entropy coefficients in log
space, and how a Q's discrete outputs are read (the action taken, or the expectation under the policy)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from rayagents.configs.network import NetworkSettings
from rayagents.learner.encoders import NetworkBody, linear_layer
from rayagents.learner.memory import LSTMMemory
from rayagents.learner.networks import encode_with_memory
from rayagents.learner.replay_buffer import Column
from rayagents.learner.trajectory import (
    ACTION_MASKS,
    CONTINUOUS_ACTIONS,
    DISCRETE_ACTIONS,
    DONES,
    REWARDS,
    next_obs_key,
    obs_key,
)
from rayagents.protocol.types import ActionSpec, BehaviorSpec, ObservationSpec


class QNetwork(nn.Module):
    """One Q function: observations and continuous actions in, per reward signal one value per discrete action
    (``sum(branches)`` of them; one without discrete branches) out. With ``network_settings.memory`` an LSTM of its
    own follows the body (ML-Agents builds its Q networks with the policy's network settings, memory included)."""

    def __init__(
        self,
        observation_specs: Sequence[ObservationSpec],
        action_spec: ActionSpec,
        settings: NetworkSettings,
        stream_names: Sequence[str],
    ) -> None:
        super().__init__()
        outputs = max(sum(action_spec.discrete_branches), 1)
        self.network_body = NetworkBody(observation_specs, settings, action_size=action_spec.continuous_size)
        size = self.network_body.output_size
        self.memory = None if settings.memory is None else LSTMMemory(size, settings.memory)
        size = size if self.memory is None else self.memory.output_size
        self.heads = nn.ModuleDict({name: linear_layer(size, outputs) for name in stream_names})

    def forward(
        self,
        observations: Sequence[torch.Tensor],
        actions: torch.Tensor,
        memories: torch.Tensor | None = None,
        sequence_length: int = 1,
    ) -> dict[str, torch.Tensor]:
        """``(batch, outputs)`` per reward signal; with memory, the observations are sequences of
        ``sequence_length`` each started from its row of ``memories`` ``(n_sequences, memory_size)``."""
        encoding, _ = encode_with_memory(
            self.network_body, self.memory, observations, memories, sequence_length, actions
        )
        return {name: head(encoding) for name, head in self.heads.items()}


class TwinQ(nn.Module):
    """The two Q functions (ML-Agents' ``q1_network`` and ``q2_network``)."""

    def __init__(
        self,
        observation_specs: Sequence[ObservationSpec],
        action_spec: ActionSpec,
        settings: NetworkSettings,
        stream_names: Sequence[str],
    ) -> None:
        super().__init__()
        self.q1_network = QNetwork(observation_specs, action_spec, settings, stream_names)
        self.q2_network = QNetwork(observation_specs, action_spec, settings, stream_names)


class LogEntropyCoefficients(nn.Module):
    """The entropy coefficients in log space: one per discrete branch and one for the continuous part."""

    def __init__(self, branches: int, init_entcoef: float) -> None:
        super().__init__()
        start = float(np.log(init_entcoef))
        self.discrete = nn.Parameter(torch.full((branches,), start))
        self.continuous = nn.Parameter(torch.full((1,), start))


def taken_q(q: torch.Tensor, taken: torch.Tensor, branches: Sequence[int]) -> torch.Tensor:
    """The Q of each branch's action taken, averaged over branches: ``(batch,)``."""
    per_branch = torch.split(q, list(branches), dim=1)
    picked = [values.gather(1, taken[:, b : b + 1]).squeeze(1) for b, values in enumerate(per_branch)]
    return torch.stack(picked).mean(dim=0)


def expected_over_branches(q: torch.Tensor, probs: Sequence[torch.Tensor], branches: Sequence[int]) -> torch.Tensor:
    """Each branch's Q expected under the policy, averaged over branches: ``(batch,)``."""
    per_branch = torch.split(q, list(branches), dim=1)
    return torch.stack([(values * p).sum(dim=1) for values, p in zip(per_branch, probs)]).mean(dim=0)


def replay_columns(spec: BehaviorSpec) -> dict[str, Column]:
    """The replay buffer's columns for a behavior: observations and next observations (uint8 for visual sensors),
    actions, the allowed-action mask, the reward and done."""
    columns: dict[str, Column] = {}
    for k, observation in enumerate(spec.observation_specs):
        dtype = torch.uint8 if len(observation.shape) == 3 else torch.float32
        columns[obs_key(k)] = Column(tuple(observation.shape), dtype)
        columns[next_obs_key(k)] = Column(tuple(observation.shape), dtype)
    action = spec.action_spec
    columns[CONTINUOUS_ACTIONS] = Column((action.continuous_size,), torch.float32)
    columns[DISCRETE_ACTIONS] = Column((len(action.discrete_branches),), torch.int64)
    columns[ACTION_MASKS] = Column((sum(action.discrete_branches),), torch.float32)
    columns[REWARDS] = Column((), torch.float32)
    columns[DONES] = Column((), torch.float32)
    return columns
