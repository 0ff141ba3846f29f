"""The console: mlagents-learn's summary lines, the live table on a terminal, plain lines elsewhere."""

from __future__ import annotations

import io

from rich.console import Console

from rayagents.cluster.console import (
    BehaviorProgress,
    ClusterProgress,
    ConsoleView,
    format_elapsed,
    summary_line,
)

WALKER = BehaviorProgress(
    behavior_name="Walker",
    step=120000,
    max_steps=500000,
    mean_reward=12.3456,
    std_reward=1.5,
    steps_per_second=2345.67,
    policy_lag=1.25,
    dropped_steps=64,
    training=True,
)
CRAWLER = BehaviorProgress(
    behavior_name="Crawler",
    step=500000,
    max_steps=500000,
    mean_reward=None,
    std_reward=None,
    steps_per_second=0.0,
    policy_lag=0.0,
    dropped_steps=0,
    training=False,
)
CLUSTER = ClusterProgress(
    env_actors_up=7, env_actors_restarting=1, env_actors_total=8, player_restarts=3, elapsed_s=3725.0
)


def test_summary_line_with_episodes() -> None:
    line = summary_line("3DBall", 12000, 31.25, 1.23456, 0.5, True)
    assert line == "3DBall. Step: 12000. Time Elapsed: 31.250 s. Mean Reward: 1.235. Std of Reward: 0.500. Training."


def test_summary_line_of_a_group_shows_the_mean_group_reward_instead_of_the_std() -> None:
    line = summary_line("PushBlock", 50000, 171.3612, 0.0, 0.2, True, group_reward=0.875)
    assert line == "PushBlock. Step: 50000. Time Elapsed: 171.361 s. Mean Reward: 0.000. Mean Group Reward: 0.875. Training."


def test_summary_line_of_self_play_ends_with_the_elo() -> None:
    line = summary_line("ConnectFour", 20000, 61.5, 0.02, 0.99, True, elo=1213.25)
    assert line == "ConnectFour. Step: 20000. Time Elapsed: 61.500 s. Mean Reward: 0.020. Std of Reward: 0.990. Training. ELO: 1213.250."
    assert summary_line("ConnectFour", 20000, 61.5, None, None, True, elo=1213.25).endswith("since last summary. Training.")


def test_summary_line_without_episodes() -> None:
    line = summary_line("3DBall", 40000, 431.5064, None, None, False)
    assert line == (
        "3DBall. Step: 40000. Time Elapsed: 431.506 s. No episode was completed since last summary. Not Training."
    )


def test_elapsed_is_hours_minutes_seconds() -> None:
    assert format_elapsed(3725.9) == "1:02:05"
    assert format_elapsed(-3.0) == "0:00:00"


def test_not_a_terminal_prints_log_lines_only() -> None:
    output = io.StringIO()
    console = Console(file=output, force_terminal=False, width=120)
    with ConsoleView(console) as view:
        assert not view.is_live
        view.update([WALKER], CLUSTER)
        view.log("Walker. Step: 120000. [bold]not markup[/bold]")
    text = output.getvalue()
    assert text == "Walker. Step: 120000. [bold]not markup[/bold]\n"


def test_long_log_lines_are_not_wrapped() -> None:
    output = io.StringIO()
    console = Console(file=output, force_terminal=False, width=40)
    line = summary_line("AVeryLongBehaviorName", 123456789, 98765.4321, 1.0, 2.0, True)
    ConsoleView(console).log(line)
    assert output.getvalue() == line + "\n"


def test_terminal_shows_the_live_table_and_logs_above_it() -> None:
    console = Console(file=io.StringIO(), force_terminal=True, width=120, record=True)
    with ConsoleView(console) as view:
        assert view.is_live
        view.update([WALKER, CRAWLER], CLUSTER)
        view.log("Walker. Step: 120000. Training.")
    assert not view.is_live
    text = console.export_text()
    assert "Walker. Step: 120000. Training." in text
    assert "1:02:05 elapsed" in text
    assert "120,000 / 500,000 (24%)" in text
    assert "12.346 ± 1.500" in text
    assert "2,345.7" in text
    assert "1.25" in text
    assert "Crawler" in text and "no episode" in text and "not training" in text
    assert "env actors: 7 up, 1 starting, 8 total, 0 replaced; player restarts: 3; learner restarts: 0" in text
    assert text.index("Walker. Step: 120000. Training.") < text.rindex("Crawler")


def test_live_can_be_forced_off_on_a_terminal() -> None:
    output = io.StringIO()
    console = Console(file=output, force_terminal=True, width=120)
    with ConsoleView(console, live=False) as view:
        view.update([WALKER], CLUSTER)
        view.log("only this")
    assert "only this" in output.getvalue()
    assert "Walker" not in output.getvalue()
