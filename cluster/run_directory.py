"""The run's results folder: checking it against --resume/--force/--initialize-from, and writing files into it.

The rules are mlagents-learn's: an existing run id is only reused with ``--resume`` (carry on) or ``--force``
(start over in the same folder); ``--resume`` needs the folder; ``--initialize-from`` needs its run's folder.
They hold for a folder of this machine and for a URI (``s3://bucket/results``) alike: both are read through a
:class:`ResultsStorage`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from rayagents.configs.errors import ConfigError
from rayagents.configs.export import dump_yaml
from rayagents.configs.run import CheckpointSettings, RunOptions
from rayagents.learner.results_storage import (
    ResultsStorage,
    RunLocations,
    StorageError,
    join,
    redact,
    run_locations,
)

CONFIGURATION_FILE = "configuration.yaml"
"""The file in the run's folder that holds the final, merged run options."""

PLAYER_LOGS_FOLDER = "rayagents-player-logs"
"""The folder under each node's temporary folder that holds the player logs of runs whose results go to a URI."""


def open_results_storage(locations: RunLocations) -> ResultsStorage:
    """The results storage of a run, checked (a URI's scheme, its bucket, the credentials to reach it); a
    ConfigError naming ``--results-dir`` and what to do when it cannot be used."""
    try:
        storage = ResultsStorage(locations.results_dir)
        storage.check()
    except StorageError as error:
        raise ConfigError(f"--results-dir {redact(locations.results_dir)} cannot be used: {error}") from error
    return storage


def player_log_folder(locations: RunLocations, run_id: str) -> Path:
    """Where the players write ``Player-<n>.log``: the run's ``run_logs`` folder for a local run; for a run whose
    results go to a URI, ``<temporary folder>/rayagents-player-logs/<run-id>/run_logs`` on each player's own node (the logs
    are not uploaded)."""
    if locations.is_uri:
        return Path(tempfile.gettempdir()) / PLAYER_LOGS_FOLDER / run_id / "run_logs"
    return Path(locations.run_logs)


def prepare_run_directory(checkpoint: CheckpointSettings) -> Path:
    """Checks the run's folder (a folder of this machine) against the flags, makes it and its run_logs folder;
    returns write_path. The rules: :func:`prepare_run_location`."""
    locations = run_locations(checkpoint.results_dir, checkpoint.run_id, checkpoint.initialize_from)
    prepare_run_location(checkpoint, locations, ResultsStorage(locations.results_dir))
    return Path(locations.write_path)


def prepare_run_location(checkpoint: CheckpointSettings, locations: RunLocations, storage: ResultsStorage) -> None:
    """Checks the run's results (a folder or a URI) against the flags, and makes its folders where folders exist.

    - write_path exists with content, and neither resume nor force: ConfigError (use --resume, --force or
      another --run-id).
    - resume (or the deprecated load_model) and write_path missing: ConfigError (nothing to resume).
    - initialize_from names a run whose folder is missing: ConfigError.
    - force on an existing folder keeps the folder and its other files (they are overwritten in place, as
      ML-Agents does) but deletes the old TensorBoard event files and the old models and checkpoints under it
      (a learner restarted mid-run restores the newest checkpoint it finds), unless resume is also set.

    Inference runs (``checkpoint.inference``) follow the same rules: running a trained run's policies needs
    ``--resume`` as in mlagents-learn, so there is no separate parameter for it. An error of the storage itself
    (a missing bucket, no credentials) is a ConfigError too, naming the location and what to check.
    """
    try:
        _check_and_make(checkpoint, locations, storage)
    except StorageError as error:
        raise ConfigError(f"--results-dir {redact(locations.results_dir)}: {error}") from error


def _check_and_make(checkpoint: CheckpointSettings, locations: RunLocations, storage: ResultsStorage) -> None:
    """:func:`prepare_run_location`, raising the storage's errors as they come."""
    write_path = locations.write_path
    shown = redact(write_path)
    resume = checkpoint.resume or checkpoint.load_model
    if storage.is_file(write_path):
        raise ConfigError(
            f"the results folder of run {checkpoint.run_id!r}, {shown}, is a file: remove it or choose "
            "another --run-id (or --results-dir)"
        )
    has_content = storage.has_content(write_path)
    if has_content and not resume and not checkpoint.force:
        raise ConfigError(
            f"previous data of run {checkpoint.run_id!r} was found in {shown}: use --resume to continue "
            "that run, --force to overwrite it, or choose another --run-id"
        )
    if resume and not storage.is_dir(write_path):
        raise ConfigError(
            f"run {checkpoint.run_id!r} cannot be resumed: its results folder {shown} does not exist; "
            "check --run-id and --results-dir, or train a new run without --resume"
        )
    init_path = locations.init_path
    if init_path is not None and not storage.is_dir(init_path):
        raise ConfigError(
            f"cannot initialize from run {checkpoint.initialize_from!r}: its results folder {redact(init_path)} "
            "does not exist; check --initialize-from and --results-dir, and that run's checkpoints were saved"
        )
    if has_content and checkpoint.force and not resume:
        storage.delete_event_files(write_path)
        storage.delete_model_files(write_path)  # a restarted learner must never restore the overwritten run
    storage.make_dirs(write_path)
    storage.make_dirs(locations.run_logs)


def save_configuration(storage: ResultsStorage, write_path: str, options: RunOptions) -> str:
    """Writes the run options to ``<write_path>/configuration.yaml`` through ``storage`` (atomically); returns its
    location (a path, or a URI)."""
    location = join(write_path, CONFIGURATION_FILE)
    storage.write_text(location, dump_yaml(options))
    return location
