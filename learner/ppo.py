"""PPO, the ML-Agents way, read top to bottom: trajectories → GAE → update buffer → clipped-surrogate update.

Hyperparameter names are ML-Agents' (``batch_size``, ``buffer_size``, ``learning_rate``, ``beta``, ``epsilon``,
``lambd``, ``num_epoch``, ``shared_critic``, the three schedules; ``gamma`` and ``strength`` per reward signal).

1. :meth:`PPO.ingest` takes the trajectories that arrived, all at once: the observations update the normalizers,
   one critic pass estimates the values of every experience and of each trajectory's next observation (0 only
   when the episode truly ended, bootstrapped at a ``time_horizon`` cut and on an interrupted episode, and always
   for curiosity and RND, whose returns go on past an episode's end), each reward signal (:mod:`reward_signals`)
   rewards the experiences, scaled by its ``strength``, and GAE(gamma, lambd) gives advantages and returns per
   signal (the advantage trained on is their mean). The experiences the trainer allows (acted within the policy lag
   bound) go to the update buffer with the log probabilities of the weights that acted and, from one actor pass,
   those of the learner's current weights (the weights the next update starts from: the buffer is emptied by
   each update, so nothing in it was taken in under other weights).
2. :meth:`PPO.update`, once the buffer holds more than ``buffer_size`` experiences: normalize the advantages over
   the whole buffer, then ``num_epoch`` passes over shuffled minibatches of ``batch_size`` minimizing
   ``policy_loss + 0.5 * value_loss - beta * entropy`` with Adam. The policy loss is the clipped surrogate
   (``epsilon``) of the joint action probability ratio; the value loss is clipped around the ingestion-time
   estimate by the same ``epsilon``. ``learning_rate``, ``epsilon`` and ``beta`` follow their schedules over
   ``max_steps``. The reward signals that learn (curiosity, RND, GAIL) make one step on each minibatch, as in
   ML-Agents; with ``behavioral_cloning``, one cloning update follows (:mod:`behavioral_cloning`). For an experience acted by the current weights the loss is ML-Agents' (the ratio is taken
   against the log probability that acted); for one acted by older weights, the trust region is taken around the
   weights the update starts from, and the experience is weighted by the importance ratio of those weights to the
   ones that acted, truncated at 1 (the decoupled objective of Hilton et al., 2021, "Batch size-invariance for
   policy optimization"; the truncation is V-trace's). Clipping against the stale log probability instead would
   leave an experience a few updates old outside the trust region from the first epoch, its gradient lost: on
   CartPole with 64 agents and the acting weights two updates behind, that version solved 0 of 3 seeds within
   100k steps where this one solved 2, as many as with no lag at all.

The policy lag PPO accepts (:func:`ppo_play_rules`): an EnvActor does not wait for an update to end, so what it
plays while the learner updates, and the start of a trajectory that was in progress when new weights arrived, was
acted by older weights: about ``time_horizon`` × agents ÷ ``buffer_size`` updates older for a trajectory's first
experience (ML-Agents' own in-progress trajectories age the same way). The loss above corrects for the weights that
acted, so such experiences are trained on (Sample Factory trains PPO on lagged experience too, dropping only what is
older than its ``max_policy_lag``).
Older experiences are dropped: ``threaded: false`` (ML-Agents' default) trains on what the
last :data:`~rayagents.learner.play_rules.PPO_MAX_POLICY_LAG` updates acted, ``threaded: true`` on up to
:data:`~rayagents.learner.play_rules.PPO_MAX_POLICY_LAG_THREADED`. However fast the EnvActors are, an update comes
every ``buffer_size`` experiences (:meth:`experiences_per_update`: the trainer takes in no more before it
updates) and the learner's inbox holds about one update's worth: EnvActors far ahead of a slow learner wait,
rather than send what would age past the bound.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from rayagents.configs.hyperparameters import POCASettings, PPOSettings
from rayagents.configs.trainer import TrainerSettings
from rayagents.learner.acting import ENTROPY, allowed_from_disabled
from rayagents.learner.algorithm import Ingested
from rayagents.learner.behavioral_cloning import behavioral_cloning
from rayagents.learner.checkpoint_format import POLICY, Saveable
from rayagents.learner.encoders import observation_tensor
from rayagents.learner.expert_data import expert_source
from rayagents.learner.export import export_policy_model
from rayagents.learner.memory import (
    MEMORY,
    AgentMemories,
    SequenceLayout,
    padded_sequences,
    real_rows,
    sequence_layout,
)
from rayagents.learner.networks import Actor, build_actor_critic
from rayagents.learner.reward_providers import batch_from_arrays, batch_from_columns
from rayagents.learner.reward_signals import RewardSignals
from rayagents.learner.schedules import BETA_FLOOR, EPSILON_FLOOR, LEARNING_RATE_FLOOR, DecayedValue
from rayagents.learner.sequence_values import values_by_sequence
from rayagents.learner.trajectory import (
    ACTION_MASKS,
    ADVANTAGES,
    CRITIC_MEMORY,
    CURRENT_LOG_PROBS,
    CONTINUOUS_ACTIONS,
    DISCRETE_ACTIONS,
    DONES,
    LOG_PROBS,
    LOSS_MASKS,
    REWARDS,
    UpdateBuffer,
    experience_columns,
    obs_key,
    returns_key,
    value_estimates_key,
)
from rayagents.learner.weights import actor_weights
from rayagents.protocol.trajectories import LOG_PROBS as LOG_PROBS_EXTRA
from rayagents.protocol.trajectories import Trajectory
from rayagents.protocol.types import BehaviorSpec

VALUE_LOSS_COEFFICIENT = 0.5
IMPORTANCE_WEIGHT_CLIP = 1.0
"""The truncation of the importance weight of an experience acted by older weights (V-trace's rho-bar)."""
ADVANTAGE_EPSILON = 1e-10

def gae(rewards: np.ndarray, value_estimates: np.ndarray, value_next: float, gamma: float, lambd: float) -> np.ndarray:
    """Generalized advantage estimates of one trajectory (float32, the length of ``rewards``).

    ``value_next`` is the value after the last step: the bootstrap value, or 0 when the episode truly ended.
    """
    lengths = np.array([len(rewards)])
    return batched_gae(rewards, value_estimates, np.array([value_next]), lengths, gamma, lambd)


def batched_gae(
    rewards: np.ndarray, values: np.ndarray, values_next: np.ndarray, lengths: np.ndarray, gamma: float, lambd: float
) -> np.ndarray:
    """GAE of many trajectories at once: ``rewards`` and ``values`` are their experiences one after the other
    (``lengths`` each), ``values_next`` the value after each trajectory (0 where it truly ended). Returns float32
    advantages, one per experience. The trajectories are laid out as the rows of a padded matrix, so the backward
    recursion runs once per time step for all of them."""
    lengths = np.asarray(lengths, dtype=np.int64)
    count, horizon = len(lengths), int(lengths.max(initial=0))
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    row = np.repeat(np.arange(count), lengths)
    column = np.arange(int(lengths.sum())) - np.repeat(starts, lengths)
    padded_rewards = np.zeros((count, horizon))
    padded_values = np.zeros((count, horizon + 1))
    real = np.zeros((count, horizon), dtype=bool)
    padded_rewards[row, column] = rewards
    padded_values[row, column] = values
    padded_values[np.arange(count), lengths] = values_next
    real[row, column] = True
    deltas = np.where(real, padded_rewards + gamma * padded_values[:, 1:] - padded_values[:, :-1], 0.0)
    advantages = np.zeros((count, horizon + 1))
    for t in reversed(range(horizon)):
        advantages[:, t] = deltas[:, t] + gamma * lambd * advantages[:, t + 1]
    return advantages[row, column].astype(np.float32)


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
    baseline_loss: torch.Tensor | None = None
    """POCA's clipped loss of the per-agent counterfactual baselines; None for PPO."""


def masked_mean(mask: torch.Tensor | None) -> Callable[[torch.Tensor], torch.Tensor]:
    """The mean over a minibatch's experiences, or with a loss mask over those it marks (ML-Agents'
    ``masked_mean``: a sequence's padding and experiences outside the lag bound count for nothing)."""
    if mask is None:
        return torch.mean
    return lambda x: (x * mask).sum() / mask.sum().clamp(min=1.0)


class PPO:
    """A behavior's PPO learner: actor, critic, Adam, update buffer, and the update (ML-Agents' TorchPPOOptimizer).

    Arguments:
        behavior_spec: the behavior's observations and actions.
        settings: its trainer settings (``trainer_type: ppo``).
        device: where the networks train.
        seed: seeds the minibatch shuffling; None draws from torch's global generator.
    """

    settings_type: type = PPOSettings
    """The hyperparameters class this trainer takes."""
    optimizer_entry = "Optimizer:value_optimizer"
    """The checkpoint entry of the optimizer (ML-Agents' name for this trainer's)."""

    def __init__(
        self,
        behavior_spec: BehaviorSpec,
        settings: TrainerSettings,
        device: torch.device | str = "cpu",
        seed: int | None = None,
    ) -> None:
        if not isinstance(settings.hyperparameters, self.settings_type):
            raise TypeError(
                f"{type(self).__name__} needs {self.settings_type.__name__} hyperparameters, got "
                f"{type(settings.hyperparameters).__name__} (trainer_type {settings.trainer_type!r})"
            )
        self.hyperparameters: PPOSettings | POCASettings = settings.hyperparameters
        self.device = torch.device(device)
        self._generator: torch.Generator | None = None if seed is None else torch.Generator().manual_seed(seed)
        expert = expert_source(behavior_spec, self.device)
        self.reward_signals = RewardSignals(
            behavior_spec,
            settings.reward_signals,
            self.device,
            type(self).__name__,
            expert,
            self._generator,
        )
        self.actor, self.critic = self._networks(behavior_spec, settings)
        self.actor.to(self.device)
        self.critic.to(self.device)
        parameters = list({id(p): p for p in [*self.actor.parameters(), *self.critic.parameters()]}.values())
        # Fused: one kernel over every parameter per step, on the CPU as on CUDA. For the small networks of most
        # behaviors a step is then 72 µs instead of foreach's 218 (12 tensors, one thread), a tenth of an update.
        self.optimizer = torch.optim.Adam(parameters, lr=self.hyperparameters.learning_rate, fused=True)
        hp = self.hyperparameters
        self.decay_learning_rate = DecayedValue(
            hp.learning_rate_schedule, hp.learning_rate, LEARNING_RATE_FLOOR, settings.max_steps
        )
        self.decay_epsilon = DecayedValue(hp.epsilon_schedule, hp.epsilon, EPSILON_FLOOR, settings.max_steps)
        self.decay_beta = DecayedValue(hp.beta_schedule, hp.beta, BETA_FLOOR, settings.max_steps)
        self.buffer = UpdateBuffer()
        self._buffered_experiences = 0
        memory = settings.network_settings.memory
        self.sequence_length: int | None = None if memory is None else memory.sequence_length
        """With memory: the steps of a training sequence; None without memory."""
        self._critic_memories = AgentMemories(0 if memory is None else memory.memory_size)
        self.behavioral_cloning = behavioral_cloning(
            self.actor, settings, expert, self.hyperparameters.num_epoch, self._generator
        )
        self._action_mask_size = sum(behavior_spec.action_spec.discrete_branches)

    def _networks(self, behavior_spec: BehaviorSpec, settings: TrainerSettings) -> tuple[Actor, nn.Module]:
        """The actor and the critic (with ``shared_critic``, the critic uses the actor's body)."""
        assert isinstance(self.hyperparameters, PPOSettings)
        return build_actor_critic(
            behavior_spec, settings.network_settings, self.reward_signals.names, self.hyperparameters.shared_critic
        )

    # ---- what the trainer keeps, publishes and exports ---------------------------------------------------------
    def modules(self) -> dict[str, Saveable]:
        """The checkpoint entries, under ML-Agents' names."""
        modules: dict[str, Saveable] = {
            POLICY: self.actor,
            self.optimizer_entry: self.optimizer,
            "Optimizer:critic": self.critic,
            **self.reward_signals.modules(),
        }
        if self.behavioral_cloning is not None:
            modules.update(self.behavioral_cloning.modules())
        return modules

    def policy_state(self) -> dict[str, np.ndarray]:
        """The actor's weights for the EnvActors' policies."""
        return actor_weights(self.actor)

    def export(self, path: Path) -> Path:
        """The actor as a Unity-loadable ``.onnx`` model."""
        return export_policy_model(self.actor, path)

    @property
    def buffered_steps(self) -> int:
        """Experiences in the update buffer (with memory, not counting the sequences' padding)."""
        return self._buffered_experiences

    def ready_for_update(self, step: int) -> bool:
        """Whether the buffer holds more than ``buffer_size`` experiences."""
        return self._buffered_experiences > self.hyperparameters.buffer_size

    def experiences_per_update(self) -> int:
        """``buffer_size``."""
        return self.hyperparameters.buffer_size

    def restored(self, step: int) -> None:
        """Empties the update buffer: it was acted by weights that no longer exist."""
        self.buffer.clear()
        self._buffered_experiences = 0
        self._critic_memories.clear()
        self.reward_signals.restored()

    def pretrain(self) -> dict[str, float]:
        """Behavioral cloning from the demonstrations before the first step (with ``behavioral_cloning``)."""
        return {} if self.behavioral_cloning is None else self.behavioral_cloning.pretrain()

    def saved_buffers(self) -> dict[str, Saveable]:
        """Nothing: PPO's buffer is emptied by every update."""
        return {}

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return observation_tensor(array, self.device)

    # ---- 1. trajectories become update-buffer columns, all at once -----------------------------------------------
    @torch.no_grad()
    def ingest(self, trajectories: Sequence[Trajectory], trainable: Sequence[np.ndarray]) -> Ingested:
        """Rewards ``trajectories`` with every signal and estimates their values and advantages in one critic pass;
        the trainable experiences go to the buffer. Reports ``Policy/<Name> Value Estimate`` per reward signal and
        ``Policy/Entropy``."""
        if not trajectories:
            return Ingested(stats={}, signal_rewards={})
        sensors = len(self.actor.observation_specs)
        lengths = np.array([len(t) for t in trajectories], dtype=np.int64)
        count = int(lengths.sum())
        # The next observations, rewards and ends are kept only for the reward signals that learn from them.
        rows = experience_columns(trajectories, sensors, next_obs=self.reward_signals.learns, interrupted_ends=True)
        obs = [rows[obs_key(k)] for k in range(sensors)]
        next_obs = [self._tensor(np.stack([t.next_obs[k] for t in trajectories])) for k in range(sensors)]
        obs_tensors = [self._tensor(o) for o in obs]
        self.actor.update_normalization(obs_tensors)
        if self.critic.network_body is not self.actor.network_body:
            self.critic.update_normalization(obs_tensors)
        layout = None if self.sequence_length is None else sequence_layout(lengths, self.sequence_length)
        critic_starts: np.ndarray | None = None
        if layout is None:
            both = [torch.cat([o, n]) for o, n in zip(obs_tensors, next_obs)]
            values = {name: v.cpu().numpy().astype(np.float64) for name, v in self.critic(both).items()}
        else:
            values, critic_starts = values_by_sequence(
                self.critic, obs_tensors, next_obs, trajectories, self._critic_memories, layout
            )

        keep = np.concatenate([np.asarray(mask, dtype=bool) for mask in trainable])
        bootstraps = np.array([t.bootstraps() for t in trajectories], dtype=np.float64)
        columns: dict[str, np.ndarray] = {}
        batch = batch_from_arrays(rows, obs_tensors, self.device, with_next=self.reward_signals.learns)
        signal_rewards = {
            name: r.cpu().numpy().astype(np.float64) for name, r in self.reward_signals.rewards(batch).items()
        }
        stats: dict[str, float] = {}
        advantages: list[np.ndarray] = []
        for name in self.reward_signals.names:
            signal = self.reward_signals.settings(name)
            estimates, after = values[name][:count], values[name][count:]
            if not self.reward_signals.ignores_done(name):
                after = after * bootstraps
            advantage = batched_gae(
                signal_rewards[name], estimates, after, lengths, signal.gamma, self.hyperparameters.lambd
            )
            columns[returns_key(name)] = (advantage + estimates).astype(np.float32)
            columns[value_estimates_key(name)] = estimates.astype(np.float32)
            advantages.append(advantage)
            stats[value_estimate_stat(name)] = float(estimates.mean())
        columns[ADVANTAGES] = np.mean(np.stack(advantages), axis=0).astype(np.float32)
        if all(ENTROPY in t.extras for t in trajectories):
            stats["Policy/Entropy"] = float(np.concatenate([t.extras[ENTROPY] for t in trajectories]).mean())
        ingested = Ingested(stats=stats, signal_rewards=signal_rewards)
        if keep.any():
            starts = None if critic_starts is None else {CRITIC_MEMORY: critic_starts}
            self._append_trainable(trajectories, rows, columns, obs_tensors, keep, layout, starts)
        return ingested

    def _append_trainable(
        self,
        trajectories: Sequence[Trajectory],
        rows: dict[str, np.ndarray],
        columns: dict[str, np.ndarray],
        obs_tensors: Sequence[torch.Tensor],
        keep: np.ndarray,
        layout: SequenceLayout | None,
        critic_memories: Mapping[str, np.ndarray] | None,
    ) -> None:
        """Appends the experiences ``keep`` allows to the update buffer: the experience ``rows``, the computed
        ``columns`` (returns, estimates, advantages), the action masks, the log probabilities that acted and those of
        the learner's current weights (with memory, in padded sequences of ``layout``, with the critics' memories at
        each sequence's start, by column)."""
        sensors = len(self.actor.observation_specs)
        if not self.reward_signals.learns:  # only the signals that learn train on rewards and ends
            del rows[REWARDS], rows[DONES]
        columns.update(rows)
        masks = [allowed_from_disabled(t.action_mask, len(t), self._action_mask_size) for t in trajectories]
        columns[ACTION_MASKS] = np.concatenate(masks)
        columns[LOG_PROBS] = np.concatenate([t.extra(LOG_PROBS_EXTRA) for t in trajectories]).astype(np.float32)
        if layout is None:
            kept = torch.as_tensor(keep, device=self.device)
            columns = {name: column[keep] for name, column in columns.items()}
            current, _ = self.actor.evaluate(
                [o[kept] for o in obs_tensors],  # already on the device: no second conversion
                self._tensor(columns[ACTION_MASKS]),
                self._tensor(columns[CONTINUOUS_ACTIONS]),
                torch.as_tensor(columns[DISCRETE_ACTIONS], device=self.device),
            )
        else:
            assert critic_memories is not None
            memories = np.concatenate([t.extra(MEMORY) for t in trajectories])
            columns = padded_sequences(columns, layout, keep, memories, critic_memories)
            for name in (MEMORY, *critic_memories):  # the update buffer keeps every column per row
                columns[name] = np.repeat(columns[name], layout.sequence_length, axis=0)
            current, _ = self.actor.evaluate(
                [self._tensor(columns[obs_key(k)]) for k in range(sensors)],
                self._tensor(columns[ACTION_MASKS]),
                self._tensor(columns[CONTINUOUS_ACTIONS]),
                torch.as_tensor(columns[DISCRETE_ACTIONS], device=self.device),
                self._tensor(columns[MEMORY][:: layout.sequence_length]),
                layout.sequence_length,
            )
        columns[CURRENT_LOG_PROBS] = current.cpu().numpy().astype(np.float32)
        self.buffer.append(columns)
        self._buffered_experiences += int(keep.sum())

    # ---- 2. the loss of a minibatch -----------------------------------------------------------------------------
    def losses(self, minibatch: Mapping[str, torch.Tensor], epsilon: float, beta: float) -> PPOLosses:
        """The PPO losses of ``minibatch`` (update-buffer columns, advantages already normalized; with memory, whole
        sequences, whose padding the loss mask leaves out of every mean, as ML-Agents' ``masked_mean`` does)."""
        obs = [minibatch[obs_key(i)] for i in range(len(self.actor.observation_specs))]
        length = self.sequence_length or 1
        memories = minibatch[MEMORY][::length] if MEMORY in minibatch else None
        critic_memories = minibatch[CRITIC_MEMORY][::length] if CRITIC_MEMORY in minibatch else None
        log_probs, entropy = self.actor.evaluate(
            obs, minibatch[ACTION_MASKS], minibatch[CONTINUOUS_ACTIONS], minibatch[DISCRETE_ACTIONS], memories, length
        )
        values = self.critic(obs, critic_memories, length)
        mean = masked_mean(minibatch.get(LOSS_MASKS))
        policy_loss = self.policy_loss(minibatch, log_probs, epsilon, mean)
        value_loss = self.value_loss(values, minibatch, value_estimates_key, epsilon, mean)
        mean_entropy = mean(entropy)
        loss = policy_loss + VALUE_LOSS_COEFFICIENT * value_loss - beta * mean_entropy
        return PPOLosses(loss=loss, policy_loss=policy_loss, value_loss=value_loss, entropy=mean_entropy)

    @staticmethod
    def policy_loss(
        minibatch: Mapping[str, torch.Tensor],
        log_probs: torch.Tensor,
        epsilon: float,
        mean: Callable[[torch.Tensor], torch.Tensor],
    ) -> torch.Tensor:
        """The negated clipped surrogate of the minibatch's actions with the new ``log_probs``."""
        # Clipped surrogate on the ratio of the joint action probabilities, new policy over the weights this update
        # started from, each experience weighted by how much likelier those weights made its action than the
        # weights that acted (truncated at 1). Acted by the current weights, the weight is 1 and the ratio is
        # ML-Agents' own, against the log probabilities that acted.
        advantages = minibatch[ADVANTAGES]
        start = minibatch[CURRENT_LOG_PROBS]
        weight = torch.exp(start - minibatch[LOG_PROBS]).clamp(max=IMPORTANCE_WEIGHT_CLIP)
        ratio = torch.exp(log_probs - start)
        surrogate = ratio * advantages
        clipped_surrogate = torch.clamp(ratio, 1.0 - epsilon, 1.0 + epsilon) * advantages
        return -mean(weight * torch.min(surrogate, clipped_surrogate))

    def value_loss(
        self,
        values: Mapping[str, torch.Tensor],
        minibatch: Mapping[str, torch.Tensor],
        estimates_key: Callable[[str], str],
        epsilon: float,
        mean: Callable[[torch.Tensor], torch.Tensor],
    ) -> torch.Tensor:
        """The value loss per reward signal of ``values`` against the returns, clipped by ``epsilon`` around the
        ingestion-time estimates in column ``estimates_key(signal)``; their mean."""
        value_losses = []
        for name in self.reward_signals.names:
            old_values = minibatch[estimates_key(name)]
            returns = minibatch[returns_key(name)]
            clipped_values = old_values + torch.clamp(values[name] - old_values, -epsilon, epsilon)
            unclipped_error = (returns - values[name]) ** 2
            clipped_error = (returns - clipped_values) ** 2
            value_losses.append(mean(torch.max(unclipped_error, clipped_error)))
        return torch.stack(value_losses).mean()

    # ---- 3. the update --------------------------------------------------------------------------------------------
    def update(self, step: int) -> dict[str, float]:
        """One PPO update over the whole buffer, which is then cleared; returns the stats under ML-Agents' names.

        Minibatches hold ``batch_size`` experiences; with memory, ``batch_size / sequence_length`` whole sequences,
        shuffled as sequences."""
        if self.buffer.num_experiences == 0:
            raise ValueError("the update buffer is empty: ingest trajectories before an update")
        learning_rate = self.decay_learning_rate.value(step)
        epsilon = self.decay_epsilon.value(step)
        beta = self.decay_beta.value(step)
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate

        data = self.buffer.tensors(self.device)
        advantages = data[ADVANTAGES]
        real = data[LOSS_MASKS] > 0 if LOSS_MASKS in data else torch.ones_like(advantages, dtype=torch.bool)
        mean, std = advantages[real].mean(), advantages[real].std(correction=0)
        data[ADVANTAGES] = (advantages - mean) / (std + ADVANTAGE_EPSILON)

        length = self.sequence_length or 1
        units = self.buffer.num_experiences // length  # sequences (experiences without memory)
        per_batch = max(min(self.hyperparameters.batch_size, self.buffer.num_experiences) // length, 1)
        num_batches = units // per_batch
        steps_in_unit = torch.arange(length, device=self.device)
        policy_losses: list[torch.Tensor] = []
        value_losses: list[torch.Tensor] = []
        baseline_losses: list[torch.Tensor] = []
        signal_stats: dict[str, list[float]] = {}
        sensors = len(self.actor.observation_specs)
        for _ in range(self.hyperparameters.num_epoch):
            order = torch.randperm(units, generator=self._generator).to(self.device)
            if length > 1:
                order = (order[:, None] * length + steps_in_unit[None]).reshape(-1)
            shuffled = {name: column[order] for name, column in data.items()}  # one gather per epoch
            rows = per_batch * length
            for b in range(num_batches):
                minibatch = {name: column[b * rows : (b + 1) * rows] for name, column in shuffled.items()}
                losses = self.losses(minibatch, epsilon, beta)
                self.optimizer.zero_grad()
                losses.loss.backward()
                self.optimizer.step()
                policy_losses.append(losses.policy_loss.detach().abs())
                value_losses.append(losses.value_loss.detach())
                if losses.baseline_loss is not None:
                    baseline_losses.append(losses.baseline_loss.detach())
                if self.reward_signals.learns:
                    trained = batch_from_columns(real_rows(minibatch), sensors)
                    for name, value in self.reward_signals.update(trained).items():
                        signal_stats.setdefault(name, []).append(value)
        self.buffer.clear()
        self._buffered_experiences = 0

        stats = {
            "Losses/Policy Loss": float(torch.stack(policy_losses).mean()),
            "Losses/Value Loss": float(torch.stack(value_losses).mean()),
            "Policy/Learning Rate": learning_rate,
            "Policy/Epsilon": epsilon,
            "Policy/Beta": beta,
        }
        if baseline_losses:
            stats["Losses/Baseline Loss"] = float(torch.stack(baseline_losses).mean())
        stats.update({name: float(np.mean(values)) for name, values in signal_stats.items()})
        if self.behavioral_cloning is not None:
            stats.update(self.behavioral_cloning.update(step))
        return stats
