"""The side channels an EnvActor opens its player with: engine settings and environment parameters.

Environment parameters take the value of their first lesson (a plain number, or a sampler that the player draws
from at each episode, as ML-Agents sends it); a sampler without its own ``seed`` uses the run's. Moving through
the lessons of a curriculum is the driver's job and is refused at start until it is supported.
"""

from __future__ import annotations

from typing import Mapping

from rayagents.configs import (
    ConstantSettings,
    EngineSettings,
    EnvironmentParameterSettings,
    GaussianSettings,
    MultiRangeUniformSettings,
    UniformSettings,
)
from rayagents.protocol.side_channels import EngineConfigurationChannel, EnvironmentParametersChannel


def engine_configuration_channel(engine: EngineSettings) -> EngineConfigurationChannel:
    """An engine configuration channel with ``engine``'s settings queued for the first message."""
    channel = EngineConfigurationChannel()
    channel.set_configuration_parameters(
        width=engine.width,
        height=engine.height,
        quality_level=engine.quality_level,
        time_scale=engine.time_scale,
        target_frame_rate=engine.target_frame_rate,
        capture_frame_rate=engine.capture_frame_rate,
    )
    return channel


def environment_parameters_channel(
    parameters: Mapping[str, EnvironmentParameterSettings], run_seed: int
) -> EnvironmentParametersChannel:
    """An environment parameters channel with each parameter's first-lesson value queued."""
    channel = EnvironmentParametersChannel()
    for key, setting in parameters.items():
        value = setting.curriculum[0].value
        seed = run_seed if value.seed == -1 else value.seed
        if isinstance(value, ConstantSettings):
            channel.set_float_parameter(key, value.value)
        elif isinstance(value, UniformSettings):
            channel.set_uniform_sampler_parameters(key, value.min_value, value.max_value, seed)
        elif isinstance(value, GaussianSettings):
            channel.set_gaussian_sampler_parameters(key, value.mean, value.st_dev, seed)
        elif isinstance(value, MultiRangeUniformSettings):
            channel.set_multirangeuniform_sampler_parameters(key, value.intervals, seed)
        else:
            raise ValueError(f"environment parameter {key!r} has a value of unknown kind {type(value).__name__}")
    return channel
