"""Scaling: ``rayagents-learn``'s training steps/s against the number of EnvActors and against the number of nodes.

- **EnvActors**: ``rayagents-learn`` trains PPO with 1, 2, 4, … EnvActors × :data:`NUM_AREAS` areas on the local
  Ray cluster it starts itself (the default of a run without ``--address``).
- **Nodes**: the same training with a fixed number of EnvActors on a Ray cluster of 1, 2, 4, … nodes started by
  the benchmark on this one machine (``ray.cluster_utils.Cluster``: a head and worker nodes, each its own raylet
  and object store) and given to the run with ``cluster_settings.address`` (what ``--address`` sets). The
  EnvActors are spread over the nodes by the default ``env_placement: SPREAD``; their CPUs are shared out over
  the nodes (:func:`node_cpus`), the learner's CPU is the head's.

Each rate is reported as a **ratio to linear**: steps/s with N EnvActors ÷ (N × steps/s with 1 EnvActor)
(:func:`ratio_to_linear`); 1.00 is perfect scaling. The nodes rows are also compared with the same EnvActors on
one node of the simulated cluster.

A training run, its measurement window (a warm-up after the first summary line, then ``--seconds``) and the
configs are those of :mod:`bench.training`: HalfCheetah is the example made PPO (the players set the pace:
1,024-sample minibatches, an update per 10,240 steps), CartPole (``--scene CartPole``) its example config.
Steps are every experience the EnvActors sent, including the share the learner drops as acted by weights older than
PPO's lag bound (in brackets). Target: at least 0.9 × linear up to 8 EnvActors, which needs the cores for it (each
EnvActor brings two busy processes).

    python -m bench.scaling [--seconds N] [--no-readme]
    python -m bench.scaling --actors 1,2,4,8,16 --learner-device cuda     # a machine with a GPU and 16 cores
    python -m bench                                                      # every benchmark
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bench.table import Row, report
from bench.training import (
    NUM_AREAS,
    WARMUP_S,
    TrainingMeasurement,
    benchmark_config,
    halfcheetah_ppo_config,
    load_example,
    training_steps_per_s,
)
from rayagents.configs.run import ClusterSettings

COMMAND = "python -m bench.scaling"
SECTION = "Scaling"
"""The README heading (``### Scaling``) whose table this benchmark rewrites."""
SCENES = ("HalfCheetah", "CartPole")
"""The scenes the benchmark trains (``--scene``)."""
DEFAULT_ACTORS = (1, 2, 4)
"""EnvActor counts of the EnvActors series (``--actors``): enough for a 2-core machine."""
DEFAULT_NODES = (1, 2, 4)
"""Node counts of the nodes series (``--nodes``)."""
LINEAR_TARGET = 0.9
"""Steps/s with N EnvActors ÷ (N × steps/s with one), up to :data:`LINEAR_TARGET_UP_TO` EnvActors."""
LINEAR_TARGET_UP_TO = 8
"""The most EnvActors the scaling target holds for."""
DEFAULT_SECONDS = 10.0
"""How long each measurement runs when ``--seconds`` is not given."""
NODE_OBJECT_STORE_BYTES = 256 * 1024 * 1024
"""Object store memory of each simulated node (several nodes share this machine's memory)."""


# ---- the pure parts ------------------------------------------------------------------------------------------------


def parse_counts(text: str) -> tuple[int, ...]:
    """``"1,2,4"`` → ``(1, 2, 4)``: positive whole numbers, sorted, each once.

    Raises ``argparse.ArgumentTypeError`` (a message for the command line) otherwise."""
    parts = [part.strip() for part in text.split(",")]
    if not all(part.isdigit() for part in parts):
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of whole numbers; write e.g. 1,2,4")
    counts = sorted({int(part) for part in parts})
    if counts[0] < 1:
        raise argparse.ArgumentTypeError(f"{text!r} holds 0; every count must be at least 1")
    return tuple(counts)


def parse_actor_counts(text: str) -> tuple[int, ...]:
    """``--actors``: :func:`parse_counts`, which must include 1 (the rate the ratios to linear are taken from)."""
    counts = parse_counts(text)
    if counts[0] != 1:
        raise argparse.ArgumentTypeError(
            f"{text!r} has no 1: the ratio to linear compares N EnvActors with N × one EnvActor; write e.g. 1,{text}"
        )
    return counts


def ratio_to_linear(steps_per_s: float, actors: int, single_actor_steps_per_s: float) -> float:
    """Steps/s with ``actors`` EnvActors ÷ (``actors`` × steps/s with one EnvActor); 1.0 is linear scaling."""
    if actors < 1 or single_actor_steps_per_s <= 0.0:
        raise ValueError(
            f"no ratio to linear for {actors} EnvActors over a one-EnvActor rate of {single_actor_steps_per_s}"
        )
    return steps_per_s / (actors * single_actor_steps_per_s)


def node_cpus(actors: int, nodes: int, actor_cpus: float, learner_cpus: float) -> list[int]:
    """The CPUs of each simulated node, the head first: the EnvActors' CPUs shared out as evenly as whole CPUs
    allow (the first nodes get the remainder), plus the learner's on the head."""
    if nodes < 1:
        raise ValueError(f"a cluster of {nodes} nodes has no head")
    share = [actors // nodes + (1 if index < actors % nodes else 0) for index in range(nodes)]
    cpus = [math.ceil(count * actor_cpus) for count in share]
    cpus[0] += math.ceil(learner_cpus)
    return cpus


@dataclass(frozen=True)
class ScalingPoint:
    """One measured training run of the benchmark."""

    actors: int
    """EnvActors of the run."""
    nodes: int | None
    """Nodes of the simulated cluster; None for the local Ray cluster ``rayagents-learn`` starts itself."""
    steps_per_s: float
    """Training agent steps/s over the measurement window."""
    dropped_share: float | None
    """The share of those steps the learner dropped as acted by weights older than the lag bound (None when unknown)."""


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _value(point: ScalingPoint, ratio: float, versus_one_node: float | None) -> str:
    value = f"{point.steps_per_s:,.0f} agent steps/s = {ratio:.2f} × linear"
    if versus_one_node is not None:
        value += f", {versus_one_node:.2f} × 1 node"
    if point.dropped_share is not None:
        value += f" ({point.dropped_share:.0%} dropped as too old)"
    return value


def scaling_rows(
    scene: str, num_areas: int, actor_points: Sequence[ScalingPoint], node_points: Sequence[ScalingPoint]
) -> list[Row]:
    """README rows: each EnvActors point (the local cluster) and each nodes point, with its ratio to linear
    against the one-EnvActor point of ``actor_points``; a nodes row also against the one-node point, if any."""
    single = next((p for p in actor_points if p.actors == 1 and p.nodes is None), None)
    if single is None:
        raise ValueError("the EnvActors series has no run with 1 EnvActor on the local cluster to compare with")
    rows = []
    for point in actor_points:
        ratio = ratio_to_linear(point.steps_per_s, point.actors, single.steps_per_s)
        layout = f"{_plural(point.actors, 'EnvActor')} × {num_areas} areas"
        benchmark = f"{scene}, PPO training, {layout}, local Ray cluster"
        if 1 < point.actors <= LINEAR_TARGET_UP_TO:
            rows.append(_row(benchmark, _value(point, ratio, None), f"≥ {LINEAR_TARGET:.2f} × linear", ratio >= LINEAR_TARGET))
        else:
            rows.append(_row(benchmark, _value(point, ratio, None)))
    one_node = {p.actors: p for p in node_points if p.nodes == 1}
    for point in node_points:
        if point.nodes is None:
            raise ValueError(f"a nodes point of {point.actors} EnvActors has no node count")
        base = one_node.get(point.actors)
        versus = None if base is None or point.nodes == 1 else point.steps_per_s / base.steps_per_s
        benchmark = (
            f"{scene}, PPO training, {_plural(point.actors, 'EnvActor')} × {num_areas} areas, "
            f"{_plural(point.nodes, 'simulated node')}"
        )
        ratio = ratio_to_linear(point.steps_per_s, point.actors, single.steps_per_s)
        rows.append(_row(benchmark, _value(point, ratio, versus)))
    return rows


def _row(benchmark: str, value: str, target: str = "—", met: bool | None = None) -> Row:
    return Row(benchmark, value, target, met, COMMAND)


def scene_config(scene: str) -> dict[str, Any]:
    """The benchmark config of ``scene`` (as :mod:`bench.training` trains it): HalfCheetah made PPO, or
    CartPole's example; summary_freq and max_steps those of the benchmark."""
    if scene == "HalfCheetah":
        return benchmark_config(halfcheetah_ppo_config(load_example("HalfCheetah")))
    if scene == "CartPole":
        return benchmark_config(load_example("CartPole"))
    raise ValueError(f"no benchmark config for scene {scene!r}; use one of {', '.join(SCENES)}")


def with_cluster_settings(
    config: Mapping[str, Any], address: str | None, learner_device: str | None
) -> dict[str, Any]:
    """``config`` (a copy) with ``cluster_settings.address`` and ``cluster_settings.learner_device`` set where
    given (what ``--address`` and ``--learner-device`` set)."""
    copy = dict(config)
    cluster = dict(copy.get("cluster_settings") or {})
    if address is not None:
        cluster["address"] = address
    if learner_device is not None:
        cluster["learner_device"] = learner_device
    if cluster:
        copy["cluster_settings"] = cluster
    return copy


# ---- the runs ------------------------------------------------------------------------------------------------------


def _point(measurement: TrainingMeasurement, actors: int, nodes: int | None) -> ScalingPoint:
    w = measurement.window
    where = "local cluster" if nodes is None else _plural(nodes, "node")
    print(
        f"  {_plural(actors, 'EnvActor')}, {where}: step {w.start_step:,} at {w.start_s:.1f} s to step "
        f"{w.end_step:,} at {w.end_s:.1f} s = {measurement.steps_per_s:,.0f} steps/s (load average "
        f"{_load_average()})",
        file=sys.stderr,
    )
    for message in measurement.messages:
        print(f"    rayagents-learn printed: {message}", file=sys.stderr)
    return ScalingPoint(actors, nodes, measurement.steps_per_s, measurement.dropped_share)


def _load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def measure_actors(
    scene: str, counts: Sequence[int], seconds: float, learner_device: str | None, num_areas: int = NUM_AREAS
) -> list[ScalingPoint]:
    """One training run per EnvActor count, each on the local Ray cluster ``rayagents-learn`` starts itself."""
    config = with_cluster_settings(scene_config(scene), None, learner_device)
    points = []
    for actors in counts:
        measurement = training_steps_per_s(
            config, f"sim:{scene}", scene, seconds, WARMUP_S, num_envs=actors, num_areas=num_areas
        )
        points.append(_point(measurement, actors, None))
    return points


@contextlib.contextmanager
def simulated_cluster(cpus: Sequence[int], head_gpus: int) -> Iterator[str]:
    """A Ray cluster of ``len(cpus)`` nodes on this machine (``ray.cluster_utils.Cluster``), node i with
    ``cpus[i]`` CPUs and the head with ``head_gpus`` GPUs; yields its address and shuts every node down on exit.

    The cluster is not made this machine's default (``ray.init()`` without an address, elsewhere, does not
    join it)."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": cpus[0],
            "num_gpus": head_gpus,
            "object_store_memory": NODE_OBJECT_STORE_BYTES,
            "include_dashboard": False,
            "dashboard_port": None,  # Ray's API server takes a free port, not 8265 (which another Ray may hold)
        },
    )
    try:
        for count in cpus[1:]:
            cluster.add_node(num_cpus=count, num_gpus=0, object_store_memory=NODE_OBJECT_STORE_BYTES)
        cluster.wait_for_nodes()
        yield cluster.address
    finally:
        cluster.shutdown()


def measure_nodes(
    scene: str,
    actors: int,
    node_counts: Sequence[int],
    seconds: float,
    learner_device: str | None,
    num_areas: int = NUM_AREAS,
) -> list[ScalingPoint]:
    """One training run of ``actors`` EnvActors per node count, each on a simulated cluster of that many nodes
    (:func:`simulated_cluster`, CPUs by :func:`node_cpus`) given to the run as ``cluster_settings.address``."""
    settings = ClusterSettings()
    head_gpus = 1 if learner_device is not None and learner_device.startswith("cuda") else 0
    points = []
    for nodes in node_counts:
        cpus = node_cpus(actors, nodes, settings.num_cpus_per_env_actor, settings.learner_num_cpus)
        print(f"  simulated cluster of {_plural(nodes, 'node')}, CPUs {cpus}", file=sys.stderr)
        with simulated_cluster(cpus, head_gpus) as address:
            config = with_cluster_settings(scene_config(scene), address, learner_device)
            measurement = training_steps_per_s(
                config, f"sim:{scene}", scene, seconds, WARMUP_S, num_envs=actors, num_areas=num_areas
            )
        points.append(_point(measurement, actors, nodes))
    return points


def run(
    seconds: float = DEFAULT_SECONDS,
    actors: Sequence[int] = DEFAULT_ACTORS,
    nodes: Sequence[int] = DEFAULT_NODES,
    node_actors: int | None = None,
    scene: str = "HalfCheetah",
    learner_device: str | None = None,
) -> list[Row]:
    """The EnvActors series, then the nodes series (``node_actors`` EnvActors, by default the most of
    ``actors``; no nodes series when ``nodes`` is empty), as README rows."""
    print(f"  scaling ({scene}), load average before: {_load_average()}", file=sys.stderr)
    actor_points = measure_actors(scene, actors, seconds, learner_device)
    total = max(actors) if node_actors is None else node_actors
    node_points = measure_nodes(scene, total, nodes, seconds, learner_device) if nodes else []
    print(f"  scaling ({scene}), load average after: {_load_average()}", file=sys.stderr)
    return scaling_rows(scene, NUM_AREAS, actor_points, node_points)


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``python -m bench.scaling``."""
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS, help="how long each measurement runs")
    parser.add_argument(
        "--actors", type=parse_actor_counts, default=DEFAULT_ACTORS, help="EnvActor counts, with 1 (e.g. 1,2,4,8,16)"
    )
    parser.add_argument(
        "--nodes", type=parse_counts, default=DEFAULT_NODES, help="simulated node counts of the nodes series"
    )
    parser.add_argument(
        "--node-actors", type=int, default=None, help="EnvActors of the nodes series; default: the most of --actors"
    )
    parser.add_argument("--no-nodes", action="store_true", help="skip the nodes series")
    parser.add_argument("--scene", choices=SCENES, default="HalfCheetah", help="the scene trained")
    parser.add_argument(
        "--learner-device", default=None, help="the learner's torch device, e.g. cuda (default: rayagents-learn's)"
    )
    parser.add_argument("--no-readme", action="store_true", help="print only; leave README.md as it is")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Runs the scaling benchmark, prints it and (unless ``--no-readme``) writes it into the README."""
    parser = build_parser()
    options = parser.parse_args(argv)
    if options.node_actors is not None and options.node_actors < 1:
        parser.error(f"--node-actors is {options.node_actors}: it must be at least 1")
    rows = run(
        options.seconds,
        options.actors,
        () if options.no_nodes else options.nodes,
        options.node_actors,
        options.scene,
        options.learner_device,
    )
    report(SECTION, rows, write_readme=not options.no_readme)


if __name__ == "__main__":
    main()
