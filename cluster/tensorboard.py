"""TensorBoard statistics under ML-Agents' names: one event file per behavior in ``results/<run-id>/<behavior>/``.

Tags are written exactly as given ("Environment/Cumulative Reward", spaces included, as ML-Agents' writer
does); histogram statistics get a ``<key>_hist`` histogram beside their scalar mean; "Is Training" and "Step"
are hidden; the "Hyperparameters" text summary is written once per behavior (spec §5.3).

The events are written synchronously with tensorboardX's event file writer, not its ``SummaryWriter``: that one
rewrites tag names (a space becomes "_") and writes from a background thread, so a flush would not reach the
disk in time. Here each ``write`` is on disk when it returns.

A run whose results go to a URI (``s3://…``) writes its events to a local staging folder
(:meth:`TensorBoardWriter.staged`); :meth:`TensorBoardWriter.upload` copies the event files that grew to
``<results>/<behavior>/`` (each upload replaces the object with the whole file so far) and ``close`` uploads
what is left and removes the staging folder. Each writer's files have names of their own, so a resumed run adds
files beside the old ones and never overwrites them.

tensorboardX is imported on first use, not with this module: it imports torch whenever torch is installed, a
second of CPU that the driver need not spend before Ray starts (:func:`import_tensorboardx_in_background`).
"""

from __future__ import annotations

import importlib
import logging
import math
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rayagents.learner.results_storage import EVENT_FILE_PREFIX, ResultsStorage, StorageError, join

if TYPE_CHECKING:
    from tensorboardX.event_file_writer import EventsWriter
    from tensorboardX.proto.event_pb2 import Event

logger = logging.getLogger(__name__)

HIDDEN_KEYS: frozenset[str] = frozenset({"Is Training", "Step"})
"""Statistics used by the console only, never written to TensorBoard (as ML-Agents does)."""

HISTOGRAM_SUFFIX = "_hist"
"""Appended to a statistic's tag for its histogram (e.g. "Environment/Cumulative Reward_hist")."""

HYPERPARAMETERS_TAG = "Hyperparameters"
"""The tag of the text summary that holds a behavior's settings."""


def import_tensorboardx_in_background() -> threading.Thread:
    """Starts importing what the writer uses of tensorboardX (and the torch it imports) in a thread; returns it.

    The driver starts it before Ray's start, which mostly waits for Ray's processes: where a core is free the import
    then costs the run no time of its own. The first write waits for it, as any import of a module that another
    thread is importing does."""
    thread = threading.Thread(
        target=importlib.import_module, args=("tensorboardX.summary",), name="import-tensorboardX", daemon=False
    )
    thread.start()
    return thread


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


@dataclass(frozen=True)
class EventUpload:
    """Where a staged writer's event files go."""

    storage: ResultsStorage
    """The results storage of the run."""
    write_path: str
    """The run's results location (a URI): each behavior's files go to ``<write_path>/<behavior>/``."""


class TensorBoardWriter:
    """Writes each behavior's statistics to its own event file under ``write_path/<behavior_name>``.

    A behavior's file is opened on its first write. Without ``resume``, the event files left in that folder by
    an earlier run are deleted first (as ML-Agents does); with it they stay and a new file is added. Files this
    writer made are never deleted, even when it is closed and written to again. With ``upload``, ``write_path`` is
    a local staging folder whose event files :meth:`upload` copies to the results storage.
    """

    def __init__(self, write_path: Path, *, resume: bool, upload: EventUpload | None = None) -> None:
        """``write_path`` is the run's results folder (or the staging folder); ``resume`` keeps the old event files."""
        self._write_path = Path(write_path)
        self._resume = resume
        self._upload = upload
        self._writers: dict[str, EventsWriter] = {}
        self._hyperparameters_written: set[str] = set()
        self._cleared: set[str] = set()
        self._uploaded: dict[Path, int] = {}

    @classmethod
    def staged(cls, storage: ResultsStorage, write_path: str, *, resume: bool) -> TensorBoardWriter:
        """A writer for a run whose results are at ``write_path`` (a URI): the events are written to a new local
        staging folder and uploaded by :meth:`upload` and :meth:`close`."""
        staging = Path(tempfile.mkdtemp(prefix="rayagents-events-"))
        return cls(staging, resume=resume, upload=EventUpload(storage=storage, write_path=write_path))

    @property
    def staging_folder(self) -> Path | None:
        """The local folder the events are written to before they are uploaded; None when they are written in
        place."""
        return self._write_path if self._upload is not None else None

    def upload(self) -> list[str]:
        """Copies each event file that grew since its last upload to the results storage; returns the locations
        written (none for a writer that writes in place). Raises StorageError; what failed is tried again next
        time."""
        if self._upload is None:
            return []
        written = []
        for path in sorted(self._write_path.glob(f"*/{EVENT_FILE_PREFIX}*")):
            size = path.stat().st_size
            if self._uploaded.get(path) == size:
                continue
            location = join(self._upload.write_path, path.parent.name, path.name)
            self._upload.storage.upload_file(path, location)
            self._uploaded[path] = size
            written.append(location)
        return written

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
        from tensorboardX.proto.event_pb2 import Event
        from tensorboardX.proto.summary_pb2 import Summary
        from tensorboardX.summary import make_histogram

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
        from tensorboardX.proto.event_pb2 import Event
        from tensorboardX.proto.plugin_text_pb2 import TextPluginData
        from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata
        from tensorboardX.proto.tensor_pb2 import TensorProto
        from tensorboardX.proto.tensor_shape_pb2 import TensorShapeProto

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
        """Flushes and closes every behavior's event file; a later write opens a new file. A staged writer then
        uploads what is left and removes its staging folder; when the upload fails the folder stays (and a log
        message names it)."""
        writers, self._writers = self._writers, {}
        for writer in writers.values():
            writer.close()
        if self._upload is None:
            return
        try:
            self.upload()
        except StorageError as error:
            logger.error("the TensorBoard events stay in %s: they could not be uploaded: %s", self._write_path, error)
            return
        shutil.rmtree(self._write_path, ignore_errors=True)  # the staging folder, made for this writer
        self._uploaded.clear()

    def _writer(self, behavior_name: str) -> EventsWriter:
        """The behavior's open event file writer, opened (and the folder prepared) on first use."""
        writer = self._writers.get(behavior_name)
        if writer is None:
            from tensorboardX.event_file_writer import EventsWriter

            logdir = self.logdir(behavior_name)
            logdir.mkdir(parents=True, exist_ok=True)
            if not self._resume and behavior_name not in self._cleared:
                ResultsStorage(str(logdir)).delete_event_files(str(logdir))
            self._cleared.add(behavior_name)
            # A unique suffix: a writer opened in the same second as an earlier one must not overwrite its file.
            suffix = f".{os.getpid()}.{uuid.uuid4().hex[:8]}"
            writer = EventsWriter(str(logdir / "events"), filename_suffix=suffix)
            self._writers[behavior_name] = writer
        return writer


def read_events(folder: Path) -> list[Event]:
    """Every event of every event file in ``folder``, file by file in name order (records are length-prefixed
    and checksummed; the checksums are not verified)."""
    from tensorboardX.proto.event_pb2 import Event

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
