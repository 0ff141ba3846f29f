"""Gather: one agent per area collects a varying number of pellets; its view of them is a variable-length buffer.

The scene that needs ML-Agents' ``BufferSensor``: an observation of shape ``(max_entities, entity_size)`` with the
dimension properties ``(VARIABLE_SIZE, NONE)``, one row per entity present and all-zero rows for the absent ones,
which a trainer encodes with attention over the present rows.

Each area is a square arena ``[-1, 1]²`` (numpy only, no simulator). At each episode start the agent is placed at
random in ``[-0.9, 0.9]²`` at rest and 1 to 6 pellets (drawn anew each episode) at random in the same square, each
at least ``2 × TOUCH_DISTANCE`` from the agent. Behavior ``Gather``:

- ``BufferSensor`` ``(6, 4)``, one row per pellet left, in the order they were placed, then zero rows (as Unity's
  ``BufferSensorComponent`` fills its buffer each step): the pellet's position relative to the agent
  ``(dx / 2, dy / 2)``, its distance ``/ 2√2`` and a 1 (so a present row never sums to 0, the test ML-Agents'
  attention masks absent rows by).
- ``VectorSensor`` ``(5,)``: the agent's position ``(x, y)``, its velocity ``/ MAX_SPEED`` and the share of the
  episode's pellets that are left (the attention's mean over entities does not tell how many there are).
- One discrete branch of 5 actions: stay, left (-x), right (+x), down (-y), up (+y). Each step the velocity is damped
  by ``DAMPING`` and pushed by ``ACCELERATION`` in the chosen direction (top speed ``MAX_SPEED`` per step); the
  walls stop the agent (the velocity across a wall is zeroed).
- Reward: +1 for each pellet the agent comes within ``TOUCH_DISTANCE`` of (the pellet disappears: its row becomes a
  zero row) and ``-TIME_PENALTY`` every step (-1 over an episode that runs to its end).
- The episode ends (done) in the step the last pellet is gathered, and is cut off (done, ``max_step_reached``)
  after ``MAX_STEPS`` steps. A decision is requested every step.

Environment parameters, read at each episode start: ``min_pellets`` (1) and ``max_pellets`` (6), the range of the
number of pellets, kept within 1..6 (a curriculum can start with few). Deterministic under the area's seed. Each
finished episode records ``Gather/Episode Return`` and ``Gather/Episode Length`` (AVERAGE). The heuristic
(:func:`heuristic`) heads for the nearest pellet (``rayagents-sim record Gather --heuristic``).
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np

from rayagents.protocol.side_channels.stats import StatsAggregationMethod
from rayagents.protocol.types import ActionSpec, DimensionProperty
from rayagents.sims.scene import AgentAction, AgentReport, Area, AreaContext, BehaviorDef, Scene, SensorSpec

NAME = "Gather"
"""The scene's name, and its behavior's."""
AGENT = "agent"
"""The name of an area's one agent."""

ARENA_HALF = 1.0
"""The arena is ``[-ARENA_HALF, ARENA_HALF]²``."""
SPAWN_HALF = 0.9
"""The agent and the pellets are placed in ``[-SPAWN_HALF, SPAWN_HALF]²``."""
MAX_PELLETS = 6
"""The most pellets in an episode: the buffer sensor's rows."""
ENTITY_SIZE = 4
"""Floats per pellet row: dx / 2, dy / 2, distance / 2√2, 1."""
TOUCH_DISTANCE = 0.15
"""A pellet is gathered when the agent's centre comes this close to it."""
ACCELERATION = 0.03
"""The velocity added per step in the chosen direction."""
DAMPING = 0.7
"""The share of the velocity kept from one step to the next."""
MAX_SPEED = ACCELERATION / (1.0 - DAMPING)
"""The speed the agent tends to when it keeps one direction (0.1 per step)."""
MAX_STEPS = 200
"""Steps after which an episode is cut off."""
TIME_PENALTY = 1.0 / MAX_STEPS
"""The reward lost every step."""

MOVES = np.array([[0.0, 0.0], [-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]])
"""The direction of each action: stay, left, right, down, up."""
_DISTANCE_SCALE = 1.0 / (2.0 * ARENA_HALF * math.sqrt(2.0))
"""Scales a distance in the arena into [0, 1]."""

BUFFER_SENSOR = SensorSpec(
    "BufferSensor",
    (MAX_PELLETS, ENTITY_SIZE),
    dimension_properties=(DimensionProperty.VARIABLE_SIZE, DimensionProperty.NONE),
)
"""The pellets the agent sees (Unity's ``BufferSensor``); first in the wire's name order."""
VECTOR_SENSOR = SensorSpec("VectorSensor", (5,))
"""The agent's own state."""
BEHAVIOR = BehaviorDef(name=NAME, sensors=(BUFFER_SENSOR, VECTOR_SENSOR), action_spec=ActionSpec(0, (len(MOVES),)))
"""The agent's behavior."""


class GatherWorld:
    """The state of one arena: the agent and the pellets (public so that a test can set up a situation)."""

    def __init__(self) -> None:
        self.position = np.zeros(2)
        """The agent's ``(x, y)``."""
        self.velocity = np.zeros(2)
        """The agent's velocity per step."""
        self.pellets = np.zeros((0, 2))
        """Every pellet placed this episode, ``(n, 2)``, gathered ones included."""
        self.present = np.zeros(0, dtype=bool)
        """Which of ``pellets`` are still there."""
        self.steps = 0
        """Steps taken this episode."""

    def place(self, rng: np.random.Generator, count: int) -> None:
        """Starts an episode: the agent at rest at a random place, ``count`` pellets away from it."""
        self.position = rng.uniform(-SPAWN_HALF, SPAWN_HALF, size=2)
        self.velocity = np.zeros(2)
        pellets = rng.uniform(-SPAWN_HALF, SPAWN_HALF, size=(count, 2))
        near = np.hypot(*(pellets - self.position).T) < 2 * TOUCH_DISTANCE
        while near.any():  # redraw those placed within reach of the agent
            pellets[near] = rng.uniform(-SPAWN_HALF, SPAWN_HALF, size=(int(near.sum()), 2))
            near = np.hypot(*(pellets - self.position).T) < 2 * TOUCH_DISTANCE
        self.pellets = pellets
        self.present = np.ones(count, dtype=bool)
        self.steps = 0

    def advance(self, move: int) -> int:
        """One step with action ``move``: the agent moves, then gathers the pellets it touches; their count."""
        velocity = DAMPING * self.velocity + ACCELERATION * MOVES[move]
        position = self.position + velocity
        blocked = np.abs(position) > ARENA_HALF
        velocity[blocked] = 0.0
        self.position = np.clip(position, -ARENA_HALF, ARENA_HALF)
        self.velocity = velocity
        self.steps += 1
        offsets = self.pellets - self.position
        touched = self.present & (np.einsum("ij,ij->i", offsets, offsets) < TOUCH_DISTANCE**2)
        self.present &= ~touched
        return int(touched.sum())

    @property
    def left(self) -> int:
        """Pellets still there."""
        return int(self.present.sum())

    def observations(self) -> tuple[np.ndarray, np.ndarray]:
        """The buffer sensor's rows (present pellets first, then zero rows) and the vector sensor's values."""
        buffer = np.zeros((MAX_PELLETS, ENTITY_SIZE), np.float32)
        offsets = self.pellets[self.present] - self.position
        count = offsets.shape[0]
        buffer[:count, 0:2] = offsets / (2.0 * ARENA_HALF)
        buffer[:count, 2] = np.hypot(offsets[:, 0], offsets[:, 1]) * _DISTANCE_SCALE
        buffer[:count, 3] = 1.0
        total = max(1, self.pellets.shape[0])
        vector = np.array(
            [*self.position, *(self.velocity / MAX_SPEED), count / total], np.float32
        )
        return buffer, vector


def pellet_count_range(context: AreaContext) -> tuple[int, int]:
    """The episode's ``(min_pellets, max_pellets)`` from the environment parameters, kept within 1..MAX_PELLETS."""
    low = int(round(context.parameters.get_with_default("min_pellets", 1.0)))
    high = int(round(context.parameters.get_with_default("max_pellets", float(MAX_PELLETS))))
    low = min(max(low, 1), MAX_PELLETS)
    return low, min(max(high, low), MAX_PELLETS)


class GatherArea(Area):
    """One arena with one agent."""

    def __init__(self, context: AreaContext) -> None:
        self._context = context
        self._rng = np.random.default_rng(context.seed)
        self.world = GatherWorld()
        """The arena's state."""
        self._behavior = BEHAVIOR.qualified_name
        self._move = 0
        self._return = 0.0

    def reset(self) -> list[AgentReport]:
        """Start a new episode; the agent requests its first decision."""
        return [self._begin_episode()]

    def step(self, actions: Mapping[str, AgentAction]) -> list[AgentReport]:
        """Move and gather; report the next decision request, or the episode's end and the next one's first request."""
        action = actions.get(AGENT)
        if action is not None:
            self._move = int(action.discrete[0])
        world = self.world
        reward = world.advance(self._move) - TIME_PENALTY
        self._return += reward
        observations = world.observations()
        all_gathered = world.left == 0
        if not all_gathered and world.steps < MAX_STEPS:
            return [AgentReport(AGENT, self._behavior, observations, reward=reward)]
        stats = self._context.stats
        stats.add(f"{NAME}/Episode Return", self._return, StatsAggregationMethod.AVERAGE)
        stats.add(f"{NAME}/Episode Length", float(world.steps), StatsAggregationMethod.AVERAGE)
        final = AgentReport(
            AGENT, self._behavior, observations, reward=reward, done=True, max_step_reached=not all_gathered
        )
        return [final, self._begin_episode()]

    def _begin_episode(self) -> AgentReport:
        low, high = pellet_count_range(self._context)
        self.world.place(self._rng, int(self._rng.integers(low, high + 1)))
        self._move = 0
        self._return = 0.0
        return AgentReport(AGENT, self._behavior, self.world.observations())


def greedy_move(buffer: np.ndarray) -> int:
    """The action towards the nearest pellet in a buffer sensor observation ``(MAX_PELLETS, ENTITY_SIZE)``, along
    its larger offset; stay (0) when there is none."""
    present = buffer[:, 3] > 0.5
    if not present.any():
        return 0
    rows = buffer[present]
    dx, dy = rows[int(np.argmin(rows[:, 2])), :2]
    if abs(dx) >= abs(dy):
        return 2 if dx > 0 else 1
    return 4 if dy > 0 else 3


def heuristic(report: AgentReport) -> AgentAction:
    """Gather's heuristic: head for the nearest pellet (:func:`greedy_move`)."""
    return AgentAction(np.zeros(0, np.float32), np.array([greedy_move(report.observations[0])], np.int32))


def scene() -> Scene:
    """The Gather scene."""
    return Scene(
        name=NAME,
        description=f"Gather 1-{MAX_PELLETS} pellets in a square arena: a buffer sensor of up to {MAX_PELLETS} "
        f"pellets ({MAX_PELLETS}x{ENTITY_SIZE}, variable length) and 5 floats; 1 discrete branch of 5.",
        behaviors=(BEHAVIOR,),
        make_area=GatherArea,
        heuristic=heuristic,
    )
