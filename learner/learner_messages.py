"""What the driver and the LearnerActor tell each other: how a learner starts, and where its trainers stand.

- :class:`LearnerSettings`: where the learner writes and how its trainers start (``--resume``,
  ``--initialize-from``, inference, a restart after a loss).
- :class:`LearnerStart`: where a started learner runs.
- :class:`LearnerProgress` (with a :class:`BehaviorState` per trainer): what each progress poll returns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from rayagents.learner.checkpoints import CheckpointRecord
from rayagents.learner.results_storage import join
from rayagents.learner.summaries import TrainerSummary


@dataclass(frozen=True)
class LearnerSettings:
    """Where the learner writes and how its trainers start."""

    write_path: str
    """The run's results (``results/<run-id>``): an absolute path on the learner's node, or a URI
    (``s3://bucket/results/<run-id>``); each behavior's files go to ``<write_path>/<name>/``."""
    device: str | None = None
    """The torch device; None: ``cuda`` when this node has one, else ``cpu``."""
    seed: int = 0
    """Seeds torch and the minibatch shuffling."""
    resume: bool = False
    """Restore each trainer from ``<write_path>/<name>/checkpoint.pt`` (the step carries on)."""
    init_path: str | None = None
    """Initialize each trainer from ``<init_path>/<name>/checkpoint.pt`` (the step starts at 0); a path or a URI."""
    training: bool = True
    """False for ``--inference``: the policies act, nothing is trained or saved."""
    checkpoints: Mapping[str, tuple[CheckpointRecord, ...]] = field(default_factory=dict)
    """The checkpoints a resumed run had written, per behavior name (from ``training_status.json``)."""
    num_threads: int | None = None
    """Torch intra-op threads for the updates; None keeps torch's default."""
    restart: bool = False
    """The driver restarted this learner after the previous one was lost: with ``resume``, a behavior that has no
    ``checkpoint.pt`` yet starts afresh instead of failing."""


@dataclass(frozen=True)
class LearnerStart:
    """Where a started learner runs."""

    device: str
    """The torch device the trainers update on."""
    node_id: str
    """The Ray node id of the learner's node."""
    pid: int
    """The learner's process id."""


@dataclass(frozen=True)
class BehaviorState:
    """Where one trainer stands."""

    behavior_name: str
    """The behavior name."""
    step: int
    """The trainer's step."""
    max_steps: int
    """Its ``max_steps``."""
    version: int
    """Its weights version."""
    dropped_steps: int
    """Steps it received but did not train on, since the learner started."""
    training: bool
    """Whether it still trains."""
    returns: tuple[float, ...] = ()
    """The returns (environment reward) of its episodes that ended since the previous progress call, in order:
    what the driver's curriculum measures rewards on."""


@dataclass(frozen=True)
class LearnerProgress:
    """What the driver learns from one :meth:`LearnerActor.progress` call."""

    behaviors: tuple[BehaviorState, ...]
    """Every trainer's state."""
    summaries: tuple[TrainerSummary, ...]
    """The summaries made since the last call, in order."""
    checkpoints: Mapping[str, tuple[CheckpointRecord, ...]]
    """Each behavior's checkpoints kept on disk, oldest first."""
    training_done: bool
    """Every trainer has reached its ``max_steps`` (never in inference)."""
    messages: tuple[str, ...]
    """Warnings for the console since the last call."""
    elos: Mapping[str, float] = field(default_factory=dict)
    """Each self-play behavior's ELO as saved in its latest checkpoint (what ``--resume`` continues from)."""
    throttled_s: float = 0.0
    """Seconds the EnvActors' submits have waited, over the learner's life, for the trainers to catch up on the
    updates due (SAC's ``steps_per_update``): a share of wall time near 1 means the learner sets the pace."""


def restore_source(settings: LearnerSettings, behavior_name: str) -> str | None:
    """The folder (a path or a URI) whose checkpoints a new trainer of ``behavior_name`` restores from, or None when
    it starts afresh: ``--resume`` (and ``--inference``, which needs it) ``<write_path>/<name>``;
    ``--initialize-from`` ``<init_path>/<name>``."""
    if settings.resume:
        return join(settings.write_path, behavior_name)
    if settings.init_path is not None:
        return join(settings.init_path, behavior_name)
    return None
