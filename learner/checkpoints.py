"""A behavior's checkpoints in the run's results: the one writer and the one reader (spec §6).

Every ``checkpoint_interval`` steps a trainer writes ``<behavior>-<step>.pt`` (its modules, in the format of
:mod:`checkpoint_format`) and ``<behavior>-<step>.onnx`` into ``<results>/<behavior>/`` and overwrites
``checkpoint.pt`` there (what ``--resume`` reads). Only the newest ``keep_checkpoints`` pairs stay; older ones are
deleted (``keep_checkpoints: 0`` keeps every one, as in ML-Agents' ``ModelCheckpointManager``). A
:class:`CheckpointRecord` is one entry of ``training_status.json``'s ``checkpoints`` list.

:class:`CheckpointStore` does this for a folder of the learner's node and for a URI (``s3://…``) alike: every file
is written atomically, the data first (``.onnx``, ``.pt``) and the pointer last (``checkpoint.pt``, a copy of the
``.pt``), so that ``checkpoint.pt`` never names a step whose files are not there; for a URI the files are made in a
scratch folder and uploaded, and a checkpoint to restore is downloaded first. Reading is lenient like ML-Agents'
(a module that does not fit keeps its fresh initialization, with a warning), and a ``checkpoint.pt`` that cannot be
read at all is named in a warning and replaced by the newest readable ``<behavior>-<step>.pt``.

The module itself loads no torch: the driver keeps the records and lists the checkpoints a lost learner left; the
``.pt`` format (:mod:`checkpoint_format`, torch) is imported by the first write or read.
"""

from __future__ import annotations

import dataclasses
import logging
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rayagents.learner.results_storage import ResultsStorage, StorageError, join, redact

if TYPE_CHECKING:
    from rayagents.learner.checkpoint_format import Saveable

logger = logging.getLogger(__name__)

LATEST_CHECKPOINT = "checkpoint.pt"
"""The file name of a behavior's latest checkpoint, overwritten at each checkpoint."""
REPLAY_BUFFER = "last_replay_buffer.pt"
"""The file name of a behavior's saved replay buffer (SAC's ``save_replay_buffer``), overwritten at each
checkpoint: one copy, not one per step (ML-Agents' ``last_replay_buffer.hdf5``)."""


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read at all (damaged, cut short, or not a checkpoint): names the file."""


@dataclass(frozen=True)
class CheckpointRecord:
    """One checkpoint, with the fields of a ``training_status.json`` entry."""

    steps: int
    """The trainer's step when it was written."""
    file_path: str
    """The ``.onnx`` model: a path, or a URI for a run whose results go to a URI."""
    reward: float | None
    """The mean episode return since the last policy update; None when no episode ended since."""
    creation_time: float
    """When it was written (seconds since the epoch)."""
    auxillary_file_paths: tuple[str, ...]
    """The other files of the checkpoint: the ``.pt`` (ML-Agents' spelling of the key)."""

    @property
    def locations(self) -> tuple[str, ...]:
        """Every file of the checkpoint, as written in the record (paths, or URIs)."""
        return (self.file_path, *self.auxillary_file_paths)


def checkpoint_stem(directory: str | Path, behavior_name: str, step: int) -> Path:
    """``<directory>/<behavior>-<step>``: add ``.pt`` or ``.onnx``. ``behavior_name`` is without ``?team=``."""
    return Path(directory) / f"{behavior_name}-{step}"


def rotate(
    records: Sequence[CheckpointRecord], keep_checkpoints: int, storage: ResultsStorage
) -> list[CheckpointRecord]:
    """Deletes the files of the oldest records beyond the newest ``keep_checkpoints``; returns the records kept.

    ``keep_checkpoints`` 0 keeps every record. The files are locations of ``storage`` (paths, or URIs). A file
    already gone is not an error (a user may clean up by hand), nor is one that cannot be deleted (it is logged
    and left).
    """
    kept = list(records)
    if keep_checkpoints <= 0:
        return kept
    while len(kept) > keep_checkpoints:
        oldest = kept.pop(0)
        for location in oldest.locations:
            try:
                if not storage.delete_file(location):
                    logger.info("checkpoint file %s was already removed", redact(location))
            except StorageError as error:
                logger.warning("checkpoint file %s could not be deleted: %s", redact(location), error)
    return kept


ExportModel = Callable[[Path], Path]
"""Writes the behavior's ``.onnx`` model to the given local path and returns it."""


class CheckpointStore:
    """The checkpoints of one behavior under ``<root>/<behavior>/`` of a results storage (a folder or a URI).

    Arguments:
        storage: the run's results storage.
        folder: the behavior's folder in it (``<write_path>/<behavior>``), a path or a URI.
        behavior_name: the behavior name (without ``?team=``): the files' stem.
    """

    def __init__(self, storage: ResultsStorage, folder: str, behavior_name: str) -> None:
        self.storage = storage
        self.folder = folder
        self.behavior_name = behavior_name

    @property
    def latest(self) -> str:
        """The location of ``checkpoint.pt``."""
        return join(self.folder, LATEST_CHECKPOINT)

    @property
    def replay_buffer(self) -> str:
        """The location of ``last_replay_buffer.pt``."""
        return join(self.folder, REPLAY_BUFFER)

    # ---- writing -------------------------------------------------------------------------------------------------
    def write(
        self,
        step: int,
        modules: Mapping[str, Saveable],
        export: ExportModel,
        reward: float | None,
        buffers: Mapping[str, Saveable] | None = None,
    ) -> CheckpointRecord:
        """Writes ``<behavior>-<step>.onnx``, then ``.pt``, then (``buffers``, a replay buffer)
        ``last_replay_buffer.pt``, then ``checkpoint.pt``; returns the new record. A learner killed in between leaves at most a model without its
        ``.pt``, never a ``.pt`` without its model."""
        from rayagents.learner.checkpoint_format import save_checkpoint  # torch, which the driver never loads

        with self._local_folder() as local:
            stem = checkpoint_stem(local, self.behavior_name, step)
            onnx_file = export(stem.with_suffix(".onnx"))
            pt_file = save_checkpoint(stem.with_suffix(".pt"), modules)
            pt_path, onnx_path = str(pt_file), str(onnx_file)
            if self.storage.is_uri:
                pt_path, onnx_path = join(self.folder, pt_file.name), join(self.folder, onnx_file.name)
                self.storage.upload_file(onnx_file, onnx_path)
                self.storage.upload_file(pt_file, pt_path)
            if buffers:
                buffer_file = save_checkpoint(Path(local) / REPLAY_BUFFER, buffers)
                if self.storage.is_uri:
                    self.storage.upload_file(buffer_file, self.replay_buffer)
            self.storage.upload_file(pt_file, self.latest)
        return CheckpointRecord(
            steps=step, file_path=onnx_path, reward=reward, creation_time=time.time(), auxillary_file_paths=(pt_path,)
        )

    @contextmanager
    def _local_folder(self) -> Iterator[str]:
        """The behavior's folder itself, or for a URI a scratch folder removed afterwards."""
        if not self.storage.is_uri:
            yield self.folder
            return
        with tempfile.TemporaryDirectory(prefix="rayagents-checkpoint-") as scratch:
            yield scratch

    def write_final_model(self, record: CheckpointRecord, location: str) -> CheckpointRecord:
        """Copies the record's ``.onnx`` to ``location`` (``<write_path>/<behavior>.onnx``) atomically; returns the
        record of the final model."""
        self.storage.copy_file(record.file_path, location)
        return dataclasses.replace(record, file_path=location)

    # ---- reading -------------------------------------------------------------------------------------------------
    def reconcile(self, records: Sequence[CheckpointRecord]) -> list[CheckpointRecord]:
        """``records`` as the storage holds them now, oldest first: the ones whose files are all still there, and
        a record (its reward unknown) for each newer ``<behavior>-<step>.pt`` with its ``.onnx`` that none names.
        For a list kept by someone who may have missed the last checkpoints and rotations (a lost learner's)."""
        kept = [record for record in records if all(self.storage.is_file(location) for location in record.locations)]
        newest = max((record.steps for record in records), default=-1)
        for step, pt in sorted(self._numbered()):
            onnx = pt[: -len(".pt")] + ".onnx"
            if step > newest and self.storage.is_file(onnx):
                kept.append(CheckpointRecord(step, onnx, None, time.time(), (pt,)))
        return kept

    def has_checkpoint(self) -> bool:
        """Whether ``checkpoint.pt`` or any ``<behavior>-<step>.pt`` is there."""
        return self.storage.is_file(self.latest) or bool(self._numbered())

    def restore(
        self,
        modules: Mapping[str, Saveable],
        *,
        reset_global_step: bool,
        buffers: Mapping[str, Saveable] | None = None,
    ) -> list[str]:
        """Loads the latest readable checkpoint into ``modules``, and ``last_replay_buffer.pt`` into ``buffers`` when
        asked; returns the warnings (also logged).

        ``checkpoint.pt`` first; when it is missing or cannot be read, the newest ``<behavior>-<step>.pt`` that can,
        with a warning naming the file that could not. ``reset_global_step`` (``--initialize-from``) keeps the step
        as it is. FileNotFoundError, saying what to do, when there is no checkpoint at all; CheckpointError naming
        every file tried when none can be read. A replay buffer that is missing or cannot be read starts empty,
        with a warning.
        """
        warnings = self._restore_modules(modules, reset_global_step)
        if buffers:
            warnings.extend(self._restore_buffers(buffers))
        return warnings

    def _restore_buffers(self, buffers: Mapping[str, Saveable]) -> list[str]:
        """Loads ``last_replay_buffer.pt`` into ``buffers``; a file that is missing, unreadable or does not fit is a
        warning, and the buffer starts empty."""
        if not self.storage.is_file(self.replay_buffer):
            problems = [
                f"{redact(self.replay_buffer)} does not exist (save_replay_buffer was off, or no checkpoint saved it)"
            ]
        else:
            try:
                problems = self._load(self.replay_buffer, buffers, reset_global_step=False)
            except CheckpointError as error:
                problems = [str(error)]
        return [f"{problem}; the replay buffer starts empty" for problem in problems]

    def _restore_modules(self, modules: Mapping[str, Saveable], reset_global_step: bool) -> list[str]:
        """Loads the latest readable checkpoint into ``modules`` (see :meth:`restore`)."""
        candidates = ([self.latest] if self.storage.is_file(self.latest) else []) + [loc for _, loc in self._numbered()]
        if not candidates:
            raise FileNotFoundError(
                f"behavior {self.behavior_name!r} has no checkpoint in {redact(self.folder)} to "
                f"{'initialize' if reset_global_step else 'resume'} from: start a new run (another --run-id) "
                "or check --results-dir and the run id"
            )
        problems: list[str] = []
        for location in candidates:
            try:
                warnings = self._load(location, modules, reset_global_step)
            except CheckpointError as error:
                problems.append(str(error))
                continue
            if problems:
                fallback = (
                    f"{'; '.join(problems)}; restored from {redact(location)} instead (the steps after it are lost)"
                )
                logger.warning("%s", fallback)
                warnings.insert(0, fallback)
            return warnings
        raise CheckpointError(
            f"no checkpoint of behavior {self.behavior_name!r} in {redact(self.folder)} can be read: "
            f"{'; '.join(problems)}. Start a new run (another --run-id), or --initialize-from a run whose "
            "checkpoints are intact"
        )

    def _numbered(self) -> list[tuple[int, str]]:
        """The ``<behavior>-<step>.pt`` files of the folder, newest step first."""
        pattern = re.compile(rf"{re.escape(self.behavior_name)}-(\d+)\.pt")
        found = []
        for location in self.storage.list_files(self.folder):
            match = pattern.fullmatch(location.rstrip("/").rsplit("/", 1)[-1])
            if match:
                found.append((int(match.group(1)), location))
        return sorted(found, reverse=True)

    def _load(self, location: str, modules: Mapping[str, Saveable], reset_global_step: bool) -> list[str]:
        """Loads one checkpoint file (downloaded to a scratch folder first when it is not a local file)."""
        from rayagents.learner.checkpoint_format import load_checkpoint  # torch, which the driver never loads

        local = self.storage.local_path(location)
        if local is not None:
            return load_checkpoint(local, modules, reset_global_step)
        with tempfile.TemporaryDirectory(prefix="rayagents-restore-") as scratch:
            downloaded = self.storage.download_file(location, Path(scratch) / location.rstrip("/").rsplit("/", 1)[-1])
            return load_checkpoint(downloaded, modules, reset_global_step, source_name=redact(location))
