"""Faults on a multi-node Ray cluster (``ray.cluster_utils.Cluster``: several raylets on this machine).

``rayagents-learn`` runs in its own process, connected to the cluster with ``--address``, as a Ray job's driver
would be; the test makes the faults a cloud makes: players killed with SIGKILL one after another, a node removed
mid-run (a preempted spot machine) and a new one added later (the autoscaler's answer), the learner's process
killed. Each fault is made when the run's output says it reached a step, and the next waits until training went
on past the recovery, so a faster trainer cannot outrun a fault: the runs are given a max_steps they never reach
and are stopped by the test (Ctrl+C) once they trained on after the last fault. Each must then exit with code 0
and save its model, every checkpoint it lists must load, and no player or actor process may be left behind. The
recovery figures are printed (``pytest -s``) for the notes.

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

from learn_runs import PLAYER_LINE, SUMMARY_LINE, LearnProcess, start_learn

from rayagents.cluster.tensorboard import read_scalars

pytestmark = pytest.mark.slow

BEHAVIOR = "CartPole"
CHECKPOINT_INTERVAL = 3000
CONFIG = {
    "behaviors": {
        BEHAVIOR: {
            "trainer_type": "ppo",
            "hyperparameters": {"batch_size": 256, "buffer_size": 512, "learning_rate": 0.001},
            "network_settings": {"hidden_units": 32},
            "max_steps": 10_000_000,  # never reached: each test stops its run
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


def stop_with_loadable_checkpoints(learn: LearnProcess, results: Path) -> list[int]:
    """Stops the run with Ctrl+C after its last summary: it exits with code 0, its final model is saved at that
    step or later, and every checkpoint in training_status.json loads; returns the checkpoints' steps."""
    reached = learn.summary_steps()[-1]
    code = learn.stop(60)
    assert code == 0, learn.output
    status = json.loads((results / "run_logs" / "training_status.json").read_text())
    records = status[BEHAVIOR]["checkpoints"]
    assert status[BEHAVIOR]["final_checkpoint"]["steps"] >= reached, status
    assert records, status
    for record in records:
        onnxruntime.InferenceSession(record["file_path"])
        for pt in record["auxillary_file_paths"]:
            state = torch.load(pt, weights_only=True)
            assert {"Policy", "global_step"} <= set(state), pt
    onnxruntime.InferenceSession(str(results / f"{BEHAVIOR}.onnx"))
    return [record["steps"] for record in records]


def steps_before(learn: LearnProcess, line: re.Match[str]) -> int:
    """The last summary's step before ``line`` of the output (0 before the first)."""
    return max([int(m.group(2)) for m in SUMMARY_LINE.finditer(learn.output[: line.start()])], default=0)


KILLED_PLAYERS = 6
"""How many times a player is killed in the player-fault test."""


def test_players_killed_one_after_another_are_restarted_and_training_goes_on(
    cluster: FaultCluster, config: Path
) -> None:
    args = learn_args(config, cluster, "killed_players", "--num-envs", "2", "--max-lifetime-restarts", "50",
                      "--restarts-rate-limit-n", "-1")  # fmt: skip
    learn = start_learn(args, config.parent)
    results = config.parent / "results" / "killed_players"
    rng = random.Random(5)
    recoveries: list[float] = []
    try:
        step = learn.wait_for_step(1000, 120)
        for _ in range(KILLED_PLAYERS):
            players = learn.player_pids()
            index = rng.choice(sorted(players))
            mark = len(learn.output)
            os.kill(players[index], signal.SIGKILL)
            killed_at = time.monotonic()
            again = learn.wait_for(rf"env actor {index}: its player runs again", 60, start=mark)
            recoveries.append(time.monotonic() - killed_at)
            # Training goes on past the recovery before the next fault.
            step = learn.wait_for_step(max(step, steps_before(learn, again)) + 1000, 120)
        steps = stop_with_loadable_checkpoints(learn, results)
    finally:
        learn.kill_if_running()
    assert learn.output.count("warning: the player of env actor") >= KILLED_PLAYERS, learn.output
    restarts = read_scalars(results / BEHAVIOR)["Cluster/Player Restarts"]
    assert restarts[-1][1] >= KILLED_PLAYERS, restarts
    assert not learn.left_behind(), learn.output
    print(f"\n[faults] players killed and running again after {[round(r, 2) for r in recoveries]} s; "
          f"checkpoints {steps}")


def starts_of(learn: LearnProcess, index: int) -> list[re.Match[str]]:
    """The start lines of EnvActor ``index`` (one per actor that held the index)."""
    return [m for m in PLAYER_LINE.finditer(learn.output) if int(m.group(1)) == index]


def test_a_removed_node_is_replaced_and_a_new_node_takes_the_lost_env_actor(
    cluster: FaultCluster, config: Path
) -> None:
    learn = start_learn(
        learn_args(config, cluster, "removed_node", "--num-envs", "2", "--min-envs", "1"), config.parent
    )
    try:
        learn.wait_for(r"training starts with", 120)
        learn.wait_for_step(3000, 120)
        removed = cluster.players[1]
        removed_id = removed.node_id  # type: ignore[attr-defined]
        (index,) = [int(m.group(1)) for m in PLAYER_LINE.finditer(learn.output) if removed_id in m.group(0)]
        removed_at = time.monotonic()
        cluster.cluster.remove_node(removed)
        lost = learn.wait_for(rf"env actor {index} was lost and is replaced", 60)
        detected = time.monotonic() - removed_at
        # Every node with room for a player is busy: the run trains on with the other EnvActor (min_envs 1) ...
        learn.wait_for_step(steps_before(learn, lost) + 2000, 120)
        assert len(starts_of(learn, index)) == 1, learn.output
        # ... until a new node arrives, where the replacement starts.
        added = cluster.add_player_node()
        added_id = added.node_id  # type: ignore[attr-defined]
        added_at = time.monotonic()
        started = learn.wait_for(rf"env actor {index} \(pid \d+\) on .*node {added_id}\)", 60)
        joined = time.monotonic() - added_at
        assert len(starts_of(learn, index)) == 2, learn.output
        learn.wait_for_step(steps_before(learn, started) + 1000, 120)
        steps = stop_with_loadable_checkpoints(learn, config.parent / "results" / "removed_node")
    finally:
        learn.kill_if_running()
    assert not learn.left_behind(), learn.output
    print(
        f"\n[faults] node removed: EnvActor loss seen after {detected:.1f} s; trained on with 1 of 2; the replacement "
        f"started {joined:.1f} s after a node was added; checkpoints {steps}"
    )


def test_a_killed_learner_is_restarted_from_the_latest_checkpoint(cluster: FaultCluster, config: Path) -> None:
    learn = start_learn(learn_args(config, cluster, "killed_learner", "--num-envs", "2"), config.parent)
    results = config.parent / "results" / "killed_learner"
    try:
        (pid,) = re.findall(r"learner \(pid (\d+)\)", learn.wait_for(r"learner \(pid \d+\) on node", 120).string)
        learn.wait_for_step(7000, 180)
        os.kill(int(pid), signal.SIGKILL)
        killed_at = time.monotonic()
        restarted = learn.wait_for(r"learner restarted in ([\d.]+) s \(CartPole at step (\d+)\); (\d+) steps", 120)
        recovery = time.monotonic() - killed_at
        restored, lost = int(restarted.group(2)), int(restarted.group(3))
        # The restarted learner trains on with both EnvActors before the run is stopped.
        learn.wait_for_step(max(restored, steps_before(learn, restarted)) + 2000, 120)
        stop_with_loadable_checkpoints(learn, results)
    finally:
        learn.kill_if_running()
    assert restored >= CHECKPOINT_INTERVAL, learn.output
    assert lost <= CHECKPOINT_INTERVAL + CONFIG["behaviors"][BEHAVIOR]["hyperparameters"]["buffer_size"], learn.output
    assert not learn.left_behind(), learn.output
    scalars = read_scalars(results / BEHAVIOR)
    assert [value for _, value in scalars["Cluster/Learner Restarts"]][-1] == 1.0, scalars.keys()
    assert [value for _, value in scalars["Cluster/Lost Steps"]][-1] >= lost
    up = [value for _, value in scalars["Cluster/Env Actors Up"]]
    assert set(up) <= {0.0, 1.0, 2.0} and up[-1] == 2.0, up  # both EnvActors play for the restarted learner
    print(f"\n[faults] learner killed: restarted from step {restored} after {recovery:.1f} s; {lost} steps lost")
