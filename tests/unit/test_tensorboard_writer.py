"""TensorBoard event files: ML-Agents' tag names (spaces kept), histograms, hidden keys, hyperparameters text.

The event files are read back record by record (TFRecord framing, tensorboardX's Event message), so the test
needs no TensorBoard install.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from tensorboardX.proto.event_pb2 import Event
from tensorboardX.proto.summary_pb2 import Summary

from rayagents.cluster.tensorboard import TensorBoardWriter, gauges_from_summary, read_events, read_scalars


def values_by_tag(events: list[Event]) -> dict[str, list[tuple[int, Summary.Value]]]:
    """The summary values of ``events`` by tag, with their steps."""
    found: dict[str, list[tuple[int, Summary.Value]]] = {}
    for event in events:
        for value in event.summary.value:
            found.setdefault(value.tag, []).append((event.step, value))
    return found


def test_scalars_keep_their_tags_and_hidden_keys_are_skipped(tmp_path: Path) -> None:
    writer = TensorBoardWriter(tmp_path, resume=False)
    writer.write("Walker", 1000, {"Environment/Cumulative Reward": 1.25, "Is Training": 1.0, "Step": 1000.0,
                                  "Policy/Learning Rate": 3e-4})
    writer.write("Walker", 2000, {"Environment/Cumulative Reward": 2.5})
    writer.close()
    tags = values_by_tag(read_events(tmp_path / "Walker"))
    assert set(tags) == {"Environment/Cumulative Reward", "Policy/Learning Rate"}
    rewards = [(step, value.simple_value) for step, value in tags["Environment/Cumulative Reward"]]
    assert rewards == [(1000, 1.25), (2000, 2.5)]
    assert tags["Policy/Learning Rate"][0][1].simple_value == pytest.approx(3e-4)


def test_each_write_is_on_disk_before_close(tmp_path: Path) -> None:
    writer = TensorBoardWriter(tmp_path, resume=False)
    writer.write("Walker", 500, {"Losses/Value Loss": 0.5})
    tags = values_by_tag(read_events(tmp_path / "Walker"))
    writer.close()
    assert [step for step, _ in tags["Losses/Value Loss"]] == [500]


def test_histograms_get_the_hist_suffix_and_empty_ones_are_skipped(tmp_path: Path) -> None:
    writer = TensorBoardWriter(tmp_path, resume=False)
    writer.write(
        "Walker",
        3000,
        {"Environment/Cumulative Reward": 2.0},
        {"Environment/Cumulative Reward": [1.0, 2.0, 3.0], "Environment/Episode Length": []},
    )
    writer.close()
    tags = values_by_tag(read_events(tmp_path / "Walker"))
    assert set(tags) == {"Environment/Cumulative Reward", "Environment/Cumulative Reward_hist"}
    step, value = tags["Environment/Cumulative Reward_hist"][0]
    assert step == 3000
    assert value.histo.num == 3
    assert value.histo.min == 1.0 and value.histo.max == 3.0 and value.histo.sum == 6.0


def test_behaviors_get_their_own_folders_lazily(tmp_path: Path) -> None:
    writer = TensorBoardWriter(tmp_path, resume=False)
    writer.write("Walker", 10, {"Environment/Episode Length": 7.0})
    assert not (tmp_path / "Crawler").exists()
    writer.write("Crawler", 20, {"Environment/Episode Length": 9.0})
    writer.close()
    walker = values_by_tag(read_events(tmp_path / "Walker"))["Environment/Episode Length"]
    crawler = values_by_tag(read_events(tmp_path / "Crawler"))["Environment/Episode Length"]
    assert [(s, v.simple_value) for s, v in walker] == [(10, 7.0)]
    assert [(s, v.simple_value) for s, v in crawler] == [(20, 9.0)]


def test_hyperparameters_text_is_written_once(tmp_path: Path) -> None:
    writer = TensorBoardWriter(tmp_path, resume=False)
    writer.write_hyperparameters("Walker", "trainer_type: ppo\nhyperparameters:\n  batch_size: 1024\n")
    writer.write_hyperparameters("Walker", "trainer_type: sac\n")
    writer.close()
    texts = values_by_tag(read_events(tmp_path / "Walker"))["Hyperparameters"]
    assert len(texts) == 1
    _, value = texts[0]
    assert value.metadata.plugin_data.plugin_name == "text"
    text = value.tensor.string_val[0].decode()
    assert "trainer_type: ppo" in text and "  batch_size: 1024" in text


def test_without_resume_old_event_files_go_with_resume_they_stay(tmp_path: Path) -> None:
    first = TensorBoardWriter(tmp_path, resume=False)
    first.write("Walker", 100, {"Environment/Episode Length": 1.0})
    first.close()
    resumed = TensorBoardWriter(tmp_path, resume=True)
    resumed.write("Walker", 200, {"Environment/Episode Length": 2.0})
    resumed.close()
    assert len(list((tmp_path / "Walker").glob("events.out.tfevents.*"))) == 2
    steps = [s for s, _ in values_by_tag(read_events(tmp_path / "Walker"))["Environment/Episode Length"]]
    assert sorted(steps) == [100, 200]

    fresh = TensorBoardWriter(tmp_path, resume=False)
    fresh.write("Walker", 5, {"Environment/Episode Length": 3.0})
    fresh.close()
    fresh.write("Walker", 6, {"Environment/Episode Length": 4.0})  # reopened: its own earlier file stays
    fresh.close()
    steps = [s for s, _ in values_by_tag(read_events(tmp_path / "Walker"))["Environment/Episode Length"]]
    assert sorted(steps) == [5, 6]


def test_gauge_names_follow_the_gauge_writer() -> None:
    gauges = gauges_from_summary("3DBall", {"Environment/Cumulative Reward": 1.5, "Policy/Entropy": 0.25})
    assert gauges == {"3DBall.Environment.CumulativeReward": 1.5, "3DBall.Policy.Entropy": 0.25}


def test_read_scalars_gives_steps_and_values_by_tag(tmp_path: Path) -> None:
    writer = TensorBoardWriter(tmp_path, resume=False)
    writer.write("Walker", 100, {"Losses/Value Loss": 0.5})
    writer.write("Walker", 200, {"Losses/Value Loss": 0.25}, {"Environment/Cumulative Reward": [1.0, 2.0]})
    writer.close()
    scalars = read_scalars(tmp_path / "Walker")
    assert scalars == {"Losses/Value Loss": [(100, 0.5), (200, 0.25)]}


BACKGROUND_IMPORT = """
import sys
from pathlib import Path
from rayagents.cluster.tensorboard import TensorBoardWriter, import_tensorboardx_in_background, read_scalars

assert "tensorboardX" not in sys.modules
thread = import_tensorboardx_in_background()
writer = TensorBoardWriter(Path(sys.argv[1]), resume=False)
writer.write("Walker", 100, {"Environment/Cumulative Reward": 2.5})  # waits for the import if it is not done
thread.join(timeout=60)
assert not thread.is_alive() and "tensorboardX.summary" in sys.modules
writer.close()
print(read_scalars(Path(sys.argv[1]) / "Walker")["Environment/Cumulative Reward"])
"""


def test_a_write_during_the_background_import_waits_for_it(tmp_path: Path) -> None:
    """The driver imports tensorboardX in a thread while Ray starts; a summary written meanwhile (in a fresh
    interpreter, where nothing has imported it yet) is written once the import is done."""
    done = subprocess.run(
        [sys.executable, "-c", BACKGROUND_IMPORT, str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[(100, 2.5)]", done.stdout + done.stderr
