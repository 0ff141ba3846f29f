"""Faults on a multi-node Ray cluster (``ray.cluster_utils.Cluster``: several raylets on this machine).

``rayagents-learn`` runs in its own process, connected to the cluster with ``--address``, as a Ray job's driver
would be; the test makes the faults a cloud makes: players killed with SIGKILL every few seconds, a node removed
mid-run (a preempted spot machine) and a new one added later (the autoscaler's answer), the learner's process
killed. Each run must still reach ``max_steps`` with exit code 0, every checkpoint it lists must load, and no
player or actor process may be left behind. The recovery figures are printed (``pytest -s``) for the notes.

Nodes: the head (no players, no learner), two player nodes (``unity_player``), one learner node (a GPU in Ray's
books only; the learner trains on the CPU).
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import onnxruntime
import pytest
import torch
import yaml
from ray.cluster_utils import Cluster

from rayagents.cluster.tensorboard import read_scalars
from learn_runs import PLAYER_AGAIN_LINE, PLAYER_LINE, LearnProcess, alive, start_learn

pytestmark = pytest.mark.slow

BEHAVIOR = "CartPole"
CHECKPOINT_INTERVAL = 3000
CONFIG = {
    "behaviors": {
        BEHAVIOR: {
            "trainer_type": "ppo",
            "hyperparameters": {"batch_size": 256, "buffer_size": 512, "learning_rate": 0.001},
            "network_settings": {"hidden_units": 32},
            "max_steps": 15000,
            "summary_freq": 1000,
            "checkpoint_interval": CHECKPOINT_INTERVAL,
            "keep_checkpoints": 20,
            "time_horizon": 32,
        }
    }
}


class FaultCluster:
    """The test's Ray cluster; nodes may be removed and added by a test."""

    def __init__(self) -> None:
        self.cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
        self.players = [self.add_player_node() for _ in range(2)]
        self.learner_node = self.cluster.add_node(num_cpus=1, num_gpus=1)
        self.cluster.wait_for_nodes()

    @property
    def address(self) -> str:
        return self.cluster.address

    def add_player_node(self) -> object:
        """A node with room for one player."""
        return self.cluster.add_node(num_cpus=1, resources={"unity_player": 1})

    def shutdown(self) -> None:
        self.cluster.shutdown()


@pytest.fixture()
def cluster() -> Iterator[FaultCluster]:
    made = FaultCluster()
    try:
        yield made
    finally:
        made.shutdown()


def learn_args(config: Path, cluster: FaultCluster, run_id: str, *extra: str) -> list[str]:
    return [
        str(config),
        "--env",
        "sim:CartPole",
        "--num-areas",
        "4",
        "--address",
        cluster.address,
        "--env-actor-resources",
        '{"unity_player": 1}',
        "--learner-num-gpus",
        "1",
        "--learner-device",
        "cpu",
        "--results-dir",
        str(config.parent / "results"),
        "--run-id",
        run_id,
        "--seed",
        "3",
        "--timeout-wait",
        "10",
        *extra,
    ]


@pytest.fixture()
def config(tmp_path: Path) -> Path:
    path = tmp_path / "cartpole.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    return path


def longer(config: Path, max_steps: int) -> Path:
    """The test config with another max_steps."""
    settings = yaml.safe_load(config.read_text())
    settings["behaviors"][BEHAVIOR]["max_steps"] = max_steps
    path = config.with_name(f"cartpole_{max_steps}.yaml")
    path.write_text(yaml.safe_dump(settings))
    return path


def assert_finished_with_loadable_checkpoints(learn: LearnProcess, results: Path) -> list[int]:
    """The run reached max_steps; every checkpoint in training_status.json loads; returns their steps."""
    code = learn.wait(240)
    assert code == 0, learn.output
    status = json.loads((results / "run_logs" / "training_status.json").read_text())
    records = status[BEHAVIOR]["checkpoints"]
    configured = yaml.safe_load((results / "configuration.yaml").read_text())
    assert status[BEHAVIOR]["final_checkpoint"]["steps"] >= configured["behaviors"][BEHAVIOR]["max_steps"]
    assert records, status
    for record in records:
        onnxruntime.InferenceSession(record["file_path"])
        for pt in record["auxillary_file_paths"]:
            state = torch.load(pt, weights_only=True)
            assert {"Policy", "global_step"} <= set(state), pt
    onnxruntime.InferenceSession(str(results / f"{BEHAVIOR}.onnx"))
    return [record["steps"] for record in records]


def assert_nothing_left(learn: LearnProcess) -> None:
    """Every player and EnvActor the run started has exited."""
    pids = [int(m.group(2)) for m in PLAYER_LINE.finditer(learn.output)]
    pids += [int(m.group(3)) for m in PLAYER_LINE.finditer(learn.output)]
    pids += [int(m.group(2)) for m in PLAYER_AGAIN_LINE.finditer(learn.output)]
    pids += [int(pid) for pid in re.findall(r"learner \(pid (\d+)\)", learn.output)]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(pid) for pid in pids):
        time.sleep(0.2)
    assert not [pid for pid in pids if alive(pid)], learn.output


def test_players_killed_every_few_seconds_are_restarted_and_the_run_finishes(
    cluster: FaultCluster, config: Path
) -> None:
    learn = start_learn(
        learn_args(
            longer(config, 40000),
            cluster,
            "killed_players",
            "--num-envs",
            "2",
            "--max-lifetime-restarts",
            "50",
            "--restarts-rate-limit-n",
            "-1",
        ),
        config.parent,
    )
    learn.wait_for(r"training starts with", 120)
    rng = random.Random(5)
    recoveries: list[float] = []
    while learn.process.poll() is None and len(recoveries) < 6:
        time.sleep(2.0)
        players = learn.player_pids()
        index = rng.choice(sorted(players))
        try:
            os.kill(players[index], signal.SIGKILL)
        except ProcessLookupError:
            continue  # the run has just ended
        killed_at = time.monotonic()
        while learn.process.poll() is None and learn.player_pids()[index] == players[index]:
            time.sleep(0.05)
        if learn.process.poll() is None:
            recoveries.append(time.monotonic() - killed_at)
    assert_finished_with_loadable_checkpoints(learn, config.parent / "results" / "killed_players")
    assert len(recoveries) >= 3, learn.output
    assert learn.output.count("warning: the player of env actor") >= len(recoveries), learn.output
    assert_nothing_left(learn)
    print(f"\n[faults] players killed and running again after {[round(r, 2) for r in recoveries]} s")


def starts_of(learn: LearnProcess, index: int) -> list[re.Match[str]]:
    """The start lines of EnvActor ``index`` (one per actor that held the index)."""
    return [m for m in PLAYER_LINE.finditer(learn.output) if int(m.group(1)) == index]


def test_a_removed_node_is_replaced_and_a_new_node_takes_the_lost_env_actor(
    cluster: FaultCluster, config: Path
) -> None:
    learn = start_learn(
        learn_args(config, cluster, "removed_node", "--num-envs", "2", "--min-envs", "1"), config.parent
    )
    learn.wait_for(r"training starts with", 120)
    learn.wait_for(r"^CartPole\. Step: 3000\.", 120)
    removed = cluster.players[1]
    removed_id = removed.node_id  # type: ignore[attr-defined]
    (index,) = [int(m.group(1)) for m in PLAYER_LINE.finditer(learn.output) if removed_id in m.group(0)]
    removed_at = time.monotonic()
    cluster.cluster.remove_node(removed)
    learn.wait_for(rf"env actor {index} was lost and is replaced", 60)
    detected = time.monotonic() - removed_at
    # Every node with room for a player is busy: the run trains on with the other EnvActor (min_envs 1) ...
    steps_before = learn.summary_steps()[-1]
    learn.wait_for(rf"^CartPole\. Step: {steps_before + 2000}\.", 120)
    assert len(starts_of(learn, index)) == 1, learn.output
    # ... until a new node arrives, where the replacement starts.
    added = cluster.add_player_node()
    added_at = time.monotonic()
    deadline = added_at + 60
    while len(starts_of(learn, index)) < 2 and time.monotonic() < deadline and learn.process.poll() is None:
        time.sleep(0.2)
    joined = time.monotonic() - added_at
    restarted = starts_of(learn, index)
    assert len(restarted) == 2 and added.node_id in restarted[1].group(0), learn.output  # type: ignore[attr-defined]
    steps = assert_finished_with_loadable_checkpoints(learn, config.parent / "results" / "removed_node")
    assert_nothing_left(learn)
    print(
        f"\n[faults] node removed: EnvActor loss seen after {detected:.1f} s; trained on with 1 of 2; the replacement "
        f"started {joined:.1f} s after a node was added; checkpoints {steps}"
    )


def test_a_killed_learner_is_restarted_from_the_latest_checkpoint(cluster: FaultCluster, config: Path) -> None:
    learn = start_learn(learn_args(config, cluster, "killed_learner", "--num-envs", "2"), config.parent)
    (pid,) = re.findall(r"learner \(pid (\d+)\)", learn.wait_for(r"learner \(pid \d+\) on node", 120).string)
    learn.wait_for(r"^CartPole\. Step: 7000\.", 180)
    os.kill(int(pid), signal.SIGKILL)
    killed_at = time.monotonic()
    restarted = learn.wait_for(r"learner restarted in ([\d.]+) s \(CartPole at step (\d+)\); (\d+) steps", 120)
    recovery = time.monotonic() - killed_at
    restored, lost = int(restarted.group(2)), int(restarted.group(3))
    assert restored >= CHECKPOINT_INTERVAL, learn.output
    assert lost <= CHECKPOINT_INTERVAL + CONFIG["behaviors"][BEHAVIOR]["hyperparameters"]["buffer_size"], learn.output
    results = config.parent / "results" / "killed_learner"
    assert_finished_with_loadable_checkpoints(learn, results)
    assert_nothing_left(learn)
    scalars = read_scalars(results / BEHAVIOR)
    assert [value for _, value in scalars["Cluster/Learner Restarts"]][-1] == 1.0, scalars.keys()
    assert [value for _, value in scalars["Cluster/Lost Steps"]][-1] >= lost
    up = [value for _, value in scalars["Cluster/Env Actors Up"]]
    assert set(up) <= {0.0, 1.0, 2.0} and up[-1] == 2.0, up  # both EnvActors play for the restarted learner
    print(f"\n[faults] learner killed: restarted from step {restored} after {recovery:.1f} s; {lost} steps lost")
