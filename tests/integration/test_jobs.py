"""``rayagents submit|status|logs|stop`` against a real ``ray start --head`` with its dashboard on loopback.

The head is started with the test's Python environment on its PATH (where ``rayagents-learn`` is installed), as
a cluster's nodes have it. A job trains CartPole from a config in its working directory and succeeds; another is
stopped mid-run and still leaves its model, as Ctrl+C does.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from processes import ray_cluster_pids, stop_ray_cluster

from bench.local_cluster import free_port

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
CONFIG = {
    "behaviors": {
        "CartPole": {
            "trainer_type": "ppo",
            "hyperparameters": {"batch_size": 128, "buffer_size": 256},
            "network_settings": {"hidden_units": 32},
            "max_steps": 1000,
            "summary_freq": 500,
        }
    }
}


@pytest.fixture(scope="module")
def head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Ray head node with its dashboard on 127.0.0.1; yields the dashboard address."""
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("RAY_ADDRESS", None)
    dashboard = free_port()
    gcs_port = free_port()
    start = [
        str(BIN / "ray"),
        "start",
        "--head",
        "--port",
        str(gcs_port),
        "--dashboard-host",
        "127.0.0.1",
        "--dashboard-port",
        str(dashboard),
        # The job agent's own port: its default (52365) is held by any other Ray cluster of this machine.
        "--dashboard-agent-listen-port",
        str(free_port()),
        "--num-cpus",
        "3",
        "--disable-usage-stats",
    ]
    subprocess.run(start, env=env, check=True, capture_output=True, timeout=120)
    try:
        yield f"http://127.0.0.1:{dashboard}"
    finally:
        stop_ray_cluster(gcs_port)  # this head alone: `ray stop` would stop every Ray cluster of the machine
        assert not ray_cluster_pids(gcs_port), "the head's processes outlived it"


def rayagents(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rayagents.cluster.jobs", *args], capture_output=True, text=True, timeout=timeout
    )


def test_a_submitted_run_trains_from_its_working_dir_and_streams_its_log(head: str, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "cartpole.yaml").write_text(yaml.safe_dump(CONFIG))
    results = tmp_path / "results"
    done = rayagents(
        "submit", "--address", head, "--working-dir", str(project), "--",
        "cartpole.yaml", "--env", "sim:CartPole", "--num-areas", "2", "--results-dir", str(results), "--run-id", "job",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    (job_id,) = re.findall(r"submitted job (\S+)", done.stdout)
    assert "CartPole. Step: 1000." in done.stdout, "the job's log is streamed"
    assert (results / "job" / "CartPole.onnx").is_file()
    status = rayagents("status", "--address", head, job_id)
    assert status.returncode == 0 and "SUCCEEDED" in status.stdout, status.stdout + status.stderr
    logs = rayagents("logs", "--address", head, job_id)
    assert "the trained model is" in logs.stdout


def test_stop_saves_the_model_of_a_running_job(head: str, tmp_path: Path) -> None:
    config = tmp_path / "long.yaml"
    long = {"behaviors": {"CartPole": {**CONFIG["behaviors"]["CartPole"], "max_steps": 10_000_000}}}
    config.write_text(yaml.safe_dump(long))
    results = tmp_path / "results"
    submitted = rayagents(
        "submit", "--address", head, "--no-wait", "--",
        str(config), "--env", "sim:CartPole", "--results-dir", str(results), "--run-id", "stopped",
    )  # fmt: skip
    assert submitted.returncode == 0, submitted.stdout + submitted.stderr
    (job_id,) = re.findall(r"submitted job (\S+)", submitted.stdout)
    deadline = time.monotonic() + 120
    while "CartPole. Step: 1000." not in rayagents("logs", "--address", head, job_id).stdout:
        assert time.monotonic() < deadline, rayagents("logs", "--address", head, job_id).stdout
        time.sleep(1)
    assert rayagents("stop", "--address", head, job_id).returncode == 0
    deadline = time.monotonic() + 60
    while "STOPPED" not in rayagents("status", "--address", head, job_id).stdout:
        assert time.monotonic() < deadline, rayagents("status", "--address", head, job_id).stdout
        time.sleep(1)
    assert (results / "stopped" / "CartPole.onnx").is_file(), rayagents("logs", "--address", head, job_id).stdout
