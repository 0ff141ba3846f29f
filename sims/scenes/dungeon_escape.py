"""DungeonEscape: three agents of a group must escape a corridor, and one of them must die slaying the dragon.

The scene for cooperative credit assignment (MA-POCA): the door opens only once the dragon is slain, and the agent
that slays it leaves the episode at once, before the group's reward is paid. Only the group reward pays, so an
agent learns to sacrifice itself for its groupmates. Our own small numpy version of the idea of ML-Agents' "Dungeon
Escape" example.

Each area is a corridor of ``LENGTH`` (9) cells, 0..8 (numpy only, no simulator): the door is at cell ``DOOR`` (0)
and the dragon at cell ``DRAGON`` (8). Three agents ``agent_0``, ``agent_1``, ``agent_2`` of behavior
``DungeonEscape`` (team 0) form one group per area, group id = area index + 1.

- Episode start: the dragon is alive and the door locked; each agent is placed at a random cell in
  ``SPAWN_LOW..SPAWN_HIGH`` (2..6), independently (several may share a cell), drawn from the area's seeded numpy
  Generator. Every agent still in the episode requests a decision every step.
- Actions: one discrete branch of 3: 0 stay, 1 left (-1), 2 right (+1); positions are clipped to 0..8. An agent
  given no action stays.
- Observation: one float sensor ``VectorSensor`` of 19 floats: the agent's own cell one-hot (9), 1.0 if the
  dragon is alive else 0.0 (1), then for each cell the number of the OTHER agents of the area still in the episode
  standing on it, divided by 2 (9).
- Each step the agents still in the episode move in name order (``agent_0`` first). An agent that enters cell 8
  while the dragon is alive slays it and leaves the episode: it is reported done (not ``max_step_reached``) with
  reward 0 and group reward 0, and is not reported again this episode. The dragon is dead and the door open from
  then on; agents that reach cell 8 later just stand there, so only one agent slays (the first mover of the step
  that reaches it).
- After the moves, if the door is open and any remaining agent stands on cell 0, the group escapes: every
  remaining agent is reported done (not ``max_step_reached``) with group reward +1.0 and reward 0, and the episode
  ends. A slaying and an escape may happen in the same step (a groupmate already waiting at the door): the slayer
  is reported done with group reward 0, before the others.
- Otherwise the episode is cut off after ``MAX_STEPS`` (40) steps: every remaining agent is reported done with
  ``max_step_reached``, rewards 0.
- When an episode ends (escape or time limit) the next one starts in the same step: after the done reports, all
  three agents, the slayer included, are reported again with their new episode's first decision requests.
- Individual rewards are always 0: only the group reward pays.

Deterministic under the area's seed (the generator is used only to place the agents). Each finished episode records
``DungeonEscape/Escaped`` (1.0 or 0.0) and ``DungeonEscape/Episode Length`` (steps), both AVERAGE. The heuristic
(:func:`heuristic`) decides from the observation alone: while the dragon is alive, an agent with no other agent
strictly to its right walks right to the dragon (agents tied on the right-most cell all walk right; the first of
them in name order slays and the others then turn back), every other agent walks left to the door; once the dragon
is dead every agent walks left. It escapes in every episode, within 14 steps (``rayagents-sim record DungeonEscape
--heuristic``).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from rayagents.protocol.side_channels.stats import StatsAggregationMethod
from rayagents.protocol.types import ActionSpec
from rayagents.sims.scene import AgentAction, AgentReport, Area, AreaContext, BehaviorDef, Scene, SensorSpec

NAME = "DungeonEscape"
"""The scene's name, and its behavior's."""
AGENTS = ("agent_0", "agent_1", "agent_2")
"""The names of an area's agents, in the order they move."""

LENGTH = 9
"""The corridor's cells, 0 .. LENGTH - 1."""
DOOR = 0
"""The door's cell: the group escapes when one of its agents stands here with the dragon dead."""
DRAGON = LENGTH - 1
"""The dragon's cell: the agent that enters it while the dragon is alive slays it and leaves the episode."""
SPAWN_LOW = 2
"""The lowest cell an agent is placed on at an episode's start."""
SPAWN_HIGH = 6
"""The highest cell an agent is placed on at an episode's start."""
MAX_STEPS = 40
"""Steps after which an episode is cut off."""
ESCAPE_REWARD = 1.0
"""The group reward each remaining agent receives when the group escapes."""

STAY, LEFT, RIGHT = 0, 1, 2
"""The actions of the one discrete branch."""
MOVES = np.array([0, -1, 1])
"""The cell offset of each action: stay, left, right."""
OBSERVATION_SIZE = 2 * LENGTH + 1
"""Floats per observation: own cell one-hot, dragon alive, other agents per cell / 2."""
DRAGON_FLAG = LENGTH
"""The observation's index of the dragon-alive flag."""

VECTOR_SENSOR = SensorSpec("VectorSensor", (OBSERVATION_SIZE,))
"""An agent's view of the corridor."""
BEHAVIOR = BehaviorDef(name=NAME, sensors=(VECTOR_SENSOR,), action_spec=ActionSpec(0, (len(MOVES),)))
"""The agents' behavior."""


class DungeonWorld:
    """The state of one corridor: the agents and the dragon (public so that a test can set up a situation)."""

    def __init__(self) -> None:
        self.positions = np.zeros(len(AGENTS), dtype=np.int64)
        """Each agent's cell, in ``AGENTS`` order (a slayer's stays at ``DRAGON``)."""
        self.present = np.ones(len(AGENTS), dtype=bool)
        """Which agents are still in the episode."""
        self.dragon_alive = True
        """False once the dragon is slain: the door is open."""
        self.steps = 0
        """Steps taken this episode."""

    def place(self, rng: np.random.Generator) -> None:
        """Starts an episode: the agents at random cells in SPAWN_LOW..SPAWN_HIGH, the dragon alive."""
        self.positions = rng.integers(SPAWN_LOW, SPAWN_HIGH + 1, size=len(AGENTS)).astype(np.int64)
        self.present = np.ones(len(AGENTS), dtype=bool)
        self.dragon_alive = True
        self.steps = 0

    def advance(self, moves: Sequence[int]) -> int | None:
        """One step: the agents still in the episode move in order (``moves[i]`` for agent i); the index of the
        agent that slew the dragon this step, or None."""
        slayer = None
        for index, move in enumerate(moves):
            if not self.present[index]:
                continue
            cell = int(np.clip(self.positions[index] + MOVES[move], 0, LENGTH - 1))
            self.positions[index] = cell
            if cell == DRAGON and self.dragon_alive:
                self.dragon_alive = False
                self.present[index] = False
                slayer = index
        self.steps += 1
        return slayer

    @property
    def escaped(self) -> bool:
        """True when the door is open and an agent still in the episode stands on it."""
        return not self.dragon_alive and bool(np.any(self.present & (self.positions == DOOR)))

    def observation(self, index: int) -> np.ndarray:
        """Agent ``index``'s observation: own cell one-hot, dragon alive, the other present agents per cell / 2."""
        observation = np.zeros(OBSERVATION_SIZE, np.float32)
        observation[self.positions[index]] = 1.0
        observation[DRAGON_FLAG] = 1.0 if self.dragon_alive else 0.0
        others = self.present.copy()
        others[index] = False
        occupancy = np.bincount(self.positions[others], minlength=LENGTH)
        observation[DRAGON_FLAG + 1 :] = occupancy / 2.0
        return observation


class DungeonEscapeArea(Area):
    """One corridor with three agents in one group."""

    def __init__(self, context: AreaContext) -> None:
        self._context = context
        self._rng = np.random.default_rng(context.seed)
        self.world = DungeonWorld()
        """The corridor's state."""
        self.group_id = context.index + 1
        """The area's group: its index + 1."""
        self._behavior = BEHAVIOR.qualified_name

    def reset(self) -> list[AgentReport]:
        """Start a new episode; all three agents request their first decision."""
        return self._begin_episode()

    def step(self, actions: Mapping[str, AgentAction]) -> list[AgentReport]:
        """Move the agents; report a slayer's end, then the others' decision requests, or the episode's end for the
        remaining agents followed by the next episode's first requests."""
        world = self.world
        moves = [int(actions[name].discrete[0]) if name in actions else STAY for name in AGENTS]
        slayer = world.advance(moves)
        reports = []
        if slayer is not None:
            reports.append(self._report(slayer, done=True))
        remaining = [index for index in range(len(AGENTS)) if world.present[index]]
        escaped = world.escaped
        if not escaped and world.steps < MAX_STEPS:
            return reports + [self._report(index) for index in remaining]
        group_reward = ESCAPE_REWARD if escaped else 0.0
        reports += [
            self._report(index, done=True, max_step_reached=not escaped, group_reward=group_reward)
            for index in remaining
        ]
        stats = self._context.stats
        stats.add(f"{NAME}/Escaped", 1.0 if escaped else 0.0, StatsAggregationMethod.AVERAGE)
        stats.add(f"{NAME}/Episode Length", float(world.steps), StatsAggregationMethod.AVERAGE)
        return reports + self._begin_episode()

    def _begin_episode(self) -> list[AgentReport]:
        self.world.place(self._rng)
        return [self._report(index) for index in range(len(AGENTS))]

    def _report(
        self, index: int, *, done: bool = False, max_step_reached: bool = False, group_reward: float = 0.0
    ) -> AgentReport:
        return AgentReport(
            AGENTS[index],
            self._behavior,
            (self.world.observation(index),),
            reward=0.0,
            done=done,
            max_step_reached=max_step_reached,
            group_id=self.group_id,
            group_reward=group_reward,
        )


def heuristic_move(observation: np.ndarray) -> int:
    """The heuristic's action for one observation ``(OBSERVATION_SIZE,)``: while the dragon is alive, RIGHT when no
    other agent stands strictly right of this one (ties go right too), LEFT otherwise; LEFT once it is dead."""
    if observation[DRAGON_FLAG] < 0.5:
        return LEFT
    cell = int(np.argmax(observation[:LENGTH]))
    others = observation[DRAGON_FLAG + 1 :]
    return LEFT if np.any(others[cell + 1 :] > 0) else RIGHT


def heuristic(report: AgentReport) -> AgentAction:
    """DungeonEscape's heuristic: the right-most agents slay the dragon, the others wait at the door
    (:func:`heuristic_move`)."""
    return AgentAction(np.zeros(0, np.float32), np.array([heuristic_move(report.observations[0])], np.int32))


def scene() -> Scene:
    """The DungeonEscape scene."""
    return Scene(
        name=NAME,
        description=f"Dungeon escape: 3 agents of a group in a {LENGTH}-cell corridor, one slays the dragon and "
        f"leaves so the others escape; {OBSERVATION_SIZE} floats, 1 discrete branch of {len(MOVES)}.",
        behaviors=(BEHAVIOR,),
        make_area=DungeonEscapeArea,
        heuristic=heuristic,
    )
