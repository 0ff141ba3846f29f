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
   (the "posthumous credit assignment" of MA-POCA). Here that value is V over the groupmates alone, a state V is
   trained on (their own next steps), where ML-Agents estimates it over the leaver's terminal observation and the
   groupmates', a state V never sees otherwise: on ``sim:DungeonEscape`` that version learned, then lost the
   sacrifice in 2 of 3 seeds. The returns are TD(lambda) returns over V
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

With ``network_settings.memory`` the actor is recurrent as PPO's is (whole sequences of ``sequence_length``, each
from the memory the EnvActor acted with), and the critic has an LSTM too: the value and the baselines run it from
memories of their own, which the learner carries per agent from one trajectory to the next (ML-Agents'
``CRITIC_MEMORY`` and ``BASELINE_MEMORY``); the update starts each sequence from them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from rayagents.configs.hyperparameters import POCASettings
from rayagents.configs.trainer import TrainerSettings
from rayagents.learner.acting import ENTROPY
from rayagents.learner.algorithm import Ingested
from rayagents.learner.memory import MEMORY, AgentMemories, SequenceLayout, sequence_layout
from rayagents.learner.networks import Actor
from rayagents.learner.poca_networks import GroupCritic
from rayagents.learner.ppo import (
    PPO,
    VALUE_LOSS_COEFFICIENT,
    PPOLosses,
    batched_gae,
    masked_mean,
    value_estimate_stat,
)
from rayagents.learner.reward_providers import batch_from_arrays, flat_actions
from rayagents.learner.sequence_values import run_by_sequence
from rayagents.learner.trajectory import (
    ACTION_MASKS,
    ADVANTAGES,
    CONTINUOUS_ACTIONS,
    CRITIC_MEMORY,
    DISCRETE_ACTIONS,
    LOSS_MASKS,
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
BASELINE_MEMORY = "baseline_memory"
"""With memory: the baseline's memory at the start of the sequence of each row (ML-Agents' ``BASELINE_MEMORY``)."""


def groupmate_obs_key(index: int) -> str:
    """The update-buffer column of the groupmates' observations of sensor ``index``, ``(N, M, *shape)``."""
    return f"groupmate_obs_{index}"


def baseline_estimates_key(stream: str) -> str:
    """The update-buffer column of the baseline estimates (at ingestion) of reward signal ``stream``."""
    return f"{stream}_baseline_estimates"


def baseline_estimate_stat(stream: str) -> str:
    """The statistic of a reward signal's baseline estimate, e.g. ``Policy/Extrinsic Baseline Estimate``."""
    return f"Policy/{stream.capitalize()} Baseline Estimate"


@dataclass(frozen=True)
class CriticEstimates:
    """The group critic's estimates of a batch of trajectories, per reward signal as float64."""

    values: dict[str, np.ndarray]
    """V of every experience."""
    next_values: dict[str, np.ndarray]
    """V after each trajectory."""
    baselines: dict[str, np.ndarray]
    """Each experience's counterfactual baseline."""
    memories: dict[str, np.ndarray] | None
    """With memory: the value's (:data:`CRITIC_MEMORY`) and the baseline's (:data:`BASELINE_MEMORY`) memory at the
    start of each sequence; None without."""


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
    next_self: tuple[np.ndarray, ...]
    """Per sensor ``(n, *shape)``: the first agent of the group the value after each trajectory is estimated for:
    the agent's own next observation, or for an agent that left its group's episode early, one of the groupmates it
    left behind (the value is then the group's without it)."""
    next_obs: tuple[np.ndarray, ...]
    """Per sensor ``(n, M, *shape)``: the other agents of that group after each trajectory."""
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
    next_self: list[list[np.ndarray]] = [[] for _ in specs]
    next_obs: list[list[np.ndarray]] = [[] for _ in specs]
    continuous, discrete, present, rewards, next_present, ended = [], [], [], [], [], []
    for t in trajectories:
        steps = len(t)
        mates = t.groupmates
        all_done = mates is None or mates.all_done_at_end()
        group_ended = t.done and not t.interrupted and all_done
        # An agent that left while groupmates play on: the value after it is the group's it left behind.
        left = mates is not None and t.done and not t.interrupted and not all_done and bool(mates.next_present.any())
        stand_in = int(np.argmax(mates.next_present)) if left and mates is not None else -1
        for k, spec in enumerate(specs):
            if mates is None:
                obs[k].append(np.zeros((steps, slots, *spec.shape), dtype=t.obs[k].dtype))
                next_obs[k].append(np.zeros((1, slots, *spec.shape), dtype=t.obs[k].dtype))
                next_self[k].append(np.asarray(t.next_obs[k])[None])
            else:
                obs[k].append(_padded(mates.obs[k], slots))
                next_obs[k].append(_padded(mates.next_obs[k][None], slots))
                own = mates.next_obs[k][stand_in] if left else t.next_obs[k]
                next_self[k].append(np.asarray(own, dtype=t.obs[k].dtype)[None])
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
            shown = mates.next_present.astype(np.float32)
            if left:
                shown = shown.copy()
                shown[stand_in] = 0.0  # the stand-in is the value's first agent, not one of the others
            next_present.append(_padded(shown[None], slots))
        ended.append(group_ended)
    actions = flat_actions(
        torch.as_tensor(np.concatenate(continuous)), torch.as_tensor(np.concatenate(discrete)), action_spec
    )
    return GroupBatch(
        obs=tuple(np.concatenate(parts) for parts in obs),
        actions=actions.numpy().astype(np.float32),
        present=np.concatenate(present),
        rewards=np.concatenate(rewards),
        next_self=tuple(np.concatenate(parts) for parts in next_self),
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

    def restored(self, step: int) -> None:
        """PPO's, and the baselines' memories are forgotten too."""
        super().restored(step)
        self._baseline_memories.clear()

    def _networks(self, behavior_spec: BehaviorSpec, settings: TrainerSettings) -> tuple[Actor, nn.Module]:
        """PPO's actor and the group critic (and the baselines' memories the critic runs from)."""
        network = settings.network_settings
        self._baseline_memories = AgentMemories(0 if network.memory is None else network.memory.memory_size)
        """With memory: each agent's baseline memory, carried from one of its trajectories to the next."""
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
        layout = None if self.sequence_length is None else sequence_layout(lengths, self.sequence_length)
        estimates = self._estimates(trajectories, obs, group, layout)

        batch = batch_from_arrays(rows, obs, self.device, with_next=self.reward_signals.learns)
        signal_rewards = {
            name: r.cpu().numpy().astype(np.float64) for name, r in self.reward_signals.rewards(batch).items()
        }
        columns: dict[str, np.ndarray] = {}
        stats: dict[str, float] = {}
        advantages: list[np.ndarray] = []
        for name in self.reward_signals.names:
            signal = self.reward_signals.settings(name)
            values, baseline = estimates.values[name], estimates.baselines[name]
            after = estimates.next_values[name]
            if not self.reward_signals.ignores_done(name):
                after = np.where(group.group_ended, 0.0, after)
            returns = values + batched_gae(
                signal_rewards[name], values, after, lengths, signal.gamma, self.hyperparameters.lambd
            )
            columns[returns_key(name)] = returns.astype(np.float32)
            columns[value_estimates_key(name)] = values.astype(np.float32)
            columns[baseline_estimates_key(name)] = baseline.astype(np.float32)
            advantages.append(returns - baseline)
            stats[value_estimate_stat(name)] = float(values.mean())
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
            self._append_trainable(trajectories, rows, columns, obs, keep, layout, estimates.memories)
        return Ingested(stats=stats, signal_rewards=signal_rewards)

    def _estimates(
        self,
        trajectories: Sequence[Trajectory],
        obs: Sequence[torch.Tensor],
        group: GroupBatch,
        layout: SequenceLayout | None,
    ) -> CriticEstimates:
        """The group critic's values, values after each trajectory and baselines; with memory, run trajectory by
        trajectory, sequence by sequence, from each agent's carried value and baseline memories."""
        count = int(obs[0].shape[0])
        mates = [self._tensor(o) for o in group.obs]
        present = self._tensor(group.present)
        actions = self._tensor(group.actions)
        next_own = [self._tensor(o) for o in group.next_self]
        next_mates = [self._tensor(o) for o in group.next_obs]
        next_present = self._tensor(group.next_present)

        def numpy(estimates: Mapping[str, torch.Tensor]) -> dict[str, np.ndarray]:
            return {name: value.cpu().numpy().astype(np.float64) for name, value in estimates.items()}

        if layout is None or self.critic.memory is None:
            return CriticEstimates(
                values=numpy(self.critic.values(obs, mates, present)),
                next_values=numpy(self.critic.values(next_own, next_mates, next_present)),
                baselines=numpy(self.critic.baselines(obs, mates, actions, present)),
                memories=None,
            )
        encoding, agents = self.critic.value_encoding(
            [torch.cat([o, n]) for o, n in zip(obs, next_own)],
            [torch.cat([m, n]) for m, n in zip(mates, next_mates)],
            torch.cat([present, next_present]),
        )
        run, value_starts = run_by_sequence(encoding, self.critic.memory, trajectories, self._critic_memories, layout)
        both = numpy(self.critic.heads(run, agents))
        encoding, agents = self.critic.baseline_encoding(obs, mates, actions, present)
        run, baseline_starts = run_by_sequence(
            encoding, self.critic.memory, trajectories, self._baseline_memories, layout
        )
        return CriticEstimates(
            values={name: value[:count] for name, value in both.items()},
            next_values={name: value[count:] for name, value in both.items()},
            baselines=numpy(self.critic.heads(run, agents)),
            memories={CRITIC_MEMORY: value_starts, BASELINE_MEMORY: baseline_starts},
        )

    def losses(self, minibatch: Mapping[str, torch.Tensor], epsilon: float, beta: float) -> PPOLosses:
        """The POCA losses of ``minibatch``: PPO's clipped surrogate on the baseline advantages, the clipped value
        loss of the group's V and the clipped loss of the agents' baselines, both against the returns."""
        obs = [minibatch[obs_key(k)] for k in range(len(self.actor.observation_specs))]
        length = self.sequence_length or 1

        def starts(name: str) -> torch.Tensor | None:  # with memory: each sequence's first row
            return minibatch[name][::length] if name in minibatch else None

        log_probs, entropy = self.actor.evaluate(
            obs,
            minibatch[ACTION_MASKS],
            minibatch[CONTINUOUS_ACTIONS],
            minibatch[DISCRETE_ACTIONS],
            starts(MEMORY),
            length,
        )
        mates = [minibatch[groupmate_obs_key(k)] for k in range(len(obs))]
        present, actions = minibatch[GROUPMATE_PRESENT], minibatch[GROUPMATE_ACTIONS]
        values = self.critic.values(obs, mates, present, starts(CRITIC_MEMORY), length)
        baselines = self.critic.baselines(obs, mates, actions, present, starts(BASELINE_MEMORY), length)
        mean = masked_mean(minibatch.get(LOSS_MASKS))
        policy_loss = self.policy_loss(minibatch, log_probs, epsilon, mean)
        value_loss = self.value_loss(values, minibatch, value_estimates_key, epsilon, mean)
        baseline_loss = self.value_loss(baselines, minibatch, baseline_estimates_key, epsilon, mean)
        mean_entropy = mean(entropy)
        critic_loss = value_loss + BASELINE_LOSS_COEFFICIENT * baseline_loss
        loss = policy_loss + VALUE_LOSS_COEFFICIENT * critic_loss - beta * mean_entropy
        return PPOLosses(
            loss=loss, policy_loss=policy_loss, value_loss=value_loss, entropy=mean_entropy, baseline_loss=baseline_loss
        )
