"""The actor (policy) and the critic (value function) of a behavior.

The actor is what a checkpoint saves as ``"Policy"`` and what is exported to ONNX; the critic has one value head
per reward signal (``"extrinsic"``, ...). With ``shared_critic`` the critic reuses the actor's network body (the
same module) and adds only its value heads; otherwise it has a body of its own, with its own normalizer.
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
        self.action_heads = ActionHeads(
            self.network_body.output_size, action_spec, kind.tanh_squash, kind.conditional_sigma
        )

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
    ) -> ActionSample:
        """Chooses actions; ``allowed`` is the float mask ``(batch, sum(branches))`` with 1 = allowed.

        ``deterministic`` defaults to ``network_settings.deterministic``: the mean / the argmax instead of a sample.
        """
        encoding = self.network_body(observations)
        mode = self.deterministic if deterministic is None else deterministic
        continuous, discrete, log_prob, entropy = self.action_heads.sample(
            encoding, self._allowed(encoding, allowed), mode
        )
        return ActionSample(
            continuous=continuous, discrete=discrete, log_prob=log_prob, entropy=entropy, squashed=self.kind.tanh_squash
        )

    def evaluate(
        self,
        observations: Sequence[torch.Tensor],
        allowed: torch.Tensor | None,
        continuous: torch.Tensor,
        discrete: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The joint log probability of the given (raw) actions and the entropy, each ``(batch,)``, with gradients."""
        encoding = self.network_body(observations)
        return self.action_heads.evaluate(encoding, self._allowed(encoding, allowed), continuous, discrete)

    def reparameterized(
        self, observations: Sequence[torch.Tensor], allowed: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """SAC's differentiable policy outputs: a continuous sample (reparameterized) and its log density, and each
        discrete branch's full log probabilities (see :meth:`ActionHeads.reparameterized`)."""
        encoding = self.network_body(observations)
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
    """The value function: a network body (possibly the actor's) and a value head per reward signal."""

    def __init__(self, network_body: NetworkBody, stream_names: Sequence[str]) -> None:
        super().__init__()
        self.network_body = network_body
        self.value_heads = ValueHeads(network_body.output_size, stream_names)

    @property
    def stream_names(self) -> tuple[str, ...]:
        """The reward signal names, in order."""
        return self.value_heads.stream_names

    def update_normalization(self, observations: Sequence[torch.Tensor]) -> None:
        """Folds a batch of observations into the critic's normalizers."""
        self.network_body.update_normalization(observations)

    def forward(self, observations: Sequence[torch.Tensor]) -> dict[str, torch.Tensor]:
        """A value estimate ``(batch,)`` per reward signal."""
        return self.value_heads(self.network_body(observations))


def build_actor_critic(
    spec: BehaviorSpec, settings: NetworkSettings, stream_names: Sequence[str], shared_critic: bool
) -> tuple[Actor, Critic]:
    """The actor and critic of a behavior; with ``shared_critic`` the critic uses the actor's body."""
    actor = Actor(spec.observation_specs, spec.action_spec, settings)
    body = actor.network_body if shared_critic else NetworkBody(spec.observation_specs, settings)
    return actor, Critic(body, stream_names)
