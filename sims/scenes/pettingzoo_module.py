"""``pettingzoo:<module>`` or ``pettingzoo:<registry id>``: a scene made from any PettingZoo game, by module
(``pettingzoo:mpe2.simple_v3``: its ``parallel_env()``, else its ``env()``) or by PettingZoo registry id
(``pettingzoo:classic/tictactoe-v3``), with one behavior per agent kind (the agent's name up to its last ``_``),
team 0. Statistics are recorded under the game's last name (``tictactoe_v3/Episode Length``).
"""

from __future__ import annotations

from rayagents.sims.adapters.pettingzoo import module_game, pettingzoo_scene
from rayagents.sims.scene import Scene


def scene_for(name: str) -> Scene:
    """The scene ``name`` (``pettingzoo:<module>`` or ``pettingzoo:<registry id>``)."""
    return pettingzoo_scene(module_game(name))
