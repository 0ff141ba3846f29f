"""bench/training.py's pure parts: summary lines, the measurement window, the configs it trains, the README table."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from rayagents.cluster.console import summary_line
from rayagents.configs.loader import run_options_from_dict

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # bench/ is a folder of the repository, not of the installed package

from bench import acting, training  # noqa: E402
from bench.table import Row, rewrite_readme  # noqa: E402


def test_summary_lines_of_the_behavior_parse_into_step_and_seconds() -> None:
    lines = [
        "env actor 0 on vm (192.0.2.2): player pid 3805, port 37057, log /tmp/Player-0.log",
        summary_line("CartPole", 2000, 4.866, 21.09, 9.661, True),
        summary_line("CartPole", 4000, 5.886, None, None, True),  # no episode ended in the period
        summary_line("Other", 9000, 6.0, 1.0, 0.0, True),
        "warning: something",
        "CartPole. Step: 6000. Time Elapsed: 7 s. Not Training.",
        "Exported /tmp/results/r/CartPole.onnx (step 6960)",
    ]
    assert training.parse_summary_lines(lines, "CartPole") == [(2000, 4.866), (4000, 5.886), (6000, 7.0)]
    assert training.parse_summary_lines(lines, "Other") == [(9000, 6.0)]
    assert training.parse_summary_lines(lines, "Cart") == []


def test_a_behavior_name_with_dots_and_spaces_still_parses() -> None:
    line = summary_line("My.Agent v2", 1000, 1.5, 0.5, 0.1, True)
    assert training.parse_summary_lines([line], "My.Agent v2") == [(1000, 1.5)]


def test_poll_points_keep_the_highest_step_printed_at_each_time() -> None:
    points = [(2000, 4.8), (4000, 5.9), (6000, 6.9), (8000, 6.9), (10000, 8.0)]
    assert training.poll_points(points) == [(2000, 4.8), (4000, 5.9), (8000, 6.9), (10000, 8.0)]


def test_the_window_starts_after_the_warmup_and_ends_seconds_later() -> None:
    points = [(1000, 5.0), (2000, 6.0), (3000, 7.0), (5000, 8.0), (6000, 9.0), (9000, 10.5), (10000, 11.0)]
    assert training.measure_window(points[:5], warmup_s=3.0, seconds=2.5) is None  # not yet 2.5 s after 8.0
    window = training.measure_window(points, warmup_s=3.0, seconds=2.5)
    assert window == training.Window(start_step=5000, start_s=8.0, end_step=9000, end_s=10.5)
    assert window.steps_per_s == pytest.approx(4000 / 2.5)


def test_no_window_before_the_warmup_is_over() -> None:
    points = [(1000, 5.0), (2000, 6.0), (3000, 7.0)]
    assert training.measure_window([], warmup_s=0.0, seconds=1.0) is None
    assert training.measure_window(points, warmup_s=2.5, seconds=0.5) is None
    assert training.measure_window(points, warmup_s=1.0, seconds=1.0) == training.Window(2000, 6.0, 3000, 7.0)


def test_summaries_printed_at_one_poll_count_once_with_their_highest_step() -> None:
    points = [(1000, 1.0), (2000, 2.0), (3000, 2.0), (4000, 3.0), (5000, 4.0), (6000, 4.0)]
    window = training.measure_window(points, warmup_s=1.0, seconds=2.0)
    assert window == training.Window(start_step=3000, start_s=2.0, end_step=6000, end_s=4.0)
    assert window.steps_per_s == pytest.approx(1500.0)


def test_dropped_share_counts_the_periods_inside_the_window() -> None:
    window = training.Window(start_step=2000, start_s=0.0, end_step=6000, end_s=1.0)
    dropped = [(1000, 500.0), (2000, 400.0), (3000, 100.0), (4000, 0.0), (6000, 300.0), (7000, 900.0)]
    assert training.dropped_share(dropped, window) == pytest.approx(400 / 4000)


def test_the_halfcheetah_example_made_ppo_is_trainable_and_keeps_the_rest() -> None:
    example = training.load_example("HalfCheetah")
    assert example["behaviors"]["HalfCheetah"]["trainer_type"] == "sac"
    config = training.benchmark_config(training.halfcheetah_ppo_config(example), summary_freq=1000, max_steps=123)
    assert example["behaviors"]["HalfCheetah"]["trainer_type"] == "sac"  # the example is left as it was
    options = run_options_from_dict(config)
    settings = options.behaviors["HalfCheetah"]
    assert settings.trainer_type == "ppo"
    assert settings.hyperparameters.buffer_size == training.HALFCHEETAH_PPO_HYPERPARAMETERS["buffer_size"]
    assert settings.hyperparameters.num_epoch == training.HALFCHEETAH_PPO_HYPERPARAMETERS["num_epoch"]
    assert (settings.summary_freq, settings.max_steps) == (1000, 123)
    assert settings.network_settings.hidden_units == 256 and settings.network_settings.num_layers == 2
    assert settings.time_horizon == example["behaviors"]["HalfCheetah"]["time_horizon"]


def test_the_cartpole_example_is_trained_as_it_is_but_for_summaries_and_max_steps() -> None:
    example = training.load_example("CartPole")
    config = training.benchmark_config(example)
    settings = training.trainer_settings(config, "CartPole")
    expected = training.trainer_settings(example, "CartPole")
    assert settings.summary_freq == training.SUMMARY_FREQ and settings.max_steps == training.MAX_STEPS
    assert settings.hyperparameters == expected.hyperparameters
    assert settings.time_horizon == expected.time_horizon


def test_the_readme_has_a_training_table_that_the_benchmark_can_rewrite(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(README.read_text())
    row = Row("training ÷ random", "0.91", "≥ 0.8", True, training.COMMAND)
    rewrite_readme(readme, training.SECTION, [row], "a test machine")
    text = readme.read_text()
    section = text.split(f"### {training.SECTION}\n", 1)[1].split("\n### ", 1)[0].split("\n## ", 1)[0]
    assert "| training ÷ random | 0.91 | ≥ 0.8 | yes | `python -m bench.training` |" in section
    assert "Measured on a test machine." in section
    assert text.count("| training ÷ random |") == 1  # the other tables are left alone


def test_the_envactor_loop_rows_give_each_stage_per_agent_step_and_acting_numpy_over_torch() -> None:
    times = acting.LoopTimes()
    times.by_mode["numpy"] = acting.StageTimes(wire=0.08, acting=0.02, trajectories=0.01, steps=1000)
    times.by_mode["torch"] = acting.StageTimes(wire=0.08, acting=0.06, trajectories=0.01, steps=1000)
    numpy_row, torch_row, ratio = acting.rows(times)
    assert "acting in numpy" in numpy_row.benchmark and "acting in torch" in torch_row.benchmark
    assert numpy_row.value == "110 µs: wire 80, acting 20, trajectories 10"
    assert torch_row.value == "150 µs: wire 80, acting 60, trajectories 10"
    assert ratio.value == "0.33"


def _pair(random_rate: float, trained_rate: float, dropped: float | None) -> training.RatioPair:
    window = training.Window(start_step=0, start_s=0.0, end_step=int(trained_rate * 10), end_s=10.0)
    return training.RatioPair(random_rate, training.TrainingMeasurement(window, dropped, ()))


def test_the_ratio_rows_give_the_median_pair_every_ratio_and_the_largest_dropped_share() -> None:
    pairs = [_pair(10_000, 5_000, 0.0), _pair(8_000, 5_600, 0.02), _pair(9_000, 5_400, 0.0)]
    assert [round(p.ratio, 2) for p in pairs] == [0.5, 0.7, 0.6]
    assert training.median_pair(pairs) is pairs[2]
    random_row, trained_row, ratio_row = training.ratio_rows(pairs, "2 × 8 areas", cpus=2)
    assert random_row.value == "9,000 agent steps/s (the median pair's; 10,000, 8,000, 9,000)"
    assert trained_row.value.startswith("5,400 agent steps/s (2% dropped as too old)")
    assert trained_row.met is False  # one run of three dropped more than 1%
    assert ratio_row.value == "0.60 (median of 3 pairs: 0.50, 0.70, 0.60)"
    assert (ratio_row.target, ratio_row.met) == ("≥ 0.6", True)
    # An even count takes the lower middle ratio; a single pair reads as before.
    assert training.median_pair(pairs[:2]) is pairs[0]
    _, trained_row, ratio_row = training.ratio_rows([_pair(10_000, 9_500, None)], "2 × 8 areas", cpus=16)
    assert (trained_row.value, trained_row.met) == ("9,500 agent steps/s", None)
    assert (ratio_row.value, ratio_row.target, ratio_row.met) == ("0.95", "≥ 0.9", True)
