"""``run_logs/timers.json``: the run's gauges (last, min and max of each summary statistic) in ML-Agents' layout.

ML-Agents writes a tree of timers with gauges at its root; rayagents times nothing of the tree, so the root
carries the whole run's duration, the gauges and the metadata::

    {"name": "root", "gauges": {"3DBall.Environment.CumulativeReward.mean": {"value", "min", "max", "count"}},
     "metadata": {...}, "total": 812.4, "count": 1, "self": 812.4, "children": {}}
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Sequence
from importlib import metadata as package_metadata
from pathlib import Path

from rayagents import __version__
from rayagents.learner.results_storage import ResultsStorage

TIMERS_FILE = "timers.json"
"""The file name, in the run's run_logs folder."""

TIMER_FORMAT_VERSION = "0.1.0"
"""The version of the file's layout (ML-Agents' TIMER_FORMAT_VERSION)."""

MEAN_SUFFIX = ".mean"
"""Appended to each gauge name in the file: the values recorded are summary-period means."""


@dataclasses.dataclass
class Gauge:
    """One gauge: the values a statistic took over the run."""

    value: float
    """The last value recorded."""
    min: float
    """The smallest value recorded."""
    max: float
    """The largest value recorded."""
    count: int
    """How many values were recorded."""


class GaugeRecorder:
    """Gauges by name (``<behavior>.<key>``, see tensorboard.gauges_from_summary), updated once per summary."""

    def __init__(self) -> None:
        """No gauge yet."""
        self._gauges: dict[str, Gauge] = {}

    def record(self, name: str, value: float) -> None:
        """Records a value of the gauge ``name``: it becomes the last value and updates min, max and count."""
        value = float(value)
        gauge = self._gauges.get(name)
        if gauge is None:
            self._gauges[name] = Gauge(value=value, min=value, max=value, count=1)
            return
        gauge.value = value
        gauge.min = min(gauge.min, value)
        gauge.max = max(gauge.max, value)
        gauge.count += 1

    def gauge(self, name: str) -> Gauge | None:
        """A copy of the gauge ``name``, or None when nothing was recorded under it."""
        gauge = self._gauges.get(name)
        return None if gauge is None else dataclasses.replace(gauge)

    def to_json_dict(self) -> dict[str, dict[str, float | int]]:
        """The ``gauges`` object of timers.json: ``{"<name>.mean": {"value", "min", "max", "count"}}``, by name."""
        return {
            name + MEAN_SUFFIX: {"value": gauge.value, "min": gauge.min, "max": gauge.max, "count": gauge.count}
            for name, gauge in sorted(self._gauges.items())
        }


def _version_of(package: str) -> str:
    """The installed version of ``package``, or "not installed"."""
    try:
        return package_metadata.version(package)
    except package_metadata.PackageNotFoundError:
        return "not installed"


def timers_document(
    gauges: GaugeRecorder, *, start_time: float, end_time: float, command_line: Sequence[str]
) -> dict[str, object]:
    """The content of timers.json for a run from ``start_time`` to ``end_time`` (seconds since the epoch)."""
    total = max(0.0, end_time - start_time)
    return {
        "name": "root",
        "gauges": gauges.to_json_dict(),
        "metadata": {
            "timer_format_version": TIMER_FORMAT_VERSION,
            "start_time_seconds": str(int(start_time)),
            "end_time_seconds": str(int(end_time)),
            "python_version": sys.version,
            "command_line_arguments": " ".join(command_line),
            "rayagents_version": __version__,
            "torch_version": _version_of("torch"),
        },
        "total": total,
        "count": 1,
        "self": total,
        "children": {},
    }


def write_timers(
    path: str | Path,
    gauges: GaugeRecorder,
    *,
    start_time: float,
    end_time: float,
    command_line: Sequence[str],
    storage: ResultsStorage | None = None,
) -> None:
    """Writes timers.json to ``path`` (atomically); see timers_document. With ``storage``, ``path`` is a location of
    it (a path, or a URI)."""
    document = timers_document(gauges, start_time=start_time, end_time=end_time, command_line=command_line)
    (storage if storage is not None else ResultsStorage(str(path))).write_text(
        str(path), json.dumps(document, indent=4) + "\n"
    )
