"""Weight versions as they travel from the learner to the EnvActors, and the learner's reply to a trajectory batch.

- :class:`PolicyWeights`: one version of a behavior's actor weights, plain numpy arrays (the learner puts each
  version into Ray's object store once; every EnvActor reads the same copy).
- :class:`WeightsNotice`: "behavior id B (``Name?team=N``) plays publication P, which is weights version V; the
  weights are at this object reference".
- :class:`LearnerReply`: what an EnvActor learns in the reply to its own trajectory call: what each behavior id
  plays now, and whether training is over.

Publications and versions differ on purpose: the version counts the trainer's updates, the publication counts
what one behavior id was handed. Every team of a behavior plays the latest version unless the trainer hands a
team an older snapshot (self-play); an EnvActor loads whatever a newer publication names, older or not.

Object references are typed ``object`` here: this layer knows nothing of Ray; the EnvActor resolves them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np


@dataclass(frozen=True)
class PolicyWeights:
    """One version of a behavior's policy weights."""

    version: int
    """The weights version: 0 for the initial weights, one more after each update."""
    state: Mapping[str, np.ndarray]
    """The actor's ``state_dict`` as numpy arrays (copies: the learner keeps training its own tensors)."""


@dataclass(frozen=True)
class WeightsNotice:
    """What one behavior id plays now."""

    behavior: str
    """The fully qualified behavior id (``"Name?team=0"``)."""
    publication: int
    """Counts what this behavior id was handed, from 0: an EnvActor loads a notice with a newer publication."""
    version: int
    """The weights version the publication holds."""
    weights: object
    """An object reference whose value is the :class:`PolicyWeights` of ``version``."""


@dataclass(frozen=True)
class LearnerReply:
    """The learner's answer to one trajectory batch."""

    notices: tuple[WeightsNotice, ...]
    """What each behavior id the learner knows plays now."""
    training_done: bool
    """Every trainer has reached its ``max_steps``: the EnvActor may stop."""
