"""Gymnasium's classic-control, Box2D and MuJoCo benchmarks as named scenes, one agent per area.

Each scene's behavior is named like the scene; episodes record ``<Scene>/Episode Return`` and
``<Scene>/Episode Length``. Continuous actions arrive in [-1, 1] and are mapped onto the environment's bounds.

- ``Pendulum``: Pendulum-v1, swing up and hold (3 floats; 1 continuous torque in [-2, 2]); 200 steps.
- ``LunarLander``: LunarLander-v3, land between the flags (8 floats; 1 branch of 4 engines); ≤ 1000 steps.
- ``MountainCar``: MountainCar-v0, the sparse-reward one: -1 per step until the car reaches the flag
  (2 floats; 1 branch of 3); 200 steps. Environment parameters: ``goal_position`` (where the flag stands, 0.5; a
  curriculum can start it at -0.4, just right of the start positions, where random play reaches it in about one
  episode in two), ``force`` (0.001) and ``gravity`` (0.0025).
- ``HalfCheetah``, ``Hopper``, ``Walker2d``, ``Ant``: the MuJoCo ``-v5`` locomotion tasks (17, 11, 17, 105 floats;
  6, 3, 6, 8 continuous joint torques); 1000 steps. Environment parameters: see ``adapters/parameters.py``
  (``gravity``, ``timestep``, ``mass_scale``, ``friction_scale``, ...).
"""

from __future__ import annotations

from dataclasses import replace

from rayagents.sims.adapters.gymnasium import GymnasiumEnv, gymnasium_scene
from rayagents.sims.scene import Scene


def pendulum() -> Scene:
    """The Pendulum scene."""
    return gymnasium_scene(
        "Pendulum",
        GymnasiumEnv("Pendulum-v1"),
        description="Gymnasium Pendulum-v1: swing a pendulum up and hold it (3 floats, 1 continuous torque).",
    )


def lunar_lander() -> Scene:
    """The LunarLander scene (discrete engines)."""
    return gymnasium_scene(
        "LunarLander",
        GymnasiumEnv("LunarLander-v3"),
        description="Gymnasium LunarLander-v3: land between the flags (8 floats, 1 discrete branch of 4).",
    )


def mountain_car() -> Scene:
    """The MountainCar scene (sparse reward)."""
    return gymnasium_scene(
        "MountainCar",
        GymnasiumEnv("MountainCar-v0"),
        description="Gymnasium MountainCar-v0: drive up the hill; -1 per step until the flag "
        "(2 floats, 1 discrete branch of 3).",
    )


def half_cheetah() -> Scene:
    """The HalfCheetah scene."""
    return _mujoco("HalfCheetah", "run forward")


def hopper() -> Scene:
    """The Hopper scene."""
    return _mujoco("Hopper", "hop forward without falling")


def walker2d() -> Scene:
    """The Walker2d scene."""
    return _mujoco("Walker2d", "walk forward without falling")


def ant() -> Scene:
    """The Ant scene."""
    return _mujoco("Ant", "walk forward on four legs")


def _mujoco(name: str, task: str) -> Scene:
    """The MuJoCo scene ``name`` (Gymnasium ``<name>-v5``)."""
    env_id = f"{name}-v5"
    scene = gymnasium_scene(name, GymnasiumEnv(env_id), description="")
    behavior = scene.behaviors[0]
    description = (
        f"Gymnasium MuJoCo {env_id}: {task} ({behavior.sensors[0].shape[0]} floats, "
        f"{behavior.action_spec.continuous_size} continuous joint torques)."
    )
    return replace(scene, description=description)
