"""The seam every algorithm plugs into: what a ``trainer_type`` provides to the generic trainer and the EnvActors.

An algorithm (PPO today; SAC and POCA next) is one registry entry (:mod:`registry`) that builds three things for a
behavior:

- the :class:`Algorithm`, the learner side: it takes the trajectories that arrive (in one batched pass), keeps
  what it trains on, updates, and names the modules its checkpoint holds and the weights the acting policy needs;
- the acting policy the EnvActors run (``act(behavior, decision_steps) -> ActionTaken``, fed numbered weights);
- the :class:`PlayRules`: how much policy lag the algorithm accepts, and whether it trains on whole sequences.

Everything else (step counting, weights versions, lag accounting, statistics under ML-Agents' names, summaries,
checkpoint writing, rotation and restore) is the generic :class:`~rayagents.learner.trainer.Trainer`'s, the same
for every algorithm.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from rayagents.learner.play_rules import PlayRules
from rayagents.protocol.trajectories import ActionTaken, Trajectory
from rayagents.protocol.types import AgentId, BehaviorName, DecisionSteps

if TYPE_CHECKING:
    from rayagents.learner.checkpoint_format import Saveable

__all__ = ["ActingPolicy", "Algorithm", "Ingested", "PlayRules"]


@dataclass(frozen=True)
class Ingested:
    """What :meth:`Algorithm.ingest` reports of the trajectories it took in."""

    stats: Mapping[str, float]
    """Statistics under ML-Agents' names (value estimates, entropy), each a mean over the experiences taken."""
    signal_rewards: Mapping[str, np.ndarray]
    """Each reward signal's reward of every experience (scaled by its ``strength``), the trajectories one after
    the other: the per-episode ``Policy/<Signal> Reward`` statistics are summed from them."""


class ActingPolicy(Protocol):
    """What an EnvActor acts with for one behavior id: a CPU copy of the policy, fed numbered weights. It meets the
    actors' ``VersionedPolicy`` protocol by its shape alone (``actors/`` and ``learner/`` never import each other)."""

    @property
    def version(self) -> int:
        """The weights version loaded; -1 before the first."""
        ...

    def load_weights(self, version: int, state: Mapping[str, np.ndarray]) -> None:
        """Loads weights ``version`` (the algorithm's :meth:`Algorithm.policy_state` of that version)."""
        ...

    def act(self, behavior: BehaviorName, decision_steps: DecisionSteps) -> ActionTaken:
        """The actions of every agent of ``decision_steps``, row for row, with the extras the algorithm keeps."""
        ...

    def forget(self, agent_ids: Sequence[AgentId] | None = None) -> None:
        """Forgets the memories of agents whose episodes ended (every agent's with None: the player restarted)."""
        ...


class Algorithm(Protocol):
    """The learner side of one ``trainer_type`` for one behavior."""

    def ingest(self, trajectories: Sequence[Trajectory], trainable: Sequence[np.ndarray]) -> Ingested:
        """Takes arriving trajectories in one batched pass on the learner's device. ``trainable[i]`` (bool, one per
        experience of ``trajectories[i]``) says which experiences may be trained on; the others still inform what
        needs the whole trajectory (returns, advantages)."""
        ...

    def pretrain(self) -> Mapping[str, float]:
        """Before the first step of a run that starts afresh: what the algorithm learns without playing (behavioral
        cloning from demonstrations); its statistics, empty when there is nothing to pretrain."""
        ...

    @property
    def buffered_steps(self) -> int:
        """Experiences held for the next update."""
        ...

    def ready_for_update(self, step: int) -> bool:
        """Whether an update is due at trainer step ``step``."""
        ...

    def experiences_per_update(self) -> int | None:
        """The experiences one update trains on: an update is due once more than this many are buffered (PPO's
        ``buffer_size``). The trainer takes in no more before it updates, so that the updates per step do not depend
        on how much arrived at once, and the learner lets the EnvActors send at most about this many ahead of what it
        takes in. None: everything that arrived is taken in first, without a bound (SAC, whose gradient steps then
        catch up with the steps taken in, from a replay buffer of experiences of any age)."""
        ...

    def update(self, step: int) -> Mapping[str, float]:
        """One update at trainer step ``step`` (schedules read it), after which the acting policy's weights are
        published as a new version; returns the statistics under ML-Agents' names."""
        ...

    def restored(self, step: int) -> None:
        """The modules were just restored from a checkpoint of trainer step ``step``: forget what the new weights
        cannot train on (an on-policy buffer acted by weights that no longer exist) and re-count what depends on
        the step."""
        ...

    def modules(self) -> Mapping[str, Saveable]:
        """The checkpoint entries under ML-Agents' names (policy, critics, optimizers, ...), without the step."""
        ...

    def saved_buffers(self) -> Mapping[str, Saveable]:
        """What is saved once beside the latest checkpoint rather than in every numbered one (SAC's replay buffer
        with ``save_replay_buffer``); empty when nothing is."""
        ...

    def policy_state(self) -> Mapping[str, np.ndarray]:
        """The acting policy's weights as numpy arrays (what :meth:`InferencePolicy.load_weights` takes)."""
        ...

    def export(self, path: Path) -> Path:
        """Writes the policy as a Unity-loadable ``.onnx`` model at the local ``path``; returns it."""
        ...
