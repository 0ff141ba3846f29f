"""Weight versions as they travel from the learner to the EnvActors, and the learner's reply to a trajectory batch.

- :class:`PolicyWeights`: one version of a behavior's actor weights, plain numpy arrays (the learner puts each
  version into Ray's object store once; every EnvActor reads the same copy).
- :class:`WeightsNotice`: "behavior B is at version V; its weights are at this object reference".
- :class:`LearnerReply`: what an EnvActor learns in the reply to its own trajectory call: the latest version of
  each behavior it plays, the steps the learner kept or dropped, and whether training is over.

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
    """The latest weights version of one behavior."""

    behavior: str
    """The fully qualified behavior name (``"Name?team=0"``)."""
    version: int
    """The weights version."""
    weights: object
    """An object reference whose value is the :class:`PolicyWeights` of ``version``."""


@dataclass(frozen=True)
class LearnerReply:
    """The learner's answer to one trajectory batch."""

    notices: tuple[WeightsNotice, ...]
    """The latest version of each behavior in the batch (and of any behavior the learner knows)."""
    kept_steps: int
    """Steps of the batch added to an update buffer."""
    dropped_steps: int
    """Steps of the batch acted by too old a policy (or sent after training ended), not trained on."""
    training_done: bool
    """Every trainer has reached its ``max_steps``: the EnvActor may stop."""
