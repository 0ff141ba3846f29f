"""training_status.json: ML-Agents' layout, round trips for resume, errors and warnings on a bad file."""

from __future__ import annotations

import json
import warnings
from importlib import metadata
from pathlib import Path

import pytest

from rayagents.cluster.training_status import TrainingStatus
from rayagents.configs import ConfigError
from rayagents.learner.checkpoints import CheckpointRecord

FIRST = CheckpointRecord(
    steps=5000,
    file_path="results/demo/Walker/Walker-5000.onnx",
    reward=1.5,
    creation_time=1700000000.25,
    auxillary_file_paths=("results/demo/Walker/Walker-5000.pt",),
)
SECOND = CheckpointRecord(
    steps=10000,
    file_path="results/demo/Walker/Walker-10000.onnx",
    reward=None,
    creation_time=1700000100.5,
    auxillary_file_paths=("results/demo/Walker/Walker-10000.pt",),
)
FINAL = CheckpointRecord(
    steps=10000,
    file_path="results/demo/Walker.onnx",
    reward=None,
    creation_time=1700000101.0,
    auxillary_file_paths=("results/demo/Walker/Walker-10000.pt",),
)


def test_missing_file_loads_empty(tmp_path: Path) -> None:
    status = TrainingStatus.load(tmp_path / "training_status.json")
    assert status.checkpoints("Walker") == []
    assert status.final("Walker") is None
    assert status.lesson("difficulty") is None


def test_saved_file_has_mlagents_layout(tmp_path: Path) -> None:
    status = TrainingStatus()
    status.set_checkpoints("Walker", [FIRST, SECOND])
    status.set_final("Walker", FINAL)
    status.set_lesson("difficulty", 2)
    path = tmp_path / "run_logs" / "training_status.json"
    status.save(path)
    saved = json.loads(path.read_text())
    assert saved == {
        "Walker": {
            "checkpoints": [
                {
                    "steps": 5000,
                    "file_path": "results/demo/Walker/Walker-5000.onnx",
                    "reward": 1.5,
                    "creation_time": 1700000000.25,
                    "auxillary_file_paths": ["results/demo/Walker/Walker-5000.pt"],
                },
                {
                    "steps": 10000,
                    "file_path": "results/demo/Walker/Walker-10000.onnx",
                    "reward": None,
                    "creation_time": 1700000100.5,
                    "auxillary_file_paths": ["results/demo/Walker/Walker-10000.pt"],
                },
            ],
            "final_checkpoint": {
                "steps": 10000,
                "file_path": "results/demo/Walker.onnx",
                "reward": None,
                "creation_time": 1700000101.0,
                "auxillary_file_paths": ["results/demo/Walker/Walker-10000.pt"],
            },
        },
        "difficulty": {"lesson_num": 2},
        "metadata": {
            "stats_format_version": "0.3.0",
            "mlagents_version": "1.1.0",
            "torch_version": metadata.version("torch"),
        },
    }
    assert "null" in path.read_text()


def test_round_trip_gives_the_rotation_list_back(tmp_path: Path) -> None:
    path = tmp_path / "training_status.json"
    status = TrainingStatus()
    status.set_checkpoints("Walker", [FIRST, SECOND])
    status.set_final("Walker", FINAL)
    status.set_lesson("difficulty", 3)
    status.save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = TrainingStatus.load(path)
    assert loaded.checkpoints("Walker") == [FIRST, SECOND]
    assert loaded.final("Walker") == FINAL
    assert loaded.lesson("difficulty") == 3
    assert loaded.checkpoints("Crawler") == []


def test_unknown_keys_survive_a_load_and_save(tmp_path: Path) -> None:
    path = tmp_path / "training_status.json"
    document = {
        "Striker?team=0": {"checkpoints": [], "elo": 1234.5},
        "metadata": {"stats_format_version": "0.3.0", "mlagents_version": "1.1.0",
                     "torch_version": metadata.version("torch")},
    }
    path.write_text(json.dumps(document))
    status = TrainingStatus.load(path)
    assert status.value("Striker?team=0", "elo") == 1234.5
    status.save(path)
    assert json.loads(path.read_text())["Striker?team=0"] == {"checkpoints": [], "elo": 1234.5}


def test_invalid_json_names_the_file_and_the_way_out(tmp_path: Path) -> None:
    path = tmp_path / "training_status.json"
    path.write_text('{"Walker": {"checkpoints": [')
    with pytest.raises(ConfigError) as caught:
        TrainingStatus.load(path)
    message = str(caught.value)
    assert str(path) in message
    assert "delete" in message and "--run-id" in message


def test_malformed_checkpoint_entry_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "training_status.json"
    path.write_text(json.dumps({"Walker": {"checkpoints": [{"steps": "many", "file_path": "a.onnx",
                                                             "creation_time": 1.0}]}}))
    with pytest.raises(ConfigError, match="Walker"):
        TrainingStatus.load(path)


def test_other_versions_only_warn(tmp_path: Path) -> None:
    path = tmp_path / "training_status.json"
    document = {
        "Walker": {"checkpoints": [{"steps": 5000, "file_path": "a.onnx", "reward": 1.0,
                                    "creation_time": 2.0, "auxillary_file_paths": ["a.pt"]}]},
        "metadata": {"stats_format_version": "0.3.0", "mlagents_version": "0.30.0", "torch_version": "1.8.0"},
    }
    path.write_text(json.dumps(document))
    with pytest.warns(UserWarning) as caught:
        status = TrainingStatus.load(path)
    messages = " ".join(str(warning.message) for warning in caught)
    assert "0.30.0" in messages and "1.8.0" in messages
    assert status.checkpoints("Walker")[0].auxillary_file_paths == ("a.pt",)


def test_metadata_is_reserved(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        TrainingStatus().set_lesson("metadata", 1)
