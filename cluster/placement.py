"""Connecting to Ray and placing the actors: the LearnerActor on a GPU when there is one, EnvActors spread.

Without an address (``--address``, ``cluster_settings.address`` or ``RAY_ADDRESS``) a local Ray cluster is
started for the run with at least as many CPUs as the actors reserve, so that a laptop with two cores still runs
two EnvActors and a learner (they share the cores). The Editor's EnvActor (no ``--env``) is pinned to the
driver's node: the Editor connects to that machine's port 5004.

A run started inside a placement group (a Ray Tune trial, whose share of the cluster is a placement group of
:func:`run_bundles`) places its actors in that group: the learner in the first bundle, EnvActor ``i`` in bundle
``1 + i``. Outside the group they would wait for resources the group already holds, and with every CPU held by
trials, wait for ever.
"""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import ray
from ray.exceptions import RayActorError
from ray.util.placement_group import get_current_placement_group
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy, PlacementGroupSchedulingStrategy

from rayagents.cluster.ray_address import check_cluster, init_ray, parse_address
from rayagents.configs import ClusterSettings, RunOptions

NODE_ID_LABEL = "ray.io/node-id"
"""The label Ray gives every node: its node id."""


@dataclass(frozen=True)
class RayConnection:
    """The Ray cluster a run uses."""

    started_here: bool
    """The run started a local cluster (and shuts it down at the end)."""
    address: str
    """The cluster's address, as Ray reports it."""


@dataclass(frozen=True)
class RunBundles:
    """What one run's actors reserve, as the bundles of a placement group (a Tune trial's share of the cluster)."""

    bundles: tuple[dict[str, float], ...]
    """The learner's bundle, then one per EnvActor; a bundle that would reserve nothing is left out."""
    learner_index: int
    """The learner's bundle; -1 when it reserves nothing (it goes in any bundle)."""
    env_indexes: tuple[int, ...]
    """Each EnvActor's bundle; -1 for those that reserve nothing."""


def env_actor_bundle(cluster: ClusterSettings) -> dict[str, float]:
    """What one EnvActor reserves: its CPUs and custom resources (those above 0)."""
    bundle = {"CPU": cluster.num_cpus_per_env_actor, **cluster.env_actor_resources}
    return {name: amount for name, amount in bundle.items() if amount > 0}


def run_bundles(options: RunOptions) -> RunBundles:
    """The placement group bundles of a run with these options (an auto ``learner_num_gpus`` asks the cluster)."""
    cluster = options.cluster_settings
    learner = {"CPU": cluster.learner_num_cpus, "GPU": learner_gpus(cluster)}
    learner = {name: amount for name, amount in learner.items() if amount > 0}
    env = env_actor_bundle(cluster)
    bundles = ([learner] if learner else []) + [dict(env) for _ in range(options.env_settings.num_envs) if env]
    first_env = 1 if learner else 0
    return RunBundles(
        bundles=tuple(bundles),
        learner_index=0 if learner else -1,
        env_indexes=tuple(first_env + i if env else -1 for i in range(options.env_settings.num_envs)),
    )


def in_placement_group() -> bool:
    """Whether this process runs inside a placement group that captures what it starts (a Tune trial)."""
    return get_current_placement_group() is not None


def _group_strategy(options: RunOptions, bundle_index: int) -> PlacementGroupSchedulingStrategy | None:
    """The bundle of the current placement group an actor goes in; None outside a placement group. A group not
    laid out as :func:`run_bundles` (someone else's) lets Ray pick the bundle."""
    group = get_current_placement_group()
    if group is None:
        return None
    if group.bundle_count != len(run_bundles(options).bundles):
        bundle_index = -1
    return PlacementGroupSchedulingStrategy(group, placement_group_bundle_index=bundle_index)


def cpus_needed(options: RunOptions) -> float:
    """The CPUs the run's actors reserve: the EnvActors' and the learner's."""
    cluster = options.cluster_settings
    return options.env_settings.num_envs * cluster.num_cpus_per_env_actor + cluster.learner_num_cpus


def connect(options: RunOptions, local_cpus: float = 0.0) -> RayConnection:
    """Connects to the configured Ray cluster, or starts a local one sized for the run's actors (and with at least
    ``local_cpus`` CPUs: a sweep's trials at once)."""
    if ray.is_initialized():
        return RayConnection(started_here=False, address=ray.get_runtime_context().gcs_address)
    given = options.cluster_settings.address
    text = given or os.environ.get("RAY_ADDRESS")
    if text:
        address = parse_address(text, "--address" if given else "RAY_ADDRESS")
        check_cluster(address)  # also turns token authentication on when the head requires it
        context = init_ray(address)
        info = getattr(context, "address_info", {})  # a Ray Client context has none
        return RayConnection(started_here=False, address=str(info.get("address", text)))
    num_cpus = max(os.cpu_count() or 1, math.ceil(cpus_needed(options)), math.ceil(local_cpus))
    gpus = options.cluster_settings.learner_num_gpus
    context = ray.init(
        address="local",  # a new cluster for this run, even when another one runs on this machine
        num_cpus=num_cpus,
        num_gpus=None if gpus is None else math.ceil(gpus),
        include_dashboard=False,
        logging_level="warning",
    )
    return RayConnection(started_here=True, address=str(context.address_info.get("address", "local")))


def learner_gpus(cluster: ClusterSettings) -> float:
    """The GPUs the LearnerActor reserves: as configured, or (``auto``) 1 when the cluster has one, else 0."""
    if cluster.learner_num_gpus is not None:
        return cluster.learner_num_gpus
    return 1.0 if ray.cluster_resources().get("GPU", 0.0) >= 1.0 else 0.0


def _label_selector(labels: Mapping[str, str], avoid_node: str | None) -> dict[str, str] | None:
    """The ``label_selector`` of an actor: the configured ``labels`` and, when ``avoid_node`` is given, any node
    but that one; None when it would select nothing."""
    selector = dict(labels or {})
    if avoid_node is not None:
        selector[NODE_ID_LABEL] = f"!{avoid_node}"
    return selector or None


def learner_options(options: RunOptions, avoid_node: str | None = None) -> dict[str, Any]:
    """``.options(...)`` of the LearnerActor: in the first bundle of the run's placement group, when it has one;
    elsewhere than node ``avoid_node`` (a lost learner's node that no longer answers but that Ray has not yet
    marked dead, whose resources it would still hand out), when given."""
    cluster = options.cluster_settings
    actor: dict[str, Any] = {
        "num_cpus": cluster.learner_num_cpus,
        "num_gpus": learner_gpus(cluster),
        "max_restarts": 0,
    }
    group = _group_strategy(options, run_bundles(options).learner_index)
    if group is not None:
        actor["scheduling_strategy"] = group  # the group's bundles carry the labels
    else:
        selector = _label_selector(cluster.learner_labels, avoid_node)
        if selector is not None:
            actor["label_selector"] = selector
    return actor


def node_answers(node_id: str, timeout_s: float = 1.0) -> bool:
    """Whether the raylet of node ``node_id`` accepts a connection (a node that is gone answers nothing, seconds
    before Ray's health checks mark it dead); True for a node Ray does not list."""
    for node in ray.nodes():
        if node.get("NodeID") == node_id:
            if not node.get("Alive", False):
                return False
            try:
                with socket.create_connection((node["NodeManagerAddress"], int(node["NodeManagerPort"])), timeout_s):
                    return True
            except OSError:
                return False
    return True


def env_actor_options(options: RunOptions, index: int, editor: bool, avoid_node: str | None = None) -> dict[str, Any]:
    """``.options(...)`` of EnvActor ``index``: its CPUs and resources, spread over nodes (the driver's node for the
    Editor), or in its bundle of the run's placement group, when it has one; elsewhere than node ``avoid_node`` (a
    lost predecessor's node that no longer answers), when given."""
    cluster = options.cluster_settings
    strategy: Any = cluster.env_placement
    group = None if editor else _group_strategy(options, run_bundles(options).env_indexes[index])
    if editor:
        strategy = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    elif group is not None:
        strategy = group
    actor: dict[str, Any] = {
        "num_cpus": cluster.num_cpus_per_env_actor,
        "resources": dict(cluster.env_actor_resources),
        "scheduling_strategy": strategy,
        "max_restarts": 0,
    }
    if not editor and group is None:
        selector = _label_selector(cluster.env_actor_labels, avoid_node)
        if selector is not None:
            actor["label_selector"] = selector
    return actor


def kill_actor(handle: Any) -> None:
    """Kills a Ray actor (its process and, through it, a player it launched); one already gone is fine."""
    try:
        ray.kill(handle)
    except (RayActorError, ValueError):
        pass
