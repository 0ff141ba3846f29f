"""The actor–learner core on a real Ray cluster: EnvActors with players of the simulation host stream to a real
LearnerActor, without the driver's loop in between.

The tests play the driver's part by hand (one ``collect`` call at a time per EnvActor) and check what the core
promises: every step an EnvActor sends is counted by the learner; the EnvActors pick up new weights versions while
they play (nobody waits for an update to end); a learner slower than its EnvActors still updates every
``buffer_size`` experiences, holding them to its pace; experiences acted within PPO's lag bound are trained on, and when the
learner updates past the bound while an EnvActor's trajectories are unfinished (here it is paused between two calls)
the experiences acted by weights older than the bound are dropped, one at a time, and reported as such; weights are
published per behavior id (``Name?team=N``), each with a publication counter of its own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import ray

from env_actors import env_actors
from rayagents.actors.env_actor import CollectReport
from rayagents.configs import run_options_from_dict
from rayagents.learner.learner_actor import remote_learner
from rayagents.learner.learner_messages import LearnerProgress, LearnerSettings
from rayagents.learner.play_rules import PPO_MAX_POLICY_LAG
from rayagents.learner.summaries import DROPPED_STEPS, POLICY_LAG
from rayagents.protocol.trajectories import LOG_PROBS, Trajectory, TrajectoryBatch
from rayagents.protocol.types import ActionSpec, BehaviorSpec, DimensionProperty, ObservationSpec, ObservationType
from rayagents.protocol.weights import LearnerReply, WeightsNotice

pytestmark = pytest.mark.slow

BEHAVIOR = "CartPole"
BEHAVIOR_ID = "CartPole?team=0"
NUM_ENVS = 2
NUM_AREAS = 4
TIME_HORIZON = 32


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """A new Ray cluster on this machine for the module's tests, even when another one already runs here."""
    ray.init(address="local", num_cpus=4, include_dashboard=False)
    try:
        yield
    finally:
        ray.shutdown()


@dataclass
class Played:
    """What a hand-driven run saw."""

    reports: list[CollectReport]
    """Every collect report, in the order they came back."""
    progress: LearnerProgress
    """The learner's progress once it had taken everything sent."""
    summaries: list[dict[str, float]]
    """Every summary the learner made."""


@contextmanager
def running(tmp_path: Path, buffer_size: int, num_epoch: int = 2) -> Iterator[tuple[Any, list[Any]]]:
    """A learner and two started EnvActors × 4 areas of CartPole feeding it; all closed and killed after."""
    options = run_options_from_dict(
        {
            "behaviors": {
                BEHAVIOR: {
                    "trainer_type": "ppo",
                    "hyperparameters": {"batch_size": 32, "buffer_size": buffer_size, "num_epoch": num_epoch},
                    "network_settings": {"hidden_units": 16},
                    "time_horizon": TIME_HORIZON,
                    "summary_freq": 200,
                    "max_steps": 1_000_000,
                }
            }
        }
    )
    learner = remote_learner().remote(options, LearnerSettings(write_path=str(tmp_path), seed=1))
    ray.get(learner.start.remote())
    actors = env_actors(
        learner,
        options,
        env_path="sim:CartPole",
        behavior=BEHAVIOR,
        count=NUM_ENVS,
        num_areas=NUM_AREAS,
        time_horizon=TIME_HORIZON,
        log_folder=tmp_path,
    )
    try:
        ray.get([actor.start.remote() for actor in actors])
        yield learner, actors
    finally:
        ray.get([actor.close.remote() for actor in actors])
        for handle in [*actors, learner]:
            ray.kill(handle)


def taken_in(learner: Any, actors: list[Any], reports: list[CollectReport]) -> Played:
    """Waits until the learner has every batch the actors sent and has taken them all in."""
    ray.get([actor.flush.remote() for actor in actors])
    sent = sum(report.steps for report in reports)
    summaries: list[dict[str, float]] = []
    progress = _progress(learner, summaries)
    for _ in range(200):  # the training thread takes the last batches in
        if progress.behaviors[0].step == sent:
            break
        progress = _progress(learner, summaries, wait=0.05)
    return Played(reports, progress, summaries)


def played_rounds(tmp_path: Path, rounds: int, buffer_size: int, num_epoch: int = 2) -> tuple[Played, int]:
    """Every EnvActor plays ``rounds`` collect calls side by side (see :func:`running`); what was played, once the
    learner took it all in, and the steps sent."""
    with running(tmp_path, buffer_size=buffer_size, num_epoch=num_epoch) as (learner, actors):
        reports: list[CollectReport] = []
        for _ in range(rounds):
            reports += ray.get([actor.collect.remote() for actor in actors])
        played = taken_in(learner, actors, reports)
    return played, sum(report.steps for report in played.reports)


def _progress(learner: Any, summaries: list[dict[str, float]], wait: float = 0.0) -> LearnerProgress:
    time.sleep(wait)
    progress: LearnerProgress = ray.get(learner.progress.remote())
    summaries.extend(dict(summary.scalars) for summary in progress.summaries)
    return progress


def test_env_actors_stream_and_pick_up_new_versions_while_they_play(local_ray: None, tmp_path: Path) -> None:
    played, sent = played_rounds(tmp_path, rounds=50, buffer_size=512)
    (state,) = played.progress.behaviors
    assert sent > 2000
    assert state.step == sent, "every step an EnvActor sent is counted by the learner"
    assert state.version >= 4, "the learner updated as data streamed in"
    # Each EnvActor loaded newer versions between its calls, without a call waiting for an update.
    for index in range(NUM_ENVS):
        versions = [r.versions[BEHAVIOR_ID] for r in played.reports if r.index == index]
        assert versions == sorted(versions) and len(set(versions)) >= 3
        assert versions[-1] >= state.version - 2
    # With the buffer larger than time_horizon × agents, experiences are a version or two old: hardly any dropped.
    assert state.dropped_steps <= 0.01 * sent
    lags = [s[POLICY_LAG] for s in played.summaries if POLICY_LAG in s]
    assert lags and max(lags) <= PPO_MAX_POLICY_LAG


def test_a_learner_slower_than_its_env_actors_still_updates_every_buffer_size_experiences(
    local_ray: None, tmp_path: Path
) -> None:
    # 100 epochs over a buffer of 256 (time_horizon × the 8 agents, so a trajectory spans about one update): an update
    # takes longer than the EnvActors take to play the next 256 steps.
    # The learner takes in no more than an update's worth before it updates, and its inbox holds about one update's
    # worth, so the EnvActors wait for it (throttled) rather than piling up steps that would make fewer, larger
    # updates (a pile ingested at once is one update) or age past the lag bound.
    buffer_size = 256
    played, sent = played_rounds(tmp_path, rounds=25, buffer_size=buffer_size, num_epoch=100)
    (state,) = played.progress.behaviors
    assert sent > 8 * buffer_size
    assert state.step == sent
    # Each update takes in buffer_size + 1 to buffer_size + time_horizon experiences (trajectories are taken whole);
    # the last one may still be running.
    assert state.version >= sent // (buffer_size + TIME_HORIZON) - 1, (state.version, sent)
    assert played.progress.throttled_s > 0, "the EnvActors waited for the learner"
    assert state.dropped_steps <= 0.01 * sent, "nothing piled up past the lag bound"


def test_experiences_older_than_the_lag_bound_are_dropped_and_reported(local_ray: None, tmp_path: Path) -> None:
    # EnvActor 0 plays one call and pauses with its trajectories unfinished, while EnvActor 1 plays on until the
    # learner (an update per 16 experiences) is well past the bound; then EnvActor 0 finishes its trajectories: their
    # first experiences were acted by weights too old and are dropped, its later ones and all of EnvActor 1's are not.
    with running(tmp_path, buffer_size=16) as (learner, (paused, playing)):
        reports: list[CollectReport] = [ray.get(paused.collect.remote())]
        acted = reports[0].versions[BEHAVIOR_ID]
        for _ in range(200):
            reports.append(ray.get(playing.collect.remote()))
            ray.get(playing.flush.remote())
            if ray.get(learner.progress.remote()).behaviors[0].version > acted + PPO_MAX_POLICY_LAG + 1:
                break
        for _ in range(4):
            reports += ray.get([actor.collect.remote() for actor in (paused, playing)])
        played = taken_in(learner, [paused, playing], reports)
    (state,) = played.progress.behaviors
    assert state.version > acted + PPO_MAX_POLICY_LAG + 1, "the learner updated past the bound meanwhile"
    sent = sum(report.steps for report in played.reports)
    assert state.step == sent
    assert 0 < state.dropped_steps < sent, "old experiences dropped, recent ones trained on"
    assert 0 < sum(s[DROPPED_STEPS] for s in played.summaries) <= state.dropped_steps, "the drops are reported"
    # Policy/Policy Lag is the mean of a summary period over every experience in it, dropped ones too (each more
    # than PPO_MAX_POLICY_LAG versions old): a period that reports drops shows a lag.
    assert all(s[POLICY_LAG] > 0 for s in played.summaries if s.get(DROPPED_STEPS, 0) > 0)


def test_weights_are_published_per_behavior_id_with_their_own_publication_counter(
    local_ray: None, tmp_path: Path
) -> None:
    options = run_options_from_dict(
        {"behaviors": {"Ball": {"trainer_type": "ppo", "hyperparameters": {"batch_size": 8, "buffer_size": 16}}}}
    )
    learner = remote_learner().remote(
        options, LearnerSettings(write_path=str(tmp_path), seed=1)
    )
    ray.get(learner.start.remote())
    spec = BehaviorSpec(
        (ObservationSpec((2,), (DimensionProperty.NONE,), ObservationType.DEFAULT, "o"),), ActionSpec(0, (2,))
    )
    first: WeightsNotice = ray.get(learner.register.remote("Ball?team=0", spec))
    second: WeightsNotice = ray.get(learner.register.remote("Ball?team=1", spec))
    assert (first.behavior, first.publication, first.version) == ("Ball?team=0", 0, 0)
    assert (second.behavior, second.publication, second.version) == ("Ball?team=1", 0, 0)
    assert ray.get(first.weights).version == 0  # both teams read the one object of version 0
    rows = 20
    trajectory = Trajectory(
        obs=(np.zeros((rows, 2), np.float32),),
        next_obs=(np.zeros(2, np.float32),),
        continuous_actions=np.zeros((rows, 0), np.float32),
        discrete_actions=np.zeros((rows, 1), np.int32),
        rewards=np.ones(rows, np.float32),
        done=True,
        interrupted=False,
        versions=np.zeros(rows, np.int32),
        extras={LOG_PROBS: np.full(rows, -0.7, np.float32)},
        behavior="Ball?team=1",
        agent_id="agent_0-1",
    )
    ray.get(learner.submit.remote(TrajectoryBatch(env_actor=0, trajectories=(trajectory,))))
    deadline = time.monotonic() + 60
    while ray.get(learner.progress.remote()).behaviors[0].version < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    reply: LearnerReply = ray.get(learner.submit.remote(TrajectoryBatch(env_actor=0, trajectories=())))
    notices = {notice.behavior: notice for notice in reply.notices}
    assert set(notices) == {"Ball?team=0", "Ball?team=1"}
    assert all(n.version == 1 and n.publication == 1 for n in notices.values())
    assert notices["Ball?team=0"].weights == notices["Ball?team=1"].weights  # one object in the store per version
    assert ray.get(notices["Ball?team=0"].weights).version == 1
    ray.kill(learner)
