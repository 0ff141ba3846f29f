"""Builds of a scene: a folder laid out like a Unity Linux player, so tools that launch builds by path can run it.

``write_build("CartPole", out)`` writes ``out/CartPole.x86_64`` (an executable shell script that runs the scene
with this Python interpreter, passing every argument through) and ``out/CartPole_Data/scene.json`` (what the
build holds). Scene names that are not plain file names (``gym:ALE/Pong-v5``, ``pettingzoo:<module>``, options
after ``?``) give sanitised file names (``gym_ALE_Pong-v5.x86_64``); the script still runs the real name.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path

from rayagents.sims.scenes import get_scene

DESCRIPTION_FILE = "scene.json"
"""The file in ``<scene>_Data/`` that describes the build."""

_UNSAFE = re.compile(r"[^A-Za-z0-9._=+-]")
"""A character a build's file name does not keep (``/``, ``:``, ``?``, ``&``, spaces, quotes, ...)."""


def build_name(scene: str) -> str:
    """The file name stem of ``scene``'s build: every character other than letters, digits and ``._=+-`` → ``_``.

    ``gym:ALE/Pong-v5`` → ``gym_ALE_Pong-v5``; plain scene names (``CartPole``) are kept as they are. Two
    scenes that differ only in such characters share a stem: build them into different folders.
    """
    return _UNSAFE.sub("_", scene)


def write_build(scene: str, out_dir: Path) -> Path:
    """Write the build of ``scene`` into ``out_dir`` (created if needed) and return the executable's path.

    The executable is ``out_dir/<build_name(scene)>.x86_64`` (with ``<build_name(scene)>_Data/`` beside it); it
    runs ``<this interpreter> -m rayagents.sims --scene '<scene>' "$@"`` with the scene's real name, so the
    build works on machines where this interpreter and the rayagents package exist at the same path. Raises
    UnknownSceneError (listing the known scenes) for an unknown scene.
    """
    definition = get_scene(scene)
    out_dir = Path(out_dir)
    stem = build_name(scene)
    data_dir = out_dir / f"{stem}_Data"
    data_dir.mkdir(parents=True, exist_ok=True)
    executable = out_dir / f"{stem}.x86_64"
    executable.write_text(
        "#!/bin/sh\n"
        f"# rayagents simulation host: scene {json.dumps(scene)}. Takes the arguments of a Unity player\n"
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
