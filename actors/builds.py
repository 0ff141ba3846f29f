"""Getting a player build onto a node: ``--env`` as an archive or a URI, fetched and unpacked once per node.

``--env`` may name a build archive (``.zip``, ``.tar.gz``, ``.tgz``, ``.tar``) by local path or by URI
(``file://``, ``s3://``, ``gs://``, any scheme ``pyarrow.fs`` reads). Each node unpacks it once into its build
cache (``RAYAGENTS_BUILD_CACHE``, else ``~/.cache/rayagents/builds``) under a key of the archive's identity: the
SHA-256 of its bytes for a local file, of its URI, size and modification time for a remote one (so that a node
does not download it to learn whether it has it). EnvActors on one node share the unpacked build: the first takes
a file lock, downloads into a temporary file, unpacks into a temporary folder and renames it into place; the
others wait on the lock and find it there. The run bit is set on the player executables (zip archives often lose
it). Entries that would land outside the folder (absolute paths, ``..``) are refused.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
from pathlib import Path

from rayagents.protocol.exceptions import UnityEnvironmentException

ARCHIVE_SUFFIXES: tuple[str, ...] = (".zip", ".tar.gz", ".tgz", ".tar")
"""The archive kinds ``--env`` may name."""
EXECUTABLE_SUFFIXES: tuple[str, ...] = (".x86_64", ".x86", ".exe")
"""Files that get the run bit after unpacking."""
CACHE_VARIABLE = "RAYAGENTS_BUILD_CACHE"
"""The environment variable naming the build cache folder."""
_CHUNK = 1 << 20


def is_build_archive(env_path: str) -> bool:
    """Whether ``--env`` names an archive (by path or URI) rather than a build folder, a file or a scene."""
    return env_path.lower().endswith(ARCHIVE_SUFFIXES) or ("://" in env_path and not env_path.startswith("sim:"))


def default_cache() -> Path:
    """The build cache folder of this node."""
    configured = os.environ.get(CACHE_VARIABLE)
    return Path(configured) if configured else Path.home() / ".cache" / "rayagents" / "builds"


def _open(env_path: str) -> tuple[object, str]:
    """The ``pyarrow.fs`` filesystem and path of an archive path or URI."""
    from pyarrow import fs as pafs

    if "://" in env_path:
        try:
            return pafs.FileSystem.from_uri(env_path)
        except Exception as error:  # pyarrow raises several kinds for a URI it cannot use
            raise UnityEnvironmentException(f"--env {env_path!r}: cannot open this URI ({error})") from error
    return pafs.LocalFileSystem(), str(Path(env_path).resolve())


def _archive_key(env_path: str) -> str:
    """The cache key of the archive: its content's hash (local), or its URI, size and time (remote)."""
    from pyarrow import fs as pafs

    filesystem, path = _open(env_path)
    info = filesystem.get_file_info(path)  # type: ignore[attr-defined]
    if info.type != pafs.FileType.File:
        raise UnityEnvironmentException(
            f"--env {env_path!r}: no build archive there ({path} is {info.type.name.lower()}); give the path or URI "
            "of a .zip or .tar.gz of the build folder"
        )
    digest = hashlib.sha256()
    if isinstance(filesystem, pafs.LocalFileSystem):
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(_CHUNK), b""):
                digest.update(chunk)
    else:
        digest.update(f"{env_path}\0{info.size}\0{info.mtime_ns}".encode())
    return digest.hexdigest()[:32]


def _download(env_path: str, destination: Path) -> None:
    filesystem, path = _open(env_path)
    with filesystem.open_input_stream(path) as source, open(destination, "wb") as target:  # type: ignore[attr-defined]
        while True:
            chunk = source.read(_CHUNK)
            if not chunk:
                break
            target.write(chunk)


def _inside(root: Path, name: str) -> Path:
    """The path an archive entry unpacks to; UnityEnvironmentException if it would leave ``root``."""
    target = (root / name).resolve()
    if not target.is_relative_to(root.resolve()):
        raise UnityEnvironmentException(f"the build archive has an entry outside its folder: {name!r}; refusing it")
    return target


def _unpack(archive: Path, folder: Path) -> None:
    """Unpacks a zip or tar archive, told apart by content (a URI's name may end in a query, not a suffix)."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as bundle:
            for entry in bundle.infolist():
                _inside(folder, entry.filename)
            bundle.extractall(folder)
            for entry in bundle.infolist():
                mode = (entry.external_attr >> 16) & 0o777
                if mode and not entry.is_dir():
                    os.chmod(folder / entry.filename, mode)
    else:
        with tarfile.open(archive) as bundle:
            for member in bundle.getmembers():
                _inside(folder, member.name)
            bundle.extractall(folder, filter="data")
    for path in folder.rglob("*"):
        if path.is_file() and path.name.lower().endswith(EXECUTABLE_SUFFIXES):
            path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def _build_root(folder: Path) -> Path:
    """The build folder inside an unpacked archive: the archive's single top folder, or the archive's root."""
    entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
    if len(entries) == 1 and entries[0].is_dir():
        return entries[0]
    return folder


def local_build(env_path: str, cache: Path | None = None) -> str:
    """The local build folder of the archive ``env_path``, fetched and unpacked into the cache if not there yet."""
    cache = default_cache() if cache is None else cache
    cache.mkdir(parents=True, exist_ok=True)
    key = _archive_key(env_path)
    final = cache / key
    with open(cache / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not final.is_dir():
            work = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=cache))
            try:
                archive = work / "archive"
                _download(env_path, archive)
                unpacked = work / "build"
                unpacked.mkdir()
                _unpack(archive, unpacked)
                os.rename(unpacked, final)
            finally:
                shutil.rmtree(work, ignore_errors=True)
    return str(_build_root(final))
