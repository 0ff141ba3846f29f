"""The named scenes of the simulation host, each importable on demand (a scene's simulator loads only when run)."""

from __future__ import annotations

import importlib
import logging
from types import MappingProxyType
from typing import Mapping

from rayagents.sims.scene import Scene

_SCENE_MODULES: Mapping[str, str] = MappingProxyType(
    {
        "CartPole": "rayagents.sims.scenes.cartpole",
        "CartPoleMemory": "rayagents.sims.scenes.cartpole:cartpole_memory",
        "CartPoleVisual": "rayagents.sims.scenes.cartpole:cartpole_visual",
        "Pendulum": "rayagents.sims.scenes.gymnasium_scenes:pendulum",
        "LunarLander": "rayagents.sims.scenes.gymnasium_scenes:lunar_lander",
        "MountainCar": "rayagents.sims.scenes.gymnasium_scenes:mountain_car",
        "HalfCheetah": "rayagents.sims.scenes.gymnasium_scenes:half_cheetah",
        "Hopper": "rayagents.sims.scenes.gymnasium_scenes:hopper",
        "Walker2d": "rayagents.sims.scenes.gymnasium_scenes:walker2d",
        "Ant": "rayagents.sims.scenes.gymnasium_scenes:ant",
        "ConnectFour": "rayagents.sims.scenes.connect_four",
        "SimpleSpread": "rayagents.sims.scenes.simple_spread",
        "SimpleTag": "rayagents.sims.scenes.simple_tag",
        "Gather": "rayagents.sims.scenes.gather",
        "DungeonEscape": "rayagents.sims.scenes.dungeon_escape",
    }
)
"""Scene name → the module whose ``scene()`` function builds it, or ``module:function`` naming the function."""

_EXAMPLE_CONFIGS: Mapping[str, str] = MappingProxyType(
    {
        "CartPole": "ppo/CartPole.yaml",
        "CartPoleMemory": "ppo/CartPoleMemory.yaml",
        "CartPoleVisual": "ppo/CartPoleVisual.yaml",
        "Pendulum": "sac/Pendulum.yaml",
        "LunarLander": "ppo/LunarLander.yaml",
        "MountainCar": "ppo/MountainCar.yaml",
        "HalfCheetah": "sac/HalfCheetah.yaml",
        "Hopper": "sac/Hopper.yaml",
        "Walker2d": "sac/Walker2d.yaml",
        "Ant": "sac/Ant.yaml",
        "ConnectFour": "ppo/ConnectFour.yaml",
        "SimpleSpread": "poca/SimpleSpread.yaml",
        "SimpleTag": "ppo/SimpleTag.yaml",
        "Gather": "ppo/Gather.yaml",
        "DungeonEscape": "poca/DungeonEscape.yaml",
    }
)
"""Scene name → its example trainer config under the package's ``configs/`` folder (``<trainer_type>/<Scene>.yaml``,
ML-Agents' layout). The file itself belongs to ``rayagents.configs``; the simulation host only names it."""


class UnknownSceneError(KeyError):
    """``--scene`` names no scene of the simulation host."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name
        """The name that was asked for."""

    def __str__(self) -> str:
        return (
            f"No scene named '{self.name}'. Known scenes: {', '.join(scene_names())}. Any Gymnasium environment "
            "or PettingZoo game is a scene too: 'gym:<env id>' (e.g. gym:CartPole-v1, 'gym:module:EnvId' for an id "
            "a module registers) and 'pettingzoo:<module>' (e.g. pettingzoo:pettingzoo.classic.connect_four_v3)."
        )


def scene_names() -> tuple[str, ...]:
    """The names of every scene, in a stable order."""
    return tuple(_SCENE_MODULES)


def example_config_name(name: str) -> str | None:
    """The example trainer config of scene ``name`` as ``configs/<trainer_type>/<Scene>.yaml``, or None."""
    relative = _EXAMPLE_CONFIGS.get(name)
    return None if relative is None else f"configs/{relative}"


def get_scene(name: str) -> Scene:
    """The scene called ``name``; UnknownSceneError (listing the known names) otherwise."""
    if name.startswith("pettingzoo:"):  # pettingzoo:<module> or pettingzoo:<registry id>, any PettingZoo game
        return importlib.import_module("rayagents.sims.scenes.pettingzoo_module").scene_for(name)
    if name.startswith("gym:"):  # gym:[module:]<env id>[?options], any registered Gymnasium environment
        return importlib.import_module("rayagents.sims.adapters.gymnasium").scene_from_id(name[len("gym:") :])
    module_name = _SCENE_MODULES.get(name)
    if module_name is None:
        raise UnknownSceneError(name)
    module_name, _, function = module_name.partition(":")
    scene = getattr(importlib.import_module(module_name), function or "scene")()
    if scene.name != name:
        raise RuntimeError(f"module {module_name} builds scene '{scene.name}', not '{name}'")
    return scene


def scenes_with_heuristics() -> tuple[str, ...]:
    """The named scenes that declare a heuristic (each is built to find out, its simulators' log records muted;
    one that cannot be built here is left out)."""
    names = []
    muted = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        for name in scene_names():
            try:
                if get_scene(name).heuristic is not None:
                    names.append(name)
            except Exception:  # a scene whose simulator is not installed here has no heuristic to offer
                continue
    finally:
        logging.disable(muted)
    return tuple(names)
