"""Connecting to Ray and placing the actors: the LearnerActor on a GPU when there is one, EnvActors spread.

Without an address (``--address``, ``cluster_settings.address`` or ``RAY_ADDRESS``) a local Ray cluster is
started for the run with at least as many CPUs as the actors reserve, so that a laptop with two cores still runs
two EnvActors and a learner (they share the cores). The Editor's EnvActor (no ``--env``) is pinned to the
driver's node: the Editor connects to that machine's port 5004.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import ray
from ray.exceptions import RayActorError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from rayagents.configs import ClusterSettings, RunOptions


@dataclass(frozen=True)
class RayConnection:
    """The Ray cluster a run uses."""

    started_here: bool
    """The run started a local cluster (and shuts it down at the end)."""
    address: str
    """The cluster's address, as Ray reports it."""


def cpus_needed(options: RunOptions) -> float:
    """The CPUs the run's actors reserve: the EnvActors' and the learner's."""
    cluster = options.cluster_settings
    return options.env_settings.num_envs * cluster.num_cpus_per_env_actor + cluster.learner_num_cpus


def connect(options: RunOptions) -> RayConnection:
    """Connects to the configured Ray cluster, or starts a local one sized for the run's actors."""
    address = options.cluster_settings.address or os.environ.get("RAY_ADDRESS")
    if ray.is_initialized():
        return RayConnection(started_here=False, address=ray.get_runtime_context().gcs_address)
    if address:
        context = ray.init(address=address, logging_level="warning", log_to_driver=True)
        return RayConnection(started_here=False, address=str(context.address_info.get("address", address)))
    num_cpus = max(os.cpu_count() or 1, math.ceil(cpus_needed(options)))
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


def learner_options(cluster: ClusterSettings) -> dict[str, Any]:
    """``.options(...)`` of the LearnerActor."""
    options: dict[str, Any] = {
        "num_cpus": cluster.learner_num_cpus,
        "num_gpus": learner_gpus(cluster),
        "max_restarts": 0,
    }
    if cluster.learner_labels:
        options["label_selector"] = dict(cluster.learner_labels)
    return options


def env_actor_options(cluster: ClusterSettings, editor: bool) -> dict[str, Any]:
    """``.options(...)`` of an EnvActor: its CPUs and resources, spread over nodes (the driver's node for the
    Editor)."""
    strategy: Any = cluster.env_placement
    if editor:
        strategy = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
    options: dict[str, Any] = {
        "num_cpus": cluster.num_cpus_per_env_actor,
        "resources": dict(cluster.env_actor_resources),
        "scheduling_strategy": strategy,
        "max_restarts": 0,
    }
    if cluster.env_actor_labels and not editor:
        options["label_selector"] = dict(cluster.env_actor_labels)
    return options


def kill_actor(handle: Any) -> None:
    """Kills a Ray actor (its process and, through it, a player it launched); one already gone is fine."""
    try:
        ray.kill(handle)
    except (RayActorError, ValueError):
        pass
