"""Autoscaling and preemption on Ray's own autoscaler, on one machine: start-up when nodes must be launched, the
steps a reclaimed node costs, and the node-seconds an autoscaled run uses against a static cluster of the same peak.

``python -m bench.autoscaling`` runs the CartPole example (``configs/ppo/CartPole.yaml``, 20,000 steps, a summary
every 2,000, run seed
``--seeds``, 0 by default) with ``--env-actor-resources '{"unity_player": 1}'`` on clusters of
:class:`bench.local_cluster.LocalAutoscalingCluster` (a head with 2 CPUs for the driver and the learner;
``player`` nodes of 1 CPU and one ``unity_player``; ``learner`` nodes of 1 CPU and a fake GPU; idle nodes released
after 6 s):

1. **Autoscaled**: no player node at the start; ``--num-envs 4 --min-envs 1``. Reported: seconds from the command
   to training's start and to all 4 EnvActors up, and the player nodes' node-seconds (from each node's launch to
   its release, as Ray's GCS records them).
2. **Static**: the same cluster with its 4 player nodes up before the run (``min_workers: 4``), the same run. Its
   node-seconds are 4 × the run's wall time: the least a static cluster holds them for.
3. **A reclaimed player node** (2 EnvActors; the node of EnvActor 0 killed at step 6,000): the steps lost (the
   console's ``lost steps``) and the seconds until the EnvActor plays again on a new node.
4. **A reclaimed learner node** (the learner on a ``learner`` node, ``checkpoint_interval`` 5,000; its node killed
   at step 8,000): the steps lost (trained since the last checkpoint) and the seconds to restart.
"""

from __future__ import annotations

import re
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.local_cluster import LocalAutoscalingCluster, NodeType
from bench.runs import SUMMARY, Summary, example, learn, write_config
from bench.table import Row, report, seeded_arguments

SECTION = "Autoscaling and preemption"
"""The README section this benchmark writes."""
COMMAND = "python -m bench.autoscaling"
MAX_STEPS = 20_000
PLAYERS = 4
PLAYER = NodeType("player", {"CPU": 1, "unity_player": 1}, max_workers=PLAYERS)
LEARNER = NodeType("learner", {"CPU": 1, "GPU": 1}, max_workers=2)
TIMEOUT_S = 600.0
BEHAVIOR = "CartPole"
"""The behavior of the runs (the CartPole example's)."""
ENV_ACTOR_NODE = re.compile(r"env actor (\d+) \(pid \d+\) on .*node (\w+)\): player pid")
LEARNER_NODE = re.compile(r"learner \(pid \d+\) on node (\w+)")
LOST_STEPS = re.compile(r"lost steps: ([\d,]+)")
LEARNER_RESTART = re.compile(r"learner restarted in ([\d.]+) s .*; (\d+) steps trained since the last checkpoint")


@dataclass(frozen=True)
class TimedOutput:
    """What a run printed, each line with the seconds since its command started."""

    lines: tuple[tuple[float, str], ...]
    wall_s: float
    """From the command to its exit."""

    def first(self, pattern: str | re.Pattern[str]) -> tuple[float, re.Match[str]] | None:
        """The first line matching ``pattern``: its time and match."""
        compiled = re.compile(pattern) if isinstance(pattern, str) else pattern
        for seconds, line in self.lines:
            found = compiled.search(line)
            if found:
                return seconds, found
        return None

    def last(self, pattern: re.Pattern[str]) -> re.Match[str] | None:
        """The last line's match of ``pattern``."""
        found = [match for _, line in self.lines if (match := pattern.search(line))]
        return found[-1] if found else None


LineWatcher = Callable[[str, Sequence[str]], None]
"""Sees each line of a run as it comes, with the lines so far (:func:`bench.runs.learn`'s ``on_line``)."""


def timed_learn(arguments: Sequence[str], label: str, env: dict[str, str],
                on_line: LineWatcher) -> TimedOutput:  # fmt: skip
    """Runs ``rayagents-learn ARGUMENTS`` to its end (:func:`bench.runs.learn`, its summaries echoed after
    ``label``) with ``env`` added to its environment; ``on_line(line, lines so far)`` sees each line."""
    environment: dict[str, str | None] = {"COLUMNS": "200", **env, "RAY_ADDRESS": None}  # the arguments name it
    output = learn(arguments, BEHAVIOR, to_the_end, TIMEOUT_S, label, environment, on_line, check=True)
    return TimedOutput(tuple(zip(output.line_seconds, output.lines)), output.wall_s)


def run_arguments(cluster: LocalAutoscalingCluster, folder: Path, name: str, envs: int, seed: int,
                  *more: str) -> list[str]:  # fmt: skip
    """A run of the CartPole example on ``cluster`` with ``envs`` EnvActors on player nodes."""
    config = example("ppo/CartPole.yaml")
    config["behaviors"][BEHAVIOR].update(max_steps=MAX_STEPS, checkpoint_interval=5000, summary_freq=2000)
    path = write_config(config, folder, name)
    return [str(path), "--env", "sim:CartPole", "--num-envs", str(envs), "--min-envs", "1", "--seed", str(seed),
            "--run-id", name, "--results-dir", str(folder / "results"), "--address", cluster.address,
            "--env-actor-resources", '{"unity_player": 1}', *more]  # fmt: skip


def nothing(line: str, lines: Sequence[str]) -> None:
    """Watches a run without acting on it."""


def to_the_end(summary: Summary) -> bool:
    """Lets a run go on to its end: no summary stops it."""
    return False


def preempt_at(cluster: LocalAutoscalingCluster, step: int, node_of: Callable[[str], str]) -> LineWatcher:
    """A line watcher that reclaims the node ``node_of(output)`` names once a summary reaches ``step``."""
    done: list[str] = []

    def watch(line: str, lines: Sequence[str]) -> None:
        found = SUMMARY.match(line.strip())
        if not done and found and found["behavior"] == BEHAVIOR and int(found["step"]) >= step:
            node = node_of("\n".join(lines))
            cluster.preempt(node)
            done.append(node)
            print(f"    reclaimed node {node} at step {found['step']}", file=sys.stderr, flush=True)

    return watch


def scale_up(folder: Path, seed: int, static: bool) -> tuple[TimedOutput, float]:
    """Scenario 1 (``static`` False) or 2: the run's output and the player nodes' node-seconds."""
    kind = NodeType(PLAYER.name, PLAYER.resources, PLAYERS, min_workers=PLAYERS if static else 0)
    cluster = LocalAutoscalingCluster(folder / ("static" if static else "autoscaled"), (kind,))
    cluster.start()
    try:
        if static:
            cluster.wait_for_workers("unity_player", lambda nodes: len(nodes) == PLAYERS, 180,
                                     "the static player nodes' start")  # fmt: skip
        started = time.time()
        name = "static" if static else "up"
        output = timed_learn(run_arguments(cluster, folder, name, PLAYERS, seed), name, cluster.client_env(), nothing)
        if static:
            return output, PLAYERS * output.wall_s
        cluster.wait_for_workers("unity_player", lambda nodes: nodes == [], 180, "the idle player nodes' release")
        now = time.time()
        used = [node for node in cluster.workers("unity_player", alive=False) if node.start_s >= started - 1]
        return output, sum(node.seconds(now) for node in used)
    finally:
        cluster.stop()


def reclaim_player(folder: Path, seed: int) -> tuple[int, float]:
    """Scenario 3: the steps lost and the seconds from the reclaim to the EnvActor's player running again."""
    cluster = LocalAutoscalingCluster(folder / "spot", (PLAYER,))
    cluster.start()
    try:
        watch = preempt_at(cluster, 6000, lambda text: dict(ENV_ACTOR_NODE.findall(text))["0"])
        output = timed_learn(run_arguments(cluster, folder, "spot", 2, seed), "spot", cluster.client_env(), watch)
    finally:
        cluster.stop()
    lost = output.last(LOST_STEPS)
    reclaimed = output.first("was lost and is replaced")
    back = [seconds for seconds, line in output.lines if (m := ENV_ACTOR_NODE.search(line)) and m.group(1) == "0"]
    if lost is None or reclaimed is None or len(back) < 2:
        raise RuntimeError("the reclaimed EnvActor was not replaced")
    return int(lost.group(1).replace(",", "")), back[-1] - reclaimed[0]


def reclaim_learner(folder: Path, seed: int) -> tuple[int, float]:
    """Scenario 4: the steps lost and the seconds the restart took (as the console says)."""
    cluster = LocalAutoscalingCluster(folder / "learner", (PLAYER, LEARNER))
    cluster.start()
    try:
        watch = preempt_at(cluster, 8000, lambda text: LEARNER_NODE.findall(text)[0])
        arguments = run_arguments(cluster, folder, "learner", 2, seed, "--learner-num-gpus", "1", "--learner-device",
                                  "cpu", "--learner-max-restarts", "1")  # fmt: skip
        output = timed_learn(arguments, "learner", cluster.client_env(), watch)
    finally:
        cluster.stop()
    restarted = output.last(LEARNER_RESTART)
    if restarted is None:
        raise RuntimeError("the learner was not restarted")
    return int(restarted.group(2)), float(restarted.group(1))


def run(seed: int) -> list[Row]:
    """Runs the four scenarios; returns the README rows."""
    with tempfile.TemporaryDirectory(prefix="bench-autoscaling-") as name:
        folder = Path(name)
        autoscaled, autoscaled_node_s = scale_up(folder, seed, static=False)
        static, static_node_s = scale_up(folder, seed, static=True)
        player_lost, player_back_s = reclaim_player(folder, seed)
        learner_lost, learner_restart_s = reclaim_learner(folder, seed)
    command = f"{COMMAND} --seeds {seed}"

    def at(output: TimedOutput, pattern: str) -> str:
        found = output.first(pattern)
        return "—" if found is None else f"{found[0]:.1f} s"

    starts, all_up = r"training starts with", rf"env actors: {PLAYERS} up, 0 starting"
    return [
        Row(f"{PLAYERS} EnvActors on player nodes launched on demand: command → training starts / all up",
            f"{at(autoscaled, starts)} / {at(autoscaled, all_up)} (static cluster: {at(static, starts)} / "
            f"{at(static, all_up)})", "—", None, command),
        Row(f"player node-seconds for {MAX_STEPS:,} steps: autoscaled (launch to release) vs static "
            f"({PLAYERS} × the run)", f"{autoscaled_node_s:.0f} vs {static_node_s:.0f} (runs of "
            f"{autoscaled.wall_s:.0f} s and {static.wall_s:.0f} s)", "—", None, command),
        Row("a reclaimed player node: steps lost / seconds until its EnvActor plays again on a new node",
            f"{player_lost:,} / {player_back_s:.1f} s", "—", None, command),
        Row("a reclaimed learner node (checkpoint_interval 5,000): steps lost / restart on a new node",
            f"{learner_lost:,} / {learner_restart_s:.1f} s", "≤ 5,000 steps", learner_lost <= 5000, command),
    ]  # fmt: skip


def main(argv: Sequence[str] | None = None) -> None:
    """Runs the scenarios with the first of ``--seeds``; prints (and writes into the README) the rows."""
    options = seeded_arguments(__doc__ or "", None, (0,), argv)
    report(SECTION, run(options.seeds[0]), write_readme=not options.no_readme)


if __name__ == "__main__":
    main()
