"""``--results-dir`` and ``--env`` as S3 URIs, against a real S3-compatible server (moto's, on 127.0.0.1).

pyarrow reaches the server through the URI's query (``?endpoint_override=127.0.0.1:PORT&scheme=http``); the
credentials are fake values in the environment, which the learner's and the players' Ray workers inherit. The
server's content is read with boto3, not with the code under test.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import pytest
import torch
import yaml
from learn_runs import CARTPOLE, SUMMARY_LINE, cartpole_args, run_learn, write_cartpole_config

from rayagents.cluster.tensorboard import read_scalars
from rayagents.learner.results_storage import ResultsStorage, StorageError, join

BUCKET = "rayagents-results"
BEHAVIOR = CARTPOLE


@dataclass
class S3Server:
    """A running S3-compatible server and a boto3 client of it."""

    port: int
    client: Any

    @property
    def query(self) -> str:
        """What an S3 URI needs to reach this server with pyarrow."""
        return f"?endpoint_override=127.0.0.1:{self.port}&scheme=http"

    def uri(self, key: str, bucket: str = BUCKET) -> str:
        return f"s3://{bucket}/{key}{self.query}"

    def keys(self, prefix: str) -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def read(self, key: str) -> bytes:
        return self.client.get_object(Bucket=BUCKET, Key=key)["Body"].read()


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    import boto3
    from moto.server import ThreadedMotoServer

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ACCESS_KEY_ID", "rayagents-test")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "rayagents-test-secret")
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        patch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            _, port = server.get_host_and_port()
            client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1")
            client.create_bucket(Bucket=BUCKET)
            yield S3Server(port, client)
        finally:
            server.stop()


# ---- the storage on S3 -------------------------------------------------------------------------------------------------


def test_the_storage_writes_whole_objects_and_finds_a_missing_bucket(s3: S3Server, tmp_path: Path) -> None:
    root = s3.uri("unit")
    storage = ResultsStorage(root)
    storage.check()
    status = join(root, "run", "run_logs", "training_status.json")
    storage.write_text(status, "first")
    storage.write_text(status, "second")
    assert s3.keys("unit/") == ["unit/run/run_logs/training_status.json"], "no temporary object"
    assert s3.read("unit/run/run_logs/training_status.json") == b"second"
    local = tmp_path / "m.onnx"
    local.write_bytes(b"model" * 10_000)
    storage.upload_file(local, join(root, "run", "W", "W-5.onnx"))
    storage.copy_file(join(root, "run", "W", "W-5.onnx"), join(root, "run", "W.onnx"))
    assert s3.read("unit/run/W.onnx") == local.read_bytes()
    storage.write_bytes(join(root, "run", "W", "events.out.tfevents.1.host"), b"e")
    assert storage.delete_event_files(join(root, "run")) == [join(root, "run", "W", "events.out.tfevents.1.host")]
    assert storage.delete_file(join(root, "run", "W", "W-5.onnx"))
    assert storage.has_content(join(root, "run")) and storage.is_dir(join(root, "run", "W"))
    assert not storage.has_content(join(root, "run", "W")), "an empty folder marker is no content"
    with pytest.raises(StorageError, match="does not exist") as caught:
        ResultsStorage(s3.uri("results", bucket="no-such-bucket")).check()
    assert "no-such-bucket" in str(caught.value) and "AWS_ACCESS_KEY_ID" in str(caught.value)


def test_a_bad_results_uri_is_refused_before_anything_starts(s3: S3Server, tmp_path: Path) -> None:
    config = write_cartpole_config(tmp_path / "cartpole.yaml", max_steps=1000)
    started = time.monotonic()
    missing_bucket = s3.uri("results", bucket="no-such-bucket")
    code, output = run_learn(cartpole_args(config, missing_bucket, "r"), tmp_path, name="bucket")
    assert code == 2, output
    assert "s3://no-such-bucket/results" in output and "does not exist" in output and "create the bucket" in output
    code, output = run_learn(cartpole_args(config, "nosuchfs://x/results", "r"), tmp_path, name="scheme")
    assert code == 2 and "nosuchfs://x/results" in output, output
    code, output = run_learn(cartpole_args(config, s3.uri("results"), "never", "--resume"), tmp_path, name="resume")
    assert code == 2 and "cannot be resumed" in output and "s3://rayagents-results/results/never" in output, output
    assert "learner" not in output
    assert time.monotonic() - started < 60, "the refusals must come before the cluster starts"


# ---- a run whose results go to S3, and its resume -------------------------------------------------------------------


def _status(s3: S3Server, run_key: str) -> dict[str, Any]:
    return json.loads(s3.read(f"{run_key}/run_logs/training_status.json"))[BEHAVIOR]


def _key_of(s3: S3Server, uri: str) -> str:
    """The object key of an ``s3://BUCKET/KEY?query`` URI (which must carry this server's query)."""
    assert uri.startswith(f"s3://{BUCKET}/") and uri.endswith(s3.query), uri
    return uri[len(f"s3://{BUCKET}/") : -len(s3.query)]


def _events(s3: S3Server, run_key: str, folder: Path) -> dict[str, bytes]:
    files = {key: s3.read(key) for key in s3.keys(f"{run_key}/{BEHAVIOR}/events.out.tfevents.")}
    folder.mkdir(parents=True, exist_ok=True)
    for key, data in files.items():
        (folder / key.rsplit("/", 1)[1]).write_bytes(data)
    return files


@pytest.mark.slow
def test_a_run_writes_its_results_to_s3_and_resumes_from_there(s3: S3Server, tmp_path: Path) -> None:
    run_id = f"s3run-{uuid.uuid4().hex[:8]}"
    run_key = f"results/{run_id}"
    results = s3.uri("results")
    config = write_cartpole_config(tmp_path / "c.yaml", max_steps=2000)
    code, output = run_learn(cartpole_args(config, results, run_id), tmp_path, name="s3")
    player_logs = Path(re.search(r"player logs stay on each player's node in (\S+)", output).group(1))  # type: ignore[union-attr]
    try:
        assert code == 0, output
        assert [int(m.group(2)) for m in SUMMARY_LINE.finditer(output)][:2] == [1000, 2000], output
        assert f"the trained model is {s3.uri(run_key + '/CartPole.onnx')}" in output
        keys = s3.keys(f"{run_key}/")
        for name in ("configuration.yaml", "run_logs/training_status.json", "run_logs/timers.json", "CartPole.onnx",
                     "CartPole/checkpoint.pt"):  # fmt: skip
            assert f"{run_key}/{name}" in keys, keys
        assert not [key for key in keys if key.endswith(".tmp")], keys
        assert yaml.safe_load(s3.read(f"{run_key}/configuration.yaml"))["checkpoint_settings"]["results_dir"] == results
        status = _status(s3, run_key)
        assert len(status["checkpoints"]) == 2
        for checkpoint in status["checkpoints"]:
            for uri in (checkpoint["file_path"], *checkpoint["auxillary_file_paths"]):
                assert _key_of(s3, uri) in keys, uri
        assert sorted(k for k in keys if re.search(r"/CartPole-\d+\.(pt|onnx)$", k)) == sorted(
            _key_of(s3, uri) for c in status["checkpoints"] for uri in (c["file_path"], *c["auxillary_file_paths"])
        ), "rotation deleted the older checkpoints from the bucket"
        assert _key_of(s3, status["final_checkpoint"]["file_path"]) == f"{run_key}/CartPole.onnx"
        final_step = status["final_checkpoint"]["steps"]
        saved = torch.load(io.BytesIO(s3.read(f"{run_key}/CartPole/checkpoint.pt")), weights_only=True)
        assert int(saved["global_step"]["_GlobalSteps__global_step"].item()) == final_step >= 2000
        session = onnxruntime.InferenceSession(s3.read(f"{run_key}/CartPole.onnx"), providers=["CPUExecutionProvider"])
        obs = np.zeros((3, 4), np.float32)
        (actions,) = session.run(["deterministic_discrete_actions"], {"obs_0": obs, "action_masks": np.ones((3, 2), np.float32)})
        assert actions.shape == (3, 1)
        first_events = _events(s3, run_key, tmp_path / "events-1")
        assert len(first_events) == 1
        assert [s for s, _ in read_scalars(tmp_path / "events-1")["Environment/Cumulative Reward"]] == [1000, 2000]
        staging = re.search(r"TensorBoard events are written to (\S+) and uploaded", output).group(1)  # type: ignore[union-attr]
        assert not Path(staging).exists(), "the staging folder of the events was left behind"
        assert (player_logs / "Player-0.log").is_file(), "the player logs stay on the player's node"

        config = write_cartpole_config(tmp_path / "c3000.yaml", max_steps=3000)
        code, output = run_learn(cartpole_args(config, results, run_id, "--resume"), tmp_path, name="s3-resume")
        assert code == 0, output
        steps = [int(m.group(2)) for m in SUMMARY_LINE.finditer(output)]
        assert steps[0] == 3000, output
        after = _status(s3, run_key)
        assert after["checkpoints"][0]["steps"] > status["checkpoints"][0]["steps"]
        assert after["final_checkpoint"]["steps"] >= 3000
        events = _events(s3, run_key, tmp_path / "events-2")
        assert len(events) == 2 and all(events[key] == data for key, data in first_events.items()), (
            "a resumed run adds an event file and leaves the old one as it was"
        )
        rewards = read_scalars(tmp_path / "events-2")["Environment/Cumulative Reward"]
        assert sorted(s for s, _ in rewards) == [1000, 2000, 3000]
    finally:
        shutil.rmtree(player_logs.parent, ignore_errors=True)


# ---- --env as an S3 URI -------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_build_archive_on_s3_is_fetched_and_trains(
    s3: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build = tmp_path / "build" / "CartPole"
    subprocess.run([sys.executable, "-m", "rayagents.sims", "build", "CartPole", str(build)], check=True, timeout=60)
    archive = Path(shutil.make_archive(str(tmp_path / "CartPole"), "zip", build.parent, build.name))
    s3.client.put_object(Bucket=BUCKET, Key="builds/CartPole.zip", Body=archive.read_bytes())
    config = tmp_path / "cartpole.yaml"
    config.write_text(
        "behaviors:\n  CartPole:\n    trainer_type: ppo\n    hyperparameters: {batch_size: 64, buffer_size: 256}\n"
        "    max_steps: 600\n    summary_freq: 300\n"
    )
    monkeypatch.setenv("RAYAGENTS_BUILD_CACHE", str(tmp_path / "node-cache"))  # the local cluster's workers inherit it
    env = s3.uri("builds/CartPole.zip")
    args = [str(config), "--env", env, "--num-envs", "2", "--results-dir", str(tmp_path / "r"), "--run-id", "zip"]
    code, output = run_learn(args, tmp_path)
    assert code == 0, output
    unpacked = [p for p in (tmp_path / "node-cache").iterdir() if p.is_dir()]
    assert len(unpacked) == 1 and list(unpacked[0].rglob("CartPole.x86_64")), "one unpacked build, shared by both"
    assert (tmp_path / "r" / "zip" / "CartPole.onnx").is_file()
    assert os.access(next(unpacked[0].rglob("CartPole.x86_64")), os.X_OK)
