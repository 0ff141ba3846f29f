"""The README's first command: a random-action run against the bundled CartPole player, as a user runs it."""

from __future__ import annotations

import re
import subprocess
import sys


def test_random_play_on_sim_cartpole_reports_episodes_and_stats() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rayagents.actors.random_play", "--env", "sim:CartPole", "--num-areas", "2", "--steps", "200"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "behavior CartPole?team=0: observations [VectorSensor 4]; actions: discrete branches [2]" in result.stdout
    episodes = re.search(r"CartPole\?team=0: (\d+) episodes, mean return ([\d.]+)", result.stdout)
    assert episodes is not None, result.stdout
    # Random pushes keep a pole up for about 20 steps: 2 areas × 200 steps end well over 5 episodes.
    assert int(episodes.group(1)) > 5
    assert 8.0 < float(episodes.group(2)) < 60.0
    assert re.search(r"stat CartPole/Episode Length: mean [\d.]+ over \d+ values", result.stdout)


def test_random_play_names_a_missing_build() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rayagents.actors.random_play", "--env", "no/such/Build", "--steps", "5"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "no/such/Build" in result.stderr and "Tried" in result.stderr
