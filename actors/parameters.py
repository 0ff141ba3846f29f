"""The side channels an EnvActor opens its player with: engine settings and environment parameters.

Each environment parameter takes the value of its current curriculum lesson (a plain number, or a sampler that the
player draws from at each episode, as ML-Agents sends it). The driver decides the lessons (``cluster/curriculum.py``)
and tells the EnvActors; :func:`lesson_values` turns the lesson numbers into the values sent.

Sampler seeds follow ML-Agents' ``EnvironmentParameterManager._set_sampler_seeds``: a value whose ``seed`` is -1 gets
the actor's seed plus an offset that counts up over every parameter's lessons with seed -1, in the configuration's
order (so two lessons, or two parameters, never draw the same sequence).
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

from rayagents.configs import (
    ConstantSettings,
    EngineSettings,
    EnvironmentParameterSettings,
    GaussianSettings,
    MultiRangeUniformSettings,
    ParameterRandomizationSettings,
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


def lesson_values(
    parameters: Mapping[str, EnvironmentParameterSettings], lessons: Mapping[str, int], run_seed: int
) -> dict[str, ParameterRandomizationSettings]:
    """Each parameter's value in its lesson of ``lessons`` (the first lesson for a parameter missing there), with
    its sampler seed resolved (see the module docstring). A lesson number past the last lesson is a ValueError."""
    values: dict[str, ParameterRandomizationSettings] = {}
    offset = 0
    for key, setting in parameters.items():
        chosen = lessons.get(key, 0)
        if not 0 <= chosen < len(setting.curriculum):
            raise ValueError(
                f"environment parameter {key!r} has {len(setting.curriculum)} lessons, not lesson {chosen}"
            )
        for number, lesson in enumerate(setting.curriculum):
            value = lesson.value
            if value.seed == -1:
                value = dataclasses.replace(value, seed=run_seed + offset)
                offset += 1
            if number == chosen:
                values[key] = value
    return values


def queue_values(channel: EnvironmentParametersChannel, values: Mapping[str, ParameterRandomizationSettings]) -> None:
    """Queues each parameter's value (a constant or a seeded sampler) on ``channel`` for the player's next message."""
    for key, value in values.items():
        if isinstance(value, ConstantSettings):
            channel.set_float_parameter(key, value.value)
        elif isinstance(value, UniformSettings):
            channel.set_uniform_sampler_parameters(key, value.min_value, value.max_value, value.seed)
        elif isinstance(value, GaussianSettings):
            channel.set_gaussian_sampler_parameters(key, value.mean, value.st_dev, value.seed)
        elif isinstance(value, MultiRangeUniformSettings):
            channel.set_multirangeuniform_sampler_parameters(key, value.intervals, value.seed)
        else:
            raise ValueError(f"environment parameter {key!r} has a value of unknown kind {type(value).__name__}")


def environment_parameters_channel(
    parameters: Mapping[str, EnvironmentParameterSettings], lessons: Mapping[str, int], run_seed: int
) -> EnvironmentParametersChannel:
    """An environment parameters channel with each parameter's value in its lesson of ``lessons`` (the first
    lesson for a parameter missing there) queued for the first message."""
    channel = EnvironmentParametersChannel()
    queue_values(channel, lesson_values(parameters, lessons, run_seed))
    return channel
