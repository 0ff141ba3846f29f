"""The example trainer configs shipped with the package, laid out as ML-Agents' own ``config/`` folder.

Each lives in ``configs/<trainer_type>/<Scene>.yaml`` (``configs/ppo/CartPole.yaml``, ``configs/sac/Pendulum.yaml``)
and trains the simulation host's scene of that name; ``rayagents-sim list`` names them.
"""

from __future__ import annotations

from importlib import resources
from importlib.abc import Traversable

from rayagents.configs.errors import ConfigError

TRAINER_FOLDERS = ("ppo", "sac", "poca")
"""The folders of example configs, one per ``trainer_type`` (ML-Agents' ``config/ppo``, ``config/sac``, ...)."""


def example_configs() -> dict[str, Traversable]:
    """Every example config by scene name (the file's stem), each a readable package resource."""
    root = resources.files("rayagents.configs")
    found: dict[str, Traversable] = {}
    for folder in TRAINER_FOLDERS:
        for entry in sorted(root.joinpath(folder).iterdir(), key=lambda e: e.name):
            if entry.name.endswith(".yaml"):
                found[entry.name.removesuffix(".yaml")] = entry
    return found


def example_config(scene: str) -> Traversable:
    """The example config of a scene (``CartPole`` → ``configs/ppo/CartPole.yaml``); a ConfigError names the others."""
    examples = example_configs()
    if scene not in examples:
        raise ConfigError(f"no example trainer config for scene {scene!r}; the examples are: {', '.join(examples)}")
    return examples[scene]
