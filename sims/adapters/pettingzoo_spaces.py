"""PettingZoo observation and action spaces for one agent: the sensors and actions of
``rayagents.sims.adapters.spaces`` (Box, Discrete, MultiDiscrete, MultiBinary, Dict, Tuple), plus legal-move masks.

PettingZoo games with legal moves give a Dict observation ``{"observation": ..., "action_mask": ...}`` (1 = legal);
its ``"observation"`` part alone becomes the sensors (a single vector named ``VectorSensor``), and the mask the
agent's action mask (True = disabled on the wire). For example ConnectFour's 6×7×2 ``int8`` board is not an image,
so it goes as one float sensor of 84 floats.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces

from rayagents.protocol.types import ActionSpec
from rayagents.sims.adapters.spaces import ActionAdapter, ObservationAdapter, action_adapter, observation_adapter
from rayagents.sims.scene import AgentAction, SensorSpec

MASK_KEY = "action_mask"
"""The key of the legal-move mask in a PettingZoo Dict observation (and in some games' infos)."""
OBSERVATION_KEY = "observation"
"""The key of the observation proper beside ``MASK_KEY``."""


@dataclass(frozen=True)
class ObservationCodec:
    """How one agent's raw observations become sensor observations and a legal-move mask."""

    adapter: ObservationAdapter
    """The sensors of the observation (of its ``"observation"`` part when ``has_mask``)."""
    has_mask: bool
    """True when the observation is a Dict with ``"observation"`` and ``"action_mask"``."""

    @property
    def sensors(self) -> tuple[SensorSpec, ...]:
        """The behavior's sensors."""
        return self.adapter.sensors

    def observations(self, raw: Any) -> tuple[np.ndarray, ...]:
        """The sensors' observations of ``raw``, in ``sensors`` order."""
        return self.adapter.observations(raw[OBSERVATION_KEY] if self.has_mask else raw)

    def legal_mask(self, raw: Any) -> np.ndarray | None:
        """PettingZoo's legal-move mask in ``raw`` (1 = legal) as bools, or None when it has none."""
        if not self.has_mask:
            return None
        return np.asarray(raw[MASK_KEY]).reshape(-1) != 0


def observation_codec(space: spaces.Space, agent: str, grids: bool = False) -> ObservationCodec:
    """The codec of ``agent``'s observation ``space`` (with ``grids``, a board as a grid sensor); ValueError naming
    the agent for a space it can't send."""
    where = f"agent '{agent}'"
    if isinstance(space, spaces.Dict) and OBSERVATION_KEY in space.spaces and MASK_KEY in space.spaces:
        return ObservationCodec(observation_adapter(space.spaces[OBSERVATION_KEY], where, grids), has_mask=True)
    return ObservationCodec(observation_adapter(space, where, grids), has_mask=False)


def action_codec(space: spaces.Space, agent: str) -> ActionAdapter:
    """How the trainer's action becomes ``agent``'s game action; ValueError naming the agent for a space it
    can't take."""
    return action_adapter(space, f"agent '{agent}'")


def disabled_mask(legal: np.ndarray, spec: ActionSpec, agent: str) -> np.ndarray:
    """The wire's action mask (True = disabled) from a legal-move mask (True = legal), checked against ``spec``."""
    width = sum(spec.discrete_branches)
    if legal.shape[0] != width:
        raise ValueError(
            f"agent '{agent}' has an action mask of {legal.shape[0]} entries but {width} discrete actions "
            f"(branches {spec.discrete_branches}): the mask needs one entry per action of every branch"
        )
    return ~legal


def legal_action(
    action: AgentAction, disabled: np.ndarray | None, spec: ActionSpec, rng: np.random.Generator
) -> tuple[AgentAction, bool]:
    """``action`` with each masked discrete choice replaced by a random enabled one; True when it replaced one.

    A branch whose every action is disabled keeps the trainer's choice.
    """
    if disabled is None or spec.discrete_size == 0:
        return action, False
    discrete = np.array(action.discrete, dtype=np.int32, copy=True)
    replaced = False
    offset = 0
    for branch, size in enumerate(spec.discrete_branches):
        branch_disabled = disabled[offset : offset + size]
        choice = int(discrete[branch])
        if 0 <= choice < size and branch_disabled[choice]:
            enabled = np.flatnonzero(~branch_disabled)
            if enabled.size:
                discrete[branch] = int(rng.choice(enabled))
                replaced = True
        offset += size
    if not replaced:
        return action, False
    return AgentAction(action.continuous, discrete), True
