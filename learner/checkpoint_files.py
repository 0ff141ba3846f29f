"""The checkpoint files of a behavior in its results folder, and their rotation (spec §6).

Every ``checkpoint_interval`` steps a trainer writes ``<behavior>-<step>.pt`` and ``<behavior>-<step>.onnx``
into ``results/<run-id>/<behavior>/`` and overwrites ``checkpoint.pt`` there (what ``--resume`` reads). Only the
newest ``keep_checkpoints`` pairs stay; older ones are deleted (``keep_checkpoints: 0`` keeps every one, as in
ML-Agents' ``ModelCheckpointManager``). A :class:`CheckpointRecord` is one entry of ``training_status.json``'s
``checkpoints`` list.

For a run whose results go to a URI the record's paths are URIs (``s3://bucket/results/run/Walker/Walker-90.onnx``),
and rotation deletes the files from that storage.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from rayagents.learner.results_storage import ResultsStorage, StorageError, redact

logger = logging.getLogger(__name__)

LATEST_CHECKPOINT = "checkpoint.pt"
"""The file name of a behavior's latest checkpoint, overwritten at each checkpoint."""


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
