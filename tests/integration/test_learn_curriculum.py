"""``rayagents-learn`` with a curriculum, end to end: lessons move on (``measure: progress``, deterministic), the
console says so in ML-Agents' words, TensorBoard has ``Environment/Lesson Number/<parameter>`` with every summary,
``training_status.json`` keeps the lesson, the players play each lesson's value, and ``--resume`` starts in the saved
lesson.

One run and its resumption (a local Ray cluster, 2 EnvActors x 4 sim:CartPole areas). CartPole's ``gravity`` shows
which value the players use: at 10,000 every episode ends within 8 steps whatever the policy; at Earth's gravity
never before step 8 (``CartPole/Episode Length``, which the scene reports on the stats side channel).
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest
import yaml
from learn_runs import CARTPOLE, CARTPOLE_CONFIG, SUMMARY_LINE, run_learn

from rayagents.cluster.tensorboard import read_scalars

pytestmark = pytest.mark.slow

SUMMARY_FREQ = 500
MAX_STEPS = 8000
RESUMED_MAX_STEPS = 9000
FEWEST_STEPS_AT_EARTH_GRAVITY = 8
"""The shortest CartPole-v1 episode at the default gravity: pushing one way all along, the pole falls at step 8."""
LESSON_TAG = "Environment/Lesson Number/gravity"
EPISODE_LENGTH_TAG = "CartPole/Episode Length"
START_LINE = "Parameter 'gravity' is in lesson 'Heavy' and has value 'Float: value=10000.0'."
CHANGE_LINES = (
    "Parameter 'gravity' is in lesson 'Earth' and has value 'Float: value=9.8'.",
    "Parameter 'gravity' is in lesson 'EarthSampled' and has value 'Uniform sampler: min=9.7, max=9.9'.",
)
CURRICULUM = {
    "gravity": {
        "curriculum": [
            {
                "name": "Heavy",
                "completion_criteria": {"behavior": CARTPOLE, "measure": "progress", "threshold": 0.15},
                "value": 10000.0,
            },
            {
                "name": "Earth",
                "completion_criteria": {
                    "behavior": CARTPOLE,
                    "measure": "progress",
                    "threshold": 0.5,
                    "require_reset": True,
                },
                "value": 9.8,
            },
            {
                "name": "EarthSampled",
                "value": {"sampler_type": "uniform", "sampler_parameters": {"min_value": 9.7, "max_value": 9.9}},
            },
        ]
    }
}
"""Lesson 0 → 1 past 15 % of max_steps (values sent without a reset), 1 → 2 past 50 % (with a reset)."""


def write_config(path: Path, max_steps: int) -> Path:
    behavior = copy.deepcopy(CARTPOLE_CONFIG["behaviors"][CARTPOLE])
    behavior.update(max_steps=max_steps, summary_freq=SUMMARY_FREQ, checkpoint_interval=2000)
    path.write_text(yaml.safe_dump({"behaviors": {CARTPOLE: behavior}, "environment_parameters": CURRICULUM}))
    return path


def lessons_at_summaries(output: str) -> dict[int, int]:
    """Each summary line's step -> the lesson changes the console announced before it."""
    changes = [m.start() for line in CHANGE_LINES for m in re.finditer(re.escape(line), output)]
    return {
        int(m.group(2)): sum(position < m.start() for position in changes)
        for m in SUMMARY_LINE.finditer(output)
        if m.group(1) == CARTPOLE
    }


def args(config: Path, work: Path, *more: str) -> list[str]:
    return [str(config), "--env", "sim:CartPole", "--num-envs", "2", "--num-areas", "4", "--seed", "3",
            "--results-dir", str(work / "results"), "--run-id", "lessons", *more]  # fmt: skip


def test_a_curriculum_moves_through_its_lessons_and_resumes_in_the_saved_one(tmp_path: Path) -> None:
    code, output = run_learn(args(write_config(tmp_path / "lessons.yaml", MAX_STEPS), tmp_path), tmp_path, name="first")
    assert code == 0, output
    run = tmp_path / "results" / "lessons"

    # The console: the starting lesson, then each change once, in order (ML-Agents' log_current_lesson lines).
    assert output.count(START_LINE) == 1, output
    positions = [output.find(line) for line in CHANGE_LINES]
    assert all(output.count(line) == 1 for line in CHANGE_LINES), output
    assert output.find(START_LINE) < positions[0] < positions[1], output

    # TensorBoard: the lesson number with every summary, as the console had it when the summary was written.
    scalars = read_scalars(run / CARTPOLE)
    written = dict(scalars[LESSON_TAG])
    console = lessons_at_summaries(output)
    assert written == console, (written, console)
    assert sorted(written) == list(range(SUMMARY_FREQ, MAX_STEPS + 1, SUMMARY_FREQ))
    assert set(written.values()) == {0, 1, 2} and list(written.values()) == sorted(written.values())

    # training_status.json keeps the lesson.
    status = json.loads((run / "run_logs" / "training_status.json").read_text())
    assert status["gravity"] == {"lesson_num": 2}, status

    # The players play each lesson's value: short episodes at 10,000, none shorter than 8 steps at Earth's gravity
    # once the new value reached every player (a summary's period may hold steps played before the change).
    lengths = dict(scalars[EPISODE_LENGTH_TAG])
    first_in = {lesson: min(step for step, n in written.items() if n == lesson) for lesson in (1, 2)}
    heavy = [step for step, n in written.items() if n == 0]
    earth = [step for step, n in written.items() if n >= 1 and step >= first_in[1] + 1000]
    assert heavy and earth, written
    assert all(lengths[step] < FEWEST_STEPS_AT_EARTH_GRAVITY for step in heavy), lengths
    assert all(lengths[step] >= FEWEST_STEPS_AT_EARTH_GRAVITY for step in earth), lengths
    # The change to lesson 2 asked for a reset (require_reset): each player was reset once more than at its start.
    for log in sorted((run / "run_logs").glob("Player-*.log")):
        assert re.search(r"quit after \d+ exchanges, 2 resets", log.read_text()), log.read_text()[-2000:]

    # --resume: the saved lesson is restored, and the players start in it (lesson 0 would make episodes short).
    write_config(tmp_path / "lessons.yaml", RESUMED_MAX_STEPS)
    code, resumed = run_learn(args(tmp_path / "lessons.yaml", tmp_path, "--resume"), tmp_path, name="resumed")
    assert code == 0, resumed
    assert "Parameter 'gravity' is in lesson 'EarthSampled' and has value 'Uniform sampler: min=9.7, max=9.9'." in (
        resumed
    )
    assert START_LINE not in resumed and CHANGE_LINES[0] not in resumed
    scalars = read_scalars(run / CARTPOLE)
    after = {step: value for step, value in scalars[LESSON_TAG] if step > MAX_STEPS}
    assert after and set(after.values()) == {2}, scalars[LESSON_TAG]
    lengths = dict(scalars[EPISODE_LENGTH_TAG])
    assert all(lengths[step] >= FEWEST_STEPS_AT_EARTH_GRAVITY for step in after), lengths
    status = json.loads((run / "run_logs" / "training_status.json").read_text())
    assert status["gravity"] == {"lesson_num": 2}, status
