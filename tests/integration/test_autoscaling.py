"""Autoscaling and preemption on Ray's own autoscaler: a token-authenticated head whose fake multi-node provider
launches real raylet nodes of a ``player`` type (a ``unity_player`` resource, none at the start) and a ``learner``
type (a fake GPU), and releases them when idle.

- Scale-up: a run that needs 4 EnvActors makes the autoscaler launch player nodes; training starts with the
  first EnvActor and the others join as their nodes arrive, each on a node of its own.
- Preemption: a player node killed mid-run (a spot reclaim) → its EnvActor comes back on a new node; the learner's
  node killed (another run) → the learner restarts from the latest checkpoint on a new node, losing at most one
  ``checkpoint_interval`` of steps. Both runs complete.
- Scale-down: after the run the player nodes go idle and are released, with nothing of the run left on them.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from learn_runs import LearnProcess, start_learn, write_cartpole_config
from processes import ray_cluster_pids, sims_players_under

from bench.local_cluster import LocalAutoscalingCluster, NodeType

pytestmark = pytest.mark.slow

# One player node more than the run needs: a reclaimed cloud machine leaves the provider's books at once, but the
# fake provider keeps a killed node listed (holding its slot), so the replacement needs a free one.
PLAYER = NodeType("player", {"CPU": 1, "unity_player": 1}, max_workers=5)
LEARNER = NodeType("learner", {"CPU": 1, "GPU": 1}, max_workers=2)
ENV_ACTOR_NODE = re.compile(r"env actor (\d+) \(pid \d+\) on .*node (\w+)\): player pid")
LEARNER_NODE = re.compile(r"learner \(pid \d+\) on node (\w+)")
STEP = re.compile(r"CartPole\. Step: (\d+)\.")
CLUSTER_LINE = re.compile(r"(\d+) replaced; player restarts: \d+; learner restarts: (\d+); lost steps: [\d,]+")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAutoscalingCluster]:
    head = LocalAutoscalingCluster(tmp_path_factory.mktemp("autoscaling"), (PLAYER, LEARNER), {"CPU": 2})
    head.start()
    try:
        yield head
    finally:
        head.stop()
        assert not ray_cluster_pids(head.gcs_port), "the cluster's processes outlived it"


@pytest.fixture
def runs() -> Iterator[list[LearnProcess]]:
    """The test's runs, killed at its end if one is still running (a test that failed half-way)."""
    started: list[LearnProcess] = []
    yield started
    for run in started:
        run.kill_if_running()


def learn(runs: list[LearnProcess], cluster: LocalAutoscalingCluster, tmp_path: Path, name: str, num_envs: int,
          *more: str, **overrides: object) -> LearnProcess:  # fmt: skip
    config = write_cartpole_config(tmp_path / f"{name}.yaml", **overrides)
    args = [str(config), "--env", "sim:CartPole", "--num-envs", str(num_envs), "--min-envs", "1", "--seed", "3",
            "--results-dir", str(tmp_path / "results"), "--run-id", name, "--address", cluster.address,
            "--env-actor-resources", '{"unity_player": 1}', *more]  # fmt: skip
    runs.append(start_learn(args, tmp_path, name, cluster.client_env()))
    return runs[-1]


def test_player_nodes_are_launched_for_the_env_actors_a_reclaimed_one_is_replaced_and_all_are_released(
    cluster: LocalAutoscalingCluster, tmp_path: Path, runs: list[LearnProcess]
) -> None:
    assert cluster.workers("unity_player") == []  # the player node type starts empty
    started = time.time()
    run = learn(runs, cluster, tmp_path, "up", 4, max_steps=100_000)  # stopped with Ctrl+C once all is seen
    run.wait_for_step(3000, 180)
    output = run.output
    # Training starts with the first EnvActor; the others join as their nodes arrive, one EnvActor per node.
    first = re.search(r"training starts with (\d) of 4 env actors up", output)
    assert first and int(first.group(1)) < 4, output
    run.wait_for("env actors: 4 up, 0 starting, 4 total", 120)
    nodes = dict(ENV_ACTOR_NODE.findall(run.output))
    assert sorted(nodes) == ["0", "1", "2", "3"] and len(set(nodes.values())) == 4, run.output
    launched = {node.node_id: node for node in cluster.workers("unity_player")}
    assert set(nodes.values()) == set(launched) and all(n.start_s >= started for n in launched.values()), launched
    # A spot reclaim: every process of EnvActor 0's node killed at once. It comes back on a node launched for it,
    # and training goes on.
    seen = len(run.output)
    assert cluster.preempt(nodes["0"]) > 0
    run.wait_for("warning: env actor 0 was lost and is replaced", 60, seen)
    back = run.wait_for(r"env actor 0 \(pid \d+\) on .*node (\w+)\): player pid", 180, seen)
    assert back.group(1) not in nodes.values(), run.output
    run.wait_for_step(max(run.summary_steps()) + 2000, 120)
    assert run.stop() == 0, run.output
    output = run.output
    assert CLUSTER_LINE.findall(output)[-1][0] == "1", output  # one replacement, counted
    assert (tmp_path / "results" / "up" / "CartPole.onnx").is_file()
    # Scale-down: idle player nodes are released (idle_timeout_minutes 0.1), and nothing of the run is left.
    cluster.wait_for_workers("unity_player", lambda nodes: nodes == [], 120, "the idle player nodes' release")
    assert sims_players_under(tmp_path) == []


def test_a_reclaimed_learner_node_restarts_the_learner_from_its_checkpoint_on_a_new_node(
    cluster: LocalAutoscalingCluster, tmp_path: Path, runs: list[LearnProcess]
) -> None:
    interval = 2000
    run = learn(runs, cluster, tmp_path, "learner", 2, "--learner-num-gpus", "1", "--learner-device", "cpu",
                "--learner-max-restarts", "1", max_steps=7000, checkpoint_interval=interval)  # fmt: skip
    run.wait_for_step(3000, 180)
    output = run.output
    reclaimed = LEARNER_NODE.findall(output)[0]
    assert reclaimed in {node.node_id for node in cluster.workers("GPU")}  # on a learner node, not the head
    assert cluster.preempt(reclaimed) > 0
    assert run.wait(300) == 0, run.output  # one restart is allowed: the new learner must not land on the old node
    output = run.output
    learners = LEARNER_NODE.findall(output)
    assert len(learners) == 2 and learners[1] != reclaimed, output
    restarted = re.search(r"learner restarted in [\d.]+ s \(CartPole at step (\d+)\); (\d+) steps trained", output)
    assert restarted, output
    assert int(restarted.group(1)) >= 2000, output  # the checkpoint at 2,000 (or later) was restored
    assert int(restarted.group(2)) <= interval, output
    assert CLUSTER_LINE.findall(output)[-1][1] == "1", output
    assert max(int(step) for step in STEP.findall(output)) >= 7000
    assert (tmp_path / "results" / "learner" / "CartPole.onnx").is_file()
