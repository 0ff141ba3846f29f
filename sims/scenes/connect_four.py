"""ConnectFour: PettingZoo's connect_four_v3, two players taking turns, for self-play.

Behavior ``ConnectFour`` on two teams: ``player_0`` (who moves first) is ``ConnectFour?team=0``, ``player_1`` is
``ConnectFour?team=1``. One grid sensor ``GridSensor`` of floats ``(2, 6, 7)``, as Unity's grid and Match-3 sensors
send a board: channel 0 the deciding player's pieces, channel 1 the opponent's, over the 6 rows (top first) and 7
columns; the trainer's convolutional encoders read it (``vis_encode_type: match3``). One discrete branch of 7
actions (the column to drop a piece in); full columns are masked. Only the player to move requests a decision each step. A win gives +1 to the winner and -1 to the
loser in their final reports, a draw 0. Each game records ``ConnectFour/Episode Length`` (moves).
"""

from __future__ import annotations

from pettingzoo.classic.connect_four.connect_four import env as connect_four_env

from rayagents.sims.adapters.pettingzoo import AgentRole, PettingZooGame, pettingzoo_scene, roles_from
from rayagents.sims.scene import Scene

NAME = "ConnectFour"
"""The scene's name, and its behavior's."""


def scene_game() -> PettingZooGame:
    """The PettingZoo game the scene plays, with its roles and its board sent as a grid."""
    return PettingZooGame(
        name=NAME,
        description="PettingZoo connect_four_v3: two teams of ConnectFour take turns (a 2x6x7 grid, 7 actions, "
        "masks).",
        make_env=connect_four_env,
        roles=roles_from({"player_0": AgentRole(NAME, team=0), "player_1": AgentRole(NAME, team=1)}),
        grids=True,
    )


def scene() -> Scene:
    """The ConnectFour scene."""
    return pettingzoo_scene(scene_game())
