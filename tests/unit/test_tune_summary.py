"""The end of a sweep: the best trial (highest reward, then fewest steps to it) and the summary table."""

from __future__ import annotations

import io

from rich.console import Console

from rayagents.cluster.sweep import trials_json
from rayagents.cluster.sweep_summary import TrialRecord, best_trial, ranked, summary_table

KEY = "behaviors.CartPole.hyperparameters.learning_rate"


def record(index: int, history: list[tuple[int, float]], error: str | None = None) -> TrialRecord:
    return TrialRecord(index, f"sweep_{index}", {KEY: 0.001 * (index + 1)}, tuple(history), error)


def test_the_best_trial_has_the_highest_reward_then_reached_it_in_fewest_steps() -> None:
    slow = record(0, [(5000, 100.0), (10000, 500.0), (15000, 500.0)])
    fast = record(1, [(5000, 500.0), (10000, 480.0)])
    weak = record(2, [(5000, 50.0)])
    none = record(3, [])
    assert best_trial([slow, fast, weak, none]) is fast
    assert [r.index for r in ranked([none, weak, slow, fast])] == [1, 0, 2, 3]
    assert (fast.best_reward, fast.best_step, fast.last_step) == (500.0, 5000, 10000)
    assert slow.first_reaching(475.0) == 10000 and weak.first_reaching(475.0) is None
    assert best_trial([none]) is None and best_trial([]) is None
    assert none.best_reward is None and none.last_step == 0


def test_the_table_shows_each_trials_sample_best_reward_steps_and_how_it_ended() -> None:
    records = [
        record(0, [(5000, 100.0), (10000, 500.0)]),
        record(1, [(5000, 20.0)]),
        record(2, [(5000, 30.0)], error="RuntimeError: run sweep_2 failed"),
        TrialRecord(3, "sweep_3", {KEY: 0.004}, ((5000, 10.0),), finished=False),
    ]
    out = io.StringIO()
    Console(file=out, width=160).print(summary_table(records, [KEY], max_steps=10000, top=2))
    text = out.getvalue()
    assert "best 2 of 4 trials" in text and "learning_rate" in text
    lines = [line for line in text.splitlines() if "sweep_" in line]
    assert len(lines) == 2
    assert "sweep_0" in lines[0] and "0.001" in lines[0] and "500.000" in lines[0] and "10,000" in lines[0]
    assert "max_steps" in lines[0]
    assert "sweep_2" in lines[1] and "error" in lines[1]


def test_trials_json_keeps_each_trials_sample_and_history_in_order() -> None:
    import json

    entries = json.loads(trials_json([record(1, [(5000, 20.0)]), record(0, [])]))
    assert [e["run_id"] for e in entries] == ["sweep_0", "sweep_1"]
    assert entries[1] == {
        "run_id": "sweep_1", "index": 1, "values": {KEY: 0.002}, "history": [[5000, 20.0]], "error": None,
    }  # fmt: skip


def test_a_trial_the_interrupted_sweep_left_is_unfinished_in_the_table() -> None:
    out = io.StringIO()
    unfinished = TrialRecord(0, "sweep_0", {KEY: 0.004}, ((5000, 10.0),), finished=False)
    Console(file=out, width=160).print(summary_table([unfinished], [KEY], max_steps=10000, top=5))
    assert "unfinished" in out.getvalue()
