"""Self-play on the learner: which team learns, what the other teams play, and the ELO of each game.

ML-Agents' ``GhostController`` and ``GhostTrainer`` (spec: ``self_play``), over rayagents' trainers and weights
publications:

- :class:`TeamRotation` is the run's one controller: the first team id seen learns first, the others wait in a
  queue, and a league whose ``team_change`` is due moves the learning team to the next in line. The learning
  team is the same for every behavior: in an asymmetric game (one behavior per team) the behavior of the other
  teams does not learn meanwhile.
- :class:`SelfPlay` routes for the :class:`~rayagents.learner.learner_actor.LearnerActor`: a trajectory of the
  learning team goes to its trainer (and a finished game moves the ELO ratings), one of another team only counts
  as ghost steps of its league; neither is ever a dropped step. After each of a trainer's turns it takes the
  snapshot, team change and swap that are due, and hands the behavior ids their weights through the
  :class:`~rayagents.learner.publisher.WeightsPublisher`: the learning team's ids follow the trainer's latest
  version, every other id is pinned to its league's current opponent.

A behavior without ``self_play`` is untouched: all its teams learn and play the latest version.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence

import torch

from rayagents.learner.elo import game_result, rating_change
from rayagents.learner.league import SELF_PLAY, League, RotationState
from rayagents.learner.publisher import WeightsPublisher
from rayagents.learner.summaries import ELO_STAT
from rayagents.learner.trainer import Trainer
from rayagents.protocol.trajectories import Trajectory
from rayagents.protocol.types import BehaviorId, BehaviorName


class TeamRotation:
    """The learning team, and the teams waiting for their turn (ML-Agents' ``GhostController``)."""

    def __init__(self) -> None:
        self.learning_team = -1
        """The team that learns now (-1 until a team is seen)."""
        self.changes = 0
        """How many times the learning team changed."""
        self._queue: deque[int] = deque()
        self._leagues: dict[int, League] = {}

    def subscribe(self, team: int, league: League) -> None:
        """A team id and the league that manages it; the first team seen learns first."""
        if team in self._leagues:
            return
        self._leagues[team] = league
        if self.learning_team < 0:
            self.learning_team = team
        elif team != self.learning_team and team not in self._queue:
            self._queue.append(team)

    def change(self) -> None:
        """The learning team goes to the back of the queue; the next in line learns."""
        if not self._queue:
            return
        self._queue.append(self.learning_team)
        self.learning_team = self._queue.popleft()
        self.changes += 1

    def opponent_league(self) -> League | None:
        """The league of a team that does not learn (whose opponent the learning team plays), if any."""
        for team, league in self._leagues.items():
            if team != self.learning_team:
                return league
        return None

    @property
    def state(self) -> RotationState:
        """The rotation as it is saved with each league."""
        return RotationState(self.learning_team, tuple(self._queue), self.changes)

    def take(self, saved: RotationState) -> None:
        """Takes a saved rotation back when it is newer than this one (``--resume``)."""
        if saved.changes < self.changes or saved.learning_team < 0:
            return
        teams = {self.learning_team, *self._queue, saved.learning_team, *saved.queue} - {-1}
        self.learning_team = saved.learning_team
        self._queue = deque([*saved.queue, *sorted(teams - {saved.learning_team, *saved.queue})])
        self.changes = saved.changes


class SavedLeague:
    """A league with the run's rotation, as a checkpoint entry (``SelfPlay``)."""

    def __init__(self, league: League, rotation: TeamRotation) -> None:
        self.league = league
        self.rotation = rotation

    def state_dict(self) -> Mapping[str, torch.Tensor]:
        """The league's snapshots, ratings and counters, and the rotation."""
        return self.league.saved_state(self.rotation.state)

    def load_saved(self, state: Mapping[str, torch.Tensor]) -> str:
        """Takes a saved league (and, when newer, its rotation) back; '' or why not."""
        problem = self.league.load_state(state)
        if not problem and self.league.saved_rotation is not None:
            self.rotation.take(self.league.saved_rotation)
        return problem


class SelfPlay:
    """The run's self-play: the rotation, each self-play behavior's league, and what each behavior id plays.

    Arguments:
        publisher: hands the behavior ids their weights.
        seed: seeds each league's opponent draws.
    """

    def __init__(self, publisher: WeightsPublisher, seed: int) -> None:
        self.rotation = TeamRotation()
        self._publisher = publisher
        self._seed = seed
        self._leagues: dict[str, League] = {}
        self._ids: dict[str, list[BehaviorName]] = {}

    def league_of(self, name: str) -> League | None:
        """The league of behavior ``name`` (None: it does not play itself)."""
        return self._leagues.get(name)

    def attach(self, trainer: Trainer) -> None:
        """Gives a new trainer with ``self_play`` its league, saved in its checkpoint (before it is restored)."""
        settings = trainer.settings.self_play
        if settings is None:
            return
        league = League(settings, seed=self._seed + len(self._leagues))
        self._leagues[trainer.behavior_name] = league
        trainer.extra_modules[SELF_PLAY] = SavedLeague(league, self.rotation)

    def register(self, behavior: BehaviorName, trainer: Trainer) -> None:
        """A behavior id of ``trainer`` that an EnvActor plays: its team joins the rotation, and it is pinned to
        the league's opponent when its team does not learn."""
        league = self._leagues.get(trainer.behavior_name)
        if league is None:
            return
        league.start(trainer.weights_snapshot())
        ids = self._ids.setdefault(trainer.behavior_name, [])
        if behavior not in ids:
            ids.append(behavior)
        self.rotation.subscribe(BehaviorId.parse(behavior).team, league)
        if league.seen_learning_team < 0:
            league.seen_learning_team = self.rotation.learning_team
        self._hand_out(trainer, league)

    def take(self, trainer: Trainer, trajectories: Sequence[Trajectory]) -> list[Trajectory]:
        """The trajectories ``trainer`` trains on: all of them without self-play, else the learning team's, whose
        finished games move the ratings; the others count as their league's ghost steps."""
        league = self._leagues.get(trainer.behavior_name)
        if league is None:
            return list(trajectories)
        learning = [t for t in trajectories if BehaviorId.parse(t.behavior).team == self.rotation.learning_team]
        league.add_ghost_steps(sum(len(t) for t in trajectories) - sum(len(t) for t in learning))
        for trajectory in learning:
            if trajectory.done and len(trajectory):
                self._record_game(trainer, league, float(trajectory.rewards[-1]))
        return learning

    def _record_game(self, trainer: Trainer, league: League, final_reward: float) -> None:
        opponents = self.rotation.opponent_league() or league
        change = rating_change(league.current_elo, opponents.opponent_elo, game_result(final_reward))
        opponents.change_opponent_elo(change)
        league.change_current_elo(change)
        trainer.record_stat(ELO_STAT, league.current_elo)

    def advance(self, trainer: Trainer) -> None:
        """After a turn of ``trainer``: the team change, snapshot and swap that are due, and the weights each of
        its behavior ids plays (as ML-Agents' ``GhostTrainer.advance``; a trainer whose team does not learn does
        not step, so only the learning one's ``team_change`` comes due)."""
        league = self._leagues.get(trainer.behavior_name)
        if league is None:
            return
        step = trainer.step
        if league.team_change_due(step):
            self.rotation.change()
            league.team_changed(step)
        if league.snapshot_due(step):
            league.save_snapshot(trainer.weights_snapshot(), step)
        if league.seen_learning_team != self.rotation.learning_team or league.swap_due():
            league.seen_learning_team = self.rotation.learning_team
            league.swap(trainer.weights_snapshot())
            self._hand_out(trainer, league)

    def _hand_out(self, trainer: Trainer, league: League) -> None:
        """The learning team's ids of ``trainer`` follow its latest version; the others play the opponent."""
        pinned: list[BehaviorName] = []
        for behavior in self._ids.get(trainer.behavior_name, ()):
            if BehaviorId.parse(behavior).team == self.rotation.learning_team:
                self._publisher.follow(behavior, trainer.version, trainer.weights_snapshot)
            else:
                pinned.append(behavior)
        if pinned:
            self._publisher.pin(pinned, league.opponent_weights or trainer.weights_snapshot())
