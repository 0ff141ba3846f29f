"""Reward signal settings: the entries of a behavior's `reward_signals` section."""

from __future__ import annotations

import dataclasses
import enum

from rayagents.configs.errors import ConfigError
from rayagents.configs.network import NetworkSettings


class RewardSignalType(str, enum.Enum):
    """The key of a `reward_signals` entry; it selects the settings class."""

    EXTRINSIC = "extrinsic"
    GAIL = "gail"
    CURIOSITY = "curiosity"
    RND = "rnd"

    def settings_class(self) -> type[RewardSignalSettings]:
        """The settings class of this reward signal."""
        return {
            RewardSignalType.EXTRINSIC: RewardSignalSettings,
            RewardSignalType.GAIL: GAILSettings,
            RewardSignalType.CURIOSITY: CuriositySettings,
            RewardSignalType.RND: RNDSettings,
        }[self]


@dataclasses.dataclass(frozen=True)
class RewardSignalSettings:
    """A reward signal; as it stands, the `extrinsic` one (the environment's own reward)."""

    gamma: float = 0.99
    """Discount factor of this signal's future rewards."""

    strength: float = 1.0
    """Factor the signal's reward is multiplied by."""

    network_settings: NetworkSettings = dataclasses.field(default_factory=NetworkSettings)
    """Network of the signal's own model (curiosity, GAIL, RND); unused by extrinsic."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.gamma <= 1.0:
            raise ConfigError(f"gamma is {self.gamma}: it must be between 0 and 1")


@dataclasses.dataclass(frozen=True)
class CuriositySettings(RewardSignalSettings):
    """The curiosity (intrinsic curiosity module) reward signal."""

    learning_rate: float = 3e-4
    """Learning rate of the forward and inverse models."""

    encoding_size: int | None = None
    """Deprecated: the encoding size; without `network_settings` it becomes `network_settings.hidden_units`."""


@dataclasses.dataclass(frozen=True)
class GAILSettings(RewardSignalSettings):
    """The GAIL (generative adversarial imitation) reward signal."""

    learning_rate: float = 3e-4
    """Learning rate of the discriminator."""

    encoding_size: int | None = None
    """Deprecated: the encoding size; without `network_settings` it becomes `network_settings.hidden_units`."""

    use_actions: bool = False
    """Let the discriminator see actions as well as observations."""

    use_vail: bool = False
    """Use a variational information bottleneck in the discriminator (VAIL)."""

    demo_path: str = dataclasses.field(kw_only=True)
    """Path of the `.demo` file or folder of demonstrations; required (keyword-only)."""


@dataclasses.dataclass(frozen=True)
class RNDSettings(RewardSignalSettings):
    """The RND (random network distillation) reward signal."""

    learning_rate: float = 1e-4
    """Learning rate of the predictor network."""

    encoding_size: int | None = None
    """Deprecated: the encoding size; without `network_settings` it becomes `network_settings.hidden_units`."""
