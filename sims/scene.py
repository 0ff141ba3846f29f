"""What a scene is to the simulation host: behaviors, sensors, agents, and areas that step.

A ``Scene`` is what a Unity build holds: a name, the behaviors its agents use, and a way to make one training
area (``Area``). The academy makes ``num_areas`` independent areas (each its own simulator, seeded
``seed + area index``) and batches their agents into one stream per behavior, as Unity's
``TrainingAreaReplicator`` does.

An area is stepped one academy step at a time. Each step it returns ``AgentReport``s: the final report of an
agent whose episode ended (``done=True``) and the report of each agent that requests a decision; an agent that
is not reported this step is between decisions (it keeps acting on its last action, the area's business). An
agent that ends an episode and starts the next one in the same step is reported twice: done first, then its
new decision request. The academy exchanges with the trainer only after a step in which some area reported.

Agents are named by the area (``AgentReport.agent``, unique within the area across behaviors); the academy
gives each (area, agent) a wire id that is stable across episodes.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np

from rayagents.protocol.side_channels.environment_parameters import EnvironmentParametersReceiver
from rayagents.protocol.side_channels.stats import StatsRecorder
from rayagents.protocol.types import ActionSpec, DimensionProperty, ObservationType


class SensorKind(enum.Enum):
    """How a sensor's observation travels on the wire."""

    FLOAT = "float"
    """Uncompressed floats (vector, grid or buffer sensors)."""
    PNG = "png"
    """A CHW image in [0, 1], sent as PNG (camera and render-texture sensors)."""


@dataclass(frozen=True)
class SensorSpec:
    """One sensor of a behavior's agents (Unity's ``ISensor``)."""

    name: str
    """The sensor's name; the academy sends a behavior's observations sorted by it, as Unity does."""
    shape: tuple[int, ...]
    """The observation's shape: ``(length,)`` for a vector, ``(C, H, W)`` for an image."""
    kind: SensorKind = SensorKind.FLOAT
    """Floats or a PNG image."""
    dimension_properties: tuple[DimensionProperty, ...] | None = None
    """One flag per dimension; None means what Unity's sensors send for the rank (vector (NONE,), buffer
    (VARIABLE_SIZE, NONE), image (NONE, T, T))."""
    observation_type: ObservationType = ObservationType.DEFAULT
    """An ordinary observation or a goal signal."""

    def __post_init__(self) -> None:
        if self.kind == SensorKind.PNG and len(self.shape) != 3:
            raise ValueError(f"PNG sensor '{self.name}' must have a (C, H, W) shape, got {self.shape}")
        if self.dimension_properties is not None and len(self.dimension_properties) != len(self.shape):
            raise ValueError(
                f"sensor '{self.name}' has {len(self.dimension_properties)} dimension properties for a shape of "
                f"rank {len(self.shape)}: give one per dimension"
            )


@dataclass(frozen=True)
class BehaviorDef:
    """A behavior of a scene (Unity's ``BehaviorParameters``): what its agents sense and how they act."""

    name: str
    """The behavior name the trainer YAML configures."""
    sensors: tuple[SensorSpec, ...]
    """The agents' sensors, in the order the area gives observations in ``AgentReport.observations``."""
    action_spec: ActionSpec
    """The agents' actions."""
    team: int = 0
    """The team id; agents of one behavior name on different teams are distinct behaviors on the wire."""

    @property
    def qualified_name(self) -> str:
        """The fully qualified name the wire uses: ``"<name>?team=<team>"``."""
        return f"{self.name}?team={self.team}"


@dataclass(frozen=True)
class AgentAction:
    """The action the trainer chose for one agent."""

    continuous: np.ndarray
    """``float32 (continuous_size,)``."""
    discrete: np.ndarray
    """``int32 (number of branches,)``."""


@dataclass(frozen=True)
class AgentReport:
    """What one agent sends in one academy step: a decision request, or the end of its episode."""

    agent: str
    """The agent's name, unique within its area and stable across episodes."""
    behavior: str
    """The ``BehaviorDef.qualified_name`` of the agent's behavior."""
    observations: tuple[np.ndarray, ...]
    """One array per sensor of the behavior, in ``BehaviorDef.sensors`` order."""
    reward: float = 0.0
    """The reward since the agent's previous report (0 in the first report of an episode)."""
    done: bool = False
    """True for the final report of an episode (the observations are the final ones)."""
    max_step_reached: bool = False
    """True when the episode was cut off (truncated) rather than ended; only with ``done``."""
    action_mask: np.ndarray | None = None
    """Flat bool over all discrete branches, True = the action is disabled; None = all enabled."""
    group_id: int = 0
    """The agent's group (0 = none)."""
    group_reward: float = 0.0
    """The group's reward since the agent's previous report."""


Heuristic = Callable[[AgentReport], AgentAction]
"""A scripted policy (Unity's ``Agent.Heuristic``): the action an agent takes on its decision request ``report``."""


@dataclass(frozen=True)
class AreaContext:
    """What the academy gives an area when it makes it."""

    index: int
    """The area's index, 0 .. num_areas - 1."""
    num_areas: int
    """How many areas the academy runs."""
    seed: int
    """The area's seed: the trainer's seed + ``index``."""
    parameters: EnvironmentParametersReceiver
    """The environment parameters the trainer sent (``get_with_default(key, default)``), shared by all areas."""
    stats: StatsRecorder
    """Where to record statistics (``stats.add(key, value, StatsAggregationMethod.AVERAGE)``); they reach the
    trainer with the next message."""


class Area(ABC):
    """One independent copy of a scene: its own simulator and agents."""

    @abstractmethod
    def reset(self) -> list[AgentReport]:
        """Begin a new episode for every agent (Unity's forced full reset) and return the first decision requests.

        Episodes in progress are dropped without a final report, as Unity does on a RESET command.
        """

    @abstractmethod
    def step(self, actions: Mapping[str, AgentAction]) -> list[AgentReport]:
        """Advance one academy step and return this step's reports (possibly none).

        ``actions`` holds an action for each agent that requested a decision in the previous reports of this
        area, and nothing for the others.
        """

    def close(self) -> None:
        """Release the simulator (called once when the player quits)."""


@dataclass(frozen=True)
class Scene:
    """A named scene: what ``rayagents-sim --scene NAME`` runs, as one Unity build."""

    name: str
    """The scene's name (``--scene``)."""
    description: str
    """One line for ``rayagents-sim list`` and the build's description file."""
    behaviors: tuple[BehaviorDef, ...]
    """Every behavior an agent of the scene may use."""
    make_area: Callable[[AreaContext], Area] = field(repr=False)
    """Makes one area."""
    heuristic: Heuristic | None = field(default=None, repr=False)
    """How the scene's agents act without a trainer or a model (``rayagents-sim record --heuristic``); optional.
    It is given each decision request of any behavior of the scene."""

    def behavior(self, qualified_name: str) -> BehaviorDef:
        """The behavior with ``qualified_name``; KeyError naming the scene's behaviors otherwise."""
        for behavior in self.behaviors:
            if behavior.qualified_name == qualified_name:
                return behavior
        known = ", ".join(b.qualified_name for b in self.behaviors)
        raise KeyError(f"scene '{self.name}' has no behavior '{qualified_name}' (it has: {known})")


def sensor_order(sensors: Sequence[SensorSpec]) -> tuple[int, ...]:
    """The indices of ``sensors`` sorted by name as Unity's ``SensorUtils.SortSensors`` does.

    Unity compares with ``string.Compare`` under the invariant culture: case-insensitively first, and on a tie
    lower case before upper case.
    """
    return tuple(sorted(range(len(sensors)), key=lambda i: (sensors[i].name.casefold(), sensors[i].name.swapcase())))
