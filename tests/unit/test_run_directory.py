"""The run's results folder: mlagents-learn's --resume/--force/--initialize-from rules, atomic writes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rayagents.cluster.run_directory import prepare_run_directory, save_configuration
from rayagents.configs import ConfigError, run_options_from_yaml_text
from rayagents.configs.run import CheckpointSettings
from rayagents.learner.results_storage import ResultsStorage


def settings(tmp_path: Path, **changes: object) -> CheckpointSettings:
    """Checkpoint settings of run "demo" under tmp_path/results."""
    return CheckpointSettings(run_id="demo", results_dir=str(tmp_path / "results"), **changes)  # type: ignore[arg-type]


def test_new_run_creates_its_folder_and_run_logs(tmp_path: Path) -> None:
    path = prepare_run_directory(settings(tmp_path))
    assert path == tmp_path / "results" / "demo"
    assert path.is_dir()
    assert (path / "run_logs").is_dir()


def test_existing_empty_folder_is_reused_without_flags(tmp_path: Path) -> None:
    (tmp_path / "results" / "demo").mkdir(parents=True)
    assert prepare_run_directory(settings(tmp_path)).is_dir()


def test_existing_run_without_resume_or_force_is_refused(tmp_path: Path) -> None:
    run = tmp_path / "results" / "demo"
    run.mkdir(parents=True)
    (run / "configuration.yaml").write_text("x: 1\n")
    with pytest.raises(ConfigError) as caught:
        prepare_run_directory(settings(tmp_path))
    message = str(caught.value)
    assert str(run) in message
    assert "--resume" in message and "--force" in message and "--run-id" in message
    assert (run / "configuration.yaml").read_text() == "x: 1\n"


def test_resume_of_a_missing_run_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be resumed") as caught:
        prepare_run_directory(settings(tmp_path, resume=True))
    assert str(tmp_path / "results" / "demo") in str(caught.value)
    assert not (tmp_path / "results" / "demo").exists()


def test_deprecated_load_model_counts_as_resume(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be resumed"):
        prepare_run_directory(settings(tmp_path, load_model=True))


def test_initialize_from_a_missing_run_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="old-run") as caught:
        prepare_run_directory(settings(tmp_path, initialize_from="old-run"))
    assert str(tmp_path / "results" / "old-run") in str(caught.value)


def test_initialize_from_an_existing_run_is_accepted(tmp_path: Path) -> None:
    (tmp_path / "results" / "old-run").mkdir(parents=True)
    assert prepare_run_directory(settings(tmp_path, initialize_from="old-run")).is_dir()


def _old_run(tmp_path: Path) -> Path:
    """A previous run "demo" with a checkpoint and event files at two depths."""
    run = tmp_path / "results" / "demo"
    (run / "Walker").mkdir(parents=True)
    (run / "Walker" / "checkpoint.pt").write_bytes(b"weights")
    (run / "Walker" / "Walker-30000.pt").write_bytes(b"weights")
    (run / "Walker" / "Walker-30000.onnx").write_bytes(b"model")
    (run / "Walker.onnx").write_bytes(b"model")
    (run / "Walker" / "events.out.tfevents.1.host").write_bytes(b"old")
    (run / "events.out.tfevents.2.host").write_bytes(b"old")
    (run / "configuration.yaml").write_text("old: options")
    return run


def test_force_keeps_the_folder_but_deletes_old_event_files_models_and_checkpoints(tmp_path: Path) -> None:
    run = _old_run(tmp_path)
    prepare_run_directory(settings(tmp_path, force=True))
    # A learner restarted mid-run restores the newest checkpoint it finds: none of the overwritten run's remain.
    assert sorted(p.name for p in run.rglob("*") if p.is_file()) == ["configuration.yaml"]
    assert (run / "run_logs").is_dir()


def test_resume_keeps_event_files(tmp_path: Path) -> None:
    run = _old_run(tmp_path)
    prepare_run_directory(settings(tmp_path, resume=True, force=True))
    assert len(list(run.rglob("events.out.tfevents.*"))) == 2


def test_write_text_replaces_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "status.json"
    storage = ResultsStorage(str(tmp_path))
    storage.write_text(str(target), "first")
    storage.write_text(str(target), "second ✓")
    assert target.read_text(encoding="utf-8") == "second ✓"
    assert os.listdir(target.parent) == ["status.json"]


def test_save_configuration_round_trips(tmp_path: Path) -> None:
    options = run_options_from_yaml_text(
        "behaviors:\n  Walker:\n    trainer_type: ppo\n    max_steps: 1000\n"
        "checkpoint_settings:\n  run_id: demo\n"
    )
    path = save_configuration(ResultsStorage(str(tmp_path)), str(tmp_path), options)
    assert path == str(tmp_path / "configuration.yaml")
    assert run_options_from_yaml_text(Path(path).read_text()) == options
