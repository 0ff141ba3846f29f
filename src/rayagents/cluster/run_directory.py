"""The run's results folder: checking it against --resume/--force/--initialize-from, and writing files into it.

The rules are mlagents-learn's: an existing run id is only reused with ``--resume`` (carry on) or ``--force``
(start over in the same folder); ``--resume`` needs the folder; ``--initialize-from`` needs its run's folder.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from rayagents.configs.errors import ConfigError
from rayagents.configs.export import dump_yaml
from rayagents.configs.run import CheckpointSettings, RunOptions

CONFIGURATION_FILE = "configuration.yaml"
"""The file in the run's folder that holds the final, merged run options."""

EVENT_FILE_PATTERN = "events.out.tfevents.*"
"""The names of TensorBoard event files, deleted from a folder reused with --force (unless --resume)."""


def prepare_run_directory(checkpoint: CheckpointSettings) -> Path:
    """Checks the run's folder against the flags, makes it and its run_logs folder; returns write_path.

    - write_path exists with content, and neither resume nor force: ConfigError (use --resume, --force or
      another --run-id).
    - resume (or the deprecated load_model) and write_path missing: ConfigError (nothing to resume).
    - initialize_from names a run whose folder is missing: ConfigError.
    - force on an existing folder keeps the folder and its files (they are overwritten in place, as ML-Agents
      does) but deletes the old TensorBoard event files under it, unless resume is also set.

    Inference runs (``checkpoint.inference``) follow the same rules: running a trained run's policies needs
    ``--resume`` as in mlagents-learn, so there is no separate parameter for it.
    """
    write_path = Path(checkpoint.write_path)
    resume = checkpoint.resume or checkpoint.load_model
    if write_path.exists() and not write_path.is_dir():
        raise ConfigError(
            f"the results folder of run {checkpoint.run_id!r}, {write_path}, is a file: remove it or choose "
            "another --run-id (or --results-dir)"
        )
    has_content = write_path.is_dir() and any(write_path.iterdir())
    if has_content and not resume and not checkpoint.force:
        raise ConfigError(
            f"previous data of run {checkpoint.run_id!r} was found in {write_path}: use --resume to continue "
            "that run, --force to overwrite it, or choose another --run-id"
        )
    if resume and not write_path.is_dir():
        raise ConfigError(
            f"run {checkpoint.run_id!r} cannot be resumed: its results folder {write_path} does not exist; "
            "check --run-id and --results-dir, or train a new run without --resume"
        )
    init_path = checkpoint.maybe_init_path
    if init_path is not None and not Path(init_path).is_dir():
        raise ConfigError(
            f"cannot initialize from run {checkpoint.initialize_from!r}: its results folder {init_path} does "
            "not exist; check --initialize-from and --results-dir, and that run's checkpoints were saved"
        )
    if has_content and checkpoint.force and not resume:
        delete_event_files(write_path)
    write_path.mkdir(parents=True, exist_ok=True)
    Path(checkpoint.run_logs_dir).mkdir(parents=True, exist_ok=True)
    return write_path


def delete_event_files(folder: Path) -> list[Path]:
    """Deletes every TensorBoard event file under ``folder`` (any depth); returns the paths deleted."""
    deleted: list[Path] = []
    for path in sorted(folder.rglob(EVENT_FILE_PATTERN)):
        if path.is_file():
            path.unlink()
            deleted.append(path)
    return deleted


def write_text_atomic(path: Path, text: str) -> None:
    """Writes ``text`` (UTF-8) to ``path`` so that a reader sees the old file or the new one, never a part.

    The text goes to a temporary file in the same folder, is synced to disk, then replaces ``path``. The
    folder is created when missing.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_configuration(write_path: Path, options: RunOptions) -> Path:
    """Writes the run options to ``write_path/configuration.yaml`` (atomically); returns that path."""
    path = Path(write_path) / CONFIGURATION_FILE
    write_text_atomic(path, dump_yaml(options))
    return path
