"""MA-POCA (ML-Agents' ``poca`` trainer): PPO's actor with a centralized critic that assigns credit within a group.

The agents of a group (ML-Agents' ``MultiAgentGroup``) share one behavior and one actor; each acts on its own
observations, so each exports as the same Unity-loadable ``.onnx`` policy. What changes from :mod:`ppo` is the
critic (:class:`~rayagents.learner.poca_networks.GroupCritic`) and what the advantages are made of:

1. :meth:`POCA.ingest` takes the trajectories with what each agent's groupmates did at each step
   (:attr:`~rayagents.protocol.trajectories.Trajectory.groupmates`, recorded by the EnvActors because
   :func:`poca_play_rules` asks for it). The extrinsic reward of an experience is the agent's reward, plus its
   group's reward, plus its groupmates' rewards (ML-Agents' ``add_groupmate_rewards`` under POCA). The centralized
   value V of every step is estimated over the agents of the group present at it, and the value after the
   trajectory over the agent's last observation and its groupmates' latest ones. That value is 0 only when the
   agent's episode truly ended *and* its whole group's did with it: an agent that leaves the episode early is
   bootstrapped from the value of the group it left behind, so it is credited with what the group goes on to earn
   (the "posthumous credit assignment" of MA-POCA). The returns are TD(lambda) returns over V
   (GAE(gamma, lambd) + V, ML-Agents' ``lambda_return``), and the advantage of each experience is its return minus
   the agent's counterfactual baseline b(s, a of the others): how much better the group did than expected with
   every action but the agent's own known.
2. :meth:`POCA.update` is PPO's (:meth:`~rayagents.learner.ppo.PPO.update`): advantages normalized over the buffer,
   ``num_epoch`` passes over minibatches of ``batch_size``, Adam on
   ``policy_loss + 0.5 * (value_loss + 0.5 * baseline_loss) - beta * entropy`` (ML-Agents' weights). The policy
   loss is PPO's clipped surrogate (with PPO's correction for experiences acted by older weights); the value and
   the baseline losses are clipped by ``epsilon`` around their ingestion-time estimates, both against the returns.
   The statistics add ``Losses/Baseline Loss`` and ``Policy/<Signal> Baseline Estimate`` to PPO's.

Trajectories of agents in no group have no groupmates: their value and baseline see the agent alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from rayagents.configs import ConfigError
from rayagents.configs.hyperparameters import POCASettings
from rayagents.configs.trainer import TrainerSettings
from rayagents.learner.algorithm import Ingested, PlayRules
from rayagents.learner.networks import Actor
from rayagents.learner.poca_networks import GroupCritic
from rayagents.learner.policy import ENTROPY
from rayagents.learner.ppo import (
    PPO,
    PPO_MAX_POLICY_LAG,
    PPO_MAX_POLICY_LAG_THREADED,
    VALUE_LOSS_COEFFICIENT,
    PPOLosses,
    batched_gae,
    masked_mean,
    value_estimate_stat,
)
from rayagents.learner.reward_providers import batch_from_arrays, flat_actions
from rayagents.learner.trajectory import (
    ACTION_MASKS,
    ADVANTAGES,
    CONTINUOUS_ACTIONS,
    DISCRETE_ACTIONS,
    REWARDS,
    experience_columns,
    obs_key,
    returns_key,
    value_estimates_key,
)
from rayagents.protocol.trajectories import Trajectory
from rayagents.protocol.types import ActionSpec, BehaviorSpec, ObservationSpec

BASELINE_LOSS_COEFFICIENT = 0.5
"""The baseline loss's weight within the critic's part of the loss (ML-Agents': ``0.5 * (value + 0.5 * baseline)``)."""
GROUPMATE_PRESENT = "groupmate_present"
"""Float ``(N, M)``: 1 where the groupmate slot holds a groupmate at the step."""
GROUPMATE_ACTIONS = "groupmate_actions"
"""Float ``(N, M, action_size)``: each groupmate's action at the step, flattened (continuous, then one-hot)."""


def groupmate_obs_key(index: int) -> str:
    """The update-buffer column of the groupmates' observations of sensor ``index``, ``(N, M, *shape)``."""
    return f"groupmate_obs_{index}"


def baseline_estimates_key(stream: str) -> str:
    """The update-buffer column of the baseline estimates (at ingestion) of reward signal ``stream``."""
    return f"{stream}_baseline_estimates"


def baseline_estimate_stat(stream: str) -> str:
    """The statistic of a reward signal's baseline estimate, e.g. ``Policy/Extrinsic Baseline Estimate``."""
    return f"Policy/{stream.capitalize()} Baseline Estimate"


def poca_play_rules(settings: TrainerSettings) -> PlayRules:
    """PPO's policy lag bound; the EnvActors record each agent's groupmates."""
    return PlayRules(
        max_policy_lag=PPO_MAX_POLICY_LAG_THREADED if settings.threaded else PPO_MAX_POLICY_LAG,
        groupmates=True,
    )


@dataclass(frozen=True)
class GroupBatch:
    """The groupmates of a batch of trajectories, padded to the same M slots: per experience (N rows, the
    trajectories one after the other) and per trajectory (n rows)."""

    obs: tuple[np.ndarray, ...]
    """Per sensor ``(N, M, *shape)``."""
    actions: np.ndarray
    """float32 ``(N, M, action_size)``, flattened."""
    present: np.ndarray
    """float32 ``(N, M)``."""
    rewards: np.ndarray
    """float32 ``(N,)``: the groupmates' rewards summed."""
    next_obs: tuple[np.ndarray, ...]
    """Per sensor ``(n, M, *shape)``: the groupmates' latest observations after each trajectory."""
    next_present: np.ndarray
    """float32 ``(n, M)``."""
    group_ended: np.ndarray
    """bool ``(n,)``: the agent's episode truly ended with the trajectory and its whole group's with it."""


def _padded(array: np.ndarray, slots: int) -> np.ndarray:
    """``array`` with its axis 1 (the groupmate slots) padded with zeros to ``slots``."""
    return np.pad(array, [(0, 0), (0, slots - array.shape[1])] + [(0, 0)] * (array.ndim - 2))


def group_batch(
    trajectories: Sequence[Trajectory], specs: Sequence[ObservationSpec], action_spec: ActionSpec
) -> GroupBatch:
    """The groupmates of ``trajectories`` padded to the most slots among them (a trajectory without groupmates has
    every slot empty)."""
    slots = max((t.groupmates.slots for t in trajectories if t.groupmates is not None), default=0)
    obs: list[list[np.ndarray]] = [[] for _ in specs]
    next_obs: list[list[np.ndarray]] = [[] for _ in specs]
    continuous, discrete, present, rewards, next_present, ended = [], [], [], [], [], []
    for t in trajectories:
        steps = len(t)
        mates = t.groupmates
        for k, spec in enumerate(specs):
            if mates is None:
                obs[k].append(np.zeros((steps, slots, *spec.shape), dtype=t.obs[k].dtype))
                next_obs[k].append(np.zeros((1, slots, *spec.shape), dtype=t.obs[k].dtype))
            else:
                obs[k].append(_padded(mates.obs[k], slots))
                next_obs[k].append(_padded(mates.next_obs[k][None], slots))
        if mates is None:
            continuous.append(np.zeros((steps, slots, action_spec.continuous_size), dtype=np.float32))
            discrete.append(np.zeros((steps, slots, action_spec.discrete_size), dtype=np.int64))
            present.append(np.zeros((steps, slots), dtype=np.float32))
            rewards.append(np.zeros(steps, dtype=np.float32))
            next_present.append(np.zeros((1, slots), dtype=np.float32))
        else:
            continuous.append(_padded(mates.continuous_actions.astype(np.float32), slots))
            discrete.append(_padded(mates.discrete_actions.astype(np.int64), slots))
            present.append(_padded(mates.present.astype(np.float32), slots))
            rewards.append(mates.rewards.astype(np.float32))
            next_present.append(_padded(mates.next_present[None].astype(np.float32), slots))
        all_done = mates is None or mates.all_done_at_end()
        ended.append(t.done and not t.interrupted and all_done)
    actions = flat_actions(
        torch.as_tensor(np.concatenate(continuous)), torch.as_tensor(np.concatenate(discrete)), action_spec
    )
    return GroupBatch(
        obs=tuple(np.concatenate(parts) for parts in obs),
        actions=actions.numpy().astype(np.float32),
        present=np.concatenate(present),
        rewards=np.concatenate(rewards),
        next_obs=tuple(np.concatenate(parts) for parts in next_obs),
        next_present=np.concatenate(next_present),
        group_ended=np.array(ended, dtype=bool),
    )


class POCA(PPO):
    """A behavior's MA-POCA learner: PPO's actor, the group critic, Adam, the update buffer (ML-Agents'
    ``TorchPOCAOptimizer``). Arguments as :class:`~rayagents.learner.ppo.PPO`'s, with ``trainer_type: poca``."""

    settings_type = POCASettings
    optimizer_entry = "Optimizer:adam"
    critic: GroupCritic

    def _networks(self, behavior_spec: BehaviorSpec, settings: TrainerSettings) -> tuple[Actor, nn.Module]:
        """PPO's actor and the group critic."""
        network = settings.network_settings
        if network.memory is not None:
            raise ConfigError(
                "network_settings.memory with trainer_type poca is not trained by this version of rayagents (POCA's "
                "critic has no memory yet): remove the memory section or use trainer_type ppo"
            )
        actor = Actor(behavior_spec.observation_specs, behavior_spec.action_spec, network)
        critic = GroupCritic(
            behavior_spec.observation_specs, behavior_spec.action_spec, network, self.reward_signals.names
        )
        return actor, critic

    @torch.no_grad()
    def ingest(self, trajectories: Sequence[Trajectory], trainable: Sequence[np.ndarray]) -> Ingested:
        """Rewards ``trajectories`` (the group's and the groupmates' rewards added), estimates the group's values and
        each agent's baselines, and buffers returns and baseline advantages of the trainable experiences. Reports
        ``Policy/<Signal> Value Estimate``, ``Policy/<Signal> Baseline Estimate`` and ``Policy/Entropy``."""
        if not trajectories:
            return Ingested(stats={}, signal_rewards={})
        specs = self.actor.observation_specs
        sensors = len(specs)
        lengths = np.array([len(t) for t in trajectories], dtype=np.int64)
        rows = experience_columns(trajectories, sensors, next_obs=self.reward_signals.learns, interrupted_ends=True)
        group = group_batch(trajectories, specs, self.actor.action_spec)
        rows[REWARDS] = rows[REWARDS] + group.rewards
        obs = [self._tensor(rows[obs_key(k)]) for k in range(sensors)]
        self.actor.update_normalization(obs)
        self.critic.update_normalization(obs)
        mates = [self._tensor(o) for o in group.obs]
        present = self._tensor(group.present)
        values = self.critic.values(obs, mates, present)
        baselines = self.critic.baselines(obs, mates, self._tensor(group.actions), present)
        next_own = [self._tensor(np.stack([t.next_obs[k] for t in trajectories])) for k in range(sensors)]
        next_values = self.critic.values(
            next_own, [self._tensor(o) for o in group.next_obs], self._tensor(group.next_present)
        )

        batch = batch_from_arrays(rows, obs, self.device, with_next=self.reward_signals.learns)
        signal_rewards = {
            name: r.cpu().numpy().astype(np.float64) for name, r in self.reward_signals.rewards(batch).items()
        }
        columns: dict[str, np.ndarray] = {}
        stats: dict[str, float] = {}
        advantages: list[np.ndarray] = []
        for name in self.reward_signals.names:
            signal = self.reward_signals.settings(name)
            estimates = values[name].cpu().numpy().astype(np.float64)
            baseline = baselines[name].cpu().numpy().astype(np.float64)
            after = next_values[name].cpu().numpy().astype(np.float64)
            if not self.reward_signals.ignores_done(name):
                after = np.where(group.group_ended, 0.0, after)
            returns = estimates + batched_gae(
                signal_rewards[name], estimates, after, lengths, signal.gamma, self.hyperparameters.lambd
            )
            columns[returns_key(name)] = returns.astype(np.float32)
            columns[value_estimates_key(name)] = estimates.astype(np.float32)
            columns[baseline_estimates_key(name)] = baseline.astype(np.float32)
            advantages.append(returns - baseline)
            stats[value_estimate_stat(name)] = float(estimates.mean())
            stats[baseline_estimate_stat(name)] = float(baseline.mean())
        columns[ADVANTAGES] = np.mean(np.stack(advantages), axis=0).astype(np.float32)
        for k in range(sensors):
            columns[groupmate_obs_key(k)] = group.obs[k]
        columns[GROUPMATE_ACTIONS] = group.actions
        columns[GROUPMATE_PRESENT] = group.present
        if all(ENTROPY in t.extras for t in trajectories):
            stats["Policy/Entropy"] = float(np.concatenate([t.extras[ENTROPY] for t in trajectories]).mean())
        keep = np.concatenate([np.asarray(mask, dtype=bool) for mask in trainable])
        if keep.any():
            self._append_trainable(trajectories, rows, columns, obs, keep, None, None)
        return Ingested(stats=stats, signal_rewards=signal_rewards)

    def losses(self, minibatch: Mapping[str, torch.Tensor], epsilon: float, beta: float) -> PPOLosses:
        """The POCA losses of ``minibatch``: PPO's clipped surrogate on the baseline advantages, the clipped value
        loss of the group's V and the clipped loss of the agents' baselines, both against the returns."""
        obs = [minibatch[obs_key(k)] for k in range(len(self.actor.observation_specs))]
        log_probs, entropy = self.actor.evaluate(
            obs, minibatch[ACTION_MASKS], minibatch[CONTINUOUS_ACTIONS], minibatch[DISCRETE_ACTIONS]
        )
        mates = [minibatch[groupmate_obs_key(k)] for k in range(len(obs))]
        present = minibatch[GROUPMATE_PRESENT]
        values = self.critic.values(obs, mates, present)
        baselines = self.critic.baselines(obs, mates, minibatch[GROUPMATE_ACTIONS], present)
        mean = masked_mean(None)
        policy_loss = self.policy_loss(minibatch, log_probs, epsilon, mean)
        value_loss = self.value_loss(values, minibatch, value_estimates_key, epsilon, mean)
        baseline_loss = self.value_loss(baselines, minibatch, baseline_estimates_key, epsilon, mean)
        mean_entropy = mean(entropy)
        critic_loss = value_loss + BASELINE_LOSS_COEFFICIENT * baseline_loss
        loss = policy_loss + VALUE_LOSS_COEFFICIENT * critic_loss - beta * mean_entropy
        return PPOLosses(
            loss=loss, policy_loss=policy_loss, value_loss=value_loss, entropy=mean_entropy, baseline_loss=baseline_loss
        )
