"""Ray clusters on this machine for the benchmarks and the tests: stopping one cluster alone, and a cluster that
Ray's own autoscaler grows and shrinks (its fake multi-node provider: real raylet nodes, no cloud).

:class:`LocalAutoscalingCluster` starts a token-authenticated head with ``--autoscaling-config`` and node types
of its own (Ray's wheel lacks the ``example.yaml`` that ``ray.cluster_utils.AutoscalingCluster`` reads, and that
class runs ``ray stop --force``, which would stop every Ray cluster of the machine). The provider starts each
node it launches as a raylet of its own, connected to the head's GCS; :meth:`LocalAutoscalingCluster.preempt`
kills one as a cloud reclaims a spot machine, without telling Ray.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

HEAD_TYPE = "ray.head.default"
"""The head's node type (the provider's name for it)."""
NODE_ID_VARIABLE = "RAY_OVERRIDE_NODE_ID_FOR_TESTING"
"""The variable in which the provider hands each node (and every process it starts) its node id."""
NODES_POLL_S = 3.0
"""How often :meth:`LocalAutoscalingCluster.wait_for_workers` asks for the cluster's nodes: each ask is a Python
process of its own (seconds of CPU on a small machine), and nodes come and go in tens of seconds."""


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def command_lines() -> dict[int, list[str]]:
    """Every process's arguments, by pid."""
    found: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                arguments = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            found[int(entry.name)] = [argument.decode(errors="replace") for argument in arguments]
    return found


def parent_pids() -> dict[int, int]:
    """Every process's parent, by pid."""
    found: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                found[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    return found


def ray_cluster_pids(gcs_port: int) -> list[int]:
    """The processes of the Ray cluster whose GCS listens on ``gcs_port`` and of no other cluster on this machine:
    every process that names that GCS's session (its GCS server, raylets, monitors, workers) or connects to the
    port (the client server), and their descendants (the raylets' agents, whose titles name nothing)."""
    commands = command_lines()
    sessions = {
        argument.split("=", 1)[1]
        for arguments in commands.values()
        if f"--gcs_server_port={gcs_port}" in arguments
        for argument in arguments
        if argument.startswith("--session-name=")
    }
    found = {
        pid
        for pid, arguments in commands.items()
        if any(session in argument for session in sessions for argument in arguments)
        or any(argument.startswith("--address=") and argument.endswith(f":{gcs_port}") for argument in arguments)
    }
    children: dict[int, list[int]] = {}
    for pid, parent in parent_pids().items():
        children.setdefault(parent, []).append(pid)
    pending = list(found)
    while pending:
        for child in children.get(pending.pop(), ()):
            if child not in found:
                found.add(child)
                pending.append(child)
    return sorted(found)


STOP_GRACE_S = 5.0
"""How long :func:`stop_ray_cluster` waits after SIGTERM. A cluster's GCS server and raylets, signalled together with
their agents, were still there 30 s later; nothing of a benchmark's or a test's cluster needs saving."""


def stop_ray_cluster(gcs_port: int, timeout_s: float = STOP_GRACE_S) -> None:
    """Stops the Ray cluster on ``gcs_port`` alone (``ray stop --force`` would stop every cluster of this machine,
    a developer's training runs included): SIGTERM, then SIGKILL to what is left after ``timeout_s``. The processes
    are found before the first signal: a raylet's agents, once their raylet is gone, no longer show whose they are
    (left alone, they spun a core for about two minutes)."""
    targets: set[int] = set()
    for signal_number in (signal.SIGTERM, signal.SIGKILL):
        targets.update(ray_cluster_pids(gcs_port))
        for pid in sorted(targets):
            try:
                os.kill(pid, signal_number)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and any(pid_alive(pid) for pid in targets):
            time.sleep(0.2)
        if not any(pid_alive(pid) for pid in targets):
            return


def free_port() -> int:
    """A TCP port free on loopback now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class NodeType:
    """A worker node type of the autoscaling cluster."""

    name: str
    """The type's name (``player``, ``learner``)."""
    resources: Mapping[str, float]
    """What one node of the type offers: ``CPU``, ``GPU`` (a fake one: nothing checks it) and custom resources."""
    max_workers: int
    """The most nodes of the type the autoscaler launches."""
    min_workers: int = 0
    """The nodes of the type kept up at all times."""


@dataclass(frozen=True)
class NodeRecord:
    """One node of the cluster as Ray's GCS records it."""

    node_id: str
    """The node's id (hex)."""
    resources: Mapping[str, float]
    """What it offers."""
    alive: bool
    """Whether it is up."""
    start_s: float
    """When it joined (seconds since the epoch)."""
    end_s: float | None
    """When it left, or None while it is up."""
    is_head: bool
    """Whether it is the head."""

    def seconds(self, now: float) -> float:
        """How long it was up, until ``now`` if it still is."""
        return (self.end_s if self.end_s is not None else now) - self.start_s


_NODES_SCRIPT = """
import json, sys
from ray._raylet import GcsClient
infos = GcsClient(address=sys.argv[1]).get_all_node_info(timeout=10)
print(json.dumps([{"node_id": node_id.hex(), "resources": dict(info.resources_total), "alive": info.state == 0,
                   "start_s": info.start_time_ms / 1000, "end_s": info.end_time_ms / 1000 or None,
                   "is_head": info.is_head_node} for node_id, info in infos.items()]))
"""
"""Prints every node of the cluster at ``argv[1]`` as one JSON list of :class:`NodeRecord` fields."""


@dataclass
class LocalAutoscalingCluster:
    """A token-authenticated Ray head on this machine whose autoscaler launches and releases worker nodes of
    ``node_types`` on demand (see the module's docstring).

    Arguments:
        folder: where the config, the token and the head's output go.
        node_types: the worker node types.
        head_resources: what the head offers (its ``CPU`` and any custom resources).
        idle_timeout_minutes: how long a node may stay idle before the autoscaler releases it.
        heartbeat_timeout_s: how long a node that stopped answering (a reclaimed one) stays in the autoscaler's
            books before it is terminated and may be replaced.
    """

    folder: Path
    node_types: tuple[NodeType, ...]
    head_resources: Mapping[str, float] = field(default_factory=lambda: {"CPU": 2})
    idle_timeout_minutes: float = 0.1
    heartbeat_timeout_s: int = 10
    gcs_port: int = 0
    """The head's GCS port, once started."""

    @property
    def address(self) -> str:
        """The cluster's address for ``--address`` (``HOST:PORT``)."""
        return f"{self.host}:{self.gcs_port}"

    @property
    def host(self) -> str:
        """The address the nodes reach the head at (this machine's, as Ray picks it)."""
        from ray._private.services import get_node_ip_address

        return str(get_node_ip_address())

    @property
    def token_path(self) -> Path:
        """The file holding the cluster's token."""
        return self.folder / "auth_token"

    def client_env(self) -> dict[str, str]:
        """What a driver's environment needs to use the cluster: where its token is."""
        return {"RAY_AUTH_TOKEN_PATH": str(self.token_path)}

    def config(self) -> dict[str, object]:
        """The cluster config the head's autoscaler reads (the fake multi-node provider's)."""
        head = {key: value for key, value in self.head_resources.items()}
        types: dict[str, object] = {HEAD_TYPE: {"resources": head, "node_config": {}, "max_workers": 0}}
        for kind in self.node_types:
            types[kind.name] = {"resources": dict(kind.resources), "node_config": {},
                                "min_workers": kind.min_workers, "max_workers": kind.max_workers}  # fmt: skip
        return {
            "cluster_name": "local",
            "max_workers": sum(kind.max_workers for kind in self.node_types),
            "provider": {"type": "fake_multinode", "gcs_address": self.address, "use_node_id_as_ip": True,
                         "disable_node_updaters": True, "disable_launch_config_check": True},  # fmt: skip
            "auth": {"ssh_user": "ray"},
            "docker": {},
            "available_node_types": types,
            "head_node_type": HEAD_TYPE,
            "upscaling_speed": 1.0,
            "idle_timeout_minutes": self.idle_timeout_minutes,
            "file_mounts": {}, "cluster_synced_files": [], "file_mounts_sync_continuously": False,
            "rsync_exclude": [], "rsync_filter": [], "initialization_commands": [], "setup_commands": [],
            "head_setup_commands": [], "worker_setup_commands": [], "head_start_ray_commands": [],
            "worker_start_ray_commands": [],
        }  # fmt: skip

    def start(self) -> None:
        """Starts the head (its autoscaler starts no node until something asks for one)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.token_path.write_text(secrets.token_hex(32))
        self.gcs_port = free_port()
        config_path = self.folder / "cluster.json"
        config_path.write_text(json.dumps(self.config(), indent=2))
        binaries = Path(sys.executable).parent
        env = dict(os.environ, PATH=f"{binaries}{os.pathsep}{os.environ.get('PATH', '')}", RAY_FAKE_CLUSTER="1",
                   AUTOSCALER_UPDATE_INTERVAL_S="1", AUTOSCALER_HEARTBEAT_TIMEOUT_S=str(self.heartbeat_timeout_s),
                   RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(self.token_path))  # fmt: skip
        for name in ("RAY_ADDRESS", "RAY_AUTH_TOKEN"):
            env.pop(name, None)
        head = dict(self.head_resources)
        command = [str(binaries / "ray"), "start", "--head", "--port", str(self.gcs_port),
                   f"--autoscaling-config={config_path}", "--num-cpus", str(int(head.pop("CPU", 0))),
                   "--include-dashboard", "false", "--dashboard-agent-listen-port", str(free_port()),
                   "--ray-client-server-port", str(free_port()), "--disable-usage-stats"]  # fmt: skip
        if head:
            command += ["--resources", json.dumps(head)]
        with open(self.folder / "head.out", "wb") as output:
            subprocess.run(command, env=env, check=True, stdout=output, stderr=subprocess.STDOUT, timeout=120)

    def stop(self, timeout_s: float = STOP_GRACE_S) -> None:
        """Stops the head and every node it launched (SIGKILL to what is left after ``timeout_s``)."""
        if self.gcs_port:
            stop_ray_cluster(self.gcs_port, timeout_s)

    def nodes(self) -> list[NodeRecord]:
        """Every node the cluster has had, as its GCS records them (asked from a process of its own: Ray keeps
        one token per process, and this one may use other clusters)."""
        env = dict(os.environ, RAY_AUTH_MODE="token", **self.client_env())
        env.pop("RAY_AUTH_TOKEN", None)
        answer = subprocess.run([sys.executable, "-c", _NODES_SCRIPT, self.address], env=env, capture_output=True,
                                text=True, timeout=60, check=True)  # fmt: skip
        return [NodeRecord(**record) for record in json.loads(answer.stdout.splitlines()[-1])]

    def workers(self, resource: str, alive: bool = True) -> list[NodeRecord]:
        """The worker nodes that offer ``resource`` (up ones, or every one with ``alive=False``)."""
        return [n for n in self.nodes() if not n.is_head and resource in n.resources and (n.alive or not alive)]

    def wait_for_workers(self, resource: str, condition: Callable[[list[NodeRecord]], bool], timeout_s: float,
                         what: str) -> list[NodeRecord]:  # fmt: skip
        """Asks for the up worker nodes that offer ``resource`` (:meth:`workers`) every :data:`NODES_POLL_S`
        seconds until ``condition`` holds for them; returns them. TimeoutError naming ``what`` after
        ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            workers = self.workers(resource)
            if condition(workers):
                return workers
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{what} did not happen within {timeout_s:.0f} s")
            time.sleep(min(NODES_POLL_S, left))

    def preempt(self, node_id: str) -> int:
        """Kills every process of worker node ``node_id`` at once, as a cloud reclaims a spot machine; returns
        how many were killed."""
        killed = 0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                environment = (entry / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if f"{NODE_ID_VARIABLE}={node_id}".encode() in environment:
                try:
                    os.kill(int(entry.name), signal.SIGKILL)
                    killed += 1
                except ProcessLookupError:
                    pass
        return killed
