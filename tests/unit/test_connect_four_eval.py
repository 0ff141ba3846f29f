"""bench/connect_four.py: the fixed opponents, the model's observation (the scene's own), evaluate(), an exported
model played through onnxruntime, and the command line."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from pettingzoo.classic.connect_four.connect_four import env as connect_four_env

from rayagents.configs.hyperparameters import PPOSettings
from rayagents.configs.network import EncoderType, NetworkSettings
from rayagents.configs.reward_signals import RewardSignalSettings, RewardSignalType
from rayagents.configs.trainer import TrainerSettings
from rayagents.learner.ppo import PPO
from rayagents.protocol.side_channels.environment_parameters import EnvironmentParametersReceiver
from rayagents.protocol.side_channels.stats import StatsRecorder
from rayagents.protocol.types import BehaviorSpec, DimensionProperty, ObservationSpec, ObservationType
from rayagents.sims.scene import AgentAction, AreaContext
from rayagents.sims.scenes import connect_four

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # bench/ is a folder of the repository, not of the installed package

from bench import connect_four as bench  # noqa: E402


def position(*rows: str) -> dict[str, np.ndarray]:
    """PettingZoo's observation of a board drawn from the mover's side, top row first: ``X`` the mover's pieces,
    ``O`` the opponent's, ``.`` empty (rows not drawn at the top are empty)."""
    drawn = ["." * bench.COLUMNS] * (bench.ROWS - len(rows)) + list(rows)
    grid = np.array([list(row) for row in drawn])
    assert grid.shape == (bench.ROWS, bench.COLUMNS)
    observation = np.stack([grid == "X", grid == "O"], axis=2).astype(np.int8)
    mask = (grid[0] == ".").astype(np.int8)
    return {"observation": observation, "action_mask": mask}


def rngs(n: int) -> list[np.random.Generator]:
    """``n`` differently seeded generators."""
    return [np.random.default_rng(seed) for seed in range(n)]


def test_lookahead_takes_an_immediate_win_before_blocking() -> None:
    raw = position(
        "X......",
        "X......",
        "X..OOO.",
    )  # the opponent threatens columns 2 and 6; the mover wins in column 0
    assert bench.winning_columns(raw, 0) == [0]
    assert {bench.OneMoveLookahead().choose(raw, rng) for rng in rngs(20)} == {0}
    diagonal = position(
        "..XO...",
        ".XOO...",
        "XOOX...",
    )  # the mover's diagonal up from the bottom left is completed by a piece landing on column 3's three
    assert bench.winning_columns(diagonal, 1) == []
    assert bench.winning_columns(diagonal, 0) == [3]
    assert {bench.OneMoveLookahead().choose(diagonal, rng) for rng in rngs(20)} == {3}


def test_lookahead_blocks_an_immediate_threat() -> None:
    raw = position(
        "..XOOO.",
        "X.OXXOX",
    )  # the opponent's three across on the second row wins in column 6, where a piece lands on the X below
    assert bench.winning_columns(raw, 0) == []
    assert bench.winning_columns(raw, 1) == [6]
    assert {bench.OneMoveLookahead().choose(raw, rng) for rng in rngs(20)} == {6}


def test_a_threat_above_an_empty_cell_is_not_one_yet() -> None:
    raw = position(
        "..XOOO.",
        "X.OXXO.",
    )  # a piece in column 6 falls to the bottom row: no four for either side, so the lookahead plays at random
    assert bench.winning_columns(raw, 0) == [] and bench.winning_columns(raw, 1) == []
    choices = {bench.OneMoveLookahead().choose(raw, rng) for rng in rngs(50)}
    assert len(choices) > 2 and choices <= set(range(7))


def test_four_in_a_row_in_every_direction() -> None:
    empty = np.zeros((bench.ROWS, bench.COLUMNS), bool)
    for cells in (
        [(5, 0), (5, 1), (5, 2), (5, 3)],
        [(2, 6), (3, 6), (4, 6), (5, 6)],
        [(2, 0), (3, 1), (4, 2), (5, 3)],
        [(5, 3), (4, 4), (3, 5), (2, 6)],
    ):
        pieces = empty.copy()
        for r, c in cells:
            pieces[r, c] = True
        assert bench.has_four(pieces)
        pieces[cells[1]] = False
        assert not bench.has_four(pieces)


def test_random_legal_never_plays_a_full_column() -> None:
    raw = position(
        "X.O.X.O",
        "O.X.O.X",
        "X.O.X.O",
        "O.X.O.X",
        "X.OXX.O",
        "O.XOO.X",
    )  # columns 1, 3 and 5 are open
    assert bench.legal_columns(raw).tolist() == [1, 3, 5]
    rng = np.random.default_rng(0)
    choices = [bench.RandomLegal().choose(raw, rng) for _ in range(300)]
    assert set(choices) == {1, 3, 5}
    only_one = position(*(["XOXOX.X"] * 6))
    assert {bench.RandomLegal().choose(only_one, rng) for _ in range(20)} == {5}


def test_the_models_observation_is_what_the_scene_sends() -> None:
    """The scene's area and a bare connect_four_v3 play the same moves; at every decision the scene's report equals
    the encoding of the bare env's observation, and both equal the board read by hand (channel 0 the mover's)."""
    codec = bench.scene_codec()
    area = connect_four.scene().make_area(
        AreaContext(0, 1, 0, EnvironmentParametersReceiver(), StatsRecorder())
    )
    twin = connect_four_env()
    twin.reset()
    rng = np.random.default_rng(3)
    reports = area.reset()
    decisions = 0
    try:
        while True:
            (report,) = [r for r in reports if not r.done]
            raw, _, terminated, _, _ = twin.last()
            assert not terminated and report.agent == twin.agent_selection
            observation, allowed = bench.encode(codec, raw)
            assert len(report.observations) == 1
            np.testing.assert_array_equal(np.asarray(report.observations[0], np.float32), observation)
            np.testing.assert_array_equal(report.action_mask, allowed == 0)
            board = np.array(twin.unwrapped.board).reshape(bench.ROWS, bench.COLUMNS)
            mover = 1 if twin.agent_selection == bench.FIRST else 2
            by_hand = np.stack([board == mover, board == 3 - mover]).astype(np.float32)  # (2, 6, 7)
            np.testing.assert_array_equal(observation, by_hand)
            np.testing.assert_array_equal(allowed, (board[0] == 0).astype(np.float32))
            decisions += 1
            column = bench.RandomLegal().choose(raw, rng)
            reports = area.step({report.agent: AgentAction(np.zeros(0, np.float32), np.array([column], np.int32))})
            twin.step(column)
            if any(r.done for r in reports):
                break
    finally:
        area.close()
        twin.close()
    assert decisions >= 7  # a game, with pieces of both sides on the board
    assert observation.shape == (2, 6, 7) and observation.dtype == np.float32


def test_lookahead_beats_random_clearly() -> None:
    result = bench.evaluate(bench.OneMoveLookahead(), bench.RandomLegal(), games=100, seed=0)
    assert result.overall.games == 100
    assert result.overall.win_rate > 0.7
    assert result.first.win_rate > 0.7 and result.second.win_rate > 0.7


class FirstMoveSpy:
    """A random player that notes, each game, whether it made the game's first move."""

    name = "spy"

    def __init__(self) -> None:
        self.moved_first: list[bool] = []

    def choose(self, raw: bench.RawObservation, rng: np.random.Generator) -> int:
        """A random legal column; notes the first move of each of its games."""
        pieces = np.asarray(raw["observation"]).sum()
        if pieces <= 1:
            self.moved_first.append(pieces == 0)
        return bench.RandomLegal().choose(raw, rng)


@pytest.mark.parametrize("games", [10, 7])
def test_evaluate_alternates_colours_and_counts_every_game(games: int) -> None:
    spy = FirstMoveSpy()
    result = bench.evaluate(spy, bench.RandomLegal(), games=games, seed=1)
    assert spy.moved_first == [game % 2 == 0 for game in range(games)]
    assert result.first.games == (games + 1) // 2 and result.second.games == games // 2
    assert result.overall.games == games
    overall = result.overall
    assert overall.wins + overall.draws + overall.losses == games
    assert overall.win_rate == pytest.approx(overall.wins / games)
    assert (result.policy, result.opponent) == ("spy", "random_legal")
    again = bench.evaluate(FirstMoveSpy(), bench.RandomLegal(), games=games, seed=1)
    assert again == result  # seeded


def test_random_against_random_is_symmetric_enough_and_seeded() -> None:
    a = bench.evaluate(bench.RandomLegal(), bench.RandomLegal(), games=60, seed=0)
    b = bench.evaluate(bench.RandomLegal(), bench.RandomLegal(), games=60, seed=0)
    assert a == b
    assert 0.25 < a.overall.win_rate < 0.75


def exported_model(path: Path, observation_size: int | None = None) -> Path:
    """An untrained PPO policy (match3 encoder) for the ConnectFour scene's behavior (or, given ``observation_size``,
    for one that senses that many floats), exported as the trainer exports it."""
    behavior = connect_four.scene().behaviors[0]
    (sensor,) = behavior.sensors
    shape = sensor.shape if observation_size is None else (observation_size,)
    equivariant = DimensionProperty.TRANSLATIONAL_EQUIVARIANCE
    properties = (DimensionProperty.NONE, equivariant, equivariant) if len(shape) == 3 else (DimensionProperty.NONE,)
    spec = BehaviorSpec(
        (ObservationSpec(shape, properties, ObservationType.DEFAULT, sensor.name),), behavior.action_spec
    )
    settings = TrainerSettings(
        hyperparameters=PPOSettings(),
        network_settings=NetworkSettings(hidden_units=16, num_layers=1, vis_encode_type=EncoderType.MATCH3),
        reward_signals={RewardSignalType.EXTRINSIC: RewardSignalSettings()},
    )
    return PPO(spec, settings, seed=0).export(path)


def test_an_exported_model_plays_with_its_masks(tmp_path: Path) -> None:
    policy = bench.OnnxPolicy(exported_model(tmp_path / "ConnectFour.onnx"))
    assert policy.name == "ConnectFour.onnx"
    result = bench.evaluate(policy, bench.RandomLegal(), games=4, seed=0)
    assert (result.first.games, result.second.games, result.overall.games) == (2, 2, 4)
    only_one = position(*(["XOXOX.X"] * 5), "XOXOX.X")
    only_one["action_mask"] = np.array([0, 0, 0, 0, 0, 1, 0], np.int8)
    assert policy.choose(only_one, np.random.default_rng(0)) == 5
    deterministic = {policy.choose(position("...X...", "..OXO.."), rng) for rng in rngs(5)}
    assert len(deterministic) == 1


def test_a_model_that_is_not_a_connect_four_policy_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no ONNX model"):
        bench.OnnxPolicy(tmp_path / "missing.onnx")
    with pytest.raises(ValueError, match="not a ConnectFour policy"):
        bench.OnnxPolicy(exported_model(tmp_path / "Other.onnx", observation_size=5))


def test_command_line_prints_both_opponents(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bench.main(["evaluate", "--policy", "lookahead", "--games", "4", "--seed", "0"])
    out = capsys.readouterr().out
    assert "4 games per opponent, seed 0" in out
    assert "random_legal" in out and out.count("one_move_lookahead") == 3  # the policy twice
    model = exported_model(tmp_path / "ConnectFour.onnx")
    bench.main(["evaluate", str(model), "--games", "2"])
    assert capsys.readouterr().out.count("ConnectFour.onnx") == 2
    with pytest.raises(SystemExit):
        bench.main(["evaluate", str(model), "--policy", "random"])
    with pytest.raises(SystemExit):
        bench.main(["evaluate"])


def test_probe_positions_are_seeded_games_in_progress() -> None:
    positions = bench.random_positions(50, seed=3)
    again = bench.random_positions(50, seed=3)
    assert len(positions) == 50
    assert all(np.array_equal(a["observation"], b["observation"]) for a, b in zip(positions, again))
    for raw in positions:
        pieces = raw["observation"].astype(bool)
        mover, opponent = int(pieces[:, :, 0].sum()), int(pieces[:, :, 1].sum())
        assert opponent - mover in (0, 1)  # the mover has as many pieces as the opponent, or one fewer
        assert bench.MIN_PLIES <= mover + opponent <= bench.MAX_PLIES
        assert not bench.has_four(pieces[:, :, 0]) and not bench.has_four(pieces[:, :, 1])


def test_the_lookahead_takes_every_win_and_makes_every_block_and_chance_is_the_legal_share() -> None:
    positions = bench.random_positions(400, seed=0)
    lookahead = bench.tactics(bench.OneMoveLookahead(), positions, seed=0)
    assert (lookahead.wins_taken, lookahead.blocks_made) == (1.0, 1.0)
    assert lookahead.win_positions > 20 and lookahead.block_positions > 20
    chance = bench.tactics(None, positions, seed=0)
    assert (chance.win_positions, chance.block_positions) == (lookahead.win_positions, lookahead.block_positions)
    assert 0.1 < chance.wins_taken < 0.35 and 0.1 < chance.blocks_made < 0.35
    sampled = bench.tactics(bench.RandomLegal(), positions, seed=0)
    assert abs(sampled.wins_taken - chance.wins_taken) < 0.12 and abs(sampled.blocks_made - chance.blocks_made) < 0.12
    with pytest.raises(ValueError, match="probe more positions"):
        bench.tactics(None, positions[:1], seed=0)


def test_command_line_probes_models_beside_chance(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    model = exported_model(tmp_path / "ConnectFour.onnx")
    bench.main(["tactics", str(model), "--positions", "300", "--seed", "1"])
    out = capsys.readouterr().out
    assert "300 positions after 4-29 random plies, seed 1" in out
    assert "ConnectFour.onnx" in out and "random legal (expected)" in out
    with pytest.raises(SystemExit):
        bench.main(["tactics", str(tmp_path / "missing.onnx")])
