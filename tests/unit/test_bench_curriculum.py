"""The curriculum benchmark's plain parts: the final-lesson twin of the example, and lesson changes read off the
console."""

from __future__ import annotations

from bench.curriculum import EXAMPLE, PARAMETER, console_changes, final_lesson
from bench.runs import example


def test_the_comparison_trains_the_final_lesson_from_the_start_and_nothing_else_changes() -> None:
    config = example(EXAMPLE)
    twin = final_lesson(config)
    lessons = config["environment_parameters"][PARAMETER]["curriculum"]
    assert twin["environment_parameters"] == {PARAMETER: lessons[-1]["value"]}
    assert twin["behaviors"] == config["behaviors"]
    assert "curriculum" in config["environment_parameters"][PARAMETER]  # the example itself is left as it is


def test_a_lesson_change_is_dated_by_the_first_summary_line_after_it() -> None:
    start = "Parameter 'goal_position' is in lesson 'Low' and has value 'Float: value=-0.35'."
    lower = "Parameter 'goal_position' is in lesson 'Lower' and has value 'Float: value=-0.2'."
    flag = "Parameter 'goal_position' is in lesson 'Flag' and has value 'Float: value=0.5'."
    lines = [
        start,
        "MountainCar. Step: 10000. Time Elapsed: 3.000 s. No episode was completed since last summary. Training.",
        lower,
        "Other. Step: 20000. Time Elapsed: 4.000 s. Mean Reward: 1.000. Std of Reward: 0.000. Training.",
        "MountainCar. Step: 20000. Time Elapsed: 4.000 s. Mean Reward: -150.000. Std of Reward: 9.000. Training.",
        flag,
    ]
    assert console_changes(lines) == [("Lower", 20000), ("Flag", None)]
    assert console_changes([start]) == []
