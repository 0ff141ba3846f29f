"""timers.json: gauges (last, min, max, count) and metadata in ML-Agents' layout."""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path

from rayagents import __version__
from rayagents.cluster.tensorboard import gauges_from_summary
from rayagents.cluster.timers import GaugeRecorder, write_timers


def test_gauge_keeps_last_min_max_and_count() -> None:
    gauges = GaugeRecorder()
    for value in (2.0, -1.0, 5.0, 3.0):
        gauges.record("Walker.Environment.CumulativeReward", value)
    assert gauges.to_json_dict() == {
        "Walker.Environment.CumulativeReward.mean": {"value": 3.0, "min": -1.0, "max": 5.0, "count": 4}
    }


def test_gauges_are_separate_by_name() -> None:
    gauges = GaugeRecorder()
    for name, value in gauges_from_summary("Walker", {"Policy/Entropy": 1.5, "Losses/Value Loss": 0.25}).items():
        gauges.record(name, value)
    gauges.record("Walker.Policy.Entropy", 1.0)
    entropy = gauges.gauge("Walker.Policy.Entropy")
    assert entropy is not None and (entropy.value, entropy.min, entropy.max, entropy.count) == (1.0, 1.0, 1.5, 2)
    loss = gauges.gauge("Walker.Losses.ValueLoss")
    assert loss is not None and loss.count == 1
    assert gauges.gauge("Walker.Missing") is None


def test_timers_file_has_mlagents_shape(tmp_path: Path) -> None:
    gauges = GaugeRecorder()
    gauges.record("Walker.Environment.EpisodeLength", 40.0)
    path = tmp_path / "run_logs" / "timers.json"
    write_timers(path, gauges, start_time=1700000000.9, end_time=1700000123.4,
                 command_line=["rayagents-learn", "config.yaml", "--run-id=demo"])
    saved = json.loads(path.read_text())
    assert saved["name"] == "root"
    assert saved["count"] == 1
    assert saved["total"] == saved["self"]
    assert abs(saved["total"] - 122.5) < 1e-6
    assert saved["children"] == {}
    assert saved["gauges"] == {
        "Walker.Environment.EpisodeLength.mean": {"value": 40.0, "min": 40.0, "max": 40.0, "count": 1}
    }
    info = saved["metadata"]
    assert info["timer_format_version"] == "0.1.0"
    assert info["start_time_seconds"] == "1700000000"
    assert info["end_time_seconds"] == "1700000123"
    assert info["command_line_arguments"] == "rayagents-learn config.yaml --run-id=demo"
    assert info["rayagents_version"] == __version__
    assert info["torch_version"] == metadata.version("torch")
    assert info["python_version"]
    assert [p.name for p in path.parent.iterdir()] == ["timers.json"]
