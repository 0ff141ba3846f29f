"""SimpleSpread: MPE2's simple_spread_v3, three agents that cooperate to cover three landmarks.

Behavior ``SimpleSpread`` for ``agent_0..2``: one float sensor ``VectorSensor`` of 18 floats (own velocity and
position, landmarks' and other agents' relative positions, communication), one discrete branch of 5 actions
(stay, left, right, down, up). The agents of an area form one group (id = area index + 1). The game's reward
is ``(1 - local_ratio) * global + local_ratio * own`` (local_ratio 0.5): the global part (minus the sum of
each landmark's distance to its closest agent) is the group reward, the own part (-1 per collision) each
agent's reward. Episodes are cut off after 25 steps (max_step_reached). Records ``SimpleSpread/Episode Length``.
"""

from __future__ import annotations

from typing import Any, Mapping

from mpe2 import simple_spread_v3
from pettingzoo.utils.env import ParallelEnv

from rayagents.sims.adapters.pettingzoo import AgentRole, Cooperation, PettingZooGame, pettingzoo_scene, roles_from
from rayagents.sims.scene import Scene

NAME = "SimpleSpread"
"""The scene's name, and its behavior's."""
LOCAL_RATIO = 0.5
"""The weight of each agent's own reward (collisions); the global reward weighs 1 - LOCAL_RATIO."""
MAX_CYCLES = 25
"""Steps after which an episode is cut off."""


def make_env() -> ParallelEnv:
    """One simple_spread_v3 game with discrete actions."""
    return simple_spread_v3.parallel_env(N=3, local_ratio=LOCAL_RATIO, max_cycles=MAX_CYCLES, continuous_actions=False)


def global_part(env: Any, rewards: Mapping[str, float]) -> float:
    """The shared part of this step's rewards: the scenario's global reward weighted by 1 - local_ratio."""
    game = env.unwrapped
    return (1.0 - LOCAL_RATIO) * float(game.scenario.global_reward(game.world)) if rewards else 0.0


def scene() -> Scene:
    """The SimpleSpread scene."""
    return pettingzoo_scene(
        PettingZooGame(
            name=NAME,
            description="MPE2 simple_spread_v3: 3 cooperating agents, one group per area (18 floats, 5 actions).",
            make_env=make_env,
            roles=roles_from({"agent": AgentRole(NAME)}),
            cooperation=Cooperation(shared_reward=global_part),
        )
    )
