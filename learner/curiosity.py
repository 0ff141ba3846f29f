"""The curiosity reward signal (an intrinsic curiosity module, Pathak et al. 2017), as ML-Agents has it.

A state encoder (a network body with the signal's ``network_settings``; ``encoding_size`` is its
``hidden_units``) encodes the observations before and after each action. The inverse model predicts the action
from the two encodings; the forward model predicts the next encoding from the current one and the action. The
reward is the forward model's error, ``0.5 * sum((encoding' - predicted)^2)``, capped at ``1 / strength`` (so a
scaled reward is at most 1) and 0 until the first update. The loss is ``10 * (0.2 * forward + 0.8 * inverse)``,
one Adam step at the signal's ``learning_rate`` per update. The encoder's normalizer (with ``normalize``) takes in
the observations it learns from.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Sequence

import torch
from torch import nn

from rayagents.configs.errors import ConfigWarning
from rayagents.configs.network import NetworkSettings
from rayagents.configs.reward_signals import CuriositySettings
from rayagents.learner.checkpoint_format import Saveable
from rayagents.learner.encoders import LinearEncoder, NetworkBody, linear_layer
from rayagents.learner.reward_providers import RewardBatch, flatten_actions, flattened_action_size
from rayagents.protocol.types import BehaviorSpec

FORWARD_LOSS_WEIGHT = 0.2
"""The forward loss's share of the curiosity loss (ML-Agents' ``beta``); the inverse loss has the rest."""
LOSS_MULTIPLIER = 10.0
"""ML-Agents' factor on the whole curiosity loss."""
MODEL_HIDDEN_UNITS = 256
"""The width of the forward and inverse models' hidden layer."""
PROBABILITY_EPSILON = 1e-10


def signal_network_settings(settings: NetworkSettings, signal: str) -> NetworkSettings:
    """A reward signal's network settings without ``memory``, which signals ignore (with a warning, as ML-Agents)."""
    if settings.memory is None:
        return settings
    warnings.warn(
        f"reward_signals.{signal}.network_settings.memory is ignored: the {signal} networks are not recurrent",
        ConfigWarning,
        stacklevel=2,
    )
    return dataclasses.replace(settings, memory=None)


class CuriosityNetwork(nn.Module):
    """The state encoder and the forward and inverse models."""

    def __init__(self, spec: BehaviorSpec, settings: NetworkSettings) -> None:
        super().__init__()
        self.action_spec = spec.action_spec
        self.state_encoder = NetworkBody(spec.observation_specs, settings)
        encoding = self.state_encoder.output_size
        self.inverse_model = LinearEncoder(2 * encoding, 1, MODEL_HIDDEN_UNITS)
        self.continuous_prediction = (
            linear_layer(MODEL_HIDDEN_UNITS, spec.action_spec.continuous_size)
            if spec.action_spec.continuous_size > 0
            else None
        )
        branches = spec.action_spec.discrete_branches
        self.discrete_prediction = linear_layer(MODEL_HIDDEN_UNITS, sum(branches)) if branches else None
        self.forward_model = nn.Sequential(
            LinearEncoder(encoding + flattened_action_size(spec.action_spec), 1, MODEL_HIDDEN_UNITS),
            linear_layer(MODEL_HIDDEN_UNITS, encoding),
        )

    def encode(self, observations: Sequence[torch.Tensor]) -> torch.Tensor:
        """The state encoding, ``(n, hidden_units)``."""
        return self.state_encoder(observations)

    def predicted_next(self, batch: RewardBatch, current: torch.Tensor) -> torch.Tensor:
        """The forward model's prediction of the next encoding."""
        return self.forward_model(torch.cat([current, flatten_actions(batch, self.action_spec)], dim=1))

    def forward_errors(
        self, batch: RewardBatch, current: torch.Tensor | None = None, following: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``0.5 * sum((next encoding - predicted)^2)`` per experience, ``(n,)``; the encodings of the observations
        and the next ones are computed unless given."""
        current = self.encode(batch.observations) if current is None else current
        following = self.encode(batch.next_observations) if following is None else following
        return 0.5 * torch.sum((following - self.predicted_next(batch, current)) ** 2, dim=1)

    def inverse_loss(self, batch: RewardBatch, current: torch.Tensor, following: torch.Tensor) -> torch.Tensor:
        """The inverse model's error on the actions taken, from the encodings of the observations and the next
        ones: squared error (continuous) plus cross-entropy per discrete branch, averaged over the batch."""
        hidden = self.inverse_model(torch.cat([current, following], dim=1))
        loss = hidden.new_zeros(())
        if self.continuous_prediction is not None:
            error = (batch.continuous_actions.float() - self.continuous_prediction(hidden)) ** 2
            loss = loss + error.sum(dim=1).mean()
        if self.discrete_prediction is not None:
            branches = self.action_spec.discrete_branches
            logits = torch.split(self.discrete_prediction(hidden), list(branches), dim=1)
            cross_entropy = hidden.new_zeros(hidden.shape[0])
            for b, branch_logits in enumerate(logits):
                probabilities = torch.softmax(branch_logits, dim=1)
                taken = batch.discrete_actions[:, b : b + 1].long()
                cross_entropy = cross_entropy - torch.log(probabilities.gather(1, taken).squeeze(1) + PROBABILITY_EPSILON)
            loss = loss + cross_entropy.mean()
        return loss


class CuriosityReward:
    """The curiosity reward signal (see the module's docstring)."""

    name = "Curiosity"
    ignore_done = True
    learns = True

    def __init__(self, spec: BehaviorSpec, settings: CuriositySettings, device: torch.device) -> None:
        self.settings = settings
        self.network = CuriosityNetwork(spec, signal_network_settings(settings.network_settings, "curiosity")).to(device)
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=settings.learning_rate)
        self._has_updated = False

    @torch.no_grad()
    def evaluate(self, batch: RewardBatch) -> torch.Tensor:
        """The forward model's error per experience, capped at ``1 / strength``; 0 before the first update."""
        if not self._has_updated:
            return torch.zeros_like(batch.environment_rewards, dtype=torch.float32)
        rewards = self.network.forward_errors(batch)
        if self.settings.strength > 0:
            rewards = torch.clamp(rewards, max=1.0 / self.settings.strength)
        return rewards

    def update(self, batch: RewardBatch) -> dict[str, float]:
        """One Adam step on ``10 * (0.2 * forward + 0.8 * inverse)``."""
        self.network.state_encoder.update_normalization(batch.observations)
        current = self.network.encode(batch.observations)
        following = self.network.encode(batch.next_observations)  # one encoding each, for both losses
        forward_loss = self.network.forward_errors(batch, current, following).mean()
        inverse_loss = self.network.inverse_loss(batch, current, following)
        loss = LOSS_MULTIPLIER * (FORWARD_LOSS_WEIGHT * forward_loss + (1.0 - FORWARD_LOSS_WEIGHT) * inverse_loss)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self._has_updated = True
        return {
            "Losses/Curiosity Forward Loss": float(forward_loss.detach()),
            "Losses/Curiosity Inverse Loss": float(inverse_loss.detach()),
        }

    def modules(self) -> dict[str, Saveable]:
        """ML-Agents' ``Module:Curiosity``, and the optimizer (which ML-Agents does not keep)."""
        return {f"Module:{self.name}": self.network, f"Optimizer:{self.name}": self.optimizer}

    def restored(self) -> None:
        """The network was restored from a checkpoint: it has learned, so it rewards from now on."""
        self._has_updated = True
