"""The driver's console: ML-Agents' summary lines, and a live table of the behaviors and the cluster.

On a terminal the table redraws in place (rich's Live) and log lines scroll above it. Elsewhere (CI, a Ray
job's log, a pipe) there is no table: only the log lines are printed, so the output reads like mlagents-learn's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from types import TracebackType

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text


def summary_line(
    behavior_name: str,
    step: int,
    elapsed_s: float,
    mean_reward: float | None,
    std_reward: float | None,
    training: bool,
    group_reward: float | None = None,
    elo: float | None = None,
) -> str:
    """A summary line as mlagents-learn prints it, e.g.
    "3DBall. Step: 12000. Time Elapsed: 31.250 s. Mean Reward: 1.234. Std of Reward: 0.567. Training.".

    ``mean_reward`` None means no episode was completed since the last summary. A missing ``std_reward`` with a mean is written as 0.
    With a ``group_reward`` (the mean of ``Environment/Group Cumulative Reward``), "Mean Group Reward: ..." takes
    the standard deviation's place, as mlagents-learn prints it. With self-play, the period's mean ``elo`` (of
    ``Self-play/ELO``) ends the line ("... Training. ELO: 1212.345.") when an episode was completed.
    """
    parts = [behavior_name, f"Step: {step}", f"Time Elapsed: {elapsed_s:0.3f} s"]
    if mean_reward is None:
        parts.append("No episode was completed since last summary")
    else:
        parts.append(f"Mean Reward: {mean_reward:0.3f}")
        if group_reward is not None:
            parts.append(f"Mean Group Reward: {group_reward:0.3f}")
        else:
            parts.append(f"Std of Reward: {0.0 if std_reward is None else std_reward:0.3f}")
    parts.append("Training" if training else "Not Training")
    if elo is not None and mean_reward is not None:
        parts.append(f"ELO: {elo:0.3f}")
    return ". ".join(parts) + "."


@dataclasses.dataclass(frozen=True)
class BehaviorProgress:
    """Where one behavior's training stands, for the live table."""

    behavior_name: str
    """The behavior's name."""
    step: int
    """Its trainer's step (agent decisions summed over all agents)."""
    max_steps: int
    """The step it trains to (its max_steps)."""
    mean_reward: float | None
    """Mean episode return of the last summary period; None when no episode ended in it."""
    std_reward: float | None
    """Standard deviation of the episode returns of the last summary period; None with no episode."""
    steps_per_second: float
    """Steps gathered per second of wall-clock time, recently."""
    policy_lag: float
    """Mean number of weights versions between the policy that acted and the one trained, recently."""
    dropped_steps: int
    """Steps dropped because their policy was older than the trainer allows, over the run."""
    training: bool
    """Whether the behavior is still training (False once at max_steps, or in inference)."""


@dataclasses.dataclass(frozen=True)
class ClusterProgress:
    """Where the cluster stands, for the live table's caption."""

    env_actors_up: int
    """EnvActors running and stepping their player."""
    env_actors_restarting: int
    """EnvActors being started again after a loss."""
    env_actors_total: int
    """EnvActors the run wants (num_envs)."""
    player_restarts: int
    """Players restarted over the run."""
    elapsed_s: float
    """Seconds since training started."""
    env_actor_replacements: int = 0
    """EnvActors replaced after a loss (their node went away), over the run."""
    learner_restarts: int = 0
    """Learner restarts from the latest checkpoint, over the run."""
    lost_steps: int = 0
    """Experiences lost to failures (players, EnvActors, the learner), over the run."""
    learner_bound: bool = False
    """The EnvActors wait for the learner most of the time (SAC's updates due per ``steps_per_update``)."""


def format_elapsed(seconds: float) -> str:
    """Seconds as H:MM:SS."""
    whole = max(0, int(seconds))
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


LEARNER_BOUND_NOTE = "; learner-bound: the EnvActors wait for the updates steps_per_update calls for"
"""The end of the cluster line while the EnvActors mostly wait for the learner."""


def cluster_line(cluster: ClusterProgress) -> str:
    """The cluster's state in one line (the live table's caption; a log line where there is no table)."""
    return (
        f"env actors: {cluster.env_actors_up} up, {cluster.env_actors_restarting} starting, "
        f"{cluster.env_actors_total} total, {cluster.env_actor_replacements} replaced; "
        f"player restarts: {cluster.player_restarts}; learner restarts: {cluster.learner_restarts}; "
        f"lost steps: {cluster.lost_steps:,}"
        + (LEARNER_BOUND_NOTE if cluster.learner_bound else "")
    )


def progress_table(behaviors: Sequence[BehaviorProgress], cluster: ClusterProgress) -> Table:
    """The live table: one row per behavior; the elapsed time in the title, the cluster in the caption."""
    table = Table(title=f"rayagents: {format_elapsed(cluster.elapsed_s)} elapsed", caption=cluster_line(cluster))
    table.add_column("Behavior")
    table.add_column("Step", justify="right")
    table.add_column("Reward (mean ± std)", justify="right")
    table.add_column("Steps/s", justify="right")
    table.add_column("Policy lag", justify="right")
    table.add_column("Dropped", justify="right")
    table.add_column("State")
    for row in behaviors:
        share = row.step / row.max_steps if row.max_steps > 0 else 0.0
        if row.mean_reward is None:
            reward = "no episode"
        else:
            reward = f"{row.mean_reward:.3f} ± {0.0 if row.std_reward is None else row.std_reward:.3f}"
        table.add_row(
            row.behavior_name,
            f"{row.step:,} / {row.max_steps:,} ({share:.0%})",
            reward,
            f"{row.steps_per_second:,.1f}",
            f"{row.policy_lag:.2f}",
            f"{row.dropped_steps:,}",
            "training" if row.training else "not training",
        )
    return table


class ConsoleView:
    """The console of a run, used as a context manager: ``with ConsoleView() as view: view.update(...)``.

    ``live`` None means a live table when the console is a terminal. Without it, ``update`` prints nothing
    and ``log`` prints plain lines.
    """

    def __init__(self, console: Console | None = None, live: bool | None = None) -> None:
        """``console`` defaults to rich's console on stdout; ``live`` forces the live table on or off."""
        self._console = console if console is not None else Console()
        self._use_live = self._console.is_terminal if live is None else live
        self._live: Live | None = None

    @property
    def console(self) -> Console:
        """The console printed to."""
        return self._console

    @property
    def is_live(self) -> bool:
        """Whether the live table is showing (inside the ``with`` block, on a terminal)."""
        return self._live is not None

    def __enter__(self) -> ConsoleView:
        """Starts the live table (when live); returns the view."""
        if self._use_live and self._live is None:
            self._live = Live(Group(), console=self._console, auto_refresh=False, transient=False)
            self._live.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stops the live table, leaving its last state on screen."""
        if self._live is not None:
            self._live.stop()
            self._live = None

    def update(self, behaviors: Sequence[BehaviorProgress], cluster: ClusterProgress) -> None:
        """Redraws the live table; does nothing when not live."""
        if self._live is None:
            return
        self._live.update(progress_table(behaviors, cluster), refresh=True)

    def log(self, line: str) -> None:
        """Prints a line (a summary line, a warning) above the live table, or plainly when not live."""
        self._console.print(Text(line), soft_wrap=True)
