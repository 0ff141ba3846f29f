"""Side channels: the framed byte stream beside observations and actions, and ML-Agents' built-in channels.

Each channel has a trainer end (the Python side of ``mlagents_envs``) and a Unity end (what a player does with
the message, used by the simulation host).
"""

from rayagents.protocol.side_channels.engine_configuration import (
    ENGINE_CONFIGURATION_CHANNEL_ID,
    EngineConfig,
    EngineConfigurationChannel,
    EngineConfigurationReceiver,
    EngineConfigurationType,
)
from rayagents.protocol.side_channels.environment_parameters import (
    ENVIRONMENT_PARAMETERS_CHANNEL_ID,
    EnvironmentDataTypes,
    EnvironmentParametersChannel,
    EnvironmentParametersReceiver,
    SamplerTypes,
    gaussian_sampler,
    multirange_uniform_sampler,
    uniform_sampler,
)
from rayagents.protocol.side_channels.float_properties import FLOAT_PROPERTIES_CHANNEL_ID, FloatPropertiesChannel
from rayagents.protocol.side_channels.framing import (
    IncomingMessage,
    OutgoingMessage,
    SideChannel,
    SideChannelManager,
    decode_side_channel_messages,
    encode_side_channel_messages,
)
from rayagents.protocol.side_channels.raw_bytes import RawBytesChannel
from rayagents.protocol.side_channels.stats import (
    STATS_CHANNEL_ID,
    EnvironmentStats,
    StatsAggregationMethod,
    StatsRecorder,
    StatsSideChannel,
)
from rayagents.protocol.side_channels.training_analytics import (
    TRAINING_ANALYTICS_CHANNEL_ID,
    TrainingAnalyticsReceiver,
)

__all__ = [
    "ENGINE_CONFIGURATION_CHANNEL_ID",
    "ENVIRONMENT_PARAMETERS_CHANNEL_ID",
    "FLOAT_PROPERTIES_CHANNEL_ID",
    "STATS_CHANNEL_ID",
    "TRAINING_ANALYTICS_CHANNEL_ID",
    "EngineConfig",
    "EngineConfigurationChannel",
    "EngineConfigurationReceiver",
    "EngineConfigurationType",
    "EnvironmentDataTypes",
    "EnvironmentParametersChannel",
    "EnvironmentParametersReceiver",
    "EnvironmentStats",
    "FloatPropertiesChannel",
    "IncomingMessage",
    "OutgoingMessage",
    "RawBytesChannel",
    "SamplerTypes",
    "SideChannel",
    "SideChannelManager",
    "StatsAggregationMethod",
    "StatsRecorder",
    "StatsSideChannel",
    "TrainingAnalyticsReceiver",
    "decode_side_channel_messages",
    "encode_side_channel_messages",
    "gaussian_sampler",
    "multirange_uniform_sampler",
    "uniform_sampler",
]
