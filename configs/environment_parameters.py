"""Environment parameters: the top-level `environment_parameters` section (samplers and curricula)."""

from __future__ import annotations

import dataclasses
import enum

from rayagents.configs.errors import ConfigError


class SamplerType(str, enum.Enum):
    """The `sampler_type` of a sampled environment parameter."""

    UNIFORM = "uniform"
    GAUSSIAN = "gaussian"
    MULTIRANGEUNIFORM = "multirangeuniform"
    CONSTANT = "constant"

    def settings_class(self) -> type[ParameterRandomizationSettings]:
        """The settings class holding this sampler's `sampler_parameters`."""
        return {
            SamplerType.UNIFORM: UniformSettings,
            SamplerType.GAUSSIAN: GaussianSettings,
            SamplerType.MULTIRANGEUNIFORM: MultiRangeUniformSettings,
            SamplerType.CONSTANT: ConstantSettings,
        }[self]


@dataclasses.dataclass(frozen=True)
class ParameterRandomizationSettings:
    """The base of every sampler: its `sampler_parameters`."""

    seed: int = -1
    """Seed of the sampler; -1 means the run seed plus an offset that counts up per parameter and lesson."""

    @property
    def sampler_type(self) -> SamplerType:
        """The sampler type this class stands for."""
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class ConstantSettings(ParameterRandomizationSettings):
    """A constant value (also what a bare number means)."""

    value: float = 0.0
    """The value."""

    @property
    def sampler_type(self) -> SamplerType:
        """The sampler type this class stands for."""
        return SamplerType.CONSTANT


@dataclasses.dataclass(frozen=True)
class UniformSettings(ParameterRandomizationSettings):
    """A value drawn uniformly from [min_value, max_value] at every reset."""

    min_value: float = 0.0
    """Lower bound; at most max_value."""

    max_value: float = 1.0
    """Upper bound."""

    def __post_init__(self) -> None:
        if self.min_value > self.max_value:
            raise ConfigError(
                f"the uniform sampler's min_value ({self.min_value}) is greater than its max_value "
                f"({self.max_value}); swap them"
            )

    @property
    def sampler_type(self) -> SamplerType:
        """The sampler type this class stands for."""
        return SamplerType.UNIFORM


@dataclasses.dataclass(frozen=True)
class GaussianSettings(ParameterRandomizationSettings):
    """A value drawn from a normal distribution at every reset."""

    mean: float = 1.0
    """Mean of the distribution."""

    st_dev: float = 1.0
    """Standard deviation of the distribution."""

    def __post_init__(self) -> None:
        if self.st_dev < 0.0:
            raise ConfigError(f"the gaussian sampler's st_dev is {self.st_dev}: it must not be negative")

    @property
    def sampler_type(self) -> SamplerType:
        """The sampler type this class stands for."""
        return SamplerType.GAUSSIAN


@dataclasses.dataclass(frozen=True)
class MultiRangeUniformSettings(ParameterRandomizationSettings):
    """A value drawn uniformly from one of several intervals (picked in proportion to their lengths)."""

    intervals: tuple[tuple[float, float], ...] = ((0.0, 1.0),)
    """The intervals, each (min, max) with min <= max."""

    def __post_init__(self) -> None:
        if not self.intervals:
            raise ConfigError("the multirangeuniform sampler needs at least one interval [min, max]")
        for interval in self.intervals:
            if len(interval) != 2:
                raise ConfigError(f"the sampling interval {list(interval)} must contain exactly two values, [min, max]")
            if interval[0] > interval[1]:
                raise ConfigError(
                    f"in the sampling interval {list(interval)} the minimum is greater than the maximum; swap them"
                )

    @property
    def sampler_type(self) -> SamplerType:
        """The sampler type this class stands for."""
        return SamplerType.MULTIRANGEUNIFORM


class MeasureType(str, enum.Enum):
    """What a lesson's completion criteria measure."""

    PROGRESS = "progress"
    """Trainer steps / max_steps."""

    REWARD = "reward"
    """The smoothed mean cumulative reward of the behavior."""


@dataclasses.dataclass(frozen=True)
class CompletionCriteriaSettings:
    """When a curriculum lesson is complete (`completion_criteria`)."""

    behavior: str
    """The behavior whose progress or reward is measured; required."""

    measure: MeasureType = MeasureType.REWARD
    """What is measured."""

    min_lesson_length: int = 0
    """Episodes that must end in the lesson before it can complete."""

    signal_smoothing: bool = True
    """Smooth the reward as 0.25 × previous + 0.75 × the new mean."""

    threshold: float = 0.0
    """Value of the measure at which the lesson completes; in [0, 1] for progress."""

    require_reset: bool = False
    """Send the next lesson's value only at the next environment reset."""

    def __post_init__(self) -> None:
        if self.measure is MeasureType.PROGRESS and not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(
                f"threshold is {self.threshold}, but with measure 'progress' it must be between 0 and 1 "
                "(a fraction of max_steps)"
            )
        if self.min_lesson_length < 0:
            raise ConfigError(f"min_lesson_length is {self.min_lesson_length}: it must be 0 or more")


@dataclasses.dataclass(frozen=True)
class Lesson:
    """One lesson of a curriculum."""

    value: ParameterRandomizationSettings
    """The parameter's value (a sampler; a bare number is a constant) during the lesson."""

    name: str
    """The lesson's name."""

    completion_criteria: CompletionCriteriaSettings | None = None
    """When the lesson is complete; required on every lesson but the last, ignored on the last."""


@dataclasses.dataclass(frozen=True)
class EnvironmentParameterSettings:
    """One environment parameter: a curriculum of lessons (a plain value or sampler is a one-lesson curriculum)."""

    curriculum: tuple[Lesson, ...]
    """The lessons, in order."""

    def __post_init__(self) -> None:
        if not self.curriculum:
            raise ConfigError("a curriculum needs at least one lesson")
        for index, lesson in enumerate(self.curriculum[:-1]):
            if lesson.completion_criteria is None:
                raise ConfigError(
                    f"lesson {index} ({lesson.name!r}) is not the last one but has no completion_criteria; "
                    "add completion_criteria to every lesson but the last"
                )
