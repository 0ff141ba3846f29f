"""Behavioral cloning (``behavioral_cloning``): the policy learns to take the demonstrations' actions, alongside
reinforcement learning, as ML-Agents' ``BCModule``; and pretraining, the same loss before the first step.

Each :meth:`BehavioralCloning.update` (one per PPO update, one per SAC update call) makes ``num_epoch`` shuffled
passes over the demonstrations (at most ``samples_per_update`` experiences a pass; 0: all of them) in minibatches of
``batch_size`` (the trainer's ``batch_size`` and ``num_epoch`` when not set; SAC's ``num_epoch`` is 1), with its own
Adam at ``learning_rate × strength``, decaying linearly to 0 over ``steps`` (constant when ``steps`` is 0). The loss
(``Losses/Pretraining Loss``): for continuous actions the squared error of the policy's sampled action against the
expert's, for discrete ones the cross-entropy of each branch against the expert's action, averaged over branches.

Pretraining (rayagents' own, in the spirit of ``--initialize-from``): a run that starts afresh first makes
:data:`PRETRAINING_GRADIENT_STEPS` minibatch steps of the same loss at the initial BC learning rate, so the first
weights the players act with already imitate the demonstrations.
"""

from __future__ import annotations

import torch
from torch.nn import functional

from rayagents.configs.hyperparameters import ScheduleType
from rayagents.configs.trainer import BehavioralCloningSettings, TrainerSettings
from rayagents.learner.checkpoint_format import Saveable
from rayagents.learner.expert_data import ExpertData, ExpertSource
from rayagents.learner.networks import Actor
from rayagents.learner.reward_providers import RewardBatch
from rayagents.learner.schedules import LEARNING_RATE_FLOOR, DecayedValue

PRETRAINING_GRADIENT_STEPS = 1000
"""Minibatch steps of behavioral cloning before a fresh run's first step."""
PRETRAINING_LOSS = "Losses/Pretraining Loss"


class BehavioralCloning:
    """Behavioral cloning of the demonstrations into ``actor`` (see the module's docstring).

    Arguments:
        actor: the policy that learns.
        settings: the ``behavioral_cloning`` section.
        expert: its ``demo_path``'s demonstrations on the learner's device.
        policy_learning_rate: the trainer's ``learning_rate``.
        default_batch_size: the trainer's ``batch_size``.
        default_num_epoch: the trainer's ``num_epoch`` (1 for SAC).
        generator: shuffles the demonstrations; None draws from torch's global generator.
    """

    def __init__(
        self,
        actor: Actor,
        settings: BehavioralCloningSettings,
        expert: ExpertData,
        policy_learning_rate: float,
        default_batch_size: int,
        default_num_epoch: int,
        generator: torch.Generator | None = None,
    ) -> None:
        self.actor = actor
        self.settings = settings
        self.expert = expert
        initial = policy_learning_rate * settings.strength
        schedule = ScheduleType.LINEAR if settings.steps > 0 else ScheduleType.CONSTANT
        self.decay_learning_rate = DecayedValue(schedule, initial, LEARNING_RATE_FLOOR, settings.steps)
        self.optimizer = torch.optim.Adam(actor.parameters(), lr=initial)
        self.batch_size = settings.batch_size or default_batch_size
        self.num_epoch = settings.num_epoch or default_num_epoch
        self._generator = generator

    def loss(self, batch: RewardBatch) -> torch.Tensor:
        """The cloning loss of a minibatch of demonstrations (with gradients into the actor)."""
        observations = list(batch.observations)
        memories = None  # with memory, each demonstrated step is cloned from a fresh (zero) memory
        if self.actor.memory_size:
            memories = observations[0].new_zeros((observations[0].shape[0], self.actor.memory_size)).float()
        sampled, _, branch_log_probs = self.actor.reparameterized(observations, None, memories)
        loss = sampled.new_zeros(())
        if self.actor.action_spec.continuous_size > 0:
            loss = loss + functional.mse_loss(sampled, batch.continuous_actions.float())
        if branch_log_probs:
            per_branch = [
                -log_probs.gather(1, batch.discrete_actions[:, b : b + 1].long()).squeeze(1)
                for b, log_probs in enumerate(branch_log_probs)
            ]
            loss = loss + torch.stack(per_branch).mean()
        return loss

    def _step(self, batch: RewardBatch) -> torch.Tensor:
        loss = self.loss(batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def _set_learning_rate(self, learning_rate: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate

    def update(self, step: int) -> dict[str, float]:
        """``num_epoch`` passes over the demonstrations at trainer step ``step``'s learning rate; 0 loss (and no
        pass) once the learning rate has decayed away."""
        learning_rate = self.decay_learning_rate.value(step)
        if learning_rate <= LEARNING_RATE_FLOOR:
            return {PRETRAINING_LOSS: 0.0}
        self._set_learning_rate(learning_rate)
        losses = [
            self._step(batch)
            for _ in range(self.num_epoch)
            for batch in self.expert.minibatches(self.batch_size, self.settings.samples_per_update, self._generator)
        ]
        return {PRETRAINING_LOSS: float(torch.stack(losses).mean())}

    def pretrain(self) -> dict[str, float]:
        """:data:`PRETRAINING_GRADIENT_STEPS` minibatch steps at the initial learning rate; the mean loss of the
        last pass over the demonstrations."""
        self._set_learning_rate(self.decay_learning_rate.value(0))
        made = 0
        last_pass: list[torch.Tensor] = []
        while made < PRETRAINING_GRADIENT_STEPS:
            last_pass = []
            for batch in self.expert.minibatches(self.batch_size, 0, self._generator):
                last_pass.append(self._step(batch))
                made += 1
                if made == PRETRAINING_GRADIENT_STEPS:
                    break
        return {PRETRAINING_LOSS: float(torch.stack(last_pass).mean())}

    def modules(self) -> dict[str, Saveable]:
        """The cloning optimizer (ML-Agents does not keep it)."""
        return {"Optimizer:bc_optimizer": self.optimizer}


def behavioral_cloning(
    actor: Actor,
    settings: TrainerSettings,
    expert: ExpertSource,
    default_num_epoch: int,
    generator: torch.Generator | None = None,
) -> BehavioralCloning | None:
    """The behavior's behavioral cloning, or None without a ``behavioral_cloning`` section."""
    if settings.behavioral_cloning is None:
        return None
    hp = settings.hyperparameters
    return BehavioralCloning(
        actor,
        settings.behavioral_cloning,
        expert(settings.behavioral_cloning.demo_path),
        hp.learning_rate,
        hp.batch_size,
        default_num_epoch,
        generator,
    )
