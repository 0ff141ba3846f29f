"""TensorBoard statistics under ML-Agents' names: one event file per behavior in ``results/<run-id>/<behavior>/``.

Tags are written exactly as given ("Environment/Cumulative Reward", spaces included, as ML-Agents' writer
does); histogram statistics get a ``<key>_hist`` histogram beside their scalar mean; "Is Training" and "Step"
are hidden; the "Hyperparameters" text summary is written once per behavior (spec §5.3).

The events are written synchronously with tensorboardX's event file writer, not its ``SummaryWriter``: that one
rewrites tag names (a space becomes "_") and writes from a background thread, so a flush would not reach the
disk in time. Here each ``write`` is on disk when it returns.
"""

from __future__ import annotations

import math
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from tensorboardX.event_file_writer import EventsWriter
from tensorboardX.proto.event_pb2 import Event
from tensorboardX.proto.plugin_text_pb2 import TextPluginData
from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata
from tensorboardX.proto.tensor_pb2 import TensorProto
from tensorboardX.proto.tensor_shape_pb2 import TensorShapeProto
from tensorboardX.summary import make_histogram

from rayagents.cluster.run_directory import delete_event_files

HIDDEN_KEYS: frozenset[str] = frozenset({"Is Training", "Step"})
"""Statistics used by the console only, never written to TensorBoard (as ML-Agents does)."""

HISTOGRAM_SUFFIX = "_hist"
"""Appended to a statistic's tag for its histogram (e.g. "Environment/Cumulative Reward_hist")."""

HYPERPARAMETERS_TAG = "Hyperparameters"
"""The tag of the text summary that holds a behavior's settings."""


def hyperparameters_markdown(text: str) -> str:
    """The settings text as a Markdown code block (each line indented four spaces), so TensorBoard's text
    panel keeps its line breaks and indentation."""
    return "\n".join("    " + line for line in text.rstrip("\n").splitlines())


def gauges_from_summary(behavior_name: str, scalars: Mapping[str, float]) -> dict[str, float]:
    """The summary's statistics as timers.json gauge names: ``<behavior>.<key>`` with "/" turned into "." and
    spaces removed (ML-Agents' GaugeWriter), e.g. "3DBall.Environment.CumulativeReward"."""
    return {
        f"{behavior_name}.{key}".replace("/", ".").replace(" ", ""): float(value) for key, value in scalars.items()
    }


class TensorBoardWriter:
    """Writes each behavior's statistics to its own event file under ``write_path/<behavior_name>``.

    A behavior's file is opened on its first write. Without ``resume``, the event files left in that folder by
    an earlier run are deleted first (as ML-Agents does); with it they stay and a new file is added. Files this
    writer made are never deleted, even when it is closed and written to again.
    """

    def __init__(self, write_path: Path, *, resume: bool) -> None:
        """``write_path`` is the run's results folder; ``resume`` keeps the old event files."""
        self._write_path = Path(write_path)
        self._resume = resume
        self._writers: dict[str, EventsWriter] = {}
        self._hyperparameters_written: set[str] = set()
        self._cleared: set[str] = set()

    def logdir(self, behavior_name: str) -> Path:
        """The folder of a behavior's event files."""
        return self._write_path / behavior_name

    def write(
        self,
        behavior_name: str,
        step: int,
        scalars: Mapping[str, float],
        histograms: Mapping[str, Sequence[float]] | None = None,
    ) -> None:
        """Writes one summary period of a behavior at ``step``, then flushes it to disk.

        Each scalar goes under its key as the tag; each non-empty histogram under ``<key>_hist`` (values that
        are not finite are left out of it). Hidden keys ("Is Training", "Step") are skipped.
        """
        values = [
            Summary.Value(tag=key, simple_value=float(value))
            for key, value in scalars.items()
            if key not in HIDDEN_KEYS
        ]
        for key, samples in (histograms or {}).items():
            if key in HIDDEN_KEYS:
                continue
            finite = np.asarray([sample for sample in samples if math.isfinite(sample)], dtype=np.float64)
            if finite.size == 0:
                continue
            histogram = make_histogram(finite, bins="auto")
            values.append(Summary.Value(tag=key + HISTOGRAM_SUFFIX, histo=histogram))
        writer = self._writer(behavior_name)
        if values:
            writer.write_event(Event(wall_time=time.time(), step=int(step), summary=Summary(value=values)))
        writer.flush()

    def write_hyperparameters(self, behavior_name: str, text: str) -> None:
        """Writes a behavior's settings (e.g. its YAML) as the "Hyperparameters" text summary, once per behavior;
        later calls for the same behavior do nothing."""
        if behavior_name in self._hyperparameters_written:
            return
        metadata = SummaryMetadata(
            plugin_data=SummaryMetadata.PluginData(
                plugin_name="text", content=TextPluginData(version=0).SerializeToString()
            )
        )
        tensor = TensorProto(
            dtype="DT_STRING",
            string_val=[hyperparameters_markdown(text).encode("utf-8")],
            tensor_shape=TensorShapeProto(dim=[TensorShapeProto.Dim(size=1)]),
        )
        summary = Summary(value=[Summary.Value(tag=HYPERPARAMETERS_TAG, metadata=metadata, tensor=tensor)])
        writer = self._writer(behavior_name)
        writer.write_event(Event(wall_time=time.time(), step=0, summary=summary))
        writer.flush()
        self._hyperparameters_written.add(behavior_name)

    def close(self) -> None:
        """Flushes and closes every behavior's event file; a later write opens a new file."""
        writers, self._writers = self._writers, {}
        for writer in writers.values():
            writer.close()

    def _writer(self, behavior_name: str) -> EventsWriter:
        """The behavior's open event file writer, opened (and the folder prepared) on first use."""
        writer = self._writers.get(behavior_name)
        if writer is None:
            logdir = self.logdir(behavior_name)
            logdir.mkdir(parents=True, exist_ok=True)
            if not self._resume and behavior_name not in self._cleared:
                delete_event_files(logdir)
            self._cleared.add(behavior_name)
            # A unique suffix: a writer opened in the same second as an earlier one must not overwrite its file.
            suffix = f".{os.getpid()}.{uuid.uuid4().hex[:8]}"
            writer = EventsWriter(str(logdir / "events"), filename_suffix=suffix)
            self._writers[behavior_name] = writer
        return writer


def read_events(folder: Path) -> list[Event]:
    """Every event of every event file in ``folder``, file by file in name order (records are length-prefixed
    and checksummed; the checksums are not verified)."""
    events: list[Event] = []
    for path in sorted(Path(folder).glob("events.out.tfevents.*")):
        data = path.read_bytes()
        offset = 0
        while offset + 12 <= len(data):
            length = int.from_bytes(data[offset : offset + 8], "little")
            start = offset + 12  # the length, then the length's checksum
            event = Event()
            event.ParseFromString(data[start : start + length])
            events.append(event)
            offset = start + length + 4  # the data's checksum
    return events


def read_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """The scalar statistics written to ``folder`` (a behavior's results folder), by tag: (step, value) pairs."""
    found: dict[str, list[tuple[int, float]]] = {}
    for event in read_events(folder):
        for value in event.summary.value:
            if value.HasField("simple_value"):
                found.setdefault(value.tag, []).append((int(event.step), float(value.simple_value)))
    return found
