"""The driver's progress report: the cluster's line in a log without the live table, ``Cluster/`` statistics in
TensorBoard beside each behavior's, checkpoint lists saved when they change."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from rayagents.cluster.console import ConsoleView
from rayagents.cluster.fleet import FleetStatus
from rayagents.cluster.progress import ClusterFigures, ProgressReporter
from rayagents.cluster.tensorboard import TensorBoardWriter, read_scalars
from rayagents.cluster.timers import GaugeRecorder
from rayagents.cluster.training_status import TrainingStatus
from rayagents.configs import RunOptions
from rayagents.learner.checkpoints import CheckpointRecord
from rayagents.learner.learner_messages import BehaviorState, LearnerProgress
from rayagents.learner.summaries import TrainerSummary

BEHAVIOR = "Walker"


def fleet(up: int = 2, lost_steps: int = 0, replacements: int = 0) -> FleetStatus:
    return FleetStatus(
        up=up, starting=2 - up, total=2, replacements=replacements, player_restarts=0, lost_steps=lost_steps
    )


def progress(step: int, summaries: tuple[TrainerSummary, ...] = (), checkpoints: tuple = ()) -> LearnerProgress:
    state = BehaviorState(
        behavior_name=BEHAVIOR, step=step, max_steps=10_000, version=1, dropped_steps=0, training=True
    )
    return LearnerProgress(
        behaviors=(state,),
        summaries=summaries,
        checkpoints={BEHAVIOR: checkpoints} if checkpoints else {},
        training_done=False,
        messages=(),
    )


class Reporter:
    """A reporter over a real TensorBoard writer and a plain (not live) console."""

    def __init__(self, folder: Path) -> None:
        self.out = io.StringIO()
        self.saves = 0
        self.tensorboard = TensorBoardWriter(folder, resume=False)
        self.status = TrainingStatus()
        self.reporter = ProgressReporter(
            RunOptions(),
            ConsoleView(Console(file=self.out, width=200), live=False),
            self.tensorboard,
            self.status,
            GaugeRecorder(),
            self._save,
            lambda: None,
        )

    def _save(self) -> None:
        self.saves += 1

    @property
    def lines(self) -> list[str]:
        return self.out.getvalue().splitlines()


def test_without_a_live_table_the_cluster_line_is_logged_when_it_changes(tmp_path: Path) -> None:
    made = Reporter(tmp_path)
    made.reporter.show(progress(100), 1.0, ClusterFigures(fleet(up=1), learner_restarts=0))
    made.reporter.show(progress(200), 2.0, ClusterFigures(fleet(up=1), learner_restarts=0))
    made.reporter.show(progress(300), 3.0, ClusterFigures(fleet(up=2, lost_steps=37, replacements=1), 1))
    cluster_lines = [line for line in made.lines if line.startswith("env actors:")]
    assert cluster_lines == [
        "env actors: 1 up, 1 starting, 2 total, 0 replaced; player restarts: 0; learner restarts: 0; lost steps: 0",
        "env actors: 2 up, 0 starting, 2 total, 1 replaced; player restarts: 0; learner restarts: 1; lost steps: 37",
    ]
    assert made.reporter.last_steps == {BEHAVIOR: 300}


def test_summaries_carry_the_cluster_statistics_and_new_checkpoint_lists_are_saved(tmp_path: Path) -> None:
    made = Reporter(tmp_path)
    summary = TrainerSummary(
        behavior_name=BEHAVIOR,
        step=1000,
        scalars={"Policy/Learning Rate": 0.001},
        cumulative_rewards=(1.0, 3.0),
        training=True,
    )
    record = CheckpointRecord(
        steps=1000, file_path="w.onnx", reward=2.0, creation_time=0.0, auxillary_file_paths=("w.pt",)
    )
    figures = ClusterFigures(fleet(up=2, lost_steps=5, replacements=1), learner_restarts=1)
    made.reporter.show(progress(1000, (summary,), (record,)), 4.0, figures)
    made.reporter.show(progress(1100, (), (record,)), 5.0, figures)
    made.tensorboard.close()
    scalars = read_scalars(tmp_path / BEHAVIOR)
    assert scalars["Cluster/Env Actors Up"] == [(1000, 2.0)]
    assert scalars["Cluster/Env Actor Replacements"] == [(1000, 1.0)]
    assert scalars["Cluster/Learner Restarts"] == [(1000, 1.0)]
    assert scalars["Cluster/Lost Steps"] == [(1000, 5.0)]
    assert scalars["Policy/Learning Rate"][0][0] == 1000
    expected = f"{BEHAVIOR}. Step: 1000. Time Elapsed: 4.000 s. Mean Reward: 2.000"
    assert any(line.startswith(expected) for line in made.lines), made.lines
    assert made.saves == 1, "the list is saved when it changes, not at every poll"
    assert tuple(made.status.checkpoints(BEHAVIOR)) == (record,)
