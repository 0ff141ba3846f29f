"""Network settings: the `network_settings` section of a behavior (and of a reward signal)."""

from __future__ import annotations

import dataclasses
import enum

from rayagents.configs.errors import ConfigError


class EncoderType(str, enum.Enum):
    """How visual observations are encoded (`vis_encode_type`)."""

    FULLY_CONNECTED = "fully_connected"
    MATCH3 = "match3"
    SIMPLE = "simple"
    NATURE_CNN = "nature_cnn"
    RESNET = "resnet"

    @property
    def min_resolution(self) -> int:
        """The smallest image height and width this encoder accepts."""
        return {
            EncoderType.FULLY_CONNECTED: 1,
            EncoderType.MATCH3: 5,
            EncoderType.SIMPLE: 20,
            EncoderType.NATURE_CNN: 36,
            EncoderType.RESNET: 15,
        }[self]


class ConditioningType(str, enum.Enum):
    """How goal observations condition the network (`goal_conditioning_type`)."""

    HYPER = "hyper"
    NONE = "none"


@dataclasses.dataclass(frozen=True)
class MemorySettings:
    """The recurrent memory (LSTM) of a network: `network_settings.memory`."""

    sequence_length: int = 64
    """Length of the sequences of experience the recurrent network is trained on; at most `batch_size`."""

    memory_size: int = 128
    """Size of the recurrent state (LSTM hidden plus cell state); even and greater than 0."""

    def __post_init__(self) -> None:
        if self.memory_size <= 0:
            raise ConfigError(
                f"memory_size is {self.memory_size}: a recurrent network needs memory_size greater than 0"
            )
        if self.memory_size % 2 != 0:
            raise ConfigError(
                f"memory_size is {self.memory_size}: it must be even (it holds the LSTM hidden and cell "
                f"state in two halves); use e.g. {self.memory_size + 1}"
            )
        if self.sequence_length <= 0:
            raise ConfigError(f"sequence_length is {self.sequence_length}: it must be at least 1")


@dataclasses.dataclass(frozen=True)
class NetworkSettings:
    """The shape of a policy, critic or reward-signal network."""

    normalize: bool = False
    """Normalize vector observations with a running mean and variance."""

    hidden_units: int = 128
    """Units in each hidden fully connected layer."""

    num_layers: int = 2
    """Number of hidden fully connected layers."""

    vis_encode_type: EncoderType = EncoderType.SIMPLE
    """Encoder for visual observations."""

    memory: MemorySettings | None = None
    """Recurrent memory settings; None means a feed-forward network."""

    goal_conditioning_type: ConditioningType = ConditioningType.HYPER
    """How goal observations condition the network: a hypernetwork (`hyper`) or plain input (`none`)."""

    deterministic: bool = False
    """Act with the distribution's mode instead of sampling (also set by `--deterministic`)."""

    def __post_init__(self) -> None:
        if self.hidden_units <= 0:
            raise ConfigError(f"hidden_units is {self.hidden_units}: it must be at least 1")
        if self.num_layers < 0:
            raise ConfigError(f"num_layers is {self.num_layers}: it must be 0 or more")
