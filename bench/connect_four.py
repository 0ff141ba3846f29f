"""ConnectFour policies against fixed opponents: the evaluation behind the self-play figure.

A trained ``ConnectFour`` run exports an ``.onnx`` model (ML-Agents' contract: ``obs_0`` ``(N, 2, 6, 7)`` and
``action_masks`` ``(N, 7)`` in, ``deterministic_discrete_actions`` ``(N, 1)`` out). This module plays such a model
in-process on PettingZoo's ``connect_four_v3`` (the environment the ``sim:ConnectFour`` scene wraps) against two
opponents, half the games moving first (``player_0``) and half second (``player_1``):

- ``random_legal``: a uniformly random legal column.
- ``one_move_lookahead``: a winning column when there is one; else a column that blocks the opponent's immediate
  win; else a random legal column.

The model sees exactly what the scene sends it: the observation and the mask are made by the sims adapter's own
codec (``rayagents.sims.adapters.pettingzoo_spaces.observation_codec``), the 6×7×2 board from the deciding
player's side (channel 0 its pieces, 1 the opponent's) as a grid of shape (2, 6, 7).

    python -m bench.connect_four evaluate results/run/ConnectFour.onnx --games 200 --seed 0
    python -m bench.connect_four evaluate --policy lookahead --games 200 --seed 0   # a baseline without a model

``tactics`` probes what a model knows of the next move alone: in positions drawn from random play (4 to 29 random
plies, games not over), how often it takes an immediate win where it has one, and how often, with no win of its own,
it blocks the opponent's immediate win; beside what a uniformly random legal move would score. The lookahead scores
1.00 on both; a policy that scores near chance loses to it however well it does against random play.

    python -m bench.connect_four tactics results/run/ConnectFour/ConnectFour-*.onnx --positions 3000 --seed 0
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

import numpy as np
from pettingzoo.classic.connect_four.connect_four import env as connect_four_env

from rayagents.sims.adapters.pettingzoo_spaces import MASK_KEY, OBSERVATION_KEY, ObservationCodec, observation_codec
from rayagents.sims.scenes import connect_four

COMMAND = "python -m bench.connect_four"
ROWS = 6
"""Rows of the board (row 0 is the top: pieces fall towards row 5)."""
COLUMNS = 7
"""Columns of the board: the actions."""
FIRST, SECOND = "player_0", "player_1"
"""PettingZoo's agents: ``player_0`` moves first."""
MODEL_INPUT = "obs_0"
"""The model's observation input."""
MASK_INPUT = "action_masks"
"""The model's action-mask input (1 = allowed)."""
MODEL_OUTPUT = "deterministic_discrete_actions"
"""The model's output this evaluation plays (the most likely action)."""

RawObservation = Mapping[str, np.ndarray]
"""What PettingZoo gives the player to move: ``{"observation": int8 (6, 7, 2), "action_mask": int8 (7,)}``."""


class Player(Protocol):
    """Something that plays ConnectFour: a column for the player to move."""

    @property
    def name(self) -> str:
        """The player's name in tables."""
        ...

    def choose(self, raw: RawObservation, rng: np.random.Generator) -> int:
        """The column to play in the position ``raw`` (from the mover's side); ``rng`` for any randomness."""
        ...


# ---- the board --------------------------------------------------------------------------------------------------
def legal_columns(raw: RawObservation) -> np.ndarray:
    """The legal columns of ``raw``, ascending."""
    return np.flatnonzero(np.asarray(raw[MASK_KEY]).reshape(-1))


def drop(pieces: np.ndarray, occupied: np.ndarray, column: int) -> np.ndarray:
    """``pieces`` (bool ``(6, 7)``) with one more piece dropped into ``column`` of the board ``occupied``.

    ValueError when the column is full.
    """
    empty = np.flatnonzero(~occupied[:, column])
    if empty.size == 0:
        raise ValueError(f"column {column} is full")
    after = pieces.copy()
    after[empty[-1], column] = True
    return after


def has_four(pieces: np.ndarray) -> bool:
    """True when ``pieces`` (bool ``(6, 7)``) hold four in a row: across, down or on either diagonal."""
    p = pieces
    across = p[:, :-3] & p[:, 1:-2] & p[:, 2:-1] & p[:, 3:]
    down = p[:-3, :] & p[1:-2, :] & p[2:-1, :] & p[3:, :]
    diagonal = p[:-3, :-3] & p[1:-2, 1:-2] & p[2:-1, 2:-1] & p[3:, 3:]
    anti_diagonal = p[3:, :-3] & p[2:-1, 1:-2] & p[1:-2, 2:-1] & p[:-3, 3:]
    return bool(across.any() or down.any() or diagonal.any() or anti_diagonal.any())


def winning_columns(raw: RawObservation, side: int) -> list[int]:
    """The legal columns where a piece of ``side`` (0: the mover, 1: the opponent) would make four in a row now."""
    board = np.asarray(raw[OBSERVATION_KEY]) != 0
    occupied = board[:, :, 0] | board[:, :, 1]
    return [int(c) for c in legal_columns(raw) if has_four(drop(board[:, :, side], occupied, int(c)))]


# ---- the opponents ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RandomLegal:
    """``random_legal``: a uniformly random legal column."""

    name: str = "random_legal"
    """The name in tables."""

    def choose(self, raw: RawObservation, rng: np.random.Generator) -> int:
        """A uniformly random legal column."""
        return int(rng.choice(legal_columns(raw)))


@dataclass(frozen=True)
class OneMoveLookahead:
    """``one_move_lookahead``: win now when it can; else block the opponent's win next move; else random legal."""

    name: str = "one_move_lookahead"
    """The name in tables."""

    def choose(self, raw: RawObservation, rng: np.random.Generator) -> int:
        """A winning column, else a blocking one, else a random legal one (ties broken at random)."""
        for side in (0, 1):
            columns = winning_columns(raw, side)
            if columns:
                return int(rng.choice(columns))
        return int(rng.choice(legal_columns(raw)))


OPPONENTS: Mapping[str, Player] = MappingProxyType({"random": RandomLegal(), "lookahead": OneMoveLookahead()})
"""The fixed opponents by their command-line names (read-only; the players are frozen)."""


# ---- a model --------------------------------------------------------------------------------------------------
def scene_codec() -> ObservationCodec:
    """The sims adapter's codec of ConnectFour's observations: what the ``sim:ConnectFour`` scene sends."""
    env = connect_four_env()
    try:
        return observation_codec(env.observation_space(FIRST), FIRST, connect_four.scene_game().grids)
    finally:
        env.close()


def encode(codec: ObservationCodec, raw: RawObservation) -> tuple[np.ndarray, np.ndarray]:
    """The model's inputs for one position: the scene's observation (float32, the grid ``(2, 6, 7)``) and the
    allowed mask (float32 ``(7,)``, 1 = legal), both made by ``codec`` as the scene makes them."""
    (observation,) = codec.observations(raw)
    legal = codec.legal_mask(raw)
    assert legal is not None, "ConnectFour's observations carry a legal-move mask"
    return np.asarray(observation, dtype=np.float32), legal.astype(np.float32)


class OnnxPolicy:
    """An exported ``ConnectFour`` model, played through onnxruntime: its deterministic action, masks applied."""

    def __init__(self, path: str | Path) -> None:
        import onnxruntime

        self.path = Path(path)
        """The model file."""
        if not self.path.is_file():
            raise FileNotFoundError(f"no ONNX model at {self.path}: pass the .onnx a ConnectFour run exported")
        self._session = onnxruntime.InferenceSession(str(self.path), providers=["CPUExecutionProvider"])
        self._codec = scene_codec()
        inputs = {i.name: i.shape for i in self._session.get_inputs()}
        outputs = {o.name for o in self._session.get_outputs()}
        shape = list(self._codec.sensors[0].shape)
        if (
            set(inputs) != {MODEL_INPUT, MASK_INPUT}
            or MODEL_OUTPUT not in outputs
            or list(inputs[MODEL_INPUT][1:]) != shape
        ):
            raise ValueError(
                f"{self.path} is not a ConnectFour policy without memory: it takes {inputs} and gives "
                f"{sorted(outputs)}; a ConnectFour model takes {MODEL_INPUT} [batch, {', '.join(map(str, shape))}] "
                f"and {MASK_INPUT} [batch, {COLUMNS}] and gives {MODEL_OUTPUT}"
            )

    @property
    def name(self) -> str:
        """The model file's name."""
        return self.path.name

    def choose(self, raw: RawObservation, rng: np.random.Generator) -> int:
        """The model's deterministic column for ``raw`` (``rng`` is unused: the argmax is played)."""
        observation, allowed = encode(self._codec, raw)
        (actions,) = self._session.run([MODEL_OUTPUT], {MODEL_INPUT: observation[None], MASK_INPUT: allowed[None]})
        column = int(np.asarray(actions).reshape(-1)[0])
        if not (0 <= column < COLUMNS and allowed[column] == 1.0):
            raise RuntimeError(
                f"{self.path} chose column {column}, which is masked (allowed: {allowed.tolist()}): the model "
                "ignores its action_masks input"
            )
        return column


# ---- games --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Record:
    """Wins, draws and losses of one player over some games."""

    wins: int = 0
    """Games won."""
    draws: int = 0
    """Games drawn."""
    losses: int = 0
    """Games lost."""

    @property
    def games(self) -> int:
        """Games played."""
        return self.wins + self.draws + self.losses

    @property
    def win_rate(self) -> float:
        """Wins per game (0 with no games)."""
        return self.wins / self.games if self.games else 0.0

    def add(self, outcome: int) -> Record:
        """This record with one more game: ``outcome`` +1 a win, 0 a draw, -1 a loss."""
        return Record(self.wins + (outcome > 0), self.draws + (outcome == 0), self.losses + (outcome < 0))

    def __add__(self, other: Record) -> Record:
        return Record(self.wins + other.wins, self.draws + other.draws, self.losses + other.losses)


@dataclass(frozen=True)
class Result:
    """How a policy did against an opponent, per colour and overall."""

    policy: str
    """The policy's name."""
    opponent: str
    """The opponent's name."""
    first: Record
    """The games where the policy moved first (``player_0``)."""
    second: Record
    """The games where the policy moved second (``player_1``)."""

    @property
    def overall(self) -> Record:
        """Every game."""
        return self.first + self.second


def play_game(players: Sequence[Player], rngs: Sequence[np.random.Generator], env: Any) -> int:
    """One game of ``players[0]`` (moving first) against ``players[1]`` on ``env`` (a connect_four_v3 AEC env,
    reset here), each drawing from its own generator; the outcome for the first player: +1, 0 or -1."""
    env.reset()
    outcome = 0
    for agent in env.agent_iter():
        raw, reward, terminated, truncated, _ = env.last()
        if terminated or truncated:
            if agent == FIRST:
                outcome = int(np.sign(reward))
            env.step(None)
            continue
        side = 0 if agent == FIRST else 1
        env.step(players[side].choose(raw, rngs[side]))
    return outcome


def evaluate(policy: Player, opponent: Player, games: int, seed: int) -> Result:
    """``games`` games of ``policy`` against ``opponent`` on PettingZoo's connect_four_v3, colours alternating (even
    games: the policy first; so half each way, the first colour one more when ``games`` is odd).

    The policy and the opponent each draw from their own generator, seeded from ``seed``.
    """
    if games < 1:
        raise ValueError(f"games must be at least 1, got {games}")
    policy_rng = np.random.default_rng([seed, 0])
    opponent_rng = np.random.default_rng([seed, 1])
    first, second = Record(), Record()
    env = connect_four_env()
    try:
        for game in range(games):
            if game % 2 == 0:
                first = first.add(play_game((policy, opponent), (policy_rng, opponent_rng), env))
            else:
                second = second.add(-play_game((opponent, policy), (opponent_rng, policy_rng), env))
    finally:
        env.close()
    return Result(policy.name, opponent.name, first, second)


# ---- tactics -------------------------------------------------------------------------------------------------
MIN_PLIES, MAX_PLIES = 4, 29
"""The random plies before a probed position (inclusive)."""


def random_positions(count: int, seed: int) -> list[RawObservation]:
    """``count`` positions, each after a random number (:data:`MIN_PLIES` to :data:`MAX_PLIES`) of random legal
    plies, from the side of the player to move; a game that ends before is drawn again."""
    rng = np.random.default_rng(seed)
    positions: list[RawObservation] = []
    env = connect_four_env()
    try:
        while len(positions) < count:
            env.reset(seed=int(rng.integers(1 << 30)))
            for _ in range(int(rng.integers(MIN_PLIES, MAX_PLIES + 1))):
                raw, _, terminated, truncated, _ = env.last()
                if terminated or truncated:
                    break
                env.step(int(rng.choice(legal_columns(raw))))
            raw, _, terminated, truncated, _ = env.last()
            if not (terminated or truncated):
                positions.append({key: np.array(value) for key, value in raw.items()})
    finally:
        env.close()
    return positions


@dataclass(frozen=True)
class Tactics:
    """How often a player made the move that one move of lookahead calls for."""

    player: str
    """The player's name."""
    wins_taken: float
    """Of the positions where the mover can win at once, the share where it did."""
    blocks_made: float
    """Of the positions where it cannot, but the opponent could win next move, the share where it blocked."""
    win_positions: int
    """Positions with an immediate win."""
    block_positions: int
    """Positions with a block to make (and no win)."""


def tactics(policy: Player | None, positions: Sequence[RawObservation], seed: int) -> Tactics:
    """``policy``'s immediate wins taken and blocks made over ``positions``; for None, what a uniformly random legal
    move scores on average (the chance level). ValueError when the positions hold no win or no block to make."""
    rng = np.random.default_rng(seed)
    won = blocked = 0.0
    win_positions = block_positions = 0
    for raw in positions:
        wins, threats = winning_columns(raw, 0), winning_columns(raw, 1)
        if not (wins or threats):
            continue
        good = wins or threats
        if policy is None:
            score = len(good) / len(legal_columns(raw))
        else:
            score = float(policy.choose(raw, rng) in good)
        if wins:
            win_positions, won = win_positions + 1, won + score
        else:
            block_positions, blocked = block_positions + 1, blocked + score
    if win_positions == 0 or block_positions == 0:
        raise ValueError(
            f"the {len(positions)} positions hold {win_positions} immediate wins and {block_positions} blocks to "
            "make: probe more positions"
        )
    name = "random legal (expected)" if policy is None else policy.name
    return Tactics(name, won / win_positions, blocked / block_positions, win_positions, block_positions)


def tactics_table(rows: Sequence[Tactics]) -> str:
    """A plain-text table of tactics probes."""
    header = ("player", "takes an immediate win", "blocks an immediate loss")
    lines = [header] + [
        (t.player, f"{t.wins_taken:.2f} of {t.win_positions}", f"{t.blocks_made:.2f} of {t.block_positions}")
        for t in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines]
    text.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(text)


# ---- the command line ------------------------------------------------------------------------------------------
def format_record(record: Record) -> str:
    """``W/D/L (win rate)``."""
    return f"{record.wins}/{record.draws}/{record.losses} ({record.win_rate:.2f})"


def table(results: Sequence[Result]) -> str:
    """A plain-text table of ``results``: wins/draws/losses and win rate moving first, second and overall."""
    header = ("policy", "opponent", "first W/D/L (rate)", "second W/D/L (rate)", "overall W/D/L (rate)")
    rows = [header] + [
        (r.policy, r.opponent, format_record(r.first), format_record(r.second), format_record(r.overall))
        for r in results
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    """The command line: ``evaluate [MODEL.onnx | --policy random|lookahead] [--games N] [--seed S]`` and
    ``tactics MODEL.onnx ... [--positions N] [--seed S]``."""
    top = argparse.ArgumentParser(prog=COMMAND, description="ConnectFour policies against fixed opponents.")
    commands = top.add_subparsers(dest="command", required=True)
    run = commands.add_parser("evaluate", help="play a model (or a fixed opponent) against both fixed opponents")
    run.add_argument("model", nargs="?", type=Path, help="the .onnx a ConnectFour run exported")
    run.add_argument(
        "--policy", choices=sorted(OPPONENTS), help="evaluate this fixed opponent instead of a model (a baseline)"
    )
    run.add_argument("--games", type=int, default=200, help="games per opponent, half each colour (default 200)")
    run.add_argument("--seed", type=int, default=0, help="seeds both sides' random choices (default 0)")
    probe = commands.add_parser("tactics", help="how often models take immediate wins and block immediate losses")
    probe.add_argument("models", nargs="+", type=Path, help="the .onnx files to probe")
    probe.add_argument("--positions", type=int, default=3000, help="random positions to draw (default 3000)")
    probe.add_argument("--seed", type=int, default=0, help="seeds the positions (default 0)")
    return top


def main(argv: Sequence[str] | None = None) -> None:
    """Runs the command line: ``evaluate`` prints the table of the policy against ``random_legal`` and
    ``one_move_lookahead``; ``tactics`` the probe of each model."""
    top = parser()
    options = top.parse_args(argv)
    if options.command == "tactics":
        _probe(top, options)
        return
    if (options.model is None) == (options.policy is None):
        top.error("evaluate needs exactly one of MODEL.onnx or --policy random|lookahead")
    if options.games < 1:
        top.error(f"--games must be at least 1, got {options.games}")
    try:
        policy: Player = OPPONENTS[options.policy] if options.policy else OnnxPolicy(options.model)
    except (FileNotFoundError, ValueError) as error:
        top.error(str(error))
    results = [evaluate(policy, opponent, options.games, options.seed) for opponent in OPPONENTS.values()]
    print(f"{options.games} games per opponent, seed {options.seed}")
    print(table(results))


def _probe(top: argparse.ArgumentParser, options: argparse.Namespace) -> None:
    """``tactics``: prints each model's probe and the chance level over the same positions."""
    if options.positions < 1:
        top.error(f"--positions must be at least 1, got {options.positions}")
    try:
        models = [OnnxPolicy(path) for path in options.models]
        positions = random_positions(options.positions, options.seed)
        rows = [tactics(model, positions, options.seed) for model in models] + [tactics(None, positions, 0)]
    except (FileNotFoundError, ValueError) as error:
        top.error(str(error))
    print(f"{len(positions)} positions after {MIN_PLIES}-{MAX_PLIES} random plies, seed {options.seed}")
    print(tactics_table(rows))


if __name__ == "__main__":
    main()
