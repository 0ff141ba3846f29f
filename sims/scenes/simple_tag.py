"""SimpleTag: MPE2's simple_tag_v3, three slower predators chase one faster prey among two obstacles.

Two behaviors: ``Predator`` (``adversary_0..2``, 16 floats) and ``Prey`` (``agent_0``, 14 floats), each one float
sensor ``VectorSensor`` (own velocity and position, obstacles' and others' relative positions, the prey's
velocity) and one discrete branch of 5 actions (stay, left, right, down, up). Predators get +10 each time any of
them touches the prey, which gets -10 and a penalty for leaving the field. Episodes are cut off after 25 steps
(max_step_reached). Records ``SimpleTag/Episode Length``.
"""

from __future__ import annotations

from mpe2 import simple_tag_v3
from pettingzoo.utils.env import ParallelEnv

from rayagents.sims.adapters.pettingzoo import AgentRole, PettingZooGame, pettingzoo_scene, roles_from
from rayagents.sims.scene import Scene

NAME = "SimpleTag"
"""The scene's name."""
MAX_CYCLES = 25
"""Steps after which an episode is cut off."""


def make_env() -> ParallelEnv:
    """One simple_tag_v3 game with discrete actions."""
    return simple_tag_v3.parallel_env(
        num_good=1, num_adversaries=3, num_obstacles=2, max_cycles=MAX_CYCLES, continuous_actions=False
    )


def scene() -> Scene:
    """The SimpleTag scene."""
    return pettingzoo_scene(
        PettingZooGame(
            name=NAME,
            description="MPE2 simple_tag_v3: 3 Predator chase 1 Prey (16 / 14 floats, 5 actions each).",
            make_env=make_env,
            roles=roles_from({"adversary": AgentRole("Predator"), "agent": AgentRole("Prey")}),
        )
    )
