"""What acting shares with training, without torch: the constants of the action distributions and the
normalizer, the extras an acting policy keeps per step, and the wire's action mask turned into an allowed mask.

An EnvActor whose policy acts in numpy (:mod:`~rayagents.learner.numpy_policy`) imports only this side of the
learner's code, so it never loads torch. The torch modules (:mod:`~rayagents.learner.distributions`,
:mod:`~rayagents.learner.normalizer`) take their constants from here, so acting and training cannot disagree.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from rayagents.protocol.types import BehaviorName, BehaviorSpec, DecisionSteps

CONTINUOUS_CLIP = 3.0
"""Continuous samples are clipped to ±CONTINUOUS_CLIP and divided by it before they go to the player."""

MASKED_LOGIT = 1e8
"""How far a masked action's logit is pushed down."""

LOG_STD_MIN = -20.0
"""The lowest log standard deviation of a Gaussian head (lower ones are clamped to it)."""
LOG_STD_MAX = 2.0
"""The highest log standard deviation of a Gaussian head (higher ones are clamped to it)."""
SQUASH_EPSILON = 1e-6
"""Keeps ``log(1 - tanh(u)²)`` finite where the squashed action reaches ±1 (ML-Agents' value)."""
HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
"""``log(sqrt(2 pi))``, the Gaussian log density's constant per dimension."""

NORMALIZED_CLIP = 5.0
"""Normalized observations are clipped to [-NORMALIZED_CLIP, NORMALIZED_CLIP]."""

ENTROPY = "entropy"
"""The extra an acting policy keeps per step: float32 ``(n,)``, the entropy of each agent's action distribution
(``Policy/Entropy``)."""


def check_weights(expected: Mapping[str, tuple[int, ...]], state: Mapping[str, np.ndarray]) -> None:
    """ValueError unless ``state`` (published weights) has exactly the keys of ``expected``, each with its shape."""
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = [
        f"{name} {tuple(np.shape(state[name]))} vs {tuple(shape)}"
        for name, shape in expected.items()
        if name in state and tuple(np.shape(state[name])) != tuple(shape)
    ]
    if missing or unexpected or mismatched:
        raise ValueError(
            "the policy weights do not fit this policy's network (missing "
            f"{missing}, unexpected {unexpected}, mismatched shapes {mismatched}): the learner and the EnvActor "
            "must build the network from the same behavior spec and network_settings"
        )


def allowed_from_disabled(disabled: np.ndarray | Sequence[np.ndarray] | None, n_agents: int, total: int) -> np.ndarray:
    """The float allowed-mask ``(n_agents, total)`` (1 = allowed) from the wire's disabled mask (True = disabled).

    ``disabled`` is either one bool array ``(n_agents, total)`` or a ``DecisionSteps.action_mask``: one bool array
    ``(n_agents, branch_size)`` per branch. None means every action is allowed.
    """
    if disabled is None:
        return np.ones((n_agents, total), dtype=np.float32)
    if isinstance(disabled, np.ndarray):
        flat = disabled
    else:
        flat = np.concatenate([np.asarray(branch) for branch in disabled], axis=1)
    if flat.shape != (n_agents, total):
        raise ValueError(f"action mask has shape {flat.shape}, expected ({n_agents}, {total})")
    return 1.0 - flat.astype(np.float32)


class VersionedActing:
    """What every acting policy keeps and checks: the behavior it acts for, its spec, and the weights version
    loaded (-1 until the first).

    Arguments:
        behavior: the fully qualified behavior name (``"Name?team=0"``) it acts for.
        behavior_spec: the behavior's observations and actions.
    """

    def __init__(self, behavior: BehaviorName, behavior_spec: BehaviorSpec) -> None:
        self.behavior = behavior
        self.behavior_spec = behavior_spec
        self._version = -1
        self._mask_size = sum(behavior_spec.action_spec.discrete_branches)

    @property
    def version(self) -> int:
        """The weights version loaded; -1 until the first :meth:`load_weights`."""
        return self._version

    @staticmethod
    def _check_version(version: int) -> None:
        """ValueError for a version below 0 (checked before any weights are loaded)."""
        if version < 0:
            raise ValueError(f"a weights version is 0 or more, got {version}")

    def _allowed(self, behavior: BehaviorName, decision_steps: DecisionSteps) -> np.ndarray | None:
        """Checks that this policy can act for ``behavior`` now; the agents' allowed mask (None without discrete
        actions)."""
        if behavior != self.behavior:
            raise ValueError(
                f"this policy acts for behavior {self.behavior!r}, not {behavior!r}: build one policy per behavior"
            )
        if self._version < 0:
            raise RuntimeError(
                f"the policy of behavior {self.behavior!r} has no weights yet: call load_weights with the learner's "
                "latest version before acting"
            )
        if not self._mask_size:
            return None
        return allowed_from_disabled(decision_steps.action_mask, len(decision_steps), self._mask_size)
