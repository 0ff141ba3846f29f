"""Results storage on a plain path and on ``file://`` URIs: joins that keep a URI a URI, atomic writes, the run
folder rules, checkpoints written and restored through a URI, TensorBoard events staged and uploaded.

The S3 side (a real S3-compatible server) is in tests/integration/test_results_uri.py.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from rayagents.cluster.run_directory import prepare_run_location, save_configuration
from rayagents.cluster.tensorboard import TensorBoardWriter, read_scalars
from rayagents.cluster.training_status import TrainingStatus
from rayagents.configs import ConfigError, run_options_from_yaml_text
from rayagents.configs.hyperparameters import PPOSettings
from rayagents.configs.network import NetworkSettings
from rayagents.configs.run import CheckpointSettings
from rayagents.configs.trainer import TrainerSettings
from rayagents.learner.checkpoints import CheckpointRecord
from rayagents.learner.checkpoints import CheckpointStore
from rayagents.learner.learner_messages import LearnerSettings, restore_source
from rayagents.learner.results_storage import (
    ResultsStorage,
    StorageError,
    is_uri,
    join,
    redact,
    absolute_location,
    run_locations,
    write_local_atomic,
)
from rayagents.learner.trainer import Trainer
from rayagents.protocol.trajectories import LOG_PROBS, Trajectory
from rayagents.protocol.types import ActionSpec, BehaviorSpec, DimensionProperty, ObservationSpec, ObservationType

SPEC = BehaviorSpec(
    (ObservationSpec((3,), (DimensionProperty.NONE,), ObservationType.DEFAULT, "body"),), ActionSpec(0, (2,))
)


def file_uri(path: Path) -> str:
    """``file:///…`` of a local folder."""
    return path.as_uri()


@pytest.fixture(params=["path", "file-uri"])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The results root, as a plain path and as a file:// URI."""
    folder = tmp_path / "results"
    return str(folder) if request.param == "path" else file_uri(folder)


# ---- locations ------------------------------------------------------------------------------------------------------


def test_a_uri_join_keeps_the_double_slash_and_puts_names_before_the_query() -> None:
    assert join("s3://bucket/results", "run", "Walker", "checkpoint.pt") == "s3://bucket/results/run/Walker/checkpoint.pt"
    assert (
        join("s3://bucket/results/?endpoint_override=127.0.0.1:9000&scheme=http", "run", "a.pt")
        == "s3://bucket/results/run/a.pt?endpoint_override=127.0.0.1:9000&scheme=http"
    )
    assert join("s3://bucket", "run") == "s3://bucket/run"
    assert join("file:///tmp/results", "run") == "file:///tmp/results/run"
    assert join("gs://b/r", "My Behavior") == "gs://b/r/My%20Behavior"
    assert join("/tmp/results", "run", "a.pt") == "/tmp/results/run/a.pt"


def test_only_scheme_slash_slash_makes_a_uri_and_paths_are_made_absolute(tmp_path: Path) -> None:
    assert is_uri("s3://bucket/x") and is_uri("file:///tmp") and is_uri("hdfs://namenode:8020/x")
    assert not is_uri("results") and not is_uri("/tmp/results") and not is_uri("sim:CartPole")
    uri = "s3://bucket/results?region=eu-west-1"
    assert absolute_location(uri) == uri
    assert absolute_location("results") == str(Path("results").resolve())
    locations = run_locations(uri, "run1", "run0")
    assert locations.write_path == "s3://bucket/results/run1?region=eu-west-1"
    assert locations.run_logs == "s3://bucket/results/run1/run_logs?region=eu-west-1"
    assert locations.init_path == "s3://bucket/results/run0?region=eu-west-1"
    assert locations.is_uri and not run_locations(str(tmp_path), "r").is_uri


def test_secrets_in_a_uri_are_never_shown() -> None:
    shown = redact("s3://bucket/r?access_key=AKIA&secret_key=hush&session_token=s3cr3t&region=us-east-1")
    assert "hush" not in shown and "s3cr3t" not in shown and "AKIA" not in shown and "region=us-east-1" in shown
    assert "pw" not in redact("hdfs://user:pw@namenode:8020/results")
    assert redact("s3://bucket/r?scheme=http") == "s3://bucket/r?scheme=http"
    assert redact("/tmp/x?y") == "/tmp/x?y"


def test_an_unknown_scheme_is_a_clear_error_naming_the_uri() -> None:
    with pytest.raises(StorageError) as caught:
        ResultsStorage("nosuchfs://bucket/results")
    assert "nosuchfs://bucket/results" in str(caught.value) and "s3://" in str(caught.value)


def test_a_location_outside_the_root_is_refused(tmp_path: Path) -> None:
    storage = ResultsStorage(file_uri(tmp_path / "a"))
    with pytest.raises(StorageError, match="not under"):
        storage.write_bytes(file_uri(tmp_path / "b" / "x"), b"x")
    with pytest.raises(StorageError, match="is a URI"):
        ResultsStorage(str(tmp_path)).is_file("s3://bucket/x")


# ---- reading and writing ----------------------------------------------------------------------------------------------


def test_atomic_writes_replace_the_file_and_leave_no_temporary(root: str, tmp_path: Path) -> None:
    storage = ResultsStorage(root)
    location = join(root, "run", "run_logs", "training_status.json")
    storage.write_text(location, "first")
    storage.write_text(location, "second ✓")
    assert storage.read_bytes(location) == "second ✓".encode()
    assert os.listdir(tmp_path / "results" / "run" / "run_logs") == ["training_status.json"]
    assert storage.is_file(location) and storage.exists(location) and not storage.is_dir(location)
    assert storage.is_dir(join(root, "run")) and storage.has_content(join(root, "run"))
    assert not storage.exists(join(root, "nothing")) and not storage.has_content(join(root, "nothing"))


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "model.onnx"
    target.write_bytes(b"old")

    def half_then_fail(handle: object) -> None:
        handle.write(b"new, but only h")  # type: ignore[attr-defined]
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_local_atomic(target, half_then_fail)
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["model.onnx"]


def test_an_atomically_written_file_gets_the_mode_of_any_new_file(tmp_path: Path) -> None:
    plain = tmp_path / "plain.txt"
    plain.write_bytes(b"x")  # a file made the ordinary way: 0o666 less the umask
    target = tmp_path / "checkpoint.pt"
    write_local_atomic(target, lambda handle: handle.write(b"weights"))
    assert stat.S_IMODE(target.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)


def test_upload_download_copy_and_delete(root: str, tmp_path: Path) -> None:
    storage = ResultsStorage(root)
    local = tmp_path / "local.pt"
    local.write_bytes(b"weights" * 1000)
    pt = join(root, "run", "Walker", "Walker-90.pt")
    storage.upload_file(local, pt)
    final = join(root, "run", "Walker.onnx")
    storage.copy_file(pt, final)
    back = storage.download_file(final, tmp_path / "down" / "x.pt")
    assert back.read_bytes() == local.read_bytes()
    files = list(storage.list_files(join(root, "run")))
    assert sorted(files) == sorted([join(root, "run", "Walker", "Walker-90.pt"), join(root, "run", "Walker.onnx")])
    assert all(location.startswith(root) for location in files), files  # a file:// listing stays file:///
    assert storage.delete_file(pt) and not storage.delete_file(pt)
    with pytest.raises(FileNotFoundError):
        storage.read_bytes(pt)


def test_delete_event_files_deletes_only_event_files_at_any_depth(root: str) -> None:
    storage = ResultsStorage(root)
    run = join(root, "run")
    for name in ("Walker/events.out.tfevents.1.host", "events.out.tfevents.2.host", "Walker/checkpoint.pt"):
        storage.write_bytes(join(run, name), b"x")
    deleted = storage.delete_event_files(run)
    assert sorted(deleted) == sorted([join(run, "Walker", "events.out.tfevents.1.host"), join(run, "events.out.tfevents.2.host")])
    assert list(storage.list_files(run)) == [join(run, "Walker", "checkpoint.pt")]


# ---- the run folder rules, through a file:// URI --------------------------------------------------------------------


def test_the_run_rules_hold_for_a_uri(tmp_path: Path) -> None:
    results = file_uri(tmp_path / "results")
    storage = ResultsStorage(results)
    settings = CheckpointSettings(run_id="demo", results_dir=results)
    locations = run_locations(results, "demo")
    with pytest.raises(ConfigError, match="cannot be resumed") as caught:
        prepare_run_location(CheckpointSettings(run_id="demo", results_dir=results, resume=True), locations, storage)
    assert join(results, "demo") in str(caught.value)
    prepare_run_location(settings, locations, storage)
    assert (tmp_path / "results" / "demo" / "run_logs").is_dir()
    options = run_options_from_yaml_text("behaviors:\n  Walker:\n    trainer_type: ppo\n")
    assert save_configuration(storage, locations.write_path, options) == join(results, "demo", "configuration.yaml")
    storage.write_bytes(join(locations.write_path, "Walker", "events.out.tfevents.1.host"), b"old")
    with pytest.raises(ConfigError, match="--resume") as caught:
        prepare_run_location(settings, locations, storage)
    assert locations.write_path in str(caught.value)
    forced = CheckpointSettings(run_id="demo", results_dir=results, force=True)
    prepare_run_location(forced, locations, storage)
    assert not list((tmp_path / "results" / "demo").rglob("events.out.tfevents.*"))
    assert (tmp_path / "results" / "demo" / "configuration.yaml").is_file()
    missing = CheckpointSettings(run_id="other", results_dir=results, initialize_from="nowhere")
    with pytest.raises(ConfigError, match="nowhere"):
        prepare_run_location(missing, run_locations(results, "other", "nowhere"), storage)


def test_training_status_round_trips_through_a_uri(tmp_path: Path) -> None:
    results = file_uri(tmp_path / "results")
    storage = ResultsStorage(results)
    location = join(results, "demo", "run_logs", "training_status.json")
    assert TrainingStatus.load(location, storage).behavior_names() == []
    status = TrainingStatus()
    record = CheckpointRecord(5, join(results, "demo", "W", "W-5.onnx"), 1.0, 2.0, (join(results, "demo", "W", "W-5.pt"),))
    status.set_checkpoints("W", [record])
    status.save(location, storage)
    assert json.loads((tmp_path / "results" / "demo" / "run_logs" / "training_status.json").read_text())["W"]
    assert TrainingStatus.load(location, storage).checkpoints("W") == [record]


# ---- checkpoints through a URI --------------------------------------------------------------------------------------


def trainer(keep_checkpoints: int = 2) -> Trainer:
    settings = TrainerSettings(
        hyperparameters=PPOSettings(batch_size=16, buffer_size=1000, num_epoch=1),
        network_settings=NetworkSettings(hidden_units=8),
        checkpoint_interval=10,
        keep_checkpoints=keep_checkpoints,
        max_steps=1000,
    )
    return Trainer("Walker", SPEC, settings, seed=0)


def trajectory(length: int, seed: int) -> Trajectory:
    """A trajectory of random observations and actions of SPEC."""
    rng = np.random.default_rng(seed)
    return Trajectory(
        obs=(rng.normal(size=(length, 3)).astype(np.float32),),
        next_obs=(rng.normal(size=3).astype(np.float32),),
        continuous_actions=np.zeros((length, 0), np.float32),
        discrete_actions=rng.integers(0, 2, size=(length, 1)),
        rewards=np.ones(length, np.float32),
        done=False,
        interrupted=False,
        versions=np.zeros(length, dtype=np.int32),
        extras={LOG_PROBS: np.full(length, -0.69, dtype=np.float32)},
        behavior="Walker",
        agent_id=f"agent_0-{seed}",
    )


def test_checkpoints_are_uploaded_data_first_rotated_and_restored_from_a_uri(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch_root = tmp_path / "tmp"
    scratch_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch_root))
    results = file_uri(tmp_path / "results")
    write_path = join(results, "run")
    storage = ResultsStorage(write_path)
    source = trainer()
    written: list[CheckpointRecord] = []
    for seed in range(3):
        source.ingest([trajectory(10, seed)])
        written.append(source.save_checkpoint(CheckpointStore(storage, join(write_path, "Walker"), "Walker")))
    assert [r.steps for r in source.checkpoints] == [20, 30]
    newest = source.checkpoints[-1]
    assert newest.file_path == join(write_path, "Walker", "Walker-30.onnx")
    assert newest.auxillary_file_paths == (join(write_path, "Walker", "Walker-30.pt"),)
    folder = tmp_path / "results" / "run" / "Walker"
    assert sorted(p.name for p in folder.iterdir()) == [
        "Walker-20.onnx", "Walker-20.pt", "Walker-30.onnx", "Walker-30.pt", "checkpoint.pt"
    ]
    saved = torch.load(folder / "checkpoint.pt", weights_only=True)
    assert int(saved["global_step"]["_GlobalSteps__global_step"].item()) == 30
    assert not list(scratch_root.glob("rayagents-*")), "a scratch folder was left behind"

    settings = LearnerSettings(write_path=write_path, resume=True)
    location = restore_source(settings, "Walker")
    assert location == join(write_path, "Walker")
    resumed = trainer()
    assert resumed.restore(CheckpointStore(ResultsStorage(location), location, "Walker"), reset_global_step=False) == []
    assert resumed.step == 30
    expected = source.weights_snapshot().state
    assert all(np.array_equal(resumed.weights_snapshot().state[k], expected[k]) for k in expected)
    initialized = trainer()
    init = LearnerSettings(write_path=join(results, "other"), init_path=write_path)
    init_location = restore_source(init, "Walker") or ""
    initialized.restore(CheckpointStore(ResultsStorage(init_location), init_location, "Walker"), reset_global_step=True)
    assert initialized.step == 0
    assert restore_source(LearnerSettings(write_path=write_path), "Walker") is None
    nobody = join(write_path, "Nobody")
    with pytest.raises(FileNotFoundError, match="Nobody"):
        trainer().restore(CheckpointStore(storage, nobody, "Nobody"), reset_global_step=False)
    assert not list(scratch_root.glob("rayagents-*"))


# ---- TensorBoard events, staged and uploaded --------------------------------------------------------------------------


def test_staged_events_are_uploaded_and_a_resumed_run_adds_files_beside_the_old_ones(tmp_path: Path) -> None:
    results = file_uri(tmp_path / "results")
    write_path = join(results, "run")
    storage = ResultsStorage(write_path)
    first = TensorBoardWriter.staged(storage, write_path, resume=False)
    staging = first.staging_folder
    assert staging is not None and staging.is_dir()
    first.write("Walker", 1000, {"Environment/Cumulative Reward": 1.0})
    assert first.upload() == [join(write_path, "Walker", p.name) for p in (staging / "Walker").iterdir()]
    assert first.upload() == [], "an unchanged file is not uploaded again"
    first.write("Walker", 2000, {"Environment/Cumulative Reward": 2.0})
    first.close()
    assert not staging.exists(), "the staging folder is removed once everything is uploaded"
    remote = tmp_path / "results" / "run" / "Walker"
    assert read_scalars(remote)["Environment/Cumulative Reward"] == [(1000, 1.0), (2000, 2.0)]
    (old,) = [p for p in remote.iterdir()]
    old_bytes = old.read_bytes()
    resumed = TensorBoardWriter.staged(storage, write_path, resume=True)
    resumed.write("Walker", 3000, {"Environment/Cumulative Reward": 3.0})
    resumed.close()
    assert len(list(remote.iterdir())) == 2 and old.read_bytes() == old_bytes
    assert sorted(s for s, _ in read_scalars(remote)["Environment/Cumulative Reward"]) == [1000, 2000, 3000]
