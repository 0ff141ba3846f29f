"""Self-play: ELO arithmetic, the snapshot window, the swap schedule, team changes, what each team is handed, and a
league that survives a checkpoint (``--resume``). Real trainers (PPO) and the real publisher, whose object store
is a plain function here (no Ray needed to check who plays what)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from rayagents.configs.hyperparameters import PPOSettings
from rayagents.configs.network import NetworkSettings
from rayagents.configs.trainer import SelfPlaySettings, TrainerSettings
from rayagents.learner.checkpoints import CheckpointStore
from rayagents.learner.elo import DRAW, LOSS, WIN, expected_score, game_result, rating_change
from rayagents.learner.league import LATEST, League
from rayagents.learner.publisher import WeightsPublisher
from rayagents.learner.results_storage import ResultsStorage
from rayagents.learner.self_play import SelfPlay
from rayagents.learner.summaries import ELO_STAT
from rayagents.learner.trainer import Trainer
from rayagents.learner.policy import ENTROPY
from rayagents.learner.weights import PolicyWeights
from rayagents.protocol.trajectories import LOG_PROBS, Trajectory
from rayagents.protocol.types import ActionSpec, BehaviorSpec, DimensionProperty, ObservationSpec, ObservationType

NAME = "Board"
SPEC = BehaviorSpec((ObservationSpec((4,), (DimensionProperty.NONE,), ObservationType.DEFAULT, "board"),), ActionSpec(0, (3,)))


# ---- ELO -----------------------------------------------------------------------------------------------------------


def test_elo_follows_the_logistic_expectation_with_mlagents_k() -> None:
    assert expected_score(1200, 1200) == pytest.approx(0.5)
    assert expected_score(1600, 1200) == pytest.approx(1 / (1 + 10 ** (-1)))
    assert rating_change(1200, 1200, WIN) == pytest.approx(0.5)
    assert rating_change(1200, 1200, DRAW) == pytest.approx(0.0)
    assert rating_change(1600, 1200, LOSS) == pytest.approx(-10 / 11)
    assert [game_result(r) for r in (1.0, 0.0, -1.0, 0.3)] == [WIN, DRAW, LOSS, WIN]


# ---- the league on its own -----------------------------------------------------------------------------------------


def weights(version: int) -> PolicyWeights:
    return PolicyWeights(version, {"w": np.full(2, float(version), np.float32)})


def test_snapshots_fill_a_ring_of_window_slots_each_with_the_elo_it_had() -> None:
    league = League(SelfPlaySettings(save_steps=10, window=3, initial_elo=1000.0), seed=0)
    league.start(weights(0))
    assert [s.version for s in league.snapshots] == [0] and league.opponent == 0
    assert not league.snapshot_due(10) and league.snapshot_due(11)
    for version in (1, 2, 3, 4):
        league.change_current_elo(5.0)
        league.save_snapshot(weights(version), step=11 * version)
    assert [s.version for s in league.snapshots] == [3, 4, 2]  # slot 0 and 1 overwritten, oldest first
    assert league.elos[:3] == [1015.0, 1020.0, 1010.0] and league.current_elo == 1020.0
    assert not league.snapshot_due(44 + 10) and league.snapshot_due(44 + 11)


@pytest.mark.parametrize("ratio, latest", [(0.0, False), (1.0, True)])
def test_swaps_follow_swap_steps_and_the_latest_model_ratio(ratio: float, latest: bool) -> None:
    league = League(SelfPlaySettings(swap_steps=100, window=4, play_against_latest_model_ratio=ratio), seed=1)
    league.start(weights(0))
    for version in (1, 2):
        league.save_snapshot(weights(version))
    league.add_ghost_steps(100)
    assert not league.swap_due()
    league.add_ghost_steps(1)
    assert league.swap_due()
    chosen = [league.swap(weights(9)).version for _ in range(30)]
    assert not league.swap_due()
    if latest:
        assert set(chosen) == {9} and league.opponent == LATEST
    else:
        assert set(chosen) == {0, 1, 2}  # uniformly drawn from the window, never the latest
    league.add_ghost_steps(101)
    assert league.swap_due()


# ---- the league on the learner: routing, publications, team changes ------------------------------------------------


def settings(**self_play: object) -> TrainerSettings:
    defaults: dict[str, object] = {"save_steps": 20, "team_change": 60, "swap_steps": 30, "window": 3}
    return TrainerSettings(
        hyperparameters=PPOSettings(batch_size=8, buffer_size=16, num_epoch=1),
        network_settings=NetworkSettings(hidden_units=8),
        self_play=SelfPlaySettings(**{**defaults, **self_play}),  # type: ignore[arg-type]
        max_steps=10_000,
    )


def game(team: int, length: int, reward: float, version: int = 0, seed: int = 0) -> Trajectory:
    """A finished game of one agent of ``team`` whose last reward is ``reward``."""
    rng = np.random.default_rng(seed)
    rewards = np.zeros(length, np.float32)
    rewards[-1] = reward
    return Trajectory(
        obs=(rng.normal(size=(length, 4)).astype(np.float32),),
        next_obs=(rng.normal(size=4).astype(np.float32),),
        continuous_actions=np.zeros((length, 0), np.float32),
        discrete_actions=rng.integers(0, 3, size=(length, 1)),
        rewards=rewards,
        done=True,
        interrupted=False,
        versions=np.full(length, version, np.int32),
        extras={LOG_PROBS: np.full(length, -1.1, np.float32), ENTROPY: np.full(length, 1.1, np.float32)},
        action_mask=np.zeros((length, 3), dtype=bool),
        behavior=f"{NAME}?team={team}",
        agent_id=f"a{team}",
    )


@dataclasses.dataclass
class Learner:
    """A trainer with self-play and the publisher, turned the way the LearnerActor turns them."""

    trainer: Trainer
    self_play: SelfPlay
    publisher: WeightsPublisher

    @staticmethod
    def make(trainer_settings: TrainerSettings, folder: Path | None = None, initialize: bool = False) -> "Learner":
        publisher = WeightsPublisher(put=lambda w: w)
        self_play = SelfPlay(publisher, seed=0)
        trainer = Trainer(f"{NAME}?team=0", SPEC, trainer_settings, seed=0)
        self_play.attach(trainer)
        if folder is not None:
            trainer.restore(store(folder), reset_global_step=initialize)
        for team in (0, 1):
            behavior = f"{NAME}?team={team}"
            publisher.add(behavior, trainer.version, trainer.weights_snapshot)
            self_play.register(behavior, trainer)
        return Learner(trainer, self_play, publisher)

    def turn(self, trajectories: list[Trajectory]) -> None:
        self.trainer.ingest(self.self_play.take(self.trainer, trajectories))
        if self.trainer.maybe_update():
            self.publisher.publish(NAME, self.trainer.version, self.trainer.weights_snapshot)
        self.self_play.advance(self.trainer)

    def plays(self, team: int) -> int:
        return self.publisher.notice(f"{NAME}?team={team}").version

    @property
    def league(self) -> League:
        league = self.self_play.league_of(NAME)
        assert league is not None
        return league


def store(folder: Path) -> CheckpointStore:
    return CheckpointStore(ResultsStorage(str(folder)), str(folder), NAME)


def test_only_the_learning_team_trains_and_the_other_counts_ghost_steps_not_dropped_ones() -> None:
    learner = Learner.make(settings())
    assert learner.self_play.rotation.learning_team == 0
    learner.turn([game(0, 5, 1.0), game(1, 7, -1.0)])
    assert learner.trainer.step == 5 and learner.trainer.dropped_steps == 0
    assert learner.league.ghost_step == 7 and learner.trainer.buffered_steps == 5
    # One win against the initial snapshot (equal ratings): +0.5, the opponent's slot -0.5.
    assert learner.league.current_elo == pytest.approx(1200.5) and learner.league.elos[0] == pytest.approx(1199.5)
    assert learner.trainer.summary(learner.trainer.step)[ELO_STAT] == pytest.approx(1200.5)


def test_the_other_team_plays_a_fixed_opponent_while_the_learning_team_follows_every_update() -> None:
    learner = Learner.make(settings(swap_steps=10_000))
    assert learner.plays(0) == 0 and learner.plays(1) == 0
    for seed in range(8):
        learner.turn([game(0, 4, 1.0, version=learner.trainer.version, seed=seed), game(1, 4, -1.0, seed=seed)])
    assert learner.trainer.version >= 1
    assert learner.plays(0) == learner.trainer.version  # follows
    assert learner.plays(1) == 0  # still the initial snapshot: no swap is due yet


def test_team_change_moves_learning_and_the_old_learning_team_gets_an_opponent() -> None:
    learner = Learner.make(settings(team_change=30, save_steps=10, swap_steps=10_000))
    seed = 0
    while learner.self_play.rotation.learning_team == 0:
        learner.turn([game(0, 4, 1.0, version=learner.trainer.version, seed=seed), game(1, 4, -1.0, seed=seed)])
        seed += 1
    assert learner.trainer.step == 32  # the first step past team_change
    assert learner.self_play.rotation.changes == 1
    # Now team 1 follows the trainer and team 0 plays what the swap chose; team 1's games train.
    assert learner.plays(1) == learner.trainer.version
    chosen = learner.league.opponent_weights
    assert chosen is not None and learner.plays(0) == chosen.version
    before = learner.trainer.step
    learner.turn([game(1, 6, 1.0, version=learner.trainer.version), game(0, 3, -1.0)])
    assert learner.trainer.step == before + 6


def test_a_resumed_league_keeps_its_snapshots_ratings_counters_and_learning_team(tmp_path: Path) -> None:
    first = Learner.make(settings(team_change=30, save_steps=10, swap_steps=15))
    seed = 0
    while first.self_play.rotation.changes < 1 or first.trainer.step < 45:
        first.turn([game(0 if first.self_play.rotation.learning_team == 0 else 1, 4, 1.0,
                         version=first.trainer.version, seed=seed), game(1, 4, -1.0, seed=seed)])  # fmt: skip
        seed += 1
    first.trainer.save_checkpoint(store(tmp_path))
    league = first.league

    resumed = Learner.make(settings(team_change=30, save_steps=10, swap_steps=15), folder=tmp_path)
    again = resumed.league
    assert resumed.trainer.step == first.trainer.step
    assert again.elos == pytest.approx(league.elos) and again.ghost_step == league.ghost_step
    assert [s.version for s in again.snapshots] == [s.version for s in league.snapshots]
    for mine, theirs in zip(again.snapshots, league.snapshots):
        assert all(np.array_equal(mine.state[k], theirs.state[k]) for k in theirs.state)
    assert resumed.self_play.rotation.learning_team == first.self_play.rotation.learning_team == 1
    assert resumed.self_play.rotation.changes == 1
    assert again.opponent == league.opponent
    # The team that does not learn plays the saved opponent again, not the initial policy.
    if league.opponent != LATEST:
        assert resumed.plays(0) == league.snapshots[league.opponent].version


def test_an_asymmetric_game_takes_turns_between_behaviors_and_rates_against_the_other_league() -> None:
    # Two behaviors, one per team (as strikers against a goalie): only the learning team's behavior trains, the
    # other plays snapshots of itself; a win of the learner moves the other league's opponent rating.
    publisher = WeightsPublisher(put=lambda w: w)
    self_play = SelfPlay(publisher, seed=0)
    trainers = {}
    for name, team in (("Striker", 0), ("Goalie", 1)):
        trainer = Trainer(f"{name}?team={team}", SPEC, settings(team_change=20, save_steps=10, swap_steps=1000), seed=0)
        self_play.attach(trainer)
        publisher.add(f"{name}?team={team}", trainer.version, trainer.weights_snapshot)
        self_play.register(f"{name}?team={team}", trainer)
        trainers[name] = trainer

    def play(name: str, team: int, reward: float) -> list[Trajectory]:
        trajectory = dataclasses.replace(game(team, 4, reward), behavior=f"{name}?team={team}")
        return self_play.take(trainers[name], [trajectory])

    assert self_play.rotation.learning_team == 0
    assert len(play("Striker", 0, 1.0)) == 1 and play("Goalie", 1, -1.0) == []
    striker, goalie = self_play.league_of("Striker"), self_play.league_of("Goalie")
    assert striker is not None and goalie is not None
    assert striker.current_elo == pytest.approx(1200.5) and goalie.opponent_elo == pytest.approx(1199.5)
    assert goalie.ghost_step == 4 and trainers["Goalie"].step == 0
    for _ in range(6):  # 24 steps: the first past team_change
        trainers["Striker"].ingest(play("Striker", 0, 1.0))
        self_play.advance(trainers["Striker"])
        self_play.advance(trainers["Goalie"])
    assert self_play.rotation.learning_team == 1 and trainers["Striker"].step == 24
    assert play("Striker", 0, 1.0) == [] and len(play("Goalie", 1, 1.0)) == 1
    assert publisher.notice("Goalie?team=1").version == trainers["Goalie"].version


def test_initialize_from_takes_the_policy_but_starts_a_new_league(tmp_path: Path) -> None:
    first = Learner.make(settings(save_steps=10))
    for seed in range(10):
        first.turn([game(0, 4, 1.0, version=first.trainer.version, seed=seed), game(1, 4, -1.0, seed=seed)])
    first.trainer.save_checkpoint(store(tmp_path))
    assert first.league.current_elo > 1200.0 and len(first.league.snapshots) == 3
    started = Learner.make(settings(save_steps=10), folder=tmp_path, initialize=True)
    assert started.trainer.step == 0 and started.league.current_elo == 1200.0 and started.league.ghost_step == 0
    assert len(started.league.snapshots) == 1  # the initialized policy, as the first snapshot
    state = started.trainer.weights_snapshot().state
    assert all(np.array_equal(state[k], first.trainer.weights_snapshot().state[k]) for k in state)
