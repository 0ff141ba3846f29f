"""The autoscaling benchmark's pieces that need no cluster: the provider's cluster config and reading a run's
timed output."""

from __future__ import annotations

from pathlib import Path

from bench.autoscaling import ENV_ACTOR_NODE, LEARNER_RESTART, LOST_STEPS, TimedOutput
from bench.local_cluster import HEAD_TYPE, LocalAutoscalingCluster, NodeType


def test_the_cluster_config_has_the_head_and_each_node_type_for_the_fake_provider(tmp_path: Path) -> None:
    cluster = LocalAutoscalingCluster(
        tmp_path, (NodeType("player", {"CPU": 1, "unity_player": 1}, 4), NodeType("learner", {"GPU": 1}, 2, 1)),
        {"CPU": 2}, idle_timeout_minutes=0.5,
    )  # fmt: skip
    cluster.gcs_port = 6390
    config = cluster.config()
    assert config["provider"]["type"] == "fake_multinode"  # type: ignore[index]
    assert config["provider"]["gcs_address"] == f"{cluster.host}:6390"  # type: ignore[index]
    types = config["available_node_types"]
    assert types[HEAD_TYPE] == {"resources": {"CPU": 2}, "node_config": {}, "max_workers": 0}  # type: ignore[index]
    assert types["player"]["resources"] == {"CPU": 1, "unity_player": 1}  # type: ignore[index]
    assert (types["learner"]["min_workers"], types["learner"]["max_workers"]) == (1, 2)  # type: ignore[index]
    assert config["max_workers"] == 6 and config["idle_timeout_minutes"] == 0.5


def test_timed_output_finds_the_first_and_last_lines_of_a_kind() -> None:
    output = TimedOutput(
        (
            (3.0, "env actor 1 (pid 5) on vm (10.0.0.2, node aa01): player pid 6, port 7, log /x/Player-1.log"),
            (4.5, "training starts with 1 of 4 env actors up"),
            (5.0, "env actors: 1 up, 3 starting, 4 total, 0 replaced; player restarts: 0; learner restarts: 0; "
                  "lost steps: 0"),
            (9.0, "learner restarted in 5.7 s (CartPole at step 5002); 2998 steps trained since the last checkpoint"),
            (9.5, "env actors: 4 up, 0 starting, 4 total, 1 replaced; player restarts: 0; learner restarts: 1; "
                  "lost steps: 3,101"),
        ),
        wall_s=12.0,
    )  # fmt: skip
    started = output.first("training starts with")
    assert started is not None and started[0] == 4.5
    assert output.first("no such line") is None
    lost = output.last(LOST_STEPS)
    assert lost is not None and lost.group(1) == "3,101"
    restart = output.last(LEARNER_RESTART)
    assert restart is not None and (restart.group(1), restart.group(2)) == ("5.7", "2998")
    node = output.first(ENV_ACTOR_NODE)
    assert node is not None and node[1].groups() == ("1", "aa01")
