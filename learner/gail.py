"""The GAIL reward signal (generative adversarial imitation, Ho & Ermon 2016; VAIL, Peng et al. 2018), as
ML-Agents has it.

A discriminator (a network body with the signal's ``network_settings``; with ``use_actions`` the actions, one-hot
per discrete branch, and the done flag join the observations' features) ends in one sigmoid unit: its estimate that
an experience came from the demonstrations (``demo_path``). The reward is ``-log(1 - D(s, a))``: high where the
agent's behavior looks like the expert's. Each update takes the agent's minibatch and as many experiences drawn from
the demonstrations, and makes one Adam step at the signal's ``learning_rate`` on

- the discriminator loss ``-mean(log D(expert) + log(1 - D(agent)))`` (``Losses/GAIL Loss``);
- with ``use_vail``, the variational bottleneck: the features become a 128-wide code ``mu + sigma * noise``, its KL
  divergence to a unit normal is held near 0.5 by a multiplier ``beta`` that grows with the excess by 0.0005 a step
  (``Losses/GAIL KL Loss``, ``Policy/GAIL Beta``);
- a gradient penalty, 10 × ``(|∇D| - 1)^2`` at points between agent and expert inputs (WGAN-GP); the gradient is
  taken with respect to the first sensor's observations, as ML-Agents does (``Policy/GAIL Grad Mag Loss``).

``Policy/GAIL Policy Estimate`` and ``Policy/GAIL Expert Estimate`` are the discriminator's mean estimates of the
two minibatches. The encoder's normalizer (with ``normalize``) takes in the expert observations, as ML-Agents'.
"""

from __future__ import annotations

import torch
from torch import nn

from rayagents.configs.network import NetworkSettings
from rayagents.configs.reward_signals import GAILSettings
from rayagents.learner.checkpoint_format import Saveable
from rayagents.learner.curiosity import signal_network_settings
from rayagents.learner.encoders import NetworkBody, as_float, linear_layer
from rayagents.learner.expert_data import ExpertData
from rayagents.learner.reward_providers import RewardBatch, flatten_actions, flattened_action_size
from rayagents.protocol.types import BehaviorSpec

GRADIENT_PENALTY_WEIGHT = 10.0
VAIL_CODE_SIZE = 128
VAIL_BETA_STEP = 0.0005
"""How fast VAIL's multiplier follows the KL divergence's excess over its target (ML-Agents' ``alpha``)."""
VAIL_TARGET_KL = 0.5
"""The KL divergence VAIL holds the code to (ML-Agents' ``mutual_information``)."""
ESTIMATE_EPSILON = 1e-7


class Discriminator(nn.Module):
    """Observations (and, with ``use_actions``, actions and done) in, the estimate that they are the expert's out."""

    def __init__(self, spec: BehaviorSpec, settings: NetworkSettings, use_actions: bool, use_vail: bool) -> None:
        super().__init__()
        self.action_spec = spec.action_spec
        self.use_actions = use_actions
        self.use_vail = use_vail
        action_size = flattened_action_size(spec.action_spec) + 1 if use_actions else 0  # + 1: the done flag
        self.encoder = NetworkBody(spec.observation_specs, settings, action_size=action_size)
        features = self.encoder.output_size
        if use_vail:
            self.z_sigma = nn.Parameter(torch.ones(VAIL_CODE_SIZE))
            self.z_mu_layer = linear_layer(features, VAIL_CODE_SIZE, kernel_gain=0.1)
            self.register_buffer("beta", torch.zeros(()))
            features = VAIL_CODE_SIZE
        self.estimator = nn.Sequential(linear_layer(features, 1, kernel_gain=0.2), nn.Sigmoid())

    def action_inputs(self, batch: RewardBatch) -> torch.Tensor | None:
        """The flattened actions and the done flag, or None without ``use_actions``."""
        if not self.use_actions:
            return None
        return torch.cat([flatten_actions(batch, self.action_spec), batch.dones.float().unsqueeze(1)], dim=1)

    def estimate(
        self, observations: list[torch.Tensor], actions: torch.Tensor | None, noise: bool
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The estimate ``(n,)`` and, with VAIL, the code's mean (sampled with noise when ``noise``)."""
        hidden = self.encoder(observations, actions)
        mu = None
        if self.use_vail:
            mu = self.z_mu_layer(hidden)
            hidden = mu + torch.randn_like(mu) * self.z_sigma * float(noise)
        return self.estimator(hidden).squeeze(1), mu

    def gradient_magnitude(self, agent: RewardBatch, expert: RewardBatch) -> torch.Tensor:
        """``mean((|∇D| - 1)^2)`` at random points between the agent's and the expert's inputs."""
        inputs = []
        for a, e in zip(agent.observations, expert.observations):
            mix = torch.rand(a.shape, device=a.device)
            inputs.append((mix * as_float(a) + (1 - mix) * as_float(e)).requires_grad_(True))
        actions = None
        if self.use_actions:
            agent_actions, expert_actions = self.action_inputs(agent), self.action_inputs(expert)
            assert agent_actions is not None and expert_actions is not None
            mix = torch.rand(agent_actions.shape, device=agent_actions.device)
            actions = (mix * agent_actions + (1 - mix) * expert_actions).requires_grad_(True)
        estimate, _ = self.estimate(inputs, actions, noise=True)
        gradient = torch.autograd.grad(estimate.sum(), inputs[0], create_graph=True)[0]
        norm = torch.sqrt(torch.sum(gradient.flatten(1) ** 2, dim=1) + ESTIMATE_EPSILON)
        return torch.mean((norm - 1.0) ** 2)


class GAILReward:
    """The GAIL reward signal (see the module's docstring).

    Arguments:
        spec: the behavior's observations and actions.
        settings: the ``gail`` entry.
        expert: the demonstrations of ``demo_path`` on the learner's device.
        generator: draws the expert minibatches; None draws from torch's global generator.
    """

    name = "GAIL"
    ignore_done = False
    learns = True

    def __init__(
        self,
        spec: BehaviorSpec,
        settings: GAILSettings,
        expert: ExpertData,
        device: torch.device,
        generator: torch.Generator | None = None,
    ) -> None:
        self.settings = settings
        self.expert = expert
        network = signal_network_settings(settings.network_settings, "gail")
        self.discriminator = Discriminator(spec, network, settings.use_actions, settings.use_vail).to(device)
        self.optimizer = torch.optim.Adam(self.discriminator.parameters(), lr=settings.learning_rate)
        self._generator = generator

    @torch.no_grad()
    def evaluate(self, batch: RewardBatch) -> torch.Tensor:
        """``-log(1 - D)`` per experience (the code's mean, no noise, with VAIL)."""
        estimate, _ = self.discriminator.estimate(
            list(batch.observations), self.discriminator.action_inputs(batch), noise=False
        )
        return -torch.log(1.0 - estimate * (1.0 - ESTIMATE_EPSILON))

    def update(self, batch: RewardBatch) -> dict[str, float]:
        """One Adam step of the discriminator on the agent's ``batch`` and as many expert experiences."""
        expert = self.expert.sample(len(batch), self._generator)
        disc = self.discriminator
        disc.encoder.update_normalization(expert.observations)
        agent_estimate, agent_mu = disc.estimate(list(batch.observations), disc.action_inputs(batch), noise=True)
        expert_estimate, expert_mu = disc.estimate(list(expert.observations), disc.action_inputs(expert), noise=True)
        gail_loss = -(
            torch.log(expert_estimate + ESTIMATE_EPSILON) + torch.log(1.0 - agent_estimate + ESTIMATE_EPSILON)
        ).mean()
        loss = gail_loss
        stats = {
            "Policy/GAIL Policy Estimate": float(agent_estimate.detach().mean()),
            "Policy/GAIL Expert Estimate": float(expert_estimate.detach().mean()),
            "Losses/GAIL Loss": float(gail_loss.detach()),
        }
        if disc.use_vail:
            assert agent_mu is not None and expert_mu is not None
            variance = disc.z_sigma**2
            kl_loss = torch.mean(
                -torch.sum(1 + variance.log() - 0.5 * expert_mu**2 - 0.5 * agent_mu**2 - variance, dim=1)
            )
            loss = loss + disc.beta.clone() * (kl_loss - VAIL_TARGET_KL)
            with torch.no_grad():
                disc.beta.copy_(torch.clamp(disc.beta + VAIL_BETA_STEP * (kl_loss - VAIL_TARGET_KL), min=0.0))
            stats["Policy/GAIL Beta"] = float(disc.beta)
            stats["Losses/GAIL KL Loss"] = float(kl_loss.detach())
        penalty = GRADIENT_PENALTY_WEIGHT * disc.gradient_magnitude(batch, expert)
        stats["Policy/GAIL Grad Mag Loss"] = float(penalty.detach())
        loss = loss + penalty
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return stats

    def modules(self) -> dict[str, Saveable]:
        """ML-Agents' ``Module:GAIL``, and the optimizer (which ML-Agents does not keep)."""
        return {f"Module:{self.name}": self.discriminator, f"Optimizer:{self.name}": self.optimizer}

    def restored(self) -> None:
        """Nothing to re-count."""
