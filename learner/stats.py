"""Statistics gathered between two summaries, averaged ML-Agents' way (every value added counts once)."""

from __future__ import annotations

from typing import Iterable

import numpy as np


class StatsAccumulator:
    """Values per statistic name since the last :meth:`take_means`; a summary is each name's mean.

    As ML-Agents' ``StatsReporter`` with the AVERAGE aggregation: a per-episode statistic adds one value per
    episode, a per-update one one value per update, and the summary is the plain mean of what was added. A name
    that got no value in the period is absent from the summary.
    """

    def __init__(self) -> None:
        self._values: dict[str, list[float]] = {}

    def add(self, name: str, value: float) -> None:
        """Adds one value of statistic ``name``."""
        self._values.setdefault(name, []).append(float(value))

    def extend(self, name: str, values: Iterable[float]) -> None:
        """Adds several values of statistic ``name``."""
        values = [float(v) for v in values]
        if values:
            self._values.setdefault(name, []).extend(values)

    def count(self, name: str) -> int:
        """How many values of ``name`` were added since the last summary."""
        return len(self._values.get(name, ()))

    def take_means(self) -> dict[str, float]:
        """The mean of each statistic since the last call, which forgets them."""
        means = {name: float(np.mean(values)) for name, values in self._values.items() if values}
        self._values = {}
        return means
