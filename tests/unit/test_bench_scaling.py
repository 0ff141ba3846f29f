"""bench/scaling.py's pure parts: the ratio to linear, the command line, the node CPUs, the configs, the rows."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest

from rayagents.configs.loader import run_options_from_dict

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # bench/ is a folder of the repository, not of the installed package

from bench import scaling  # noqa: E402
from bench.scaling import ScalingPoint  # noqa: E402


def test_ratio_to_linear_divides_by_n_times_the_single_actor_rate() -> None:
    assert scaling.ratio_to_linear(1000.0, 1, 1000.0) == pytest.approx(1.0)
    assert scaling.ratio_to_linear(3000.0, 4, 1000.0) == pytest.approx(0.75)
    assert scaling.ratio_to_linear(2400.0, 2, 1000.0) == pytest.approx(1.2)  # better than linear is shown as is
    with pytest.raises(ValueError):
        scaling.ratio_to_linear(1000.0, 0, 1000.0)
    with pytest.raises(ValueError):
        scaling.ratio_to_linear(1000.0, 2, 0.0)


def test_counts_parse_sorted_and_once() -> None:
    assert scaling.parse_counts("1,2,4") == (1, 2, 4)
    assert scaling.parse_counts(" 16, 1,8 ,2,4,4") == (1, 2, 4, 8, 16)
    assert scaling.parse_counts("3") == (3,)
    for bad in ("", "1,,2", "1,two", "0,1", "-1,2", "1.5"):
        with pytest.raises(argparse.ArgumentTypeError):
            scaling.parse_counts(bad)


def test_actor_counts_must_include_one() -> None:
    assert scaling.parse_actor_counts("1,2,4,8,16") == (1, 2, 4, 8, 16)
    with pytest.raises(argparse.ArgumentTypeError, match="no 1"):
        scaling.parse_actor_counts("2,4")


def test_the_command_line_defaults_to_a_small_machine_and_takes_the_gpu_machine_options() -> None:
    defaults = scaling.build_parser().parse_args([])
    assert (defaults.actors, defaults.nodes, defaults.node_actors) == ((1, 2, 4), (1, 2, 4), None)
    assert (defaults.scene, defaults.learner_device, defaults.no_readme) == ("HalfCheetah", None, False)
    gpu = scaling.build_parser().parse_args(["--actors", "1,2,4,8,16", "--learner-device", "cuda", "--seconds", "20"])
    assert (gpu.actors, gpu.learner_device, gpu.seconds) == ((1, 2, 4, 8, 16), "cuda", 20.0)
    with pytest.raises(SystemExit):
        scaling.build_parser().parse_args(["--actors", "4,8"])
    with pytest.raises(SystemExit):
        scaling.build_parser().parse_args(["--scene", "Walker2d"])


def test_node_cpus_share_the_actors_out_and_give_the_head_the_learner() -> None:
    assert scaling.node_cpus(4, 1, 1.0, 1.0) == [5]
    assert scaling.node_cpus(4, 2, 1.0, 1.0) == [3, 2]
    assert scaling.node_cpus(4, 4, 1.0, 1.0) == [2, 1, 1, 1]
    assert scaling.node_cpus(5, 2, 1.0, 1.0) == [4, 2]  # the remainder goes to the first nodes
    assert scaling.node_cpus(2, 4, 1.0, 1.0) == [2, 1, 0, 0]
    assert scaling.node_cpus(4, 2, 0.5, 1.0) == [2, 1]
    assert sum(scaling.node_cpus(16, 4, 1.0, 1.0)) == 17
    with pytest.raises(ValueError):
        scaling.node_cpus(4, 0, 1.0, 1.0)


def test_cluster_settings_are_set_in_a_copy_the_loader_accepts() -> None:
    config = scaling.scene_config("HalfCheetah")
    placed = scaling.with_cluster_settings(config, "127.0.0.1:6379", "cuda")
    assert placed["cluster_settings"] == {"address": "127.0.0.1:6379", "learner_device": "cuda"}
    assert "cluster_settings" not in config
    options = run_options_from_dict(placed)
    assert options.cluster_settings.address == "127.0.0.1:6379"
    assert options.cluster_settings.learner_device == "cuda"
    assert options.cluster_settings.env_placement == "SPREAD"
    assert options.behaviors["HalfCheetah"].trainer_type == "ppo"
    assert scaling.with_cluster_settings(config, None, None) == config


def test_scene_configs_are_the_training_benchmarks() -> None:
    cartpole = run_options_from_dict(scaling.scene_config("CartPole")).behaviors["CartPole"]
    assert cartpole.summary_freq == 1000 and cartpole.max_steps >= 10**9
    with pytest.raises(ValueError, match="Walker"):
        scaling.scene_config("Walker")


def test_rows_give_each_rate_its_ratio_to_linear() -> None:
    actors = [
        ScalingPoint(1, None, 1000.0, 0.0),
        ScalingPoint(2, None, 1800.0, 0.05),
        ScalingPoint(4, None, 2000.0, None),
    ]
    nodes = [ScalingPoint(4, 1, 2000.0, 0.1), ScalingPoint(4, 2, 2200.0, 0.1), ScalingPoint(4, 4, 1600.0, None)]
    rows = scaling.scaling_rows("HalfCheetah", 8, actors, nodes)
    assert [r.benchmark for r in rows] == [
        "HalfCheetah, PPO training, 1 EnvActor × 8 areas, local Ray cluster",
        "HalfCheetah, PPO training, 2 EnvActors × 8 areas, local Ray cluster",
        "HalfCheetah, PPO training, 4 EnvActors × 8 areas, local Ray cluster",
        "HalfCheetah, PPO training, 4 EnvActors × 8 areas, 1 simulated node",
        "HalfCheetah, PPO training, 4 EnvActors × 8 areas, 2 simulated nodes",
        "HalfCheetah, PPO training, 4 EnvActors × 8 areas, 4 simulated nodes",
    ]
    assert [r.value for r in rows] == [
        "1,000 agent steps/s = 1.00 × linear (0% dropped as too old)",
        "1,800 agent steps/s = 0.90 × linear (5% dropped as too old)",
        "2,000 agent steps/s = 0.50 × linear",
        "2,000 agent steps/s = 0.50 × linear (10% dropped as too old)",
        "2,200 agent steps/s = 0.55 × linear, 1.10 × 1 node (10% dropped as too old)",
        "1,600 agent steps/s = 0.40 × linear, 0.80 × 1 node",
    ]
    assert all(r.command == "python -m bench.scaling" for r in rows)
    # The scaling target holds for 2 to 8 EnvActors on the local cluster; the others have none.
    assert [(r.target, r.met) for r in rows] == [
        ("—", None), ("≥ 0.90 × linear", True), ("≥ 0.90 × linear", False), ("—", None), ("—", None), ("—", None)
    ]


def test_rows_need_the_single_actor_rate() -> None:
    with pytest.raises(ValueError, match="1 EnvActor"):
        scaling.scaling_rows("CartPole", 8, [ScalingPoint(2, None, 1000.0, None)], [])
    assert len(scaling.scaling_rows("CartPole", 8, [ScalingPoint(1, None, 1000.0, None)], [])) == 1
