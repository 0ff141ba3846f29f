"""Results storage: a run's files under a local folder or a URI (``s3://``, ``gs://``, ``file://``, ``hdfs://``…).

``--results-dir`` is either a plain path (a folder on this node, as ML-Agents has it) or a URI that ``pyarrow.fs``
reads (``FileSystem.from_uri``). Every location in a run is a string: a path for a plain folder, a URI for a URI
run. A URI stays a URI: it is never passed through :class:`pathlib.Path` (which would collapse ``s3://`` into
``s3:/``), and :func:`join` adds names to its path and keeps its query (``?endpoint_override=…&scheme=http``)
at the end.

Writes are atomic on every backend, so that a reader (``--resume``, TensorBoard, a user copying a model) sees the
old file or the new one, never a part:

- a local folder (a plain path or ``file://``): a temporary name in the same folder, ``fsync``, then a rename;
- an object store (S3, GCS, Azure): one object is written by one PUT (or one completed multipart upload), which
  is atomic per object; there is no rename;
- any other filesystem (HDFS…): a temporary name in the same folder, then a move.

A :class:`ResultsStorage` is opened on one root location (the filesystem is made once) and reads and writes the
locations under it.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from pyarrow import fs as pafs

URI_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
"""What makes a location a URI: a scheme followed by ``://`` (a plain path never has one)."""

EVENT_FILE_PREFIX = "events.out.tfevents."
"""The start of a TensorBoard event file's name."""

OBJECT_STORES: frozenset[str] = frozenset({"s3", "gcs", "abfs"})
"""``pyarrow.fs`` filesystem kinds (``type_name``) that store objects: no folders, one PUT per file."""

SECRET_QUERY_KEYS: frozenset[str] = frozenset({"access_key", "secret_key", "session_token"})
"""URI query keys whose values are never shown in a message."""

SAFE_NAME_CHARACTERS = "-_.~!$&'()*+,;=:@"
"""Characters kept as they are when a name is added to a URI (the others are percent-encoded)."""

COPY_CHUNK = 1 << 20
"""Bytes read and written at a time when a file is copied between filesystems."""


class StorageError(OSError):
    """Results storage could not be opened, read or written; the message names the location and what to do."""


def is_uri(location: str) -> bool:
    """Whether ``location`` is a URI (``scheme://…``) rather than a plain path."""
    return bool(URI_PATTERN.match(location))


def split_query(location: str) -> tuple[str, str]:
    """A location split into its base and its query (``"?…"``, with any fragment; ``""`` when it has none).

    Only URIs have a query: a plain path is returned whole (a ``?`` is a valid character of a file name)."""
    if not is_uri(location):
        return location, ""
    cut = min((i for i in (location.find("?"), location.find("#")) if i >= 0), default=-1)
    return (location, "") if cut < 0 else (location[:cut], location[cut:])


def _strip_slashes(base: str) -> str:
    """``base`` without trailing slashes, never cutting into its ``scheme://``."""
    while base.endswith("/") and not base.endswith("://"):
        base = base[:-1]
    return base


def join(base: str, *names: str) -> str:
    """``base`` with ``names`` added to its path: ``os.path.join`` for a plain path; for a URI each name is added
    after a ``/`` (percent-encoded where a URI needs it) and the query stays at the end, e.g.
    ``join("s3://b/results?region=x", "run", "a.pt") == "s3://b/results/run/a.pt?region=x"``."""
    if not is_uri(base):
        return os.path.join(base, *names)
    path, query = split_query(base)
    path = _strip_slashes(path)
    for name in names:
        for part in name.split("/"):
            if part:
                path = f"{path}/{quote(part, safe=SAFE_NAME_CHARACTERS)}"
    return path + query


def absolute_location(location: str) -> str:
    """A location as the cluster's nodes use it (``--results-dir``, a ``demo_path``): a URI as it was given, a plain
    path made absolute from this process's working folder (``~`` expanded)."""
    return location if is_uri(location) else str(Path(location).expanduser().resolve())


def redact(location: str) -> str:
    """``location`` as shown in messages: a URI's password and secret query values replaced by ``***``."""
    if not is_uri(location):
        return location
    parts = urlsplit(location)
    netloc = parts.netloc
    if "@" in netloc:
        user, host = netloc.rsplit("@", 1)
        if ":" in user:
            netloc = f"{user.split(':', 1)[0]}:***@{host}"
    pairs = []
    for pair in parts.query.split("&") if parts.query else []:
        key = pair.split("=", 1)[0]
        pairs.append(f"{key}=***" if key.lower() in SECRET_QUERY_KEYS else pair)
    if netloc == parts.netloc and "&".join(pairs) == parts.query:
        return location
    return urlunsplit((parts.scheme, netloc, parts.path, "&".join(pairs), parts.fragment))


def credentials_hint(location: str) -> str:
    """What to check when the storage of ``location`` cannot be used (by its scheme)."""
    scheme = location.split("://", 1)[0].lower() if is_uri(location) else ""
    if scheme == "s3":
        return (
            "check the bucket name and that the bucket exists, and give this machine S3 credentials: "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) in the environment, AWS_PROFILE, "
            "or an instance role; for an S3-compatible server add ?endpoint_override=HOST:PORT (and &scheme=http) "
            "to the URI"
        )
    if scheme in ("gs", "gcs"):
        return (
            "check the bucket name and that the bucket exists, and give this machine Google Cloud credentials: "
            "GOOGLE_APPLICATION_CREDENTIALS naming a service account key file, or a node service account"
        )
    if scheme == "file":
        return "check the path and its permissions (file:// URIs are absolute: file:///home/me/results)"
    if scheme:
        return (
            "check the URI: its scheme must be one pyarrow.fs reads (s3://, gs://, file://, hdfs://, abfs://), "
            "with that filesystem's credentials set on this machine"
        )
    return "check the path and its permissions"


@dataclass(frozen=True)
class RunLocations:
    """Where one run's results are, as locations (paths, or URIs for a URI ``--results-dir``)."""

    results_dir: str
    """``--results-dir``: an absolute path, or a URI."""
    write_path: str
    """The run's results: ``<results_dir>/<run-id>``."""
    run_logs: str
    """``<write_path>/run_logs``: ``training_status.json``, ``timers.json`` (and the player logs of a local run)."""
    init_path: str | None
    """``<results_dir>/<initialize-from>``, or None without ``--initialize-from``."""

    @property
    def is_uri(self) -> bool:
        """Whether the results go to a URI (rather than to a folder of this node)."""
        return is_uri(self.results_dir)


def run_locations(results_dir: str, run_id: str, initialize_from: str | None = None) -> RunLocations:
    """The locations of run ``run_id`` under ``results_dir`` (made absolute when it is a plain path)."""
    root = absolute_location(results_dir)
    write_path = join(root, run_id)
    return RunLocations(
        results_dir=root,
        write_path=write_path,
        run_logs=join(write_path, "run_logs"),
        init_path=None if initialize_from is None else join(root, initialize_from),
    )


def new_file_mode() -> int:
    """The mode a new file gets here: ``0o666`` less the process's umask (read without changing it; 0o644 where it
    cannot be read)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o644


def write_local_atomic(path: str | os.PathLike[str], write: Callable[[BinaryIO], None]) -> None:
    """Writes a local file through ``write(handle)`` so that a reader sees the old file or the new one.

    The data goes to a temporary file in the same folder (made when missing), is synced to disk, then replaces
    ``path``; on any error the temporary file is removed and ``path`` is left as it was."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        os.fchmod(descriptor, new_file_mode())  # mkstemp makes it owner-only; a results file is as any other file
        with os.fdopen(descriptor, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _copy_stream(source: BinaryIO, target: BinaryIO) -> None:
    """Copies ``source`` to ``target`` chunk by chunk."""
    while True:
        chunk = source.read(COPY_CHUNK)
        if not chunk:
            return
        target.write(chunk)


class ResultsStorage:
    """The files under one root location: a plain path (this node's disk) or a URI that ``pyarrow.fs`` reads.

    Every method takes a location string under the root (made with :meth:`join` or :func:`join`); a location of
    another root raises StorageError. Errors of the filesystem are raised as StorageError naming the location and
    what to check.

    Arguments:
        root: a path or a URI; the filesystem is made from it once (for a URI, with the options of its query).
    """

    def __init__(self, root: str) -> None:
        self.root = root
        self._uri = is_uri(root)
        if self._uri:
            try:
                filesystem, path = pafs.FileSystem.from_uri(root)
            except Exception as error:  # pyarrow raises ArrowInvalid, OSError and others for a URI it cannot use
                raise StorageError(
                    f"cannot open the results storage {redact(root)}: {error}; {credentials_hint(root)}"
                ) from error
            self._filesystem: pafs.FileSystem = filesystem
            self._root_path = path
            self._root_base = _strip_slashes(split_query(root)[0])
        else:
            self._filesystem = pafs.LocalFileSystem()
            self._root_path = os.path.abspath(root)
            self._root_base = self._root_path

    # ---- what it is ----------------------------------------------------------------------------------------------
    @property
    def is_uri(self) -> bool:
        """Whether the root is a URI."""
        return self._uri

    @property
    def is_local(self) -> bool:
        """Whether the files are on this node's disk (a plain path, or a ``file://`` URI)."""
        return isinstance(self._filesystem, pafs.LocalFileSystem)

    @property
    def is_object_store(self) -> bool:
        """Whether the files are objects of a bucket (S3, GCS, Azure): one PUT per file, no folders."""
        return self._filesystem.type_name in OBJECT_STORES

    def join(self, *names: str) -> str:
        """The location of ``names`` under the root (see :func:`join`)."""
        return join(self.root, *names)

    def local_path(self, location: str) -> str | None:
        """The path on this node's disk of a location of a local storage; None for other storages."""
        return self._path(location) if self.is_local else None

    def check(self) -> None:
        """Raises StorageError (saying what to do) when the storage cannot be used: an unknown or missing bucket,
        no or wrong credentials, a root that is a file. Reads only."""
        if self.is_object_store:
            bucket = self._root_path.split("/", 1)[0]
            if not bucket:
                raise StorageError(f"the results storage {redact(self.root)} names no bucket: give s3://BUCKET/FOLDER")
            with self._errors("reach", self.root):
                found = self._filesystem.get_file_info(bucket)
            if found.type == pafs.FileType.NotFound:
                raise StorageError(
                    f"the bucket {bucket!r} of the results storage {redact(self.root)} does not exist (or these "
                    f"credentials cannot see it): create the bucket first; {credentials_hint(self.root)}"
                )
        with self._errors("reach", self.root):
            found = self._filesystem.get_file_info(self._root_path)
        if found.type == pafs.FileType.File:
            raise StorageError(f"the results storage {redact(self.root)} is a file, not a folder: choose another one")

    # ---- reading -------------------------------------------------------------------------------------------------
    def _info(self, location: str) -> pafs.FileInfo:
        with self._errors("look up", location):
            return self._filesystem.get_file_info(self._path(location))

    def exists(self, location: str) -> bool:
        """Whether a file or a folder is at ``location`` (on an object store: an object, or objects under it)."""
        return self._info(location).type != pafs.FileType.NotFound

    def is_dir(self, location: str) -> bool:
        """Whether ``location`` is a folder (on an object store: objects have names under it)."""
        return self._info(location).type == pafs.FileType.Directory

    def is_file(self, location: str) -> bool:
        """Whether ``location`` is a file."""
        return self._info(location).type == pafs.FileType.File

    def has_content(self, location: str) -> bool:
        """Whether the folder ``location`` holds anything: any entry on a local disk (as ``os.scandir`` sees it),
        any file at any depth elsewhere (an object store keeps empty folder markers, which do not count)."""
        if not self.is_dir(location):
            return False
        path = self._path(location)
        if self.is_local:
            with self._errors("list", location), os.scandir(path) as entries:
                return any(True for _ in entries)
        return any(True for _ in self.list_files(location))

    def list_files(self, location: str) -> Iterator[str]:
        """The locations of every file under the folder ``location`` (any depth); none when it does not exist."""
        selector = pafs.FileSelector(self._path(location), allow_not_found=True, recursive=True)
        with self._errors("list", location):
            infos = self._filesystem.get_file_info(selector)
        for info in sorted(infos, key=lambda found: found.path):
            if info.type == pafs.FileType.File:
                yield self._location(info.path)

    def read_bytes(self, location: str) -> bytes:
        """The content of the file ``location``; FileNotFoundError when there is none."""
        if not self.is_file(location):
            raise FileNotFoundError(f"no file at {redact(location)}")
        with self._errors("read", location), self._filesystem.open_input_stream(self._path(location)) as source:
            return bytes(source.read())

    def download_file(self, location: str, destination: str | os.PathLike[str]) -> Path:
        """Copies the file ``location`` to the local file ``destination`` (its folder made); returns the path."""
        if not self.is_file(location):
            raise FileNotFoundError(f"no file at {redact(location)}")
        target = Path(destination)
        target.parent.mkdir(parents=True, exist_ok=True)
        with self._errors("download", location):
            with self._filesystem.open_input_stream(self._path(location)) as source, open(target, "wb") as handle:
                _copy_stream(source, handle)  # type: ignore[arg-type]
        return target

    # ---- writing -------------------------------------------------------------------------------------------------
    def make_dirs(self, location: str) -> None:
        """Makes the folder ``location`` and its parents; nothing on an object store (names imply folders)."""
        if self.is_object_store:
            return
        with self._errors("make the folder", location):
            self._filesystem.create_dir(self._path(location), recursive=True)

    def write_bytes(self, location: str, data: bytes) -> None:
        """Writes ``data`` to the file ``location`` atomically (see the module's docstring for each backend)."""
        self._write(location, lambda handle: handle.write(data))

    def write_text(self, location: str, text: str) -> None:
        """Writes ``text`` (UTF-8) to the file ``location`` atomically."""
        self.write_bytes(location, text.encode("utf-8"))

    def upload_file(self, source: str | os.PathLike[str], location: str) -> None:
        """Copies the local file ``source`` to ``location`` atomically. To an object store the file is read whole
        first, so that a failure can only come from the upload, which then leaves no object (a stream closed
        after a local read error would complete a partial one)."""
        if self.is_object_store:
            self.write_bytes(location, Path(source).read_bytes())
            return
        with open(source, "rb") as handle:
            self._write(location, lambda target: _copy_stream(handle, target))

    def copy_file(self, source: str, destination: str) -> None:
        """Copies the file ``source`` to ``destination`` (both under the root) atomically: on an object store a
        server-side copy (one object written whole), elsewhere through a temporary name."""
        if not self.is_file(source):
            raise FileNotFoundError(f"no file at {redact(source)}")
        if self.is_object_store:
            with self._errors("copy to", destination):
                self._filesystem.copy_file(self._path(source), self._path(destination))
            return
        with self._errors("read", source), self._filesystem.open_input_stream(self._path(source)) as handle:
            self._write(destination, lambda target: _copy_stream(handle, target))  # type: ignore[arg-type]

    def delete_file(self, location: str) -> bool:
        """Deletes the file ``location``; returns False (and does nothing) when it was not there, or went away
        meanwhile."""
        if not self.is_file(location):
            return False
        try:
            with self._errors("delete", location):
                self._filesystem.delete_file(self._path(location))
        except FileNotFoundError:
            return False
        return True

    def delete_event_files(self, folder: str) -> list[str]:
        """Deletes every TensorBoard event file under ``folder`` (any depth); returns the locations deleted."""
        return self._delete_files(folder, lambda name: name.startswith(EVENT_FILE_PREFIX))

    def delete_model_files(self, folder: str) -> list[str]:
        """Deletes every model and checkpoint file (``.onnx``, ``.pt``) under ``folder`` (any depth); returns the
        locations deleted."""
        return self._delete_files(folder, lambda name: name.endswith((".onnx", ".pt")))

    def _delete_files(self, folder: str, chosen: Callable[[str], bool]) -> list[str]:
        """Deletes the files under ``folder`` (any depth) whose name is ``chosen``; returns the locations deleted."""
        deleted = []
        for location in list(self.list_files(folder)):
            name = self._path(location).rsplit("/", 1)[-1]
            if chosen(name):
                with self._errors("delete", location):
                    self._filesystem.delete_file(self._path(location))
                deleted.append(location)
        return deleted

    def _write(self, location: str, write: Callable[[BinaryIO], object]) -> None:
        """Writes a file atomically through ``write(handle)``, by backend."""
        path = self._path(location)
        with self._errors("write", location):
            if self.is_local:
                write_local_atomic(path, write)  # type: ignore[arg-type]
            elif self.is_object_store:
                with self._filesystem.open_output_stream(path) as target:  # one object, visible when complete
                    write(target)  # type: ignore[arg-type]
            else:
                parent, name = path.rsplit("/", 1) if "/" in path else ("", path)
                temporary = f"{parent}/.{name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
                try:
                    if parent:
                        self._filesystem.create_dir(parent, recursive=True)
                    with self._filesystem.open_output_stream(temporary) as target:
                        write(target)  # type: ignore[arg-type]
                    self._filesystem.move(temporary, path)
                except BaseException:
                    if self._filesystem.get_file_info(temporary).type == pafs.FileType.File:
                        self._filesystem.delete_file(temporary)
                    raise

    # ---- locations -----------------------------------------------------------------------------------------------
    def _path(self, location: str) -> str:
        """The filesystem path of ``location`` (a location under the root)."""
        if not self._uri:
            if is_uri(location):
                raise StorageError(f"{redact(location)} is a URI; the results storage is the folder {self.root}")
            return os.path.abspath(location)
        base = _strip_slashes(split_query(location)[0])
        if base == self._root_base:
            return self._root_path
        prefix = self._root_base + "/"
        if not base.startswith(prefix):
            raise StorageError(f"{redact(location)} is not under the results storage {redact(self.root)}")
        rest = "/".join(unquote(part) for part in base[len(prefix) :].split("/") if part)
        return f"{self._root_path.rstrip('/')}/{rest}" if self._root_path else rest

    def _location(self, path: str) -> str:
        """The location of the filesystem path ``path`` (a path under the root)."""
        if not self._uri:
            return path
        rest = path[len(self._root_path) :].lstrip("/")
        return join(self.root, *rest.split("/")) if rest else self.root

    @contextmanager
    def _errors(self, action: str, location: str) -> Iterator[None]:
        """Raises the filesystem's errors (not FileNotFoundError) as StorageError, naming the location."""
        try:
            yield
        except (StorageError, FileNotFoundError):
            raise
        except Exception as error:  # pyarrow raises OSError and ArrowException kinds
            raise StorageError(
                f"cannot {action} {redact(location)}: {error}; {credentials_hint(self.root)}"
            ) from error

