"""The end of a sweep: each trial's figures, the best trial, the summary table.

The best trial has the highest mean reward of any of its summaries; between trials that reached the same reward,
the one that reached it in fewer steps is better (on CartPole most good trials reach the maximum of 500).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich.table import Table


@dataclass(frozen=True)
class TrialRecord:
    """What one trial did."""

    index: int
    """The trial's number (its run is ``<run-id>_<index>``)."""
    run_id: str
    """Its run's id: the results folder under ``--results-dir``."""
    values: Mapping[str, Any]
    """Its sample: searched key -> value."""
    history: tuple[tuple[int, float], ...]
    """(step, mean reward) of each summary it reported, in order."""
    error: str | None = None
    """Why the trial failed; None when it did not."""
    finished: bool = True
    """The trial ended (ran to its end, was stopped early or failed); False when the sweep was interrupted before
    (``--resume`` carries it on)."""

    @property
    def best_reward(self) -> float | None:
        """The highest mean reward of its summaries; None without one."""
        rewards = [reward for _, reward in self.history if not math.isnan(reward)]
        return max(rewards) if rewards else None

    @property
    def best_step(self) -> int | None:
        """The first step its best reward was reached at."""
        best = self.best_reward
        return None if best is None else next(step for step, reward in self.history if reward == best)

    @property
    def last_step(self) -> int:
        """The step of its last summary (0 without one)."""
        return self.history[-1][0] if self.history else 0

    def first_reaching(self, reward: float) -> int | None:
        """The first step whose mean reward reached ``reward``; None if none did."""
        return next((step for step, value in self.history if value >= reward), None)


def ranked(records: Sequence[TrialRecord]) -> list[TrialRecord]:
    """The trials best first: highest best reward, then fewest steps to it, then trial number; those without a
    reward last."""

    def key(record: TrialRecord) -> tuple[float, int, int]:
        best = record.best_reward
        return (-best if best is not None else math.inf, record.best_step or 0, record.index)

    return sorted(records, key=key)


def best_trial(records: Sequence[TrialRecord]) -> TrialRecord | None:
    """The best trial; None when no trial reported a reward."""
    order = ranked(records)
    return order[0] if order and order[0].best_reward is not None else None


def format_value(value: Any) -> str:
    """A sampled value for the table: floats to 4 significant digits."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def summary_table(records: Sequence[TrialRecord], keys: Sequence[str], max_steps: int, top: int) -> Table:
    """The ``top`` best trials: run, sampled values (each key by its last part), best reward and its step, the
    steps trained and how the trial ended."""
    table = Table(title=f"best {min(top, len(records))} of {len(records)} trials")
    table.add_column("Trial (run)")
    for key in keys:
        table.add_column(key.rsplit(".", 1)[-1], justify="right")
    table.add_column("Best reward", justify="right")
    table.add_column("At step", justify="right")
    table.add_column("Steps", justify="right")
    table.add_column("Ended")
    for record in ranked(records)[:top]:
        best = record.best_reward
        if record.error is not None:
            ended = "error"
        elif not record.finished:
            ended = "unfinished"
        elif record.last_step >= max_steps:
            ended = "max_steps"
        else:
            ended = "stopped early"
        table.add_row(
            record.run_id,
            *(format_value(record.values.get(key)) for key in keys),
            "—" if best is None else f"{best:.3f}",
            "—" if record.best_step is None else f"{record.best_step:,}",
            f"{record.last_step:,}",
            ended,
        )
    return table
