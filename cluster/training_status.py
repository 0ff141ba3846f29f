"""``run_logs/training_status.json``: what a resumed run needs back (checkpoint lists, lesson numbers), spec §6.

The file has ML-Agents' layout, so either trainer can read the other's::

    {"<behavior>": {"checkpoints": [{"steps", "file_path", "reward", "creation_time",
                                     "auxillary_file_paths"}, ...],
                    "final_checkpoint": {...}, "elo": 1200.0},
     "<env_param>": {"lesson_num": 2},
     "metadata": {"stats_format_version": "0.3.0", "mlagents_version": "1.1.0", "torch_version": "..."}}

Keys this module does not know (e.g. ``elo``) are kept as they were loaded and written back on save.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from importlib import metadata as package_metadata
from pathlib import Path

from rayagents.configs.errors import ConfigError
from rayagents.learner.checkpoints import CheckpointRecord
from rayagents.learner.results_storage import ResultsStorage, redact

TRAINING_STATUS_FILE = "training_status.json"
"""The file name, in the run's run_logs folder."""

STATS_FORMAT_VERSION = "0.3.0"
"""The version of the file's layout (ML-Agents' STATUS_FORMAT_VERSION)."""

MLAGENTS_VERSION = "1.1.0"
"""The ML-Agents release (mlagents 1.1.0, Release 22) whose format this file follows."""

METADATA_KEY = "metadata"
"""The top-level key of the versions block."""

CHECKPOINTS_KEY = "checkpoints"
"""A behavior's list of kept checkpoints, oldest first."""

FINAL_CHECKPOINT_KEY = "final_checkpoint"
"""A behavior's final model (the ``<behavior>.onnx`` at the top of the run's folder)."""

ELO_KEY = "elo"
"""A self-play behavior's ELO when its latest checkpoint was written, as ML-Agents' ghost trainer saves it."""

LESSON_KEY = "lesson_num"
"""An environment parameter's current curriculum lesson."""


def torch_version() -> str:
    """The installed torch version (``torch.__version__``), read without importing torch."""
    try:
        return package_metadata.version("torch")
    except package_metadata.PackageNotFoundError:
        return "not installed"


def record_to_dict(record: CheckpointRecord) -> dict[str, object]:
    """A checkpoint record as its JSON object, with ML-Agents' key names (``auxillary_file_paths``)."""
    return {
        "steps": int(record.steps),
        "file_path": str(record.file_path),
        "reward": None if record.reward is None else float(record.reward),
        "creation_time": float(record.creation_time),
        "auxillary_file_paths": [str(path) for path in record.auxillary_file_paths],
    }


def record_from_dict(entry: Mapping[str, object]) -> CheckpointRecord:
    """A checkpoint record from its JSON object; raises ValueError (saying what is wrong) on a bad one."""
    if not isinstance(entry, Mapping):
        raise ValueError(f"a checkpoint entry is {type(entry).__name__}, not an object")
    missing = [key for key in ("steps", "file_path", "creation_time") if key not in entry]
    if missing:
        raise ValueError(f"a checkpoint entry lacks {', '.join(missing)}")
    steps, file_path, reward, created = entry["steps"], entry["file_path"], entry.get("reward"), entry["creation_time"]
    auxiliary = entry.get("auxillary_file_paths", [])
    if not isinstance(steps, (int, float)) or isinstance(steps, bool):
        raise ValueError(f"a checkpoint's steps is {steps!r}, not a number")
    if not isinstance(file_path, str):
        raise ValueError(f"a checkpoint's file_path is {file_path!r}, not a string")
    if reward is not None and (not isinstance(reward, (int, float)) or isinstance(reward, bool)):
        raise ValueError(f"a checkpoint's reward is {reward!r}, not a number or null")
    if not isinstance(created, (int, float)) or isinstance(created, bool):
        raise ValueError(f"a checkpoint's creation_time is {created!r}, not a number")
    if not isinstance(auxiliary, list) or not all(isinstance(path, str) for path in auxiliary):
        raise ValueError(f"a checkpoint's auxillary_file_paths is {auxiliary!r}, not a list of strings")
    return CheckpointRecord(
        steps=int(steps),
        file_path=file_path,
        reward=None if reward is None else float(reward),
        creation_time=float(created),
        auxillary_file_paths=tuple(auxiliary),
    )


class TrainingStatus:
    """The content of training_status.json: per behavior its checkpoints, per parameter its lesson, and more.

    Entries are kept as plain JSON data by top-level key (a behavior or environment parameter name), so keys
    written by other code or by ML-Agents survive a load and a save.
    """

    def __init__(self) -> None:
        """An empty status: no behavior, no lesson."""
        self._entries: dict[str, dict[str, object]] = {}

    @property
    def metadata(self) -> dict[str, str]:
        """The versions block that save() writes: this format's version, ML-Agents' release, torch's version."""
        return {
            "stats_format_version": STATS_FORMAT_VERSION,
            "mlagents_version": MLAGENTS_VERSION,
            "torch_version": torch_version(),
        }

    @classmethod
    def load(cls, path: str | Path, storage: ResultsStorage | None = None) -> TrainingStatus:
        """The status saved at ``path``; empty when there is no file. With ``storage``, ``path`` is a location of
        it (a path, or a URI: ``s3://bucket/results/run/run_logs/training_status.json``).

        A file that is not valid JSON, or not in this layout, raises ConfigError. A file written by another
        version (format, ML-Agents or torch) only warns, as ML-Agents does.
        """
        status = cls()
        location = str(path)
        storage = storage if storage is not None else ResultsStorage(location)
        if not storage.exists(location):
            return status
        data = storage.read_bytes(location)
        path = redact(location)  # what the messages call it
        remedy = "delete it to start this run's status afresh, or train under a new --run-id"
        try:
            loaded = json.loads(data.decode("utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ConfigError(f"the training status file {path} is not valid JSON ({error}): {remedy}") from error
        if not isinstance(loaded, dict):
            raise ConfigError(f"the training status file {path} does not hold a JSON object: {remedy}")
        for key, entry in loaded.items():
            if not isinstance(entry, dict):
                raise ConfigError(
                    f"the training status file {path} has {key!r} = {entry!r}, not an object: {remedy}"
                )
            if key == METADATA_KEY:
                continue
            try:
                if CHECKPOINTS_KEY in entry:
                    listed = entry[CHECKPOINTS_KEY]
                    if not isinstance(listed, list):
                        raise ValueError(f"{CHECKPOINTS_KEY} is {listed!r}, not a list")
                    for item in listed:
                        record_from_dict(item)
                if FINAL_CHECKPOINT_KEY in entry and entry[FINAL_CHECKPOINT_KEY] is not None:
                    record_from_dict(entry[FINAL_CHECKPOINT_KEY])
                if LESSON_KEY in entry and (
                    not isinstance(entry[LESSON_KEY], int) or isinstance(entry[LESSON_KEY], bool)
                ):
                    raise ValueError(f"{LESSON_KEY} is {entry[LESSON_KEY]!r}, not an integer")
            except ValueError as error:
                raise ConfigError(f"the training status file {path}, entry {key!r}: {error}: {remedy}") from error
            status._entries[key] = dict(entry)
        status._warn_on_version_mismatch(path, loaded.get(METADATA_KEY))
        return status

    def _warn_on_version_mismatch(self, path: str | Path, saved: object) -> None:
        """Warns when the saved metadata names other versions than this run's."""
        current = self.metadata
        if not isinstance(saved, dict):
            warnings.warn(f"the training status file {path} has no metadata; it may come from another version")
            return
        for key, value in current.items():
            if saved.get(key) != value:
                warnings.warn(
                    f"the training status file {path} was written with {key} {saved.get(key)!r}, this run uses "
                    f"{value!r}; resuming anyway"
                )

    def save(self, path: str | Path, storage: ResultsStorage | None = None) -> None:
        """Writes the status to ``path`` (atomically), with this run's metadata; with ``storage``, ``path`` is a
        location of it (a path, or a URI)."""
        document: dict[str, object] = {key: dict(entry) for key, entry in self._entries.items()}
        document[METADATA_KEY] = self.metadata
        (storage if storage is not None else ResultsStorage(str(path))).write_text(
            str(path), json.dumps(document, indent=4) + "\n"
        )

    def behavior_names(self) -> list[str]:
        """The names that have a checkpoints list (the behaviors of the run)."""
        return [key for key, entry in self._entries.items() if CHECKPOINTS_KEY in entry]

    def set_checkpoints(self, behavior_name: str, records: Sequence[CheckpointRecord]) -> None:
        """Sets a behavior's kept checkpoints, oldest first (what its trainer rotates)."""
        self._entry(behavior_name)[CHECKPOINTS_KEY] = [record_to_dict(record) for record in records]

    def checkpoints(self, behavior_name: str) -> list[CheckpointRecord]:
        """A behavior's kept checkpoints, oldest first; empty when it has none."""
        listed = self._entries.get(behavior_name, {}).get(CHECKPOINTS_KEY, [])
        assert isinstance(listed, list)
        return [record_from_dict(entry) for entry in listed]

    def set_final(self, behavior_name: str, record: CheckpointRecord) -> None:
        """Sets a behavior's final model record (its ``file_path`` is the ``<behavior>.onnx`` of the run)."""
        self._entry(behavior_name)[FINAL_CHECKPOINT_KEY] = record_to_dict(record)

    def final(self, behavior_name: str) -> CheckpointRecord | None:
        """A behavior's final model record, or None when none was set."""
        entry = self._entries.get(behavior_name, {}).get(FINAL_CHECKPOINT_KEY)
        if entry is None:
            return None
        assert isinstance(entry, Mapping)
        return record_from_dict(entry)

    def set_lesson(self, parameter: str, lesson: int) -> None:
        """Sets the current curriculum lesson of an environment parameter."""
        self._entry(parameter)[LESSON_KEY] = int(lesson)

    def lesson(self, parameter: str) -> int | None:
        """The saved curriculum lesson of an environment parameter, or None when none was saved."""
        value = self._entries.get(parameter, {}).get(LESSON_KEY)
        return value if isinstance(value, int) else None

    def set_value(self, key: str, name: str, value: object) -> None:
        """Sets any JSON value under a top-level key (a behavior or parameter name), e.g. a behavior's ``elo``."""
        self._entry(key)[name] = value

    def value(self, key: str, name: str) -> object | None:
        """A value set under a top-level key, or None."""
        return self._entries.get(key, {}).get(name)

    def _entry(self, key: str) -> dict[str, object]:
        """The entry of a top-level key, created empty; ``metadata`` is reserved."""
        if key == METADATA_KEY:
            raise ValueError(f"{METADATA_KEY!r} is reserved for the versions block; it cannot name an entry")
        return self._entries.setdefault(key, {})
