"""Builds of a scene: a folder laid out like a Unity Linux player, so tools that launch builds by path can run it.

``write_build("CartPole", out)`` writes ``out/CartPole.x86_64`` (an executable shell script that runs the scene
with this Python interpreter, passing every argument through) and ``out/CartPole_Data/scene.json`` (what the
build holds).
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

from rayagents.sims.scenes import get_scene

DESCRIPTION_FILE = "scene.json"
"""The file in ``<scene>_Data/`` that describes the build."""


def write_build(scene: str, out_dir: Path) -> Path:
    """Write the build of ``scene`` into ``out_dir`` (created if needed) and return the executable's path.

    The executable runs ``<this interpreter> -m rayagents.sims --scene <scene> "$@"``, so the build works on
    machines where this interpreter and the rayagents package exist at the same path. Raises
    UnknownSceneError (listing the known scenes) for an unknown scene.
    """
    definition = get_scene(scene)
    out_dir = Path(out_dir)
    data_dir = out_dir / f"{scene}_Data"
    data_dir.mkdir(parents=True, exist_ok=True)
    executable = out_dir / f"{scene}.x86_64"
    executable.write_text(
        "#!/bin/sh\n"
        f"# rayagents simulation host: scene '{scene}'. Takes the arguments of a Unity player\n"
        "# (--mlagents-port PORT, -logFile PATH, -batchmode, -nographics).\n"
        f"exec {shlex.quote(sys.executable)} -m rayagents.sims --scene {shlex.quote(scene)} \"$@\"\n"
    )
    executable.chmod(0o755)
    description = {
        "scene": definition.name,
        "description": definition.description,
        "behaviors": [
            {
                "name": behavior.qualified_name,
                "sensors": [{"name": s.name, "shape": list(s.shape), "kind": s.kind.value} for s in behavior.sensors],
                "continuous_actions": behavior.action_spec.continuous_size,
                "discrete_branches": list(behavior.action_spec.discrete_branches),
            }
            for behavior in definition.behaviors
        ],
        "interpreter": sys.executable,
    }
    (data_dir / DESCRIPTION_FILE).write_text(json.dumps(description, indent=2) + "\n")
    return executable
