"""What this version of rayagents can train: settings the schema accepts but training refuses, for now.

The dry run lists them as warnings; the run refuses a behavior that uses any of them."""

from __future__ import annotations

import os

from rayagents.actors.environment import DEFAULT_EDITOR_PORT
from rayagents.actors.builds import is_build_archive
from rayagents.actors.player import SIM_PREFIX, resolve_executable
from rayagents.configs import ConfigError, RunOptions, TrainerSettings
from rayagents.learner.registry import trainer_types
from rayagents.protocol.exceptions import UnityEnvironmentException
from rayagents.sims.scenes import scene_names


_SCENE_FAMILIES: tuple[str, ...] = ("gym:", "pettingzoo:")
"""Prefixes of the simulation host's open-ended scene names (any Gymnasium or PettingZoo environment)."""


def unsupported_features(settings: TrainerSettings) -> tuple[str, ...]:
    """The settings of a behavior that this version cannot train yet, each in the YAML's words."""
    found: list[str] = []
    if settings.trainer_type not in trainer_types():
        found.append(f"trainer_type {settings.trainer_type}")
    if settings.self_play is not None:
        found.append("self_play")
    return tuple(found)


def unsupported_messages(options: RunOptions) -> list[str]:
    """A message for each configured behavior (and default_settings) and each environment parameter that uses
    settings the configuration accepts but this version cannot train yet."""
    problems: list[str] = []
    configured: list[tuple[str | None, TrainerSettings]] = list(options.behaviors.items())
    if options.default_settings is not None:
        configured.append((None, options.default_settings))
    for name, settings in configured:
        message = unsupported_warning(name, settings)
        if message is not None:
            problems.append(message)
    for key, parameter in (options.environment_parameters or {}).items():
        if len(parameter.curriculum) > 1:
            problems.append(
                f"environment_parameters.{key} is a curriculum of {len(parameter.curriculum)} lessons, which the "
                "configuration accepts but this version of rayagents cannot train yet: training it will be refused "
                "(a single value or sampler per parameter is supported)"
            )
    return problems


def run_refusal(options: RunOptions) -> str | None:
    """Why this version refuses to train ``options``, or None."""
    problems = unsupported_messages(options)
    if not problems:
        return None
    return "; ".join(problems).replace("training it will be refused", "training is refused")


def behavior_summary(name: str, settings: TrainerSettings) -> str:
    """One line about a configured behavior: its trainer, max_steps, and what is not yet supported."""
    line = f"behavior {name}: trainer {settings.trainer_type}, max_steps {settings.max_steps}"
    missing = unsupported_features(settings)
    if missing:
        line += f"; not yet supported: {', '.join(missing)}"
    return line


def unsupported_warning(name: str | None, settings: TrainerSettings) -> str | None:
    """The warning for behavior `name` (None: default_settings) using settings this version cannot train yet.

    None when it can be trained."""
    missing = unsupported_features(settings)
    if not missing:
        return None
    where = "default_settings" if name is None else f"behavior {name!r}"
    return (
        f"{where} uses {', '.join(missing)}, which the configuration accepts but this version of "
        "rayagents cannot train yet: training it will be refused (it trains trainer_type "
        f"{', '.join(trainer_types())})"
    )


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
