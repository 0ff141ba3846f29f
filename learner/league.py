"""``League``: one behavior's self-play league, as ML-Agents' ``GhostTrainer`` keeps it (spec: ``self_play``).

At any time one team learns (the :class:`~rayagents.learner.self_play.TeamRotation` says which); every other team
of the behavior plays a fixed opponent: a snapshot of the policy from the league's window, or the latest policy
as it was when the opponent was chosen. The league holds, with ML-Agents' step counters and rules:

- **snapshots**: every ``save_steps`` trainer steps the learning policy is copied into a ring of ``window``
  snapshots (the first one when the trainer starts), each with the ELO the policy had then;
- **swaps**: every ``swap_steps`` ghost steps (steps of the teams that do not learn) and at every change of the
  learning team, each other team is handed a new opponent: the latest policy with probability
  ``play_against_latest_model_ratio``, otherwise a snapshot drawn uniformly from the window;
- **team changes**: every ``team_change`` trainer steps the league asks the rotation for the next learning team;
- **ELO**: the learning policy's rating and each snapshot's, moved by every game the learning team finishes
  (:mod:`elo`).

A league is saved in the trainer's checkpoint (entry ``SelfPlay``: the snapshots' weights, the ratings, the
counters and the rotation), so ``--resume`` continues the same league against the same opponents.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from rayagents.configs.trainer import SelfPlaySettings
from rayagents.learner.weights import PolicyWeights

LATEST = -1
"""The opponent index of "the latest policy, as it was at the swap" (ML-Agents' ``"current"``)."""

SELF_PLAY = "SelfPlay"
"""The checkpoint entry a league is saved under."""

_COUNTERS = ("snapshot_counter", "opponent", "ghost_step", "last_save", "last_swap", "last_team_change", "snapshots")


@dataclass(frozen=True)
class RotationState:
    """Which team learns, as saved with a league (the rotation itself is shared by every league of the run)."""

    learning_team: int
    """The team that learns now."""
    queue: tuple[int, ...]
    """The teams waiting for their turn, next first."""
    changes: int
    """How many times the learning team changed since the run started (the newest saved rotation wins)."""


class League:
    """One behavior's snapshots, opponent choice, step counters and ELO ratings.

    Arguments:
        settings: the behavior's ``self_play`` settings.
        seed: seeds the opponent draws.
    """

    def __init__(self, settings: SelfPlaySettings, seed: int) -> None:
        self.settings = settings
        self._rng = np.random.default_rng(seed)
        self.snapshots: list[PolicyWeights] = []
        """The window of past policies, in ring order (at most ``window``)."""
        self.elos: list[float] = [settings.initial_elo] * (settings.window + 1)
        """Each snapshot slot's rating, then (last) the learning policy's."""
        self.opponent = LATEST
        """The index in :attr:`snapshots` of what the other teams play, or :data:`LATEST`."""
        self.opponent_weights: PolicyWeights | None = None
        """What the other teams play now (None before the first snapshot)."""
        self.ghost_step = 0
        """Steps of the teams that do not learn (they drive the swaps)."""
        self.seen_learning_team = -1
        """The learning team at the league's last swap: a change of it swaps at once (-1: none yet)."""
        self.saved_rotation: RotationState | None = None
        """The rotation loaded from a checkpoint, for the run's rotation to take back (None: none was loaded)."""
        self._snapshot_counter = 0
        self._last_save = 0
        self._last_swap = 0
        self._last_team_change = 0

    # ---- ratings -------------------------------------------------------------------------------------------------
    @property
    def current_elo(self) -> float:
        """The learning policy's ELO."""
        return self.elos[-1]

    @property
    def opponent_elo(self) -> float:
        """The ELO of what the other teams play (the learning policy's own when they play the latest)."""
        return self.elos[self.opponent]

    def change_current_elo(self, change: float) -> None:
        """Moves the learning policy's rating by ``change``."""
        self.elos[-1] += change

    def change_opponent_elo(self, change: float) -> None:
        """Moves the opponent's rating by ``-change`` (it lost what the learning policy won)."""
        self.elos[self.opponent] -= change

    # ---- schedule ------------------------------------------------------------------------------------------------
    def start(self, weights: PolicyWeights) -> None:
        """The first snapshot, of the policy the trainer starts with; what the other teams play until the first
        swap. Nothing for a league loaded from a checkpoint."""
        if not self.snapshots:
            self.save_snapshot(weights)
            self.opponent, self.opponent_weights = 0, self.snapshots[0]

    def snapshot_due(self, step: int) -> bool:
        """Whether ``save_steps`` trainer steps passed since the last snapshot."""
        return step - self._last_save > self.settings.save_steps

    def save_snapshot(self, weights: PolicyWeights, step: int | None = None) -> None:
        """Copies ``weights`` into the next slot of the window, with the learning policy's current rating."""
        slot = self._snapshot_counter
        if slot < len(self.snapshots):
            self.snapshots[slot] = weights
        else:
            self.snapshots.append(weights)
        self.elos[slot] = self.current_elo
        self._snapshot_counter = (slot + 1) % self.settings.window
        if step is not None:
            self._last_save = step

    def team_change_due(self, step: int) -> bool:
        """Whether ``team_change`` trainer steps passed since the learning team last changed."""
        return step - self._last_team_change > int(self.settings.team_change or 0)

    def team_changed(self, step: int) -> None:
        """Notes that the learning team changed at trainer step ``step``."""
        self._last_team_change = step

    def add_ghost_steps(self, steps: int) -> None:
        """Counts steps played by the teams that do not learn."""
        self.ghost_step += steps

    def swap_due(self) -> bool:
        """Whether ``swap_steps`` ghost steps passed since the last swap."""
        return self.ghost_step - self._last_swap > self.settings.swap_steps

    def swap(self, latest: PolicyWeights) -> PolicyWeights:
        """Chooses the next opponent (the latest policy with probability ``play_against_latest_model_ratio``,
        else a snapshot drawn uniformly) and returns its weights."""
        if self.snapshots and self._rng.uniform() < 1.0 - self.settings.play_against_latest_model_ratio:
            self.opponent = int(self._rng.integers(len(self.snapshots)))
            self.opponent_weights = self.snapshots[self.opponent]
        else:
            self.opponent, self.opponent_weights = LATEST, latest
        self._last_swap = self.ghost_step
        return self.opponent_weights

    # ---- saving --------------------------------------------------------------------------------------------------
    def saved_state(self, rotation: RotationState) -> dict[str, torch.Tensor]:
        """The league and ``rotation`` as tensors by name, for the checkpoint."""
        counters = {
            "snapshot_counter": self._snapshot_counter,
            "opponent": self.opponent,
            "ghost_step": self.ghost_step,
            "last_save": self._last_save,
            "last_swap": self._last_swap,
            "last_team_change": self._last_team_change,
            "snapshots": len(self.snapshots),
        }
        state: dict[str, torch.Tensor] = {
            "elos": torch.tensor(self.elos, dtype=torch.float64),
            "counters": torch.tensor([counters[name] for name in _COUNTERS], dtype=torch.int64),
            "rotation": torch.tensor(
                [rotation.changes, rotation.learning_team, *rotation.queue], dtype=torch.int64
            ),
        }
        for index, snapshot in enumerate(self.snapshots):
            state[f"snapshot{index}.version"] = torch.tensor(snapshot.version, dtype=torch.int64)
            for key, array in snapshot.state.items():
                state[f"snapshot{index}.{key}"] = torch.from_numpy(np.array(array))
        return state

    def load_state(self, state: Mapping[str, torch.Tensor]) -> str:
        """Takes a saved league back; returns '' or why it was not taken (the league then starts afresh)."""
        try:
            elos = [float(x) for x in state["elos"].tolist()]
            values = [int(x) for x in state["counters"].tolist()]
            rotation = [int(x) for x in state["rotation"].tolist()]
        except KeyError as missing:
            return f"it lacks {missing}"
        if len(elos) != self.settings.window + 1 or len(values) != len(_COUNTERS) or len(rotation) < 2:
            return f"its window ({len(elos) - 1} snapshots) is not this run's window ({self.settings.window})"
        counters = dict(zip(_COUNTERS, values))
        snapshots = [_snapshot_from(state, index) for index in range(counters["snapshots"])]
        self.elos = elos
        self.snapshots = snapshots
        self._snapshot_counter = counters["snapshot_counter"] % self.settings.window
        self.opponent = counters["opponent"] if counters["opponent"] < len(snapshots) else LATEST
        self.ghost_step = counters["ghost_step"]
        self._last_save = counters["last_save"]
        self._last_swap = counters["last_swap"]
        self._last_team_change = counters["last_team_change"]
        self.opponent_weights = snapshots[self.opponent] if self.opponent != LATEST else None
        self.saved_rotation = RotationState(rotation[1], tuple(rotation[2:]), rotation[0])
        return ""


def _snapshot_from(state: Mapping[str, torch.Tensor], index: int) -> PolicyWeights:
    prefix = f"snapshot{index}."
    weights = {
        key[len(prefix) :]: tensor.numpy().copy()
        for key, tensor in state.items()
        if key.startswith(prefix) and key != f"{prefix}version"
    }
    return PolicyWeights(version=int(state[f"{prefix}version"].item()), state=weights)

