"""Gymnasium spaces from ML-Agents behavior specs, and the conversions between the two sides.

- **Observations**: one sensor is a ``Box`` of its shape; several are a ``Tuple`` of Boxes, in the spec's order.
  Values are unbounded float32 (camera sensors arrive scaled to [0, 1], as ``mlagents_envs`` gives them).
- **Action masks**: a behavior whose agents send masks gets RLlib's action-masking layout, a ``Dict`` with
  ``"observations"`` (the space above) and ``"action_mask"`` (float32, 1 = allowed, the branches one after the
  other), as RLlib's ``ActionMaskingTorchRLModule`` reads it. ML-Agents' masks say the opposite (True = masked).
- **Actions**: continuous only is ``Box(-1, 1)`` (Unity clips to that range); one discrete branch is
  ``Discrete``, several are ``MultiDiscrete``; hybrid is ``Tuple((Box, Discrete|MultiDiscrete))``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from gymnasium import spaces

from rayagents.protocol.types import ActionSpec, ActionTuple, BehaviorSpec

MASK_KEY = "action_mask"
"""The key of the allowed-actions vector in a masked behavior's observation (RLlib's action-masking examples)."""
OBSERVATIONS_KEY = "observations"
"""The key of the sensors' observation in a masked behavior's observation."""


def sensor_space(specs: BehaviorSpec) -> spaces.Space:
    """The space of a behavior's sensors: a Box for one sensor, a Tuple of Boxes for several."""
    boxes = [spaces.Box(-np.inf, np.inf, shape=tuple(s.shape), dtype=np.float32) for s in specs.observation_specs]
    if not boxes:
        raise ValueError("the behavior has no observation sensor: RLlib needs at least one observation")
    return boxes[0] if len(boxes) == 1 else spaces.Tuple(boxes)


def mask_size(action: ActionSpec) -> int:
    """The length of the allowed-actions vector: the discrete branches' sizes added up."""
    return int(sum(action.discrete_branches))


def observation_space(spec: BehaviorSpec, masked: bool) -> spaces.Space:
    """The observation space of a behavior's agents; ``masked`` adds the action-masking layout."""
    sensors = sensor_space(spec)
    if not masked:
        return sensors
    if not spec.action_spec.discrete_branches:
        raise ValueError("only discrete actions can be masked, and the behavior has no discrete branch")
    mask = spaces.Box(0.0, 1.0, shape=(mask_size(spec.action_spec),), dtype=np.float32)
    return spaces.Dict({MASK_KEY: mask, OBSERVATIONS_KEY: sensors})


def discrete_space(branches: Sequence[int]) -> spaces.Space:
    """``Discrete`` for one branch, ``MultiDiscrete`` for several."""
    if len(branches) == 1:
        return spaces.Discrete(int(branches[0]))
    return spaces.MultiDiscrete([int(b) for b in branches])


def action_space(action: ActionSpec) -> spaces.Space:
    """The action space of a behavior's agents (see the module's docstring)."""
    continuous = spaces.Box(-1.0, 1.0, shape=(action.continuous_size,), dtype=np.float32)
    if action.continuous_size and action.discrete_branches:
        return spaces.Tuple((continuous, discrete_space(action.discrete_branches)))
    if action.continuous_size:
        return continuous
    if action.discrete_branches:
        return discrete_space(action.discrete_branches)
    raise ValueError("the behavior has no action: RLlib needs at least one continuous action or discrete branch")


@dataclass(frozen=True)
class BehaviorSpaces:
    """How one behavior's agents look to RLlib, and the conversions of its observations and actions."""

    spec: BehaviorSpec
    """The behavior's ML-Agents spec."""
    masked: bool
    """Whether its agents send action masks (then observations use the action-masking layout)."""

    @property
    def observation_space(self) -> spaces.Space:
        """The observation space of each agent."""
        return observation_space(self.spec, self.masked)

    @property
    def action_space(self) -> spaces.Space:
        """The action space of each agent."""
        return action_space(self.spec.action_spec)

    def observation(self, sensors: Sequence[np.ndarray], index: int, mask: Sequence[np.ndarray] | None) -> Any:
        """Row ``index`` of the step's sensor arrays (and of its masks) in this behavior's observation space."""
        values = [np.asarray(s[index], dtype=np.float32) for s in sensors]
        observation: Any = values[0] if len(values) == 1 else tuple(values)
        if not self.masked:
            return observation
        if mask is None:
            allowed = np.ones(mask_size(self.spec.action_spec), dtype=np.float32)
        else:
            allowed = np.concatenate([~np.asarray(branch[index], dtype=bool) for branch in mask]).astype(np.float32)
        return {MASK_KEY: allowed, OBSERVATIONS_KEY: observation}

    def actions(self, chosen: Sequence[Any]) -> ActionTuple:
        """The ActionTuple of several agents from RLlib's actions for them (in this behavior's action space);
        an agent whose action is None gets zeros."""
        action = self.spec.action_spec
        count = len(chosen)
        continuous = np.zeros((count, action.continuous_size), dtype=np.float32)
        discrete = np.zeros((count, len(action.discrete_branches)), dtype=np.int32)
        for row, value in enumerate(chosen):
            if value is None:
                continue
            if action.continuous_size and action.discrete_branches:
                continuous_part, discrete_part = value
            elif action.continuous_size:
                continuous_part, discrete_part = value, None
            else:
                continuous_part, discrete_part = None, value
            if continuous_part is not None:
                continuous[row] = np.clip(np.asarray(continuous_part, dtype=np.float32).reshape(-1), -1.0, 1.0)
            if discrete_part is not None:
                discrete[row] = np.asarray(discrete_part, dtype=np.int64).reshape(-1)
        return ActionTuple(continuous=continuous, discrete=discrete)
