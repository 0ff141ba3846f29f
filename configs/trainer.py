"""Per-behavior trainer settings: one entry of `behaviors` (and `default_settings`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from rayagents.configs.errors import ConfigError
from rayagents.configs.hyperparameters import HyperparamSettings, PPOSettings, hyperparameter_class
from rayagents.configs.network import NetworkSettings
from rayagents.configs.reward_signals import RewardSignalSettings, RewardSignalType


@dataclasses.dataclass(frozen=True)
class BehavioralCloningSettings:
    """Behavioral cloning from demonstrations (`behavioral_cloning`)."""

    demo_path: str
    """Path of the `.demo` file or folder of demonstrations; required."""

    steps: int = 0
    """Trainer steps over which the BC learning rate decays linearly to 0; 0 means constant."""

    strength: float = 1.0
    """BC learning rate as a fraction of the policy's learning rate."""

    samples_per_update: int = 0
    """Demonstration samples per update; 0 means all of them."""

    num_epoch: int | None = None
    """Passes over the demonstrations per update; None means the trainer's num_epoch."""

    batch_size: int | None = None
    """Demonstration minibatch size; None means the trainer's batch_size."""

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise ConfigError(f"steps is {self.steps}: it must be 0 or more")


@dataclasses.dataclass(frozen=True)
class SelfPlaySettings:
    """Self-play against past snapshots of the policy (`self_play`)."""

    save_steps: int = 20000
    """Trainer steps between snapshots of the learning policy."""

    team_change: int | None = None
    """Trainer steps between changes of the learning team; None (the default) means 5 × save_steps.

    After construction it is always a number."""

    swap_steps: int = 2000
    """Ghost steps between swaps of the opponent's snapshot."""

    window: int = 10
    """Number of past snapshots opponents are drawn from."""

    play_against_latest_model_ratio: float = 0.5
    """Probability of playing against the latest policy instead of a past snapshot."""

    initial_elo: float = 1200.0
    """Starting ELO rating."""

    def __post_init__(self) -> None:
        if self.team_change is None:
            object.__setattr__(self, "team_change", 5 * self.save_steps)
        if not 0.0 <= self.play_against_latest_model_ratio <= 1.0:
            raise ConfigError(
                f"play_against_latest_model_ratio is {self.play_against_latest_model_ratio}: it must be between 0 and 1"
            )
        if self.window < 1:
            raise ConfigError(f"window is {self.window}: it must be at least 1")


def _default_reward_signals() -> dict[RewardSignalType, RewardSignalSettings]:
    return {RewardSignalType.EXTRINSIC: RewardSignalSettings()}


@dataclasses.dataclass(frozen=True)
class TrainerSettings:
    """How one behavior is trained."""

    trainer_type: str = "ppo"
    """The trainer: "ppo", "sac" or "poca"."""

    hyperparameters: HyperparamSettings = dataclasses.field(default_factory=PPOSettings)
    """The trainer's hyperparameters: an instance of the trainer type's class (PPOSettings, SACSettings, ...)."""

    checkpoint_interval: int = 500000
    """Trainer steps between checkpoints (max_steps // keep_checkpoints with even_checkpoints)."""

    network_settings: NetworkSettings = dataclasses.field(default_factory=NetworkSettings)
    """The policy's (and critic's) network."""

    reward_signals: Mapping[RewardSignalType, RewardSignalSettings] = dataclasses.field(
        default_factory=_default_reward_signals
    )
    """The reward signals, by type; read-only by convention."""

    init_path: str | None = None
    """Checkpoint (`.pt`) to initialize this behavior's model from."""

    keep_checkpoints: int = 5
    """Number of past checkpoints kept; older ones are deleted."""

    even_checkpoints: bool = False
    """Spread keep_checkpoints checkpoints evenly over max_steps, overriding checkpoint_interval."""

    max_steps: int = 500000
    """Trainer steps (agent decisions, summed over agents) after which training stops."""

    time_horizon: int = 64
    """Steps of experience per agent collected before it is added to the buffer (and bootstrapped)."""

    summary_freq: int = 50000
    """Trainer steps between statistics summaries."""

    threaded: bool = False
    """Update the policy while the environment steps (accepted for compatibility)."""

    self_play: SelfPlaySettings | None = None
    """Self-play settings; None means no self-play."""

    behavioral_cloning: BehavioralCloningSettings | None = None
    """Behavioral cloning settings; None means no behavioral cloning."""

    def __post_init__(self) -> None:
        expected = hyperparameter_class(self.trainer_type)
        if type(self.hyperparameters) is not expected:
            raise ConfigError(
                f"trainer_type {self.trainer_type!r} takes {expected.__name__} hyperparameters, "
                f"not {type(self.hyperparameters).__name__}"
            )
        if self.keep_checkpoints < 0:
            raise ConfigError(f"keep_checkpoints is {self.keep_checkpoints}: it must be 0 or more")
        if self.even_checkpoints:
            if self.keep_checkpoints < 1:
                raise ConfigError("even_checkpoints needs keep_checkpoints of at least 1")
            object.__setattr__(self, "checkpoint_interval", self.max_steps // self.keep_checkpoints)
        if self.checkpoint_interval <= 0:
            raise ConfigError(f"checkpoint_interval is {self.checkpoint_interval}: it must be at least 1")
        if self.max_steps < 0:
            raise ConfigError(f"max_steps is {self.max_steps}: it must be 0 or more")
        if self.time_horizon <= 0:
            raise ConfigError(f"time_horizon is {self.time_horizon}: it must be at least 1")
        if self.summary_freq <= 0:
            raise ConfigError(f"summary_freq is {self.summary_freq}: it must be at least 1")
        memory = self.network_settings.memory
        if memory is not None and memory.sequence_length > self.hyperparameters.batch_size:
            raise ConfigError(
                f"network_settings.memory.sequence_length ({memory.sequence_length}) is larger than "
                f"hyperparameters.batch_size ({self.hyperparameters.batch_size}): with memory, sequence_length "
                "must be <= batch_size; lower it or raise batch_size"
            )
