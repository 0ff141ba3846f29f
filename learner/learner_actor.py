"""``LearnerActor``: the learner as Ray runs it, one per run, which the driver and every EnvActor hold a handle of.

The class is thin on purpose and imports no torch: Ray loads an actor's class wherever a handle of it arrives, and
every EnvActor gets this one, so an EnvActor that acts in numpy never loads torch. The learner's work (trainers,
updates, checkpoints, publishing weights) is a :class:`~rayagents.learner.learner_core.Learner`, made in the
actor's own process; each call is passed on to it.

:meth:`LearnerActor.submit` runs in the concurrency group :data:`TRAJECTORIES_GROUP`: a submit that waits for room in
the learner's inbox never holds up the driver's calls (progress, save) or an EnvActor's registration, which run in
the default group.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ray

from rayagents.configs import RunOptions
from rayagents.protocol.trajectories import TrajectoryBatch
from rayagents.protocol.types import BehaviorName, BehaviorSpec
from rayagents.protocol.weights import LearnerReply, WeightsNotice

if TYPE_CHECKING:
    from rayagents.learner.checkpoints import CheckpointRecord
    from rayagents.learner.learner_messages import LearnerProgress, LearnerSettings, LearnerStart

TRAJECTORIES_GROUP = "trajectories"
"""The Ray concurrency group :meth:`LearnerActor.submit` runs in."""
CONCURRENCY_GROUPS = {TRAJECTORIES_GROUP: 1}
"""The LearnerActor's concurrency groups besides the default one (see :func:`remote_learner`)."""


class LearnerActor:
    """Trains every behavior's policy from the EnvActors' trajectories: a
    :class:`~rayagents.learner.learner_core.Learner` in this actor's process, which each method calls.

    Arguments:
        options: the run options (each behavior's trainer settings).
        settings: where to write and how to start.
    """

    def __init__(self, options: RunOptions, settings: LearnerSettings) -> None:
        from rayagents.learner.learner_core import Learner  # torch: in the learner's process only

        self._learner = Learner(options, settings)

    def start(self) -> LearnerStart:
        """:meth:`Learner.start <rayagents.learner.learner_core.Learner.start>`: opens the results, starts training."""
        return self._learner.start()

    def register(self, behavior: BehaviorName, behavior_spec: BehaviorSpec) -> WeightsNotice:
        """:meth:`Learner.register <rayagents.learner.learner_core.Learner.register>`: what ``behavior`` plays."""
        return self._learner.register(behavior, behavior_spec)

    @ray.method(concurrency_group=TRAJECTORIES_GROUP)
    def submit(self, batch: TrajectoryBatch) -> LearnerReply:
        """:meth:`Learner.submit <rayagents.learner.learner_core.Learner.submit>`: takes a batch into the inbox."""
        return self._learner.submit(batch)

    def progress(self) -> LearnerProgress:
        """:meth:`Learner.progress <rayagents.learner.learner_core.Learner.progress>`: states, summaries, warnings."""
        return self._learner.progress()

    def save(self) -> dict[str, CheckpointRecord]:
        """:meth:`Learner.save <rayagents.learner.learner_core.Learner.save>`: the final checkpoints and models."""
        return self._learner.save()


def remote_learner() -> Any:
    """The LearnerActor as a Ray actor class, with its concurrency groups (``.options(...).remote(options, settings)``
    creates one)."""
    return ray.remote(concurrency_groups=CONCURRENCY_GROUPS)(LearnerActor)
