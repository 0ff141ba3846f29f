"""The example trainer configs shipped with the package, laid out as ML-Agents' own ``config/`` folder.

Each scene's example lives in ``configs/<trainer_type>/<Scene>.yaml`` (``configs/ppo/CartPole.yaml``,
``configs/sac/Pendulum.yaml``) and trains the simulation host's scene of that name; ``rayagents-sim list`` names
them. A few more train a scene another way (:data:`EXAMPLE_VARIANTS`), as ML-Agents ships ``ppo/PyramidsRND.yaml``
and ``imitation/``.
"""

from __future__ import annotations

from importlib import resources
from importlib.abc import Traversable

from rayagents.configs.errors import ConfigError

TRAINER_FOLDERS = ("ppo", "sac", "poca")
"""The folders of example configs, one per ``trainer_type`` (ML-Agents' ``config/ppo``, ``config/sac``, ...)."""
IMITATION_FOLDER = "imitation"
"""The folder of the examples that learn from demonstrations (ML-Agents' ``config/imitation``)."""
EXAMPLE_VARIANTS = ("ppo/MountainCarRND.yaml", "ppo/MountainCarCurriculum.yaml", "imitation/CartPole.yaml")
"""The examples beyond one per scene, by path under ``configs/``: MountainCar explored with RND instead of
curiosity, MountainCar taught with a curriculum that moves the flag up the hill, and CartPole imitated from a
recorded demonstration with GAIL and behavioral cloning."""


def example_configs() -> dict[str, Traversable]:
    """Every scene's example config by scene name (the file's stem), each a readable package resource."""
    root = resources.files("rayagents.configs")
    found: dict[str, Traversable] = {}
    for folder in TRAINER_FOLDERS:
        for entry in sorted(root.joinpath(folder).iterdir(), key=lambda e: e.name):
            if entry.name.endswith(".yaml") and f"{folder}/{entry.name}" not in EXAMPLE_VARIANTS:
                found[entry.name.removesuffix(".yaml")] = entry
    return found


def all_example_configs() -> dict[str, Traversable]:
    """Every example config, the variants too, by path under ``configs/`` (``ppo/CartPole.yaml``)."""
    root = resources.files("rayagents.configs")
    found = {f"{resource.parent.name}/{resource.name}": resource for resource in example_configs().values()}
    for path in EXAMPLE_VARIANTS:
        folder, name = path.split("/")
        found[path] = root.joinpath(folder).joinpath(name)
    return found


def example_config(scene: str) -> Traversable:
    """The example config of a scene (``CartPole`` → ``configs/ppo/CartPole.yaml``); a ConfigError names the others."""
    examples = example_configs()
    if scene not in examples:
        raise ConfigError(f"no example trainer config for scene {scene!r}; the examples are: {', '.join(examples)}")
    return examples[scene]
