"""Trainer hyperparameters: the `hyperparameters` section, one class per trainer type."""

from __future__ import annotations

import dataclasses
import enum

from rayagents.configs.errors import ConfigError


class ScheduleType(str, enum.Enum):
    """How a hyperparameter changes over training."""

    CONSTANT = "constant"
    """Keep the configured value."""

    LINEAR = "linear"
    """Decay linearly to a floor at max_steps (1e-10 for learning_rate, 0.1 for epsilon, 1e-5 for beta)."""


@dataclasses.dataclass(frozen=True)
class HyperparamSettings:
    """The hyperparameters every trainer type has."""

    batch_size: int = 1024
    """Experiences in each gradient-descent minibatch."""

    buffer_size: int = 10240
    """Experiences collected before an update (on-policy) or held in the replay buffer (off-policy)."""

    learning_rate: float = 3.0e-4
    """Initial learning rate of the optimizer."""

    learning_rate_schedule: ScheduleType = ScheduleType.CONSTANT
    """How the learning rate changes over training."""

    def __post_init__(self) -> None:
        if self.batch_size <= 0:
            raise ConfigError(f"batch_size is {self.batch_size}: it must be at least 1")
        if self.buffer_size <= 0:
            raise ConfigError(f"buffer_size is {self.buffer_size}: it must be at least 1")
        if self.learning_rate < 0.0:
            raise ConfigError(f"learning_rate is {self.learning_rate}: it must not be negative")


@dataclasses.dataclass(frozen=True)
class OnPolicyHyperparamSettings(HyperparamSettings):
    """The hyperparameters of on-policy trainers (PPO, POCA)."""

    num_epoch: int = 3
    """Passes over the experience buffer in each update."""


@dataclasses.dataclass(frozen=True)
class OffPolicyHyperparamSettings(HyperparamSettings):
    """The hyperparameters of off-policy trainers (SAC)."""

    batch_size: int = 128
    """Experiences in each gradient-descent minibatch."""

    buffer_size: int = 50000
    """Capacity of the replay buffer, in experiences."""

    buffer_init_steps: int = 0
    """Experiences collected with a random policy before updates start."""

    steps_per_update: float = 1.0
    """Average agent steps per policy update (per gradient step)."""

    save_replay_buffer: bool = False
    """Save the replay buffer with checkpoints and load it on resume."""

    reward_signal_steps_per_update: float | None = None
    """Agent steps per reward-signal update; None (the default) takes `steps_per_update`.

    After construction it is always a number."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.reward_signal_steps_per_update is None:
            object.__setattr__(self, "reward_signal_steps_per_update", self.steps_per_update)
        if self.steps_per_update <= 0.0:
            raise ConfigError(f"steps_per_update is {self.steps_per_update}: it must be greater than 0")
        if self.buffer_init_steps < 0:
            raise ConfigError(f"buffer_init_steps is {self.buffer_init_steps}: it must be 0 or more")


@dataclasses.dataclass(frozen=True)
class PPOSettings(OnPolicyHyperparamSettings):
    """PPO hyperparameters (`trainer_type: ppo`).

    When a YAML gives `learning_rate_schedule` but not `beta_schedule` or `epsilon_schedule`, the loader copies
    the learning rate's schedule into them."""

    beta: float = 5.0e-3
    """Strength of the entropy regularization."""

    epsilon: float = 0.2
    """Clipping range of the policy ratio."""

    lambd: float = 0.95
    """The GAE lambda."""

    num_epoch: int = 3
    """Passes over the experience buffer in each update."""

    shared_critic: bool = False
    """Share one network body between the policy and the value function."""

    learning_rate_schedule: ScheduleType = ScheduleType.LINEAR
    """How the learning rate changes over training."""

    beta_schedule: ScheduleType = ScheduleType.LINEAR
    """How beta changes over training."""

    epsilon_schedule: ScheduleType = ScheduleType.LINEAR
    """How epsilon changes over training."""


@dataclasses.dataclass(frozen=True)
class POCASettings(OnPolicyHyperparamSettings):
    """MA-POCA hyperparameters (`trainer_type: poca`); schedules copy as in PPOSettings."""

    beta: float = 5.0e-3
    """Strength of the entropy regularization."""

    epsilon: float = 0.2
    """Clipping range of the policy ratio."""

    lambd: float = 0.95
    """The lambda of the TD(lambda) returns."""

    num_epoch: int = 3
    """Passes over the experience buffer in each update."""

    learning_rate_schedule: ScheduleType = ScheduleType.LINEAR
    """How the learning rate changes over training."""

    beta_schedule: ScheduleType = ScheduleType.LINEAR
    """How beta changes over training."""

    epsilon_schedule: ScheduleType = ScheduleType.LINEAR
    """How epsilon changes over training."""


@dataclasses.dataclass(frozen=True)
class SACSettings(OffPolicyHyperparamSettings):
    """SAC hyperparameters (`trainer_type: sac`)."""

    batch_size: int = 128
    """Experiences in each gradient-descent minibatch."""

    buffer_size: int = 50000
    """Capacity of the replay buffer, in experiences."""

    buffer_init_steps: int = 0
    """Experiences collected with a random policy before updates start."""

    tau: float = 0.005
    """Rate of the soft update of the target value network."""

    steps_per_update: float = 1.0
    """Average agent steps per policy update (per gradient step)."""

    save_replay_buffer: bool = False
    """Save the replay buffer with checkpoints and load it on resume."""

    init_entcoef: float = 1.0
    """Initial entropy coefficient."""

    reward_signal_steps_per_update: float | None = None
    """Agent steps per reward-signal update; None (the default) takes `steps_per_update`.

    After construction it is always a number."""


def hyperparameter_class(trainer_type: str) -> type[HyperparamSettings]:
    """The hyperparameter class of `trainer_type` ("ppo", "sac" or "poca"); ConfigError for another."""
    classes: dict[str, type[HyperparamSettings]] = {"ppo": PPOSettings, "sac": SACSettings, "poca": POCASettings}
    if trainer_type not in classes:
        raise ConfigError(
            f"trainer_type {trainer_type!r} is not a trainer type rayagents knows; use one of {sorted(classes)}"
        )
    return classes[trainer_type]


def trainer_types() -> tuple[str, ...]:
    """The trainer types rayagents knows, in the order ML-Agents lists them."""
    return ("ppo", "sac", "poca")


def copies_schedules(trainer_type: str) -> bool:
    """Whether an unset beta/epsilon schedule copies `learning_rate_schedule` for this trainer type."""
    return trainer_type in ("ppo", "poca")
