"""Every way to name a cluster reaches a real token-authenticated ``ray start --head``: ``HOST:PORT`` (here
through ``RAY_ADDRESS``; ``--address`` takes the same text), ``ray://HOST:PORT`` (Ray Client), with the token read where Ray keeps it and ``RAY_AUTH_MODE``
unset (Ray itself turns the token on only for ``auto``); a machine that has a token also trains on a head without
authentication. A cluster that does not answer, a wrong token and a missing one are each one line, within seconds,
naming what to set."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from learn_runs import SUMMARY_LINE, cartpole_args, run_learn, write_cartpole_config
from processes import ray_cluster_pids, stop_ray_cluster

from bench.local_cluster import free_port

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
FAST_FAILURE_S = 20.0
"""A refused or unreachable cluster is reported before Ray's own 20-40 s of retries would end (start-up included)."""


@dataclass(frozen=True)
class Head:
    """A token-authenticated head: its GCS port, its Ray Client port and the file holding its token."""

    gcs_port: int
    client_port: int
    token_path: Path


@contextmanager
def running_head(folder: Path, auth_mode: str) -> Iterator[Head]:
    """``ray start --head`` with ``RAY_AUTH_MODE`` ``auth_mode`` and a fresh token in ``folder/auth_token``; stopped
    after, with a check that none of its processes is left."""
    token_path = folder / "auth_token"
    token_path.write_text(secrets.token_hex(32))
    gcs_port, client_port = free_port(), free_port()
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", RAY_AUTH_MODE=auth_mode,
               RAY_AUTH_TOKEN_PATH=str(token_path))  # fmt: skip
    env.pop("RAY_ADDRESS", None)
    env.pop("RAY_AUTH_TOKEN", None)
    start = [str(BIN / "ray"), "start", "--head", "--port", str(gcs_port), "--ray-client-server-port",
             str(client_port), "--dashboard-agent-listen-port", str(free_port()), "--include-dashboard", "false",
             "--num-cpus", "3", "--disable-usage-stats"]  # fmt: skip
    subprocess.run(start, env=env, check=True, capture_output=True, timeout=120)
    try:
        yield Head(gcs_port, client_port, token_path)
    finally:
        stop_ray_cluster(gcs_port)
        assert not ray_cluster_pids(gcs_port), "the head's processes outlived it"


@pytest.fixture(scope="module")
def head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Head]:
    """A token-authenticated head."""
    with running_head(tmp_path_factory.mktemp("head"), "token") as started:
        yield started


@pytest.fixture(scope="module")
def open_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Head]:
    """A head without authentication."""
    with running_head(tmp_path_factory.mktemp("open-head"), "disabled") as started:
        yield started


@pytest.fixture(autouse=True)
def no_authentication_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """The runs see only the authentication settings each test gives them."""
    for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)


def client_env(head: Head, **more: str) -> dict[str, str]:
    """The environment of a user on another machine of the cluster: the head's token in a file, no auth mode."""
    return {"RAY_AUTH_TOKEN_PATH": str(head.token_path), **more}


def learn(tmp_path: Path, name: str, env: dict[str, str], *more: str) -> tuple[int, str, float]:
    config = write_cartpole_config(tmp_path / f"{name}.yaml", max_steps=1000, summary_freq=500)
    started = time.monotonic()
    code, output = run_learn(cartpole_args(config, tmp_path / "results", name, *more), tmp_path, name=name,
                             extra_env=env)  # fmt: skip
    return code, output, time.monotonic() - started


@pytest.mark.parametrize("how", ["gcs", "client"])
def test_a_machine_with_a_token_trains_on_a_cluster_without_authentication(
    open_head: Head, head: Head, tmp_path: Path, how: str
) -> None:
    """The driver uses no token where the head asks for none: with one, the head could not call the driver back
    and would destroy its actors as they were made ("all references to the actor were removed")."""
    address = f"127.0.0.1:{open_head.gcs_port}" if how == "gcs" else f"ray://127.0.0.1:{open_head.client_port}"
    code, output, _ = learn(tmp_path, how, client_env(head), "--address", address)
    assert code == 0, output
    assert [int(step) for _, step, _ in SUMMARY_LINE.findall(output)] == [500, 1000], output


@pytest.mark.parametrize("how", ["gcs", "client"])
def test_a_run_trains_on_a_token_cluster_however_it_is_named(head: Head, tmp_path: Path, how: str) -> None:
    """``HOST:PORT`` through ``RAY_ADDRESS`` (as a job's entrypoint gets it), ``ray://`` through ``--address``."""
    if how == "gcs":
        code, output, _ = learn(tmp_path, how, client_env(head, RAY_ADDRESS=f"127.0.0.1:{head.gcs_port}"))
    else:
        code, output, _ = learn(tmp_path, how, client_env(head), "--address", f"ray://127.0.0.1:{head.client_port}")
    assert code == 0, output
    assert [int(step) for _, step, _ in SUMMARY_LINE.findall(output)] == [500, 1000], output
    assert (tmp_path / "results" / how / "CartPole.onnx").is_file()


@pytest.mark.parametrize("how", ["gcs", "client"])
def test_a_wrong_token_is_one_line_naming_where_it_was_read(head: Head, tmp_path: Path, how: str) -> None:
    address = f"127.0.0.1:{head.gcs_port}" if how == "gcs" else f"ray://127.0.0.1:{head.client_port}"
    code, output, seconds = learn(tmp_path, f"wrong-{how}", client_env(head, RAY_AUTH_TOKEN="not-the-head-token"),
                                  "--address", address)  # fmt: skip
    assert code == 2, output
    assert f"error: the Ray cluster at {address} refused the authentication token read from RAY_AUTH_TOKEN" \
           in output, output  # fmt: skip
    assert "Traceback" not in output and seconds < FAST_FAILURE_S, (seconds, output)


def test_a_missing_token_says_where_to_put_one(head: Head, tmp_path: Path) -> None:
    home = tmp_path / "home"  # a machine that never had a token: no ~/.ray/auth_token, nothing in the environment
    home.mkdir()
    code, output, seconds = learn(tmp_path, "none", {"HOME": str(home)},
                                  "--address", f"127.0.0.1:{head.gcs_port}")  # fmt: skip
    assert code == 2, output
    assert "requires its authentication token and this machine has none" in output, output
    assert "Traceback" not in output and seconds < FAST_FAILURE_S, (seconds, output)


def test_a_cluster_that_does_not_answer_is_one_line(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    code, output, seconds = learn(tmp_path, "nobody", {"RAY_ADDRESS": f"127.0.0.1:{port}"})
    assert code == 2, output
    assert f"error: cannot reach the Ray cluster at 127.0.0.1:{port}" in output, output
    assert "Traceback" not in output and seconds < FAST_FAILURE_S, (seconds, output)
