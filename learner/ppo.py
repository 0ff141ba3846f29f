"""PPO, the ML-Agents way, read top to bottom: trajectory → GAE → update buffer → clipped-surrogate update.

Hyperparameter names are ML-Agents' (``batch_size``, ``buffer_size``, ``learning_rate``, ``beta``, ``epsilon``,
``lambd``, ``num_epoch``, ``shared_critic``, the three schedules; ``gamma`` and ``strength`` per reward signal).

1. :meth:`PPOOptimizer.process_trajectory`: update the normalizers with the trajectory's observations, estimate
   values (and the value after the last step: 0 only when the episode truly ended, bootstrapped at a
   ``time_horizon`` cut and on an interrupted episode), scale each reward signal by its ``strength``, compute
   GAE(gamma, lambd) advantages and returns per reward signal; the advantage trained on is their mean.
2. :meth:`PPOOptimizer.update`, once the buffer holds more than ``buffer_size`` experiences: normalize the
   advantages over the whole buffer, then ``num_epoch`` passes over shuffled minibatches of ``batch_size``
   minimizing ``policy_loss + 0.5 * value_loss - beta * entropy`` with Adam, where the policy loss is the
   clipped surrogate (``epsilon``) of the joint action probability ratio and the value loss is clipped around
   the collection-time estimate by the same ``epsilon``. ``learning_rate``, ``epsilon`` and ``beta`` follow
   their schedules over ``max_steps``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch

from rayagents.configs.hyperparameters import PPOSettings
from rayagents.configs.reward_signals import RewardSignalSettings, RewardSignalType
from rayagents.configs.trainer import TrainerSettings
from rayagents.learner.checkpoint import GLOBAL_STEP, POLICY, GlobalSteps, Saveable
from rayagents.learner.distributions import allowed_from_disabled
from rayagents.learner.networks import build_actor_critic
from rayagents.learner.schedules import BETA_FLOOR, EPSILON_FLOOR, LEARNING_RATE_FLOOR, DecayedValue
from rayagents.learner.trajectory import (
    ACTION_MASKS,
    ADVANTAGES,
    CONTINUOUS_ACTIONS,
    DISCRETE_ACTIONS,
    LOG_PROBS,
    Trajectory,
    UpdateBuffer,
    obs_key,
    returns_key,
    value_estimates_key,
)
from rayagents.protocol.types import BehaviorSpec

VALUE_LOSS_COEFFICIENT = 0.5
ADVANTAGE_EPSILON = 1e-10


def gae(rewards: np.ndarray, value_estimates: np.ndarray, value_next: float, gamma: float, lambd: float) -> np.ndarray:
    """Generalized advantage estimates of one trajectory (float32, the length of ``rewards``).

    ``value_next`` is the value after the last step: the bootstrap value, or 0 when the episode truly ended.
    """
    values = np.append(value_estimates.astype(np.float64), value_next)
    deltas = rewards.astype(np.float64) + gamma * values[1:] - values[:-1]
    advantages = np.zeros(len(rewards), dtype=np.float64)
    running = 0.0
    for t in reversed(range(len(rewards))):
        running = deltas[t] + gamma * lambd * running
        advantages[t] = running
    return advantages.astype(np.float32)


def value_estimate_stat(stream: str) -> str:
    """The statistic name of a reward signal's value estimate, e.g. ``Policy/Extrinsic Value Estimate``."""
    return f"Policy/{stream.capitalize()} Value Estimate"


@dataclass(frozen=True)
class PPOLosses:
    """The losses of one minibatch (tensors with gradients)."""

    loss: torch.Tensor
    """What is minimized: ``policy_loss + 0.5 * value_loss - beta * entropy``."""
    policy_loss: torch.Tensor
    """The negated clipped surrogate objective."""
    value_loss: torch.Tensor
    """The clipped value loss, averaged over reward signals."""
    entropy: torch.Tensor
    """The mean entropy of the action distribution."""


class PPOOptimizer:
    """A behavior's PPO learner: actor, critic, Adam, global step, and the update (ML-Agents' TorchPPOOptimizer)."""

    def __init__(
        self, behavior_spec: BehaviorSpec, settings: TrainerSettings, device: torch.device | str = "cpu"
    ) -> None:
        if not isinstance(settings.hyperparameters, PPOSettings):
            raise TypeError(
                f"PPOOptimizer needs PPOSettings hyperparameters, got {type(settings.hyperparameters).__name__} "
                f"(trainer_type {settings.trainer_type!r})"
            )
        self.hyperparameters: PPOSettings = settings.hyperparameters
        self.reward_signals: dict[str, RewardSignalSettings] = _supported_reward_signals(settings.reward_signals)
        self.device = torch.device(device)
        self.actor, self.critic = build_actor_critic(
            behavior_spec, settings.network_settings, tuple(self.reward_signals), self.hyperparameters.shared_critic
        )
        self.actor.to(self.device)
        self.critic.to(self.device)
        self.global_step = GlobalSteps()
        parameters = list({id(p): p for p in [*self.actor.parameters(), *self.critic.parameters()]}.values())
        self.optimizer = torch.optim.Adam(parameters, lr=self.hyperparameters.learning_rate)
        hp = self.hyperparameters
        self.decay_learning_rate = DecayedValue(
            hp.learning_rate_schedule, hp.learning_rate, LEARNING_RATE_FLOOR, settings.max_steps
        )
        self.decay_epsilon = DecayedValue(hp.epsilon_schedule, hp.epsilon, EPSILON_FLOOR, settings.max_steps)
        self.decay_beta = DecayedValue(hp.beta_schedule, hp.beta, BETA_FLOOR, settings.max_steps)
        self._action_mask_size = sum(behavior_spec.action_spec.discrete_branches)

    def get_modules(self) -> dict[str, Saveable]:
        """The checkpoint entries, under ML-Agents' names."""
        return {
            POLICY: self.actor,
            GLOBAL_STEP: self.global_step,
            "Optimizer:value_optimizer": self.optimizer,
            "Optimizer:critic": self.critic,
        }

    def ready_for_update(self, buffer: UpdateBuffer) -> bool:
        """Whether the buffer holds more than ``buffer_size`` experiences."""
        return buffer.num_experiences > self.hyperparameters.buffer_size

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.tensor(np.asarray(array), dtype=torch.float32, device=self.device)

    # ---- 1. a trajectory becomes update-buffer columns --------------------------------------------------------
    @torch.no_grad()
    def process_trajectory(self, trajectory: Trajectory) -> tuple[dict[str, np.ndarray], dict[str, float]]:
        """The update-buffer columns of ``trajectory`` and its statistics (``Policy/<Name> Value Estimate``)."""
        obs = [self._tensor(o) for o in trajectory.obs]
        next_obs = [self._tensor(o).unsqueeze(0) for o in trajectory.next_obs]
        self.actor.update_normalization(obs)
        if self.critic.network_body is not self.actor.network_body:
            self.critic.update_normalization(obs)

        values = {name: v.cpu().numpy() for name, v in self.critic(obs).items()}
        next_values = {name: float(v.item()) for name, v in self.critic(next_obs).items()}
        columns: dict[str, np.ndarray] = {}
        stats: dict[str, float] = {}
        advantages: list[np.ndarray] = []
        for name, signal in self.reward_signals.items():
            rewards = trajectory.rewards.astype(np.float32) * signal.strength
            value_next = next_values[name] if trajectory.bootstraps() else 0.0
            advantage = gae(rewards, values[name], value_next, signal.gamma, self.hyperparameters.lambd)
            columns[returns_key(name)] = advantage + values[name]
            columns[value_estimates_key(name)] = values[name]
            advantages.append(advantage)
            stats[value_estimate_stat(name)] = float(np.mean(values[name]))
        columns[ADVANTAGES] = np.mean(np.stack(advantages), axis=0).astype(np.float32)

        for i, o in enumerate(trajectory.obs):
            columns[obs_key(i)] = o.astype(np.float32)
        columns[CONTINUOUS_ACTIONS] = trajectory.continuous_actions.astype(np.float32)
        columns[DISCRETE_ACTIONS] = trajectory.discrete_actions.astype(np.int64)
        columns[ACTION_MASKS] = allowed_from_disabled(trajectory.action_mask, len(trajectory), self._action_mask_size)
        columns[LOG_PROBS] = trajectory.log_probs.astype(np.float32)
        return columns, stats

    # ---- 2. the loss of a minibatch -----------------------------------------------------------------------------
    def losses(self, minibatch: Mapping[str, torch.Tensor], epsilon: float, beta: float) -> PPOLosses:
        """The PPO losses of ``minibatch`` (update-buffer columns, advantages already normalized)."""
        obs = [minibatch[obs_key(i)] for i in range(len(self.actor.observation_specs))]
        log_probs, entropy = self.actor.evaluate(
            obs, minibatch[ACTION_MASKS], minibatch[CONTINUOUS_ACTIONS], minibatch[DISCRETE_ACTIONS]
        )
        values = self.critic(obs)

        # Clipped surrogate on the ratio of the joint action probabilities, new policy over the one that acted.
        advantages = minibatch[ADVANTAGES]
        ratio = torch.exp(log_probs - minibatch[LOG_PROBS])
        surrogate = ratio * advantages
        clipped_surrogate = torch.clamp(ratio, 1.0 - epsilon, 1.0 + epsilon) * advantages
        policy_loss = -torch.min(surrogate, clipped_surrogate).mean()

        # Value loss per reward signal, clipped around the collection-time estimate by epsilon; their mean.
        value_losses = []
        for name in self.reward_signals:
            old_values = minibatch[value_estimates_key(name)]
            returns = minibatch[returns_key(name)]
            clipped_values = old_values + torch.clamp(values[name] - old_values, -epsilon, epsilon)
            unclipped_error = (returns - values[name]) ** 2
            clipped_error = (returns - clipped_values) ** 2
            value_losses.append(torch.max(unclipped_error, clipped_error).mean())
        value_loss = torch.stack(value_losses).mean()

        mean_entropy = entropy.mean()
        loss = policy_loss + VALUE_LOSS_COEFFICIENT * value_loss - beta * mean_entropy
        return PPOLosses(loss=loss, policy_loss=policy_loss, value_loss=value_loss, entropy=mean_entropy)

    # ---- 3. the update --------------------------------------------------------------------------------------------
    def update(self, buffer: UpdateBuffer, generator: torch.Generator | None = None) -> dict[str, float]:
        """One PPO update over the whole buffer, which is then cleared; returns the stats under ML-Agents' names."""
        step = self.global_step.current_step
        learning_rate = self.decay_learning_rate.value(step)
        epsilon = self.decay_epsilon.value(step)
        beta = self.decay_beta.value(step)
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate

        data = buffer.tensors(self.device)
        advantages = data[ADVANTAGES]
        data[ADVANTAGES] = (advantages - advantages.mean()) / (advantages.std(correction=0) + ADVANTAGE_EPSILON)

        num_experiences = buffer.num_experiences
        if num_experiences == 0:
            raise ValueError("the update buffer is empty: append processed trajectories before an update")
        batch_size = min(self.hyperparameters.batch_size, num_experiences)
        num_batches = num_experiences // batch_size
        policy_losses: list[float] = []
        value_losses: list[float] = []
        for _ in range(self.hyperparameters.num_epoch):
            order = torch.randperm(num_experiences, generator=generator).to(self.device)
            for b in range(num_batches):
                indices = order[b * batch_size : (b + 1) * batch_size]
                minibatch = {name: column[indices] for name, column in data.items()}
                losses = self.losses(minibatch, epsilon, beta)
                self.optimizer.zero_grad()
                losses.loss.backward()
                self.optimizer.step()
                policy_losses.append(abs(losses.policy_loss.item()))
                value_losses.append(losses.value_loss.item())
        buffer.clear()

        return {
            "Losses/Policy Loss": float(np.mean(policy_losses)),
            "Losses/Value Loss": float(np.mean(value_losses)),
            "Policy/Learning Rate": learning_rate,
            "Policy/Epsilon": epsilon,
            "Policy/Beta": beta,
        }


def _supported_reward_signals(
    signals: Mapping[RewardSignalType, RewardSignalSettings],
) -> dict[str, RewardSignalSettings]:
    """The reward signals by name (``"extrinsic"``); NotImplementedError for the ones not supported yet."""
    unsupported = [kind.value for kind in signals if kind != RewardSignalType.EXTRINSIC]
    if unsupported:
        raise NotImplementedError(
            f"reward_signals {unsupported} are not yet supported by rayagents; only extrinsic is, for now"
        )
    if not signals:
        raise ValueError("reward_signals is empty: a PPO trainer needs at least the extrinsic signal")
    return {kind.value: settings for kind, settings in signals.items()}
