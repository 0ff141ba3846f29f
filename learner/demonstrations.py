"""Loading ``.demo`` demonstrations for GAIL and behavioral cloning (``demo_path`` in the trainer YAML).

``demo_path`` is a ``.demo`` file or a folder of them (its ``*.demo`` files, sorted by name, not its
subfolders), as ML-Agents reads it: a plain path on the node that loads it (the learner's), or a URI that
``pyarrow.fs`` reads (``file://``, ``s3://``, ``gs://``...), opened as results storage opens its URIs.
"""

from __future__ import annotations

import os

from rayagents.learner.results_storage import (
    ResultsStorage,
    StorageError,
    credentials_hint,
    is_uri,
    redact,
    split_query,
)
from rayagents.protocol.demonstrations import (
    Demonstration,
    DemonstrationError,
    check_demonstration_spec,
    concatenate_demonstrations,
    read_demonstration,
)
from rayagents.protocol.types import BehaviorSpec

DEMO_SUFFIX = ".demo"
"""The extension of a demonstration file."""


def load_demonstrations(path: str, expected: BehaviorSpec | None = None) -> Demonstration:
    """The demonstration at ``path`` (a ``.demo`` file, or a folder whose ``.demo`` files are read in name order
    and put together), checked against the policy's ``expected`` spec when one is given.

    Raises DemonstrationError naming the path: nothing there, a folder without ``.demo`` files, a file that is not
    a demonstration (or is truncated), files of different behaviors, a spec that is not the policy's.
    """
    shown = redact(path)
    try:
        storage = ResultsStorage(path)
        if storage.is_file(path):
            files = [path]
        elif storage.is_dir(path):
            files = [location for location in storage.list_files(path) if _is_demo_in(location, path)]
            if not files:
                raise DemonstrationError(
                    f"The demonstration folder {shown} holds no {DEMO_SUFFIX} files: put the recorded {DEMO_SUFFIX} "
                    "files there (directly, not in subfolders), or point demo_path at one file."
                )
        else:
            where = (
                credentials_hint(path)
                if is_uri(path)
                else "a plain path is read on the learner's node, so the file must be there; on a cluster give a "
                "URI every node can read (s3://..., gs://...) instead"
            )
            raise DemonstrationError(f"There is no demonstration file or folder at {shown}: {where}.")
        demos = [read_demonstration(storage.read_bytes(location), redact(location)) for location in files]
    except StorageError as error:
        raise DemonstrationError(f"The demonstrations at {shown} cannot be read: {error}") from error
    except FileNotFoundError as error:
        raise DemonstrationError(f"The demonstration {shown} disappeared while it was read ({error}).") from error
    demo = concatenate_demonstrations(demos)
    if expected is not None:
        check_demonstration_spec(demo, expected)
    return demo


def _is_demo_in(location: str, folder: str) -> bool:
    """Whether ``location`` is a ``.demo`` file directly inside ``folder`` (a path or a URI)."""
    if is_uri(folder):
        base = split_query(location)[0]
        parent, _, name = base.rpartition("/")
        return name.endswith(DEMO_SUFFIX) and parent == split_query(folder)[0].rstrip("/")
    return location.endswith(DEMO_SUFFIX) and os.path.dirname(location) == os.path.abspath(folder)
