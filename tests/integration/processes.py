"""Process checks the integration tests share."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def pid_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def _command_lines() -> dict[int, list[str]]:
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


def sims_players_under(folder: Path) -> list[int]:
    """The live simulation-host players whose command line names a path under ``folder`` (their log file)."""
    return [
        pid
        for pid, arguments in _command_lines().items()
        if "rayagents.sims" in arguments and any(str(folder) in argument for argument in arguments) and pid_alive(pid)
    ]


def ray_cluster_pids(gcs_port: int) -> list[int]:
    """The processes of the Ray cluster whose GCS listens on ``gcs_port`` and of no other cluster on this machine:
    every process that names that GCS's session (its GCS server, raylet, agents, monitors, workers) or connects to
    the port (the client server)."""
    commands = _command_lines()
    sessions = {
        argument.split("=", 1)[1]
        for arguments in commands.values()
        if f"--gcs_server_port={gcs_port}" in arguments
        for argument in arguments
        if argument.startswith("--session-name=")
    }
    return [
        pid
        for pid, arguments in commands.items()
        if any(session in argument for session in sessions for argument in arguments)
        or any(argument.startswith("--address=") and argument.endswith(f":{gcs_port}") for argument in arguments)
    ]


def stop_ray_cluster(gcs_port: int, timeout_s: float = 30.0) -> None:
    """Stops the Ray cluster on ``gcs_port`` alone (``ray stop --force`` would stop every cluster of this machine,
    a developer's training runs included): SIGTERM, then SIGKILL to what is left after ``timeout_s``."""
    for signal_number in (signal.SIGTERM, signal.SIGKILL):
        for pid in ray_cluster_pids(gcs_port):
            try:
                os.kill(pid, signal_number)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and any(pid_alive(pid) for pid in ray_cluster_pids(gcs_port)):
            time.sleep(0.2)
        if not any(pid_alive(pid) for pid in ray_cluster_pids(gcs_port)):
            return
