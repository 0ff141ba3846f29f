"""Placement on a multi-node Ray cluster (four nodes on this machine, ``ray.cluster_utils.Cluster``).

The head has no players' resource; two player nodes have ``unity_player`` and the label ``rayagents/role:
player``; one node has a GPU and the label ``rayagents/role: learner``. A run with ``--env-actor-resources
'{"unity_player": 1}'`` puts its two EnvActors on the two player nodes (SPREAD) and its learner on the GPU node
(``learner_num_gpus: auto`` asks for one when the cluster has one), and trains; so does a run that names the
nodes by their labels only.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray
import yaml
from ray.autoscaler._private.constants import AUTOSCALER_RESOURCE_REQUEST_CHANNEL
from ray.cluster_utils import Cluster
from ray.experimental.internal_kv import _internal_kv_get
from rich.console import Console

from rayagents.cluster.cli import resolve_run_options
from rayagents.cluster.console import ConsoleView
from rayagents.cluster.fleet import EnvFleet
from rayagents.cluster.training import TrainingRun

pytestmark = pytest.mark.slow

CONFIG = {
    "behaviors": {
        "CartPole": {
            "trainer_type": "ppo",
            "hyperparameters": {"batch_size": 128, "buffer_size": 256},
            "network_settings": {"hidden_units": 32},
            "max_steps": 1500,
            "summary_freq": 500,
            "time_horizon": 32,
        }
    }
}


@pytest.fixture(scope="module")
def cluster() -> Iterator[dict[str, str]]:
    """The cluster, connected; yields the node id of each kind of node."""
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    players = [
        cluster.add_node(num_cpus=2, resources={"unity_player": 2}, labels={"rayagents/role": "player"})
        for _ in range(2)
    ]
    gpu = cluster.add_node(num_cpus=1, num_gpus=1, labels={"rayagents/role": "learner"})
    cluster.wait_for_nodes()
    ray.init(address=cluster.address)
    try:
        yield {
            "head": cluster.head_node.node_id,
            "player_a": players[0].node_id,
            "player_b": players[1].node_id,
            "gpu": gpu.node_id,
        }
    finally:
        ray.shutdown()
        cluster.shutdown()


def placed_run(tmp_path: Path, run_id: str, placement: list[str]) -> tuple[list[str], str, object]:
    """Trains CartPole briefly with the given placement flags; returns the EnvActors' nodes, the learner's node and
    the result."""
    config = tmp_path / "cartpole.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    options = resolve_run_options(
        [
            str(config),
            "--env",
            "sim:CartPole",
            "--num-envs",
            "2",
            "--num-areas",
            "2",
            *placement,
            "--learner-device",
            "cpu",
            "--results-dir",
            str(tmp_path / "results"),
            "--run-id",
            run_id,
            "--seed",
            "1",
        ]
    )
    out = io.StringIO()
    result = TrainingRun(options, ConsoleView(Console(file=out, width=200), live=False)).run()
    text = out.getvalue()
    env_nodes = re.findall(r"env actor \d+ \(pid \d+\) on .*node (\w+)\): player pid", text)
    (learner_node,) = re.findall(r"learner \(pid \d+\) on node (\w+), torch device cpu", text)
    assert result.steps["CartPole"] >= 1500 and Path(result.models["CartPole"]).is_file(), text
    return env_nodes, learner_node, result


def test_env_actors_spread_over_player_nodes_and_the_learner_takes_the_gpu_node(
    cluster: dict[str, str], tmp_path: Path
) -> None:
    env_nodes, learner_node, _ = placed_run(tmp_path, "placed", ["--env-actor-resources", '{"unity_player": 1}'])
    assert sorted(env_nodes) == sorted([cluster["player_a"], cluster["player_b"]])
    assert learner_node == cluster["gpu"]
    assert ray.is_initialized(), "a run on a cluster it did not start leaves the connection to its owner"


def test_node_labels_alone_place_the_env_actors_and_the_learner(cluster: dict[str, str], tmp_path: Path) -> None:
    env_nodes, learner_node, _ = placed_run(
        tmp_path,
        "labelled",
        [
            "--env-actor-labels",
            '{"rayagents/role": "player"}',
            "--learner-labels",
            '{"rayagents/role": "learner"}',
            "--learner-num-gpus",
            "0",
        ],
    )
    assert sorted(env_nodes) == sorted([cluster["player_a"], cluster["player_b"]])
    assert learner_node == cluster["gpu"]


def autoscaler_request() -> list[dict[str, float]]:
    """What the autoscaler is asked for now (Ray's own record of ``request_resources``)."""
    value = _internal_kv_get(AUTOSCALER_RESOURCE_REQUEST_CHANNEL)
    return json.loads(value) if value else []


def test_the_autoscaler_is_asked_for_every_env_actor_and_the_request_is_withdrawn(
    cluster: dict[str, str], tmp_path: Path
) -> None:
    config = tmp_path / "cartpole.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    options = resolve_run_options(
        [str(config), "--env", "sim:CartPole", "--num-envs", "3", "--env-actor-resources", '{"unity_player": 1}']
    )
    lines: list[str] = []
    fleet = EnvFleet(options, seed=0, log_folder=str(tmp_path), policy_factory=None, log=lines.append)
    fleet.launch(learner=None)
    try:
        assert autoscaler_request() == [{"CPU": 1.0, "unity_player": 1.0}] * 3
        assert fleet.status().total == 3
    finally:
        fleet.close(timeout=5.0)
    assert autoscaler_request() == []
