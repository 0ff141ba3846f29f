"""The RND reward signal (random network distillation, Burda et al. 2018), as ML-Agents has it.

Two network bodies with the signal's ``network_settings``: a target, random and never trained, and a predictor
trained to reproduce the target's output. The reward of an observation is the predictor's squared error,
``sum((predictor(o) - target(o))^2)``: large where the agent has rarely been. One Adam step at the signal's
``learning_rate`` per update (``Losses/RND Loss``). With ``normalize``, both networks' normalizers take in the
observations the predictor learns from.
"""

from __future__ import annotations

import torch

from rayagents.configs.reward_signals import RNDSettings
from rayagents.learner.checkpoint_format import Saveable
from rayagents.learner.curiosity import signal_network_settings
from rayagents.learner.encoders import NetworkBody
from rayagents.learner.reward_providers import RewardBatch
from rayagents.protocol.types import BehaviorSpec


class RNDReward:
    """The RND reward signal (see the module's docstring)."""

    name = "RND"
    ignore_done = True
    learns = True

    def __init__(self, spec: BehaviorSpec, settings: RNDSettings, device: torch.device) -> None:
        self.settings = settings
        network = signal_network_settings(settings.network_settings, "rnd")
        self.target = NetworkBody(spec.observation_specs, network).to(device).requires_grad_(False)
        self.predictor = NetworkBody(spec.observation_specs, network).to(device)
        self.optimizer = torch.optim.Adam(self.predictor.parameters(), lr=settings.learning_rate)

    def _errors(self, batch: RewardBatch) -> torch.Tensor:
        with torch.no_grad():
            target = self.target(batch.observations)
        return torch.sum((self.predictor(batch.observations) - target) ** 2, dim=1)

    @torch.no_grad()
    def evaluate(self, batch: RewardBatch) -> torch.Tensor:
        """The predictor's squared error per experience."""
        return self._errors(batch)

    def update(self, batch: RewardBatch) -> dict[str, float]:
        """One Adam step of the predictor towards the target."""
        self.target.update_normalization(batch.observations)
        self.predictor.update_normalization(batch.observations)
        loss = self._errors(batch).mean()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return {"Losses/RND Loss": float(loss.detach())}

    def modules(self) -> dict[str, Saveable]:
        """ML-Agents' ``Module:RND-pred`` and ``Module:RND-target``, and the optimizer (which ML-Agents does not
        keep)."""
        return {
            f"Module:{self.name}-pred": self.predictor,
            f"Module:{self.name}-target": self.target,
            f"Optimizer:{self.name}": self.optimizer,
        }

    def restored(self) -> None:
        """Nothing to re-count."""
