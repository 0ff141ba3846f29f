"""Builds of scenes whose names are not file names (``gym:ns/Id?options``): sanitised files, the real name run.

A small Gymnasium module is written into the test's folder and put on ``PYTHONPATH``; it registers a namespaced
id (``rayagents_build/Label-v0``) whose observation is the length of its ``label`` keyword, so a test can see
that options with quotes and spaces reached ``gymnasium.make`` through the build's shell script intact.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rayagents.actors.environment import UnityEnvironment
from rayagents.protocol.types import ActionTuple
from rayagents.sims.build import DESCRIPTION_FILE, build_name, write_build

LABEL = "two words"
MAX_STEPS = 5
SCENE = f"gym:label_envs:rayagents_build/Label-v0?label='{LABEL}'&max_episode_steps={MAX_STEPS}"
STEM = f"gym_label_envs_rayagents_build_Label-v0_label=_two_words__max_episode_steps={MAX_STEPS}"
BEHAVIOR = "rayagents_build_Label-v0?team=0"
ENV_MODULE = '''
import gymnasium
import numpy as np
from gymnasium import spaces


class Label(gymnasium.Env):
    """Observes the length of its label; never ends by itself."""

    def __init__(self, label=""):
        self.label = label
        self.observation_space = spaces.Box(-1000.0, 1000.0, (1,), np.float32)
        self.action_space = spaces.Discrete(2)

    def _obs(self):
        return np.array([len(self.label)], dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self._obs(), {}

    def step(self, action):
        return self._obs(), 1.0, False, False, {}


gymnasium.register("rayagents_build/Label-v0", entry_point=Label)
'''


@pytest.mark.parametrize(
    ("scene", "stem"),
    [
        ("CartPole", "CartPole"),
        ("gym:ALE/Pong-v5", "gym_ALE_Pong-v5"),
        ("gym:CartPole-v1?decision_period=2&max_episode_steps=50", "gym_CartPole-v1_decision_period=2_max_episode_steps=50"),
        ("pettingzoo:pettingzoo.classic.connect_four_v3", "pettingzoo_pettingzoo.classic.connect_four_v3"),
        ("my scene/with:all?odd&chars", "my_scene_with_all_odd_chars"),
        (SCENE, STEM),
    ],
)
def test_build_name_keeps_only_file_name_characters(scene: str, stem: str) -> None:
    assert build_name(scene) == stem


def test_a_namespaced_gym_scene_with_options_builds_and_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The build of ``gym:module:ns/Id?label='two words'&max_episode_steps=5`` is launched by path and plays."""
    (tmp_path / "envs").mkdir()
    (tmp_path / "envs" / "label_envs.py").write_text(ENV_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path / "envs"))
    paths = [str(tmp_path / "envs"), os.environ.get("PYTHONPATH")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))

    out_dir = tmp_path / "build"
    executable = write_build(SCENE, out_dir)
    assert executable == out_dir / f"{STEM}.x86_64"
    assert sorted(p.name for p in out_dir.iterdir()) == [f"{STEM}.x86_64", f"{STEM}_Data"]
    assert os.access(executable, os.X_OK)
    assert json.loads((out_dir / f"{STEM}_Data" / DESCRIPTION_FILE).read_text())["scene"] == SCENE

    env = UnityEnvironment(str(executable), timeout_wait=20, log_folder=str(tmp_path / "logs"))
    try:
        env.reset()
        assert list(env.behavior_specs) == [BEHAVIOR]
        decisions, _ = env.get_steps(BEHAVIOR)
        np.testing.assert_array_equal(decisions.obs[0], [[len(LABEL)]])  # the quoted label arrived whole
        for step in range(1, MAX_STEPS + 1):
            env.set_actions(BEHAVIOR, ActionTuple(discrete=np.zeros((1, 1), dtype=np.int32)))
            env.step()
            decisions, terminals = env.get_steps(BEHAVIOR)
            if len(terminals):
                break
        assert step == MAX_STEPS and terminals.interrupted.tolist() == [True]  # max_episode_steps arrived too
    finally:
        env.close()


def test_an_unknown_scene_names_the_gym_and_pettingzoo_forms(tmp_path: Path) -> None:
    """``rayagents-sim build`` of an unknown name exits 2 and says how any Gymnasium id or PettingZoo game runs."""
    result = subprocess.run(
        [sys.executable, "-m", "rayagents.sims", "build", "NoSuchScene", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "No scene named 'NoSuchScene'" in result.stderr
    assert "'gym:<env id>'" in result.stderr and "'pettingzoo:<module>'" in result.stderr
    assert list(tmp_path.iterdir()) == []
