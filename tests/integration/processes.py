"""Process checks the integration tests share."""

from __future__ import annotations

from pathlib import Path

from bench.local_cluster import command_lines, pid_alive, ray_cluster_pids, stop_ray_cluster

__all__ = ["pid_alive", "ray_cluster_pids", "sims_players_under", "stop_ray_cluster"]


def sims_players_under(folder: Path) -> list[int]:
    """The live simulation-host players whose command line names a path under ``folder`` (their log file)."""
    return [
        pid
        for pid, arguments in command_lines().items()
        if "rayagents.sims" in arguments and any(str(folder) in argument for argument in arguments) and pid_alive(pid)
    ]
