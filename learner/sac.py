"""SAC, the ML-Agents way, read top to bottom: trajectories → replay buffer → soft actor-critic gradient steps.

Hyperparameter names are ML-Agents' (``batch_size``, ``buffer_size``, ``buffer_init_steps``, ``tau``,
``steps_per_update``, ``init_entcoef``, ``learning_rate`` and its schedule, ``save_replay_buffer``,
``reward_signal_steps_per_update``; ``gamma`` and ``strength`` per reward signal), and so are the networks and
losses (ML-Agents' ``TorchSACOptimizer``):

- the actor: a squashed Gaussian (``tanh``, a state-dependent standard deviation) for continuous actions and one
  categorical per discrete branch (hybrid both);
- twin Q networks (``q1``, ``q2``): observations and continuous actions in, per reward signal one value per
  discrete action (one value without discrete branches) out; a value network V(s) per reward signal, and its
  target, soft-updated by ``tau`` after every gradient step;
- entropy coefficients learned in log space, one per discrete branch and one for the continuous part, starting at
  ``init_entcoef``, driven towards ML-Agents' target entropies: ``-continuous_size`` for the continuous part and
  ``0.2 * log(branch_size)`` per branch.

1. :meth:`SAC.ingest` puts the experiences that arrive into the replay buffer (any policy lag: SAC learns off
   policy), each with the observation after it (the trajectory's next one for its last experience) and ``done``
   only where the episode truly ended (an interrupted episode is bootstrapped). The actor's normalizers take the
   observations in; the critics copy them. ``Policy/<Name> Value`` is the value network's mean estimate of them.
   The buffer keeps the environment reward: each reward signal (:mod:`reward_signals`) rewards a minibatch when it
   is drawn, scaled by its ``strength``, as in ML-Agents, so what curiosity, RND and GAIL have learned since counts.
2. :meth:`SAC.update`: gradient steps while ``(step - buffer_init_steps) / update_steps > steps_per_update``
   (ML-Agents' rule, ``update_steps`` counting from 1), each on ``batch_size`` experiences drawn uniformly from the
   buffer, at most :data:`GRADIENT_STEPS_PER_VERSION` per call so the EnvActors get new weights often. The
   LearnerActor runs every due step before it takes more trajectories in and makes the EnvActors wait meanwhile,
   so one gradient step is made per ``steps_per_update`` agent steps whether one EnvActor plays or sixteen.
   The reward signals that learn make one step on a minibatch of their own while
   ``(step - buffer_init_steps) / reward_signal_update_steps > reward_signal_steps_per_update`` (the same rule);
   with ``behavioral_cloning``, each call ends with one cloning update (:mod:`behavioral_cloning`).
   Curiosity and RND back up past an episode's end (their ``done`` is ignored, as in ML-Agents). GAIL's
   ``use_actions`` sees the buffer's ``done``, which is 0 at an interrupted end.

With ``network_settings.memory`` (ML-Agents' recurrent SAC) the actor, both Qs, V and its target each have an LSTM
of their own. The replay buffer holds whole padded sequences of ``sequence_length`` (:mod:`replay_sequences`); a
minibatch is ``batch_size / sequence_length`` of them, every loss a mean over its real experiences (the loss mask),
and the reward signals see only those. As in ML-Agents' ``TorchSACOptimizer.update``, a sequence starts the actor
from the acting policy's memory at its first step (stored with it), the Qs from zeros, V from its own memory there
when the trajectory came in (ML-Agents' ``CRITIC_MEMORY``: :meth:`SAC.ingest` runs V over each trajectory by
sequence, each agent's memory carried on from its last trajectory, in the pass that estimates ``Policy/<Name>
Value`` anyway), and the target, over the next observations, from V run one step on from that memory.

One departure, on purpose: for hybrid actions ML-Agents *adds* the continuous entropy term to the value target
(``v_backup += alpha * log_prob``) where the soft value is ``min Q - alpha * log_prob``; here it is subtracted for
the continuous part as for the discrete one.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from rayagents.configs.hyperparameters import SACSettings
from rayagents.configs.trainer import TrainerSettings
from rayagents.learner.acting import ENTROPY, allowed_from_disabled
from rayagents.learner.algorithm import Ingested
from rayagents.learner.behavioral_cloning import behavioral_cloning
from rayagents.learner.checkpoint_format import POLICY, Saveable
from rayagents.learner.encoders import NetworkBody, observation_tensor
from rayagents.learner.expert_data import expert_source
from rayagents.learner.export import export_policy_model
from rayagents.learner.memory import MEMORY, AgentMemories, LSTMMemory
from rayagents.learner.networks import SAC_ACTOR, Actor, Critic
from rayagents.learner.replay_buffer import place_replay_buffer
from rayagents.learner.memory import padded_sequences, real_rows
from rayagents.learner.replay_sequences import make_replay_buffer, recurrent_values
from rayagents.learner.sac_networks import (
    LogEntropyCoefficients,
    TwinQ,
    expected_over_branches,
    replay_columns,
    taken_q,
)
from rayagents.learner.reward_providers import batch_from_arrays, batch_from_columns
from rayagents.learner.reward_signals import RewardSignals
from rayagents.learner.schedules import LEARNING_RATE_FLOOR, DecayedValue
from rayagents.learner.trajectory import (
    ACTION_MASKS,
    CONTINUOUS_ACTIONS,
    CRITIC_MEMORY,
    DISCRETE_ACTIONS,
    DONES,
    LOSS_MASKS,
    REWARDS,
    experience_columns,
    next_obs_key,
    obs_key,
)
from rayagents.learner.weights import actor_weights
from rayagents.protocol.trajectories import Trajectory
from rayagents.protocol.types import BehaviorSpec

GRADIENT_STEPS_PER_VERSION = 32
"""The most gradient steps one :meth:`SAC.update` makes: the EnvActors get new weights at least this often."""
DISCRETE_TARGET_ENTROPY_SCALE = 0.2
"""ML-Agents' target entropy per discrete branch, as a share of the uniform distribution's (about e-greedy 0.05)."""
CONTINUOUS_TARGET_ENTROPY_SCALE = 1.0
"""ML-Agents' target entropy of the continuous part, per action dimension (negated)."""

UPDATES_PER_STEP = "Policy/Updates per Step"
"""rayagents' own statistic: gradient steps made per agent step taken in after ``buffer_init_steps``, once caught
up (``1 / steps_per_update`` when the rule holds)."""

def value_stat(stream: str) -> str:
    """The statistic of a reward signal's value estimate under SAC, e.g. ``Policy/Extrinsic Value``."""
    return f"Policy/{stream.capitalize()} Value"


@dataclass(frozen=True)
class SACLosses:
    """The losses of one minibatch (tensors with gradients where they train something)."""

    policy_loss: torch.Tensor
    """The actor's: entropy-weighted log probabilities minus Q1 of the policy's own actions (no gradient reaches
    Q1's weights from it)."""
    value_loss: torch.Tensor
    """V(s) against the soft value of the policy's actions (min of the twin Qs minus the entropy term)."""
    q1_loss: torch.Tensor
    """Q1 against ``r + gamma * (1 - done) * V_target(s')``."""
    q2_loss: torch.Tensor
    """Q2 against the same."""
    entropy_loss: torch.Tensor
    """The log entropy coefficients' (towards the target entropies)."""


class SAC:
    """A behavior's SAC learner: actor, twin Q, value and target networks, entropy coefficients, replay buffer.

    Arguments:
        behavior_spec: the behavior's observations and actions.
        settings: its trainer settings (``trainer_type: sac``).
        device: where the networks train (the replay buffer joins them when it fits there).
        seed: seeds the minibatch sampling; None draws from torch's global generator.
    """

    def __init__(
        self,
        behavior_spec: BehaviorSpec,
        settings: TrainerSettings,
        device: torch.device | str = "cpu",
        seed: int | None = None,
    ) -> None:
        if not isinstance(settings.hyperparameters, SACSettings):
            raise TypeError(
                f"SAC needs SACSettings hyperparameters, got {type(settings.hyperparameters).__name__} "
                f"(trainer_type {settings.trainer_type!r})"
            )
        hp = self.hyperparameters = settings.hyperparameters
        self.device = torch.device(device)
        self._generator: torch.Generator | None = None if seed is None else torch.Generator().manual_seed(seed)
        expert = expert_source(behavior_spec, self.device)
        self.reward_signals = RewardSignals(
            behavior_spec, settings.reward_signals, self.device, "SAC", expert, self._generator
        )
        self.action_spec = spec = behavior_spec.action_spec
        observation_specs = behavior_spec.observation_specs
        network = settings.network_settings
        streams = self.reward_signals.names
        self.actor = Actor(observation_specs, spec, network, SAC_ACTOR).to(self.device)
        self.q_network = TwinQ(observation_specs, spec, network, streams).to(self.device)
        body = NetworkBody(observation_specs, network)
        value_memory = None if network.memory is None else LSTMMemory(body.output_size, network.memory)
        self.value_network = Critic(body, streams, value_memory).to(self.device)
        self.target_network = copy.deepcopy(self.value_network).requires_grad_(False)
        self.log_ent_coef = LogEntropyCoefficients(len(spec.discrete_branches), hp.init_entcoef).to(self.device)
        self.continuous_target_entropy = -CONTINUOUS_TARGET_ENTROPY_SCALE * float(spec.continuous_size)
        self.discrete_target_entropy = torch.tensor(
            [DISCRETE_TARGET_ENTROPY_SCALE * float(np.log(size)) for size in spec.discrete_branches],
            device=self.device,
        )
        value_parameters = [*self.q_network.parameters(), *self.value_network.parameters()]
        self.policy_optimizer = torch.optim.Adam(self.actor.parameters(), lr=hp.learning_rate, foreach=True)
        self.value_optimizer = torch.optim.Adam(value_parameters, lr=hp.learning_rate, foreach=True)
        self.entropy_optimizer = torch.optim.Adam(self.log_ent_coef.parameters(), lr=hp.learning_rate)
        self.decay_learning_rate = DecayedValue(
            hp.learning_rate_schedule, hp.learning_rate, LEARNING_RATE_FLOOR, settings.max_steps
        )
        columns = replay_columns(behavior_spec)
        place = place_replay_buffer(hp.buffer_size, columns, self.device)
        self.buffer = make_replay_buffer(hp.buffer_size, columns, network.memory, place)
        self.sequence_length: int | None = None if network.memory is None else network.memory.sequence_length
        """With memory: the steps of a training sequence; None without memory."""
        self._critic_memories = AgentMemories(self.value_network.memory_size)
        self.update_steps = 1
        """ML-Agents' count of gradient steps, from 1: a step is due while (step - init) / update_steps > ratio."""
        self.reward_signal_update_steps = 1
        """The same count for the reward signals' own updates (``reward_signal_steps_per_update``)."""
        self.behavioral_cloning = behavioral_cloning(self.actor, settings, expert, 1, self._generator)
        self._mask_size = sum(spec.discrete_branches)
        self._use_dones = torch.tensor(
            [0.0 if self.reward_signals.ignores_done(name) else 1.0 for name in streams], device=self.device
        )

    # ---- what the trainer keeps, publishes and exports ---------------------------------------------------------
    def modules(self) -> dict[str, Saveable]:
        """The checkpoint entries, under ML-Agents' names (plus the entropy coefficients, which it does not save)."""
        return {
            POLICY: self.actor,
            "Optimizer:q_network": self.q_network,
            "Optimizer:value_network": self.value_network,
            "Optimizer:target_network": self.target_network,
            "Optimizer:policy_optimizer": self.policy_optimizer,
            "Optimizer:value_optimizer": self.value_optimizer,
            "Optimizer:entropy_optimizer": self.entropy_optimizer,
            "Optimizer:log_ent_coef": self.log_ent_coef,
            **self.reward_signals.modules(),
            **(self.behavioral_cloning.modules() if self.behavioral_cloning is not None else {}),
        }

    def saved_buffers(self) -> dict[str, Saveable]:
        """The replay buffer, with ``save_replay_buffer``."""
        return {"replay_buffer": self.buffer} if self.hyperparameters.save_replay_buffer else {}

    def policy_state(self) -> dict[str, np.ndarray]:
        """The actor's weights for the EnvActors' policies."""
        return actor_weights(self.actor)

    def export(self, path: Path) -> Path:
        """The actor as a Unity-loadable ``.onnx`` model (squashed continuous outputs)."""
        return export_policy_model(self.actor, path)

    @property
    def buffered_steps(self) -> int:
        """Experiences in the replay buffer (with memory, not counting the sequences' padding)."""
        return self.buffer.experiences

    def restored(self, step: int) -> None:
        """Re-counts the gradient steps and the reward signals' updates for ``step`` (the replay buffer is kept: SAC
        trains off policy)."""
        hp = self.hyperparameters
        self.update_steps = self._caught_up_count(step, hp.steps_per_update)
        self.reward_signal_update_steps = self._caught_up_count(step, self._signal_ratio)
        self._copy_normalization()
        self._critic_memories.clear()
        self.reward_signals.restored()

    def pretrain(self) -> dict[str, float]:
        """Behavioral cloning from the demonstrations before the first step (with ``behavioral_cloning``)."""
        return {} if self.behavioral_cloning is None else self.behavioral_cloning.pretrain()

    @property
    def _signal_ratio(self) -> float:
        """``reward_signal_steps_per_update`` (the settings fill it with ``steps_per_update`` when not given)."""
        ratio = self.hyperparameters.reward_signal_steps_per_update
        assert ratio is not None
        return ratio

    def _caught_up_count(self, step: int, ratio: float) -> int:
        """Where a learner that never stopped would be once caught up: the least count no update is due at."""
        return max(1, math.ceil((step - self.hyperparameters.buffer_init_steps) / ratio))

    def _due(self, step: int, made: int, ratio: float) -> bool:
        """ML-Agents' rule, for gradient steps and for the reward signals' updates alike: one is due while
        ``(step - buffer_init_steps) / made > ratio`` (``made`` counting from 1), once ``buffer_init_steps`` are
        reached and a minibatch is held."""
        hp = self.hyperparameters
        return (
            step >= hp.buffer_init_steps
            and len(self.buffer) >= hp.batch_size
            and (step - hp.buffer_init_steps) / made > ratio
        )

    def ready_for_update(self, step: int) -> bool:
        """Whether a gradient step is due: ``buffer_init_steps`` reached, a minibatch in the buffer, and fewer
        gradient steps made than the steps taken in call for."""
        return self._due(step, self.update_steps, self.hyperparameters.steps_per_update)

    def experiences_per_update(self) -> None:
        """None: SAC takes in everything that arrived, then makes the gradient steps due (one per
        ``steps_per_update`` steps taken in), from its replay buffer of experiences of any age."""
        return None

    def _copy_normalization(self) -> None:
        for body in (
            self.q_network.q1_network.network_body,
            self.q_network.q2_network.network_body,
            self.value_network.network_body,
            self.target_network.network_body,
        ):
            body.copy_normalization(self.actor.network_body)

    # ---- 1. trajectories into the replay buffer ------------------------------------------------------------------
    @torch.no_grad()
    def ingest(self, trajectories: Sequence[Trajectory], trainable: Sequence[np.ndarray]) -> Ingested:
        """Adds the trainable experiences of ``trajectories`` to the replay buffer (with memory, whole padded
        sequences, the untrainable experiences among them masked); rewards them with every signal (for the
        statistics). Reports ``Policy/<Name> Value`` per reward signal and ``Policy/Entropy``."""
        if not trajectories:
            return Ingested(stats={}, signal_rewards={})
        sensors = len(self.actor.observation_specs)
        keep = np.concatenate([np.asarray(mask, dtype=bool) for mask in trainable])
        # done only where the episode truly ended: an interrupted one is bootstrapped
        rows = experience_columns(trajectories, sensors, next_obs=True, interrupted_ends=False)
        obs_tensors = [observation_tensor(rows[obs_key(k)], self.device) for k in range(sensors)]
        self.actor.update_normalization(obs_tensors)
        self._copy_normalization()
        layout, critic_starts = None, None
        if self.sequence_length is None:
            values = self.value_network(obs_tensors)
        else:  # by sequence, each agent's memory carried on: ML-Agents' CRITIC_MEMORY at each sequence's start
            values, layout, critic_starts = recurrent_values(
                self.value_network, obs_tensors, trajectories, self._critic_memories, self.sequence_length
            )
        stats = {value_stat(name): float(v.mean()) for name, v in values.items()}
        if all(ENTROPY in t.extras for t in trajectories):
            stats["Policy/Entropy"] = float(np.concatenate([t.extras[ENTROPY] for t in trajectories]).mean())
        batch = batch_from_arrays(rows, obs_tensors, self.device, with_next=self.reward_signals.learns)
        signal_rewards = {name: r.cpu().numpy() for name, r in self.reward_signals.rewards(batch).items()}
        ingested = Ingested(stats=stats, signal_rewards=signal_rewards)
        if not keep.any():
            return ingested
        masks = [allowed_from_disabled(t.action_mask, len(t), self._mask_size) for t in trajectories]
        rows[ACTION_MASKS] = np.concatenate(masks)
        if layout is None:
            self.buffer.add({name: column[keep] for name, column in rows.items()})
        else:
            memories = np.concatenate([t.extra(MEMORY) for t in trajectories])
            self.buffer.add(padded_sequences(rows, layout, keep, memories, {CRITIC_MEMORY: critic_starts}))
        return ingested

    # ---- 2. the losses of a minibatch ----------------------------------------------------------------------------
    def losses(self, batch: Mapping[str, torch.Tensor]) -> SACLosses:
        """SAC's losses on a minibatch of replay columns (ML-Agents' ``TorchSACOptimizer.update``); with memory,
        whole sequences, each a mean over the real experiences (the loss mask), as ML-Agents' ``masked_mean``."""
        sensors = len(self.actor.observation_specs)
        length = self.sequence_length or 1
        memories = batch.get(MEMORY)  # with memory: the actor's, at each sequence's first step
        critic_memories = batch.get(CRITIC_MEMORY)  # the value network's there
        q_memories = None if critic_memories is None else torch.zeros_like(critic_memories)
        loss_mask = batch.get(LOSS_MASKS)

        def mean(x: torch.Tensor) -> torch.Tensor:
            return x.mean() if loss_mask is None else (x * loss_mask).sum() / loss_mask.sum().clamp(min=1.0)

        obs = [batch[obs_key(k)] for k in range(sensors)]
        next_obs = [batch[next_obs_key(k)] for k in range(sensors)]
        allowed = batch[ACTION_MASKS]
        streams = list(self.reward_signals.names)
        discrete = self.action_spec.discrete_size > 0
        continuous = self.action_spec.continuous_size > 0
        branches = self.action_spec.discrete_branches
        cont_coef = self.log_ent_coef.continuous.detach().exp()  # trained by the entropy loss only
        disc_coef = self.log_ent_coef.discrete.detach().exp()

        sampled, cont_log_prob, branch_log_probs = self.actor.reparameterized(obs, allowed, memories, length)
        branch_probs = [lp.exp() for lp in branch_log_probs]
        values = self.value_network(obs, critic_memories, length)
        q1_network, q2_network = self.q_network.q1_network, self.q_network.q2_network
        with _frozen(q1_network):  # the policy loss reaches the actor through Q1, never Q1's weights
            q1p = q1_network(obs, sampled, q_memories, length)
        with torch.no_grad():
            q2p = q2_network(obs, sampled, q_memories, length)
        q1 = q1_network(obs, batch[CONTINUOUS_ACTIONS], q_memories, length)
        q2 = q2_network(obs, batch[CONTINUOUS_ACTIONS], q_memories, length)
        if discrete:
            taken = batch[DISCRETE_ACTIONS].long()
            q1_taken = {name: taken_q(q, taken, branches) for name, q in q1.items()}
            q2_taken = {name: taken_q(q, taken, branches) for name, q in q2.items()}
        else:
            q1_taken = {name: q.squeeze(1) for name, q in q1.items()}
            q2_taken = {name: q.squeeze(1) for name, q in q2.items()}

        # Q losses: the twin Qs of the actions taken against r + gamma * (1 - done) * V_target(s'), each signal's
        # reward scaled by its strength (curiosity and RND ignore done).
        rewards = batch[REWARDS]
        dones = batch[DONES]
        with torch.no_grad():
            next_memories = None  # with memory: the value network one step on from each sequence's first step
            if critic_memories is not None:
                _, next_memories = self.value_network.values([o[::length] for o in obs], critic_memories, 1)
            target_values = self.target_network(next_obs, next_memories, length)
            signal_rewards = self._signal_rewards(batch)
        q1_losses, q2_losses = [], []
        for i, name in enumerate(streams):
            with torch.no_grad():
                gamma = self.reward_signals.settings(name).gamma
                not_done = 1.0 - dones * self._use_dones[i]
                backup = signal_rewards[name] + not_done * gamma * target_values[name]
            q1_losses.append(0.5 * mean((backup - q1_taken[name]) ** 2))
            q2_losses.append(0.5 * mean((backup - q2_taken[name]) ** 2))

        # Value loss: V(s) against the soft value of the policy's actions, min(Q1, Q2) - entropy term.
        with torch.no_grad():
            entropy_term = torch.zeros_like(rewards)
            if discrete:
                per_branch = [
                    disc_coef[b] * (lp * p).sum(dim=1) for b, (lp, p) in enumerate(zip(branch_log_probs, branch_probs))
                ]
                entropy_term = entropy_term + torch.stack(per_branch).mean(dim=0)
            if continuous:
                entropy_term = entropy_term + cont_coef * cont_log_prob
            soft_values = {}
            for name in streams:
                if discrete:
                    expected_q1 = expected_over_branches(q1p[name], branch_probs, branches)
                    expected_q2 = expected_over_branches(q2p[name], branch_probs, branches)
                    soft_values[name] = torch.min(expected_q1, expected_q2) - entropy_term
                else:
                    soft_values[name] = torch.min(q1p[name], q2p[name]).squeeze(1) - entropy_term
        value_loss = torch.stack([0.5 * mean((values[n] - soft_values[n]) ** 2) for n in streams]).mean()

        # Policy loss: entropy-weighted log probabilities minus Q1 of the policy's own actions.
        mean_q1 = torch.stack([q1p[name] for name in streams]).mean(dim=0)
        policy_loss_per_experience = torch.zeros_like(rewards)
        if discrete:
            all_probs = torch.cat(branch_probs, dim=1)
            q_by_branch = torch.split(mean_q1 * all_probs, list(branches), dim=1)
            for b, (lp, p, q) in enumerate(zip(branch_log_probs, branch_probs, q_by_branch)):
                policy_loss_per_experience = policy_loss_per_experience + (disc_coef[b] * lp * p - q).sum(dim=1)
            expected_mean_q1 = (all_probs * mean_q1).sum(dim=1)
        else:
            expected_mean_q1 = mean_q1.squeeze(1)
        if continuous:
            policy_loss_per_experience = policy_loss_per_experience + cont_coef * cont_log_prob - expected_mean_q1
        policy_loss = mean(policy_loss_per_experience)

        # Entropy loss: each log coefficient towards its target entropy.
        entropy_loss = torch.zeros((), device=rewards.device)
        if discrete:
            with torch.no_grad():
                gaps = torch.stack(
                    [(lp * p).sum(dim=1) for lp, p in zip(branch_log_probs, branch_probs)], dim=1
                ) + self.discrete_target_entropy
            entropy_loss = entropy_loss - mean((self.log_ent_coef.discrete * gaps).mean(dim=1))
        if continuous:
            with torch.no_grad():
                gap = cont_log_prob + self.continuous_target_entropy
            entropy_loss = entropy_loss - mean(self.log_ent_coef.continuous * gap)

        return SACLosses(
            policy_loss=policy_loss,
            value_loss=value_loss,
            q1_loss=torch.stack(q1_losses).mean(),
            q2_loss=torch.stack(q2_losses).mean(),
            entropy_loss=entropy_loss,
        )

    def _signal_rewards(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Each reward signal's reward of every row of ``batch``; with memory, of its real experiences only (0 on
        padding)."""
        rewards = self.reward_signals.rewards(batch_from_columns(real_rows(batch), len(self.actor.observation_specs)))
        if LOSS_MASKS not in batch:
            return rewards
        real = batch[LOSS_MASKS] > 0
        return {name: torch.zeros_like(batch[REWARDS]).masked_scatter(real, r) for name, r in rewards.items()}

    # ---- 3. the update --------------------------------------------------------------------------------------------
    def update(self, step: int) -> dict[str, float]:
        """The gradient steps due at ``step``, at most :data:`GRADIENT_STEPS_PER_VERSION`; returns the statistics
        under ML-Agents' names (each a mean over the steps made) and, once no step is left due,
        ``Policy/Updates per Step``."""
        hp = self.hyperparameters
        learning_rate = self.decay_learning_rate.value(step)
        for optimizer in (self.policy_optimizer, self.value_optimizer, self.entropy_optimizer):
            for group in optimizer.param_groups:
                group["lr"] = learning_rate
        totals: dict[str, list[torch.Tensor]] = {}
        made = 0
        while made < GRADIENT_STEPS_PER_VERSION and self.ready_for_update(step):
            losses = self.losses(self.buffer.sample(hp.batch_size, self._generator))
            self._step_optimizers(losses)
            self._soft_update_target()
            self.update_steps += 1
            made += 1
            for name, value in _loss_stats(losses).items():
                totals.setdefault(name, []).append(value.detach())
        if made == 0:
            raise ValueError("no gradient step is due: call update only when ready_for_update says so")
        stats = {name: float(torch.stack(values).mean()) for name, values in totals.items()}
        stats.update(self._update_reward_signals(step))
        if self.behavioral_cloning is not None:
            stats.update(self.behavioral_cloning.update(step))
        with torch.no_grad():
            discrete = self.log_ent_coef.discrete.exp().mean() if self._mask_size else torch.zeros(())
            stats["Policy/Discrete Entropy Coeff"] = float(discrete)
            stats["Policy/Continuous Entropy Coeff"] = float(self.log_ent_coef.continuous.exp().mean())
        stats["Policy/Learning Rate"] = learning_rate
        if not self.ready_for_update(step):  # caught up: the ratio the rule holds (not one taken mid-catch-up)
            stats[UPDATES_PER_STEP] = (self.update_steps - 1) / max(step - hp.buffer_init_steps, 1)
        return stats

    def _update_reward_signals(self, step: int) -> dict[str, float]:
        """The reward signals' updates due at ``step`` (at most :data:`GRADIENT_STEPS_PER_VERSION`), each on a
        minibatch drawn for it; their mean statistics."""
        sensors = len(self.actor.observation_specs)
        totals: dict[str, list[float]] = {}
        made = 0
        while (
            self.reward_signals.learns
            and made < GRADIENT_STEPS_PER_VERSION
            and self._due(step, self.reward_signal_update_steps, self._signal_ratio)
        ):
            drawn = self.buffer.sample(self.hyperparameters.batch_size, self._generator)
            batch = batch_from_columns(real_rows(drawn), sensors)
            for name, value in self.reward_signals.update(batch).items():
                totals.setdefault(name, []).append(value)
            self.reward_signal_update_steps += 1
            made += 1
        return {name: float(np.mean(values)) for name, values in totals.items()}

    def _step_optimizers(self, losses: SACLosses) -> None:
        """One Adam step each: the actor on the policy loss, the Qs and V on theirs, the coefficients on theirs."""
        self.policy_optimizer.zero_grad(set_to_none=True)
        losses.policy_loss.backward()
        self.policy_optimizer.step()
        self.value_optimizer.zero_grad(set_to_none=True)  # drops what the policy loss left in Q1
        (losses.q1_loss + losses.q2_loss + losses.value_loss).backward()
        self.value_optimizer.step()
        self.entropy_optimizer.zero_grad(set_to_none=True)
        losses.entropy_loss.backward()
        self.entropy_optimizer.step()

    @torch.no_grad()
    def _soft_update_target(self) -> None:
        """target ← tau · V + (1 − tau) · target, parameter by parameter (normalizers are copied, not mixed)."""
        target = [p for p in self.target_network.parameters()]
        source = [p for p in self.value_network.parameters()]
        torch._foreach_lerp_(target, source, self.hyperparameters.tau)


@contextmanager
def _frozen(module: nn.Module) -> Iterator[None]:
    """The module's parameters take no gradient inside the block (gradients still flow through it to its inputs)."""
    parameters = [p for p in module.parameters() if p.requires_grad]
    for parameter in parameters:
        parameter.requires_grad_(False)
    try:
        yield
    finally:
        for parameter in parameters:
            parameter.requires_grad_(True)


def _loss_stats(losses: SACLosses) -> dict[str, torch.Tensor]:
    return {
        "Losses/Policy Loss": losses.policy_loss,
        "Losses/Value Loss": losses.value_loss,
        "Losses/Q1 Loss": losses.q1_loss,
        "Losses/Q2 Loss": losses.q2_loss,
    }
