"""PettingZoo games as scenes: each agent of a game is an ML-Agents agent of a behavior the game's roles name.

A ``PettingZooGame`` says how to make the game (an AEC or a Parallel environment), which behavior and team each
agent plays (``roles``: agents of one kind share a behavior; the two sides of a competitive game are one
behavior name on teams 0 and 1, ``"<name>?team=<id>"`` on the wire), and whether the agents of an area
cooperate (one group, or one group per behavior, with the shared part of the reward as the group reward).
``pettingzoo_scene(game)`` makes the ``Scene``; each area runs its own copy of the game, seeded with the area's
seed at its first reset.

How the game's steps become academy steps (``rayagents.sims.adapters.pettingzoo_areas``):

- Parallel games: every live agent requests a decision every step.
- AEC (turn-based) games: one academy step is one move; only the agent to move requests a decision, and the
  reward it got while the others moved comes with that request.
- Legal-move masks (a Dict observation with ``"observation"`` and ``"action_mask"``, or ``"action_mask"`` in
  the agent's info) become the agent's action mask (True = disabled, PettingZoo's 0); a masked action from the
  trainer is replaced by a random legal one, with a warning.
- When an agent's episode ends it sends its final report (truncation → ``max_step_reached``); when every agent's
  has ended the area resets at once and every agent requests its first decision in the same academy step.
- Each finished episode records ``<stat prefix>/Episode Length`` (game steps; moves in an AEC game).

Observation and action spaces: see ``rayagents.sims.adapters.spaces`` and ``.pettingzoo_spaces``.
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Union

import numpy as np
from pettingzoo.utils.env import AECEnv, ParallelEnv

from rayagents.sims.adapters.pettingzoo_areas import AECArea, ParallelArea
from rayagents.sims.adapters.pettingzoo_spaces import ObservationCodec, action_codec, observation_codec
from rayagents.sims.adapters.spaces import ActionAdapter
from rayagents.sims.scene import Area, AreaContext, BehaviorDef, Scene

PettingZooEnv = Union[AECEnv, ParallelEnv]
"""A PettingZoo environment of either API."""

MODULE_SCENE_PREFIX = "pettingzoo:"
"""``pettingzoo:<module>`` names a scene made from any PettingZoo environment module."""


@dataclass(frozen=True)
class AgentRole:
    """The behavior an agent of a game plays, and its team."""

    behavior: str
    """The behavior name (what the trainer YAML configures)."""
    team: int = 0
    """The team: the competing sides of one game use one behavior name on different teams."""


def agent_prefix(agent: str) -> str:
    """The kind of a PettingZoo agent: its name up to the last ``_`` (``"adversary_0"`` → ``"adversary"``)."""
    return agent.rsplit("_", 1)[0] if "_" in agent else agent


def role_by_prefix(agent: str) -> AgentRole:
    """The default role: a behavior per agent kind (``agent_prefix``), team 0."""
    return AgentRole(agent_prefix(agent))


def roles_from(table: Mapping[str, AgentRole]) -> Callable[[str], AgentRole]:
    """Roles looked up by the agent's full name first, then by its kind (``agent_prefix``).

    The returned function raises KeyError naming the agent and the table's keys for an agent it doesn't cover.
    """
    table = dict(table)

    def role(agent: str) -> AgentRole:
        if agent in table:
            return table[agent]
        prefix = agent_prefix(agent)
        if prefix in table:
            return table[prefix]
        raise KeyError(f"no role for agent '{agent}': the roles name {', '.join(sorted(table))}")

    return role


def mean_reward(env: PettingZooEnv, rewards: Mapping[str, float]) -> float:
    """The default shared part of a step's reward: the mean over the group's agents (0 for none)."""
    return float(np.mean(list(rewards.values()))) if rewards else 0.0


@dataclass(frozen=True)
class Cooperation:
    """The agents of an area act as a group (Unity's ``SimpleMultiAgentGroup``), for trainers such as POCA."""

    shared_reward: Callable[[Any, Mapping[str, float]], float] = mean_reward
    """``(env, {agent: reward of this game step})`` → the shared part of those rewards, called after each game
    step with the rewards of the group's live agents. It goes to the group as the group reward and is taken off
    each agent's own reward, so an agent's reward plus the group reward is what the game gave it. In AEC games
    the step's rewards are the environment's ``rewards`` after each move."""
    group_per_behavior: bool = False
    """False: one group per area; True: one group per behavior (each team its own) per area."""


@dataclass(frozen=True)
class PettingZooGame:
    """A PettingZoo game and how its agents map to behaviors."""

    name: str
    """The scene's name."""
    description: str
    """One line for ``rayagents-sim list``."""
    make_env: Callable[[], PettingZooEnv] = field(repr=False)
    """Makes one environment (an ``AECEnv`` or a ``ParallelEnv``); called once per area and once to read the
    spaces."""
    roles: Callable[[str], AgentRole] = role_by_prefix
    """Agent name → its behavior and team."""
    cooperation: Cooperation | None = None
    """The agents' groups and group reward; None: no groups."""
    stat_prefix: str | None = None
    """The prefix of the scene's statistics (``<prefix>/Episode Length``); None: the scene's name."""
    grids: bool = False
    """A board observation (a rank-3 box that is not an image) is sent as a grid sensor ``(C, H, W)`` rather than
    flattened, for the convolutional encoders (``vis_encode_type: match3``)."""


@dataclass(frozen=True)
class AgentPlan:
    """What an area needs to know about one agent of the game."""

    behavior: BehaviorDef
    """The agent's behavior."""
    observations: ObservationCodec
    """Its observations → sensors and mask."""
    actions: ActionAdapter
    """The trainer's actions → its game actions."""
    group_index: int
    """Its group within the area (0-based; only used when the game cooperates)."""


@dataclass(frozen=True)
class GamePlan:
    """A game's agents and behaviors, read from its spaces once."""

    game: PettingZooGame
    """The game."""
    agents: Mapping[str, AgentPlan]
    """Every possible agent of the game."""
    behaviors: tuple[BehaviorDef, ...]
    """The game's behaviors, in the order of their agents' first appearance."""
    groups_per_area: int
    """How many groups an area has (0 when the game doesn't cooperate)."""
    parallel: bool
    """True for a Parallel environment, False for an AEC one."""

    def group_id(self, area: int, agent: str) -> int:
        """The wire group id of ``agent`` in area ``area``: distinct per area and group, > 0; 0 without groups."""
        if self.groups_per_area == 0:
            return 0
        return area * self.groups_per_area + self.agents[agent].group_index + 1


def plan_game(game: PettingZooGame) -> GamePlan:
    """Read the game's agents and spaces from one environment (then closed) and check every behavior is uniform.

    ValueError when agents of one behavior (name and team) have different observations or actions, naming both
    agents; TypeError when ``make_env`` makes neither an AEC nor a Parallel environment.
    """
    env = game.make_env()
    try:
        parallel = _is_parallel(env, game.name)
        agents: dict[str, AgentPlan] = {}
        behaviors: dict[str, tuple[str, BehaviorDef]] = {}
        group_names: list[str] = []
        for agent in env.possible_agents:
            role = game.roles(agent)
            observations = observation_codec(env.observation_space(agent), agent, game.grids)
            actions = action_codec(env.action_space(agent), agent)
            behavior = BehaviorDef(role.behavior, observations.sensors, actions.spec, team=role.team)
            first = behaviors.setdefault(behavior.qualified_name, (agent, behavior))
            if first[1] != behavior:
                raise ValueError(
                    f"game '{game.name}': agents '{first[0]}' and '{agent}' play behavior "
                    f"'{behavior.qualified_name}' but sense or act differently ({first[1]} vs {behavior}); give "
                    "them different behaviors in the scene's roles"
                )
            group = behavior.qualified_name if game.cooperation and game.cooperation.group_per_behavior else ""
            if group not in group_names:
                group_names.append(group)
            agents[agent] = AgentPlan(behavior, observations, actions, group_names.index(group))
    finally:
        env.close()
    if not agents:
        raise ValueError(f"game '{game.name}' has no possible agents")
    return GamePlan(
        game=game,
        agents=agents,
        behaviors=tuple(b for _, b in behaviors.values()),
        groups_per_area=len(group_names) if game.cooperation else 0,
        parallel=parallel,
    )


def _is_parallel(env: PettingZooEnv, name: str) -> bool:
    """True for a Parallel environment, False for an AEC one; TypeError for anything else."""
    if isinstance(env, ParallelEnv):
        return True
    if isinstance(env, AECEnv) or hasattr(env, "agent_selection"):
        return False
    if hasattr(env, "possible_agents") and hasattr(env, "step"):
        return True
    raise TypeError(f"game '{name}': make_env made {type(env).__name__}, not a PettingZoo AECEnv or ParallelEnv")


def pettingzoo_scene(game: PettingZooGame) -> Scene:
    """The scene of ``game``: its behaviors, and areas that each run one copy of it."""
    plan = plan_game(game)
    area_type = ParallelArea if plan.parallel else AECArea

    def make_area(context: AreaContext) -> Area:
        return area_type(plan, context)

    return Scene(name=game.name, description=game.description, behaviors=plan.behaviors, make_area=make_area)


def module_game(name: str) -> PettingZooGame:
    """The game of scene ``pettingzoo:<module>`` or ``pettingzoo:<registry id>``, a behavior per agent kind, team 0.

    ``<module>`` (``pettingzoo.classic.tictactoe_v3``, ``mpe2.simple_v3``): the module's ``parallel_env()``
    when it has one, else its ``env()``. A registry id (``classic/tictactoe-v3``, with a ``/``): PettingZoo's
    registry, parallel when registered so, else AEC. ValueError when ``name`` is malformed or names nothing
    PettingZoo can make; ModuleNotFoundError (saying what to install) when the module can't be imported.
    """
    target = name[len(MODULE_SCENE_PREFIX) :] if name.startswith(MODULE_SCENE_PREFIX) else ""
    if not target:
        raise ValueError(
            f"'{name}' is not a PettingZoo scene name: write pettingzoo:<module> or pettingzoo:<registry id>, e.g. "
            "pettingzoo:pettingzoo.classic.tictactoe_v3 or pettingzoo:classic/tictactoe-v3"
        )
    if "/" in target:
        make, api = _registry_maker(name, target)
    else:
        make, api = _module_maker(name, target)
    return PettingZooGame(
        name=name,
        description=f"PettingZoo {target} ({api} API): one behavior per agent kind, team 0.",
        make_env=make,
        stat_prefix=target.rsplit("/", 1)[-1].rsplit(".", 1)[-1],
    )


def _module_maker(name: str, module_name: str) -> tuple[Callable[[], PettingZooEnv], str]:
    """The module's ``parallel_env`` (else ``env``) and which API it makes."""
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        raise ModuleNotFoundError(
            f"scene '{name}': can't import module '{module_name}' ({error}); install the package that provides "
            "it (PettingZoo families need extras, e.g. pip install 'pettingzoo[classic]')"
        ) from error
    parallel = getattr(module, "parallel_env", None)
    if callable(parallel):
        return parallel, "parallel"
    aec = getattr(module, "env", None)
    if callable(aec):
        return aec, "AEC"
    raise ValueError(
        f"scene '{name}': module '{module_name}' has neither parallel_env() nor env(); name a PettingZoo "
        "environment module such as pettingzoo.classic.tictactoe_v3 or mpe2.simple_v3"
    )


def _registry_maker(name: str, env_id: str) -> tuple[Callable[[], PettingZooEnv], str]:
    """PettingZoo's registry maker of ``env_id`` (parallel when registered so, else AEC) and its API."""
    import pettingzoo

    registries = {
        "parallel": getattr(pettingzoo, "parallel_registry", None),
        "AEC": getattr(pettingzoo, "aec_registry", None),
    }
    if registries["AEC"] is None:
        raise ValueError(
            f"scene '{name}': this PettingZoo ({getattr(pettingzoo, '__version__', '?')}) has no environment "
            "registry; name the environment's module instead (pettingzoo:pettingzoo.classic.tictactoe_v3)"
        )
    for api, registry in registries.items():
        if registry is not None and env_id in registry:
            return functools.partial(pettingzoo.make, "parallel" if api == "parallel" else "aec", env_id), api
    known = ", ".join(sorted(registries["AEC"]))
    raise ValueError(f"scene '{name}': PettingZoo's registry has no environment '{env_id}' (it has: {known})")
