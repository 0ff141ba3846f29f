"""Hyperparameter schedules over training: ``constant`` or ``linear`` decay to a floor at ``max_steps``."""

from __future__ import annotations

from dataclasses import dataclass

from rayagents.configs.hyperparameters import ScheduleType

LEARNING_RATE_FLOOR = 1e-10
"""Where a linear learning-rate schedule ends."""
EPSILON_FLOOR = 0.1
"""Where a linear epsilon schedule ends."""
BETA_FLOOR = 1e-5
"""Where a linear beta schedule ends."""


@dataclass(frozen=True)
class DecayedValue:
    """A hyperparameter's value as a function of the trainer's step (agent decisions so far)."""

    schedule: ScheduleType
    """constant or linear."""
    initial_value: float
    """The configured value, at step 0."""
    min_value: float
    """The value at and after ``max_step`` (linear only)."""
    max_step: int
    """The trainer's ``max_steps``."""

    def value(self, step: int) -> float:
        """The value at ``step``: ``initial`` when constant, else linear from ``initial`` to ``min_value``."""
        if self.schedule == ScheduleType.CONSTANT:
            return self.initial_value
        if self.schedule != ScheduleType.LINEAR:
            raise ValueError(f"unknown schedule {self.schedule!r}; use constant or linear")
        if self.max_step <= 0:
            return self.min_value
        progress = min(max(step, 0), self.max_step) / self.max_step
        return (self.initial_value - self.min_value) * (1.0 - progress) + self.min_value
