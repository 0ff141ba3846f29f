"""Curriculum lessons of the environment parameters: which lesson each parameter is in, and when it moves on.

The driver's part of ML-Agents' ``EnvironmentParameterManager`` (spec §5.2, §8.1), without I/O: the driver feeds a
:class:`Curriculum` each progress poll's figures (each behavior's step, max_steps and the episode returns that ended
since the last poll) and acts on the :class:`LessonChange` it returns (console line, ``training_status.json``, new
values to the EnvActors, a reset when asked).

A lesson moves on exactly as ``EnvironmentParameterManager.update_lessons`` with
``CompletionCriteriaSettings.need_increment`` decides it, once per :meth:`Curriculum.update` call:

- Only a lesson with ``completion_criteria`` and a lesson after it can complete (never past the last lesson), and
  only once its ``behavior`` has a trainer (its figures were seen).
- Nothing happens until the behavior's reward buffer holds ``min_lesson_length`` returns.
- ``progress``: the behavior's step / its max_steps; the lesson completes when it is above ``threshold``.
- ``reward``: the mean of the behavior's reward buffer (its last returns, at most the largest ``min_lesson_length``
  of the lessons that measure it, at least 1); with ``signal_smoothing`` the measure is ``0.25 × smoothing +
  0.75 × mean``, and it becomes the parameter's smoothing (kept across lessons, 0 at the start); the lesson
  completes when the measure is above ``threshold``.
- After a call in which any lesson changed, every behavior's reward buffer is cleared.
- A completed lesson whose criteria have ``require_reset`` asks for an environment reset.

ML-Agents calls ``update_lessons`` after every environment step; the driver calls :meth:`Curriculum.update` once per
progress poll (every quarter second while a lesson can still change), so the smoothing moves once per poll.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from rayagents.configs import (
    CompletionCriteriaSettings,
    ConstantSettings,
    EnvironmentParameterSettings,
    GaussianSettings,
    MeasureType,
    MultiRangeUniformSettings,
    ParameterRandomizationSettings,
    UniformSettings,
)

LESSON_NUMBER_TAG = "Environment/Lesson Number/"
"""The TensorBoard tag prefix of a parameter's lesson number (``Environment/Lesson Number/<parameter>``)."""


@dataclass(frozen=True)
class LessonChange:
    """A parameter that moved on to its next lesson."""

    parameter: str
    """The environment parameter's name."""
    lesson: int
    """The number of the lesson it is in now (0 is the first)."""
    name: str
    """The name of that lesson."""
    value: ParameterRandomizationSettings
    """Its value in that lesson (a constant or a sampler)."""
    require_reset: bool
    """The completed lesson's criteria asked for an environment reset."""


@dataclass(frozen=True)
class BehaviorFigures:
    """What one progress poll says of a behavior's trainer."""

    step: int
    """The trainer's step."""
    max_steps: int
    """Its ``max_steps``."""
    returns: tuple[float, ...] = ()
    """The returns of its episodes that ended since the previous poll, in order."""


def describe_value(value: ParameterRandomizationSettings) -> str:
    """A lesson's value as ML-Agents prints it (the ``__str__`` of its sampler settings): ``Float: value=1.0``,
    ``Uniform sampler: min=0.0, max=1.0``, ``Gaussian sampler: mean=1.0, stddev=1.0``, ``MultiRangeUniform sampler:
    intervals=[...]``."""
    if isinstance(value, ConstantSettings):
        return f"Float: value={value.value}"
    if isinstance(value, UniformSettings):
        return f"Uniform sampler: min={value.min_value}, max={value.max_value}"
    if isinstance(value, GaussianSettings):
        return f"Gaussian sampler: mean={value.mean}, stddev={value.st_dev}"
    if isinstance(value, MultiRangeUniformSettings):
        return f"MultiRangeUniform sampler: intervals={[list(interval) for interval in value.intervals]}"
    return repr(value)


def lesson_line(parameter: str, lesson_name: str, value: ParameterRandomizationSettings) -> str:
    """The console line ML-Agents (Release 22, ``log_current_lesson``) prints at the start for each parameter and
    for a parameter whose lesson changed."""
    return f"Parameter '{parameter}' is in lesson '{lesson_name}' and has value '{describe_value(value)}'."


def reward_buffer_size(parameters: Mapping[str, EnvironmentParameterSettings], behavior: str) -> int:
    """How many of ``behavior``'s latest returns its reward buffer keeps: the largest ``min_lesson_length`` of the
    lessons that measure it, at least 1 (ML-Agents' ``get_minimum_reward_buffer_size``)."""
    sizes = [
        lesson.completion_criteria.min_lesson_length
        for setting in parameters.values()
        for lesson in setting.curriculum
        if lesson.completion_criteria is not None and lesson.completion_criteria.behavior == behavior
    ]
    return max([1, *sizes])


class Curriculum:
    """Each environment parameter's current lesson, and the lesson changes the training's figures call for.

    Arguments:
        parameters: the run's ``environment_parameters`` (a plain value or sampler is a one-lesson curriculum).
        lessons: each parameter's lesson to start in (a resumed run's, from ``training_status.json``); a
            parameter missing here starts in its first lesson. A number past the parameter's last lesson is a
            ValueError.
    """

    def __init__(
        self, parameters: Mapping[str, EnvironmentParameterSettings], lessons: Mapping[str, int] | None = None
    ) -> None:
        self._parameters = dict(parameters)
        self._lessons: dict[str, int] = {}
        for key, setting in self._parameters.items():
            lesson = int((lessons or {}).get(key, 0))
            if not 0 <= lesson < len(setting.curriculum):
                raise ValueError(
                    f"environment parameter {key!r} has {len(setting.curriculum)} lessons; lesson {lesson} does "
                    "not exist"
                )
            self._lessons[key] = lesson
        self._smoothing: dict[str, float] = {key: 0.0 for key in self._parameters}
        self._buffers: dict[str, deque[float]] = {}

    # ---- state ---------------------------------------------------------------------------------------------------
    @property
    def parameters(self) -> Mapping[str, EnvironmentParameterSettings]:
        """The environment parameters, by name."""
        return dict(self._parameters)

    @property
    def lessons(self) -> dict[str, int]:
        """Each parameter's current lesson number."""
        return dict(self._lessons)

    def lesson(self, parameter: str) -> int:
        """``parameter``'s current lesson number."""
        return self._lessons[parameter]

    def lesson_name(self, parameter: str) -> str:
        """The name of ``parameter``'s current lesson."""
        return self._parameters[parameter].curriculum[self._lessons[parameter]].name

    def value(self, parameter: str) -> ParameterRandomizationSettings:
        """``parameter``'s value (constant or sampler) in its current lesson."""
        return self._parameters[parameter].curriculum[self._lessons[parameter]].value

    @property
    def in_last_lessons(self) -> bool:
        """Every parameter is in its last lesson: no lesson can change any more."""
        return all(self._lessons[key] == len(setting.curriculum) - 1 for key, setting in self._parameters.items())

    def smoothing(self, parameter: str) -> float:
        """``parameter``'s smoothed reward measure (0 until a smoothed reward criterion was evaluated)."""
        return self._smoothing[parameter]

    def reward_buffer(self, behavior: str) -> tuple[float, ...]:
        """``behavior``'s reward buffer: its latest returns since the last lesson change, oldest first."""
        return tuple(self._buffers.get(behavior, ()))

    def lesson_scalars(self) -> dict[str, float]:
        """``Environment/Lesson Number/<parameter>`` of every parameter, as written with each summary."""
        return {LESSON_NUMBER_TAG + key: float(lesson) for key, lesson in self._lessons.items()}

    def lines(self) -> list[str]:
        """A console line per parameter saying its current lesson and value (what ML-Agents logs at the start)."""
        return [lesson_line(key, self.lesson_name(key), self.value(key)) for key in self._parameters]

    # ---- the figures ---------------------------------------------------------------------------------------------
    def add_returns(self, behavior: str, returns: Iterable[float]) -> None:
        """Adds the returns of ``behavior``'s episodes that ended, in order, to its reward buffer."""
        buffer = self._buffers.get(behavior)
        if buffer is None:
            buffer = self._buffers[behavior] = deque(maxlen=reward_buffer_size(self._parameters, behavior))
        buffer.extend(float(value) for value in returns)

    def update(self, figures: Mapping[str, BehaviorFigures]) -> tuple[LessonChange, ...]:
        """Takes one poll's figures (by behavior name: every behavior that has a trainer) and moves each parameter
        whose lesson is complete on to its next lesson; returns the changes, in the parameters' order. After any
        change every reward buffer is cleared."""
        for behavior, figure in figures.items():
            self.add_returns(behavior, figure.returns)
        changes: list[LessonChange] = []
        for key, setting in self._parameters.items():
            number = self._lessons[key]
            lesson = setting.curriculum[number]
            criteria = lesson.completion_criteria
            if criteria is None or number + 1 >= len(setting.curriculum):
                continue
            figure = figures.get(criteria.behavior)
            if figure is None:
                continue
            progress = float(figure.step) / float(max(figure.max_steps, 1))
            if self._need_increment(key, criteria, progress, self.reward_buffer(criteria.behavior)):
                self._lessons[key] = number + 1
                following = setting.curriculum[number + 1]
                changes.append(LessonChange(key, number + 1, following.name, following.value, criteria.require_reset))
        if changes:
            for buffer in self._buffers.values():
                buffer.clear()
        return tuple(changes)

    def _need_increment(
        self, parameter: str, criteria: CompletionCriteriaSettings, progress: float, rewards: tuple[float, ...]
    ) -> bool:
        """ML-Agents' ``CompletionCriteriaSettings.need_increment`` for ``parameter``'s current lesson; keeps the
        parameter's new smoothing."""
        if len(rewards) < criteria.min_lesson_length:
            return False
        if criteria.measure is MeasureType.PROGRESS:
            return progress > criteria.threshold
        if len(rewards) < 1:
            return False
        value = sum(rewards) / len(rewards)
        if math.isnan(value):
            return False
        if criteria.signal_smoothing:
            value = 0.25 * self._smoothing[parameter] + 0.75 * value
            self._smoothing[parameter] = value
        return value > criteria.threshold


__all__ = [
    "LESSON_NUMBER_TAG",
    "BehaviorFigures",
    "Curriculum",
    "LessonChange",
    "describe_value",
    "lesson_line",
    "reward_buffer_size",
]
