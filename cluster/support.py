"""What the dry run says of a run before it starts: the environment it trains in (and whether it can be found), and
one line per configured behavior. Every setting the configuration accepts is trained."""

from __future__ import annotations

import os

from rayagents.actors.environment import DEFAULT_EDITOR_PORT
from rayagents.actors.builds import is_build_archive
from rayagents.actors.player import SIM_PREFIX, resolve_executable
from rayagents.configs import ConfigError, TrainerSettings
from rayagents.protocol.exceptions import UnityEnvironmentException
from rayagents.sims.scenes import scene_names


_SCENE_FAMILIES: tuple[str, ...] = ("gym:", "pettingzoo:")
"""Prefixes of the simulation host's open-ended scene names (any Gymnasium or PettingZoo environment)."""


def behavior_summary(name: str, settings: TrainerSettings) -> str:
    """One line about a configured behavior: its trainer and max_steps."""
    return f"behavior {name}: trainer {settings.trainer_type}, max_steps {settings.max_steps}"


def environment_summary(env_path: str | None) -> str:
    """One line saying which environment the run trains in."""
    if env_path is None:
        return f"environment: the Unity Editor on port {DEFAULT_EDITOR_PORT} (press Play when asked)"
    if env_path.startswith(SIM_PREFIX):
        return f"environment: scene {env_path[len(SIM_PREFIX):]} of the bundled simulation host"
    return f"environment: the Unity player {env_path}"


def check_environment(env_path: str | None) -> str | None:
    """Checks `--env`: a ConfigError for a simulation host scene that does not exist.

    Returns a warning when a Unity build is not found on this machine (it may exist on the cluster's
    machines only, where the players run), else None."""
    if env_path is None:
        return None
    if env_path.startswith(SIM_PREFIX):
        scene = env_path[len(SIM_PREFIX) :]
        if scene in scene_names() or scene.startswith(_SCENE_FAMILIES):
            return None
        raise ConfigError(
            f"--env {env_path!r} (env_settings.env_path) names no scene of the simulation host; the scenes are: "
            f"{', '.join(SIM_PREFIX + name for name in scene_names())}, or {SIM_PREFIX}gym:<env id> and "
            f"{SIM_PREFIX}pettingzoo:<module> for any Gymnasium or PettingZoo environment"
        )
    if is_build_archive(env_path):
        return None  # fetched and unpacked on each player node (a missing archive fails the run at start)
    try:
        resolve_executable(env_path)
    except UnityEnvironmentException:
        return (
            f"no Unity player was found at --env {env_path!r} on this machine (looked from "
            f"{os.getcwd()}); the players run on the cluster's machines, so the build must be there at this path"
        )
    return None
