"""The run options schema in one import: every settings class and enum of `rayagents.configs`."""

from __future__ import annotations

from rayagents.configs.environment_parameters import (
    CompletionCriteriaSettings,
    ConstantSettings,
    EnvironmentParameterSettings,
    GaussianSettings,
    Lesson,
    MeasureType,
    MultiRangeUniformSettings,
    ParameterRandomizationSettings,
    SamplerType,
    UniformSettings,
)
from rayagents.configs.errors import ConfigError, ConfigWarning
from rayagents.configs.hyperparameters import (
    HyperparamSettings,
    OffPolicyHyperparamSettings,
    OnPolicyHyperparamSettings,
    POCASettings,
    PPOSettings,
    SACSettings,
    ScheduleType,
    hyperparameter_class,
    trainer_types,
)
from rayagents.configs.network import ConditioningType, EncoderType, MemorySettings, NetworkSettings
from rayagents.configs.reward_signals import (
    CuriositySettings,
    GAILSettings,
    RewardSignalSettings,
    RewardSignalType,
    RNDSettings,
)
from rayagents.configs.run import (
    CheckpointSettings,
    ClusterSettings,
    EngineSettings,
    EnvironmentSettings,
    RunOptions,
    TorchSettings,
)
from rayagents.configs.trainer import BehavioralCloningSettings, SelfPlaySettings, TrainerSettings

__all__ = [
    "BehavioralCloningSettings",
    "CheckpointSettings",
    "ClusterSettings",
    "CompletionCriteriaSettings",
    "ConditioningType",
    "ConfigError",
    "ConfigWarning",
    "ConstantSettings",
    "CuriositySettings",
    "EncoderType",
    "EngineSettings",
    "EnvironmentParameterSettings",
    "EnvironmentSettings",
    "GAILSettings",
    "GaussianSettings",
    "HyperparamSettings",
    "Lesson",
    "MeasureType",
    "MemorySettings",
    "MultiRangeUniformSettings",
    "NetworkSettings",
    "OffPolicyHyperparamSettings",
    "OnPolicyHyperparamSettings",
    "POCASettings",
    "PPOSettings",
    "ParameterRandomizationSettings",
    "RNDSettings",
    "RewardSignalSettings",
    "RewardSignalType",
    "RunOptions",
    "SACSettings",
    "SamplerType",
    "ScheduleType",
    "SelfPlaySettings",
    "TorchSettings",
    "TrainerSettings",
    "UniformSettings",
    "hyperparameter_class",
    "trainer_types",
]
