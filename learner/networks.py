"""The actor (policy) and the critic (value function) of a behavior.

The actor is what a checkpoint saves as ``"Policy"`` and what is exported to ONNX; the critic has one value head
per reward signal (``"extrinsic"``, ...). With ``shared_critic`` the critic reuses the actor's network body (the
same module) and adds only its value heads; otherwise it has a body of its own, with its own normalizer.

With ``network_settings.memory`` each of them has an LSTM after its body (:mod:`memory`; a shared critic shares
the actor's). Their methods then take ``memories`` ``(n_sequences, memory_size)`` and a ``sequence_length``: the
observations are ``n_sequences`` sequences of that many steps one after the other, each started from its memory
(acting is sequences of length 1). Without memory both are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch import nn

from rayagents.configs.network import NetworkSettings
from rayagents.learner.distributions import ActionHeads, clip_continuous
from rayagents.learner.encoders import NetworkBody, linear_layer
from rayagents.learner.memory import LSTMMemory
from rayagents.protocol.types import ActionSpec, ActionTuple, BehaviorSpec, ObservationSpec


@dataclass(frozen=True)
class ActionSample:
    """Actions the actor chose for a batch of agents, with what PPO needs to learn from them."""

    continuous: torch.Tensor
    """Raw continuous samples, float ``(batch, continuous_size)``: what is trained on (not clipped)."""
    discrete: torch.Tensor
    """One index per branch, int64 ``(batch, n_branches)``."""
    log_prob: torch.Tensor
    """Joint log probability of the actions, ``(batch,)``."""
    entropy: torch.Tensor
    """Entropy of the action distribution, ``(batch,)`` (the source of ``Policy/Entropy``)."""
    squashed: bool = False
    """The continuous samples are tanh-squashed (SAC): the player receives them as they are."""
    memories: torch.Tensor | None = None
    """With memory: each agent's memory after this step, ``(batch, memory_size)``; None without."""

    def env_actions(self) -> ActionTuple:
        """The actions for the player: continuous ``clamp(x, -3, 3) / 3`` (squashed ones as they are), discrete as
        int32."""
        continuous_tensor = self.continuous.detach()
        if not self.squashed:
            continuous_tensor = clip_continuous(continuous_tensor)
        continuous = continuous_tensor.cpu().numpy().astype(np.float32)
        discrete = self.discrete.detach().cpu().numpy().astype(np.int32)
        return ActionTuple(continuous=continuous, discrete=discrete)


@dataclass(frozen=True)
class ActorKind:
    """How an actor's continuous actions are distributed (ML-Agents' ``SimpleActor`` arguments)."""

    tanh_squash: bool = False
    """Squash the Gaussian sample with tanh (SAC) instead of clipping it to ±3 and dividing by 3 (PPO, POCA)."""
    conditional_sigma: bool = False
    """The standard deviation depends on the observation (SAC) rather than being one learned parameter."""


PPO_ACTOR = ActorKind()
"""The actor PPO and POCA train."""
SAC_ACTOR = ActorKind(tanh_squash=True, conditional_sigma=True)
"""The actor SAC trains."""


class Actor(nn.Module):
    """The policy: a network body and the action heads of the behavior's action spec."""

    def __init__(
        self,
        observation_specs: Sequence[ObservationSpec],
        action_spec: ActionSpec,
        settings: NetworkSettings,
        kind: ActorKind = PPO_ACTOR,
    ) -> None:
        super().__init__()
        self.observation_specs = tuple(observation_specs)
        self.action_spec = action_spec
        self.kind = kind
        self.deterministic = settings.deterministic
        self.network_body = NetworkBody(observation_specs, settings)
        self.memory = None if settings.memory is None else LSTMMemory(self.network_body.output_size, settings.memory)
        encoding_size = self.network_body.output_size if self.memory is None else self.memory.output_size
        self.action_heads = ActionHeads(encoding_size, action_spec, kind.tanh_squash, kind.conditional_sigma)

    @property
    def memory_size(self) -> int:
        """The size of an agent's memory; 0 without memory."""
        return 0 if self.memory is None else self.memory.memory_size

    def encode(
        self, observations: Sequence[torch.Tensor], memories: torch.Tensor | None = None, sequence_length: int = 1
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """What the action heads read, ``(batch, size)``, and (with memory) each sequence's memory after it."""
        return encode_with_memory(self.network_body, self.memory, observations, memories, sequence_length)

    def update_normalization(self, observations: Sequence[torch.Tensor]) -> None:
        """Folds a batch of observations into the actor's normalizers."""
        self.network_body.update_normalization(observations)

    def _allowed(self, encoding: torch.Tensor, allowed: torch.Tensor | None) -> torch.Tensor:
        return self.action_heads.all_allowed(encoding) if allowed is None else allowed.to(encoding.dtype)

    @torch.no_grad()
    def act(
        self,
        observations: Sequence[torch.Tensor],
        allowed: torch.Tensor | None = None,
        deterministic: bool | None = None,
        memories: torch.Tensor | None = None,
    ) -> ActionSample:
        """Chooses actions; ``allowed`` is the float mask ``(batch, sum(branches))`` with 1 = allowed; ``memories``
        ``(batch, memory_size)``, each agent's memory, with memory.

        ``deterministic`` defaults to ``network_settings.deterministic``: the mean / the argmax instead of a sample.
        """
        encoding, new_memories = self.encode(observations, memories)
        mode = self.deterministic if deterministic is None else deterministic
        continuous, discrete, log_prob, entropy = self.action_heads.sample(
            encoding, None if allowed is None else allowed.to(encoding.dtype), mode
        )
        return ActionSample(
            continuous=continuous,
            discrete=discrete,
            log_prob=log_prob,
            entropy=entropy,
            squashed=self.kind.tanh_squash,
            memories=new_memories,
        )

    def evaluate(
        self,
        observations: Sequence[torch.Tensor],
        allowed: torch.Tensor | None,
        continuous: torch.Tensor,
        discrete: torch.Tensor,
        memories: torch.Tensor | None = None,
        sequence_length: int = 1,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The joint log probability of the given (raw) actions and the entropy, each ``(batch,)``, with gradients."""
        encoding, _ = self.encode(observations, memories, sequence_length)
        return self.action_heads.evaluate(encoding, self._allowed(encoding, allowed), continuous, discrete)

    def reparameterized(
        self,
        observations: Sequence[torch.Tensor],
        allowed: torch.Tensor | None,
        memories: torch.Tensor | None = None,
        sequence_length: int = 1,
    ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """SAC's differentiable policy outputs: a continuous sample (reparameterized) and its log density, and each
        discrete branch's full log probabilities (see :meth:`ActionHeads.reparameterized`)."""
        encoding, _ = self.encode(observations, memories, sequence_length)
        return self.action_heads.reparameterized(encoding, self._allowed(encoding, allowed))


class ValueHeads(nn.Module):
    """One linear value head per reward signal name."""

    def __init__(self, hidden_size: int, stream_names: Sequence[str]) -> None:
        super().__init__()
        if not stream_names:
            raise ValueError("a critic needs at least one reward signal")
        self.heads = nn.ModuleDict({name: linear_layer(hidden_size, 1) for name in stream_names})

    @property
    def stream_names(self) -> tuple[str, ...]:
        """The reward signal names, in order."""
        return tuple(self.heads.keys())

    def forward(self, encoding: torch.Tensor) -> dict[str, torch.Tensor]:
        """A value estimate ``(batch,)`` per reward signal."""
        return {name: head(encoding).squeeze(1) for name, head in self.heads.items()}


class Critic(nn.Module):
    """The value function: a network body (possibly the actor's), with memory an LSTM (possibly the actor's), and a
    value head per reward signal."""

    def __init__(
        self, network_body: NetworkBody, stream_names: Sequence[str], memory: LSTMMemory | None = None
    ) -> None:
        super().__init__()
        self.network_body = network_body
        self.memory = memory
        self.value_heads = ValueHeads(network_body.output_size if memory is None else memory.output_size, stream_names)

    @property
    def memory_size(self) -> int:
        """The size of the critic's memory; 0 without memory."""
        return 0 if self.memory is None else self.memory.memory_size

    @property
    def stream_names(self) -> tuple[str, ...]:
        """The reward signal names, in order."""
        return self.value_heads.stream_names

    def update_normalization(self, observations: Sequence[torch.Tensor]) -> None:
        """Folds a batch of observations into the critic's normalizers."""
        self.network_body.update_normalization(observations)

    def forward(
        self, observations: Sequence[torch.Tensor], memories: torch.Tensor | None = None, sequence_length: int = 1
    ) -> dict[str, torch.Tensor]:
        """A value estimate ``(batch,)`` per reward signal."""
        return self.values(observations, memories, sequence_length)[0]

    def values(
        self, observations: Sequence[torch.Tensor], memories: torch.Tensor | None = None, sequence_length: int = 1
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        """A value estimate ``(batch,)`` per reward signal and (with memory) each sequence's memory after it."""
        encoding, new_memories = encode_with_memory(
            self.network_body, self.memory, observations, memories, sequence_length
        )
        return self.value_heads(encoding), new_memories


def encode_with_memory(
    body: NetworkBody,
    memory: LSTMMemory | None,
    observations: Sequence[torch.Tensor],
    memories: torch.Tensor | None,
    sequence_length: int,
    actions: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``body``'s encoding of ``observations`` (and ``actions``, for a body that takes them), through ``memory``'s
    LSTM when there is one (then ``memories`` is required); the LSTM's memories after each sequence (None without
    memory)."""
    encoding = body(observations, actions)
    if memory is None:
        return encoding, None
    if memories is None:
        raise ValueError(
            f"this network has a memory of {memory.memory_size}: pass each sequence's memories "
            f"(zeros at an episode's start)"
        )
    return memory(encoding, memories, sequence_length)


def build_actor_critic(
    spec: BehaviorSpec, settings: NetworkSettings, stream_names: Sequence[str], shared_critic: bool
) -> tuple[Actor, Critic]:
    """The actor and critic of a behavior; with ``shared_critic`` the critic uses the actor's body."""
    actor = Actor(spec.observation_specs, spec.action_spec, settings)
    if shared_critic:
        return actor, Critic(actor.network_body, stream_names, actor.memory)
    body = NetworkBody(spec.observation_specs, settings)
    memory = None if settings.memory is None else LSTMMemory(body.output_size, settings.memory)
    return actor, Critic(body, stream_names, memory)
