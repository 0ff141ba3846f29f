"""The PettingZoo scenes of the simulation host over the real wire: builds launched by ``UnityEnvironment``.

SimpleTag (two behaviors), ConnectFour (two teams taking turns, legal-move masks, a whole game), SimpleSpread
(a cooperative group per area with group rewards) and a ``pettingzoo:<module>`` scene (TicTacToe).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pytest

from rayagents.actors.environment import UnityEnvironment
from rayagents.protocol.side_channels import SideChannel, StatsSideChannel
from rayagents.protocol.types import ActionTuple, DecisionSteps
from rayagents.sims.build import write_build

PREDATOR = "Predator?team=0"
PREY = "Prey?team=0"
TEAM0 = "ConnectFour?team=0"
TEAM1 = "ConnectFour?team=1"
SPREAD = "SimpleSpread?team=0"
TIMEOUT_WAIT = 20
"""Seconds the trainer end waits for the player (its first answer includes importing the game)."""


def launch(
    tmp_path: Path, scene: str, *, num_areas: int = 1, seed: int = 0, side_channels: Sequence[SideChannel] = ()
) -> UnityEnvironment:
    """Build ``scene`` into ``tmp_path`` and launch it."""
    executable = write_build(scene, tmp_path / "build")
    return UnityEnvironment(
        str(executable),
        num_areas=num_areas,
        seed=seed,
        side_channels=side_channels,
        timeout_wait=TIMEOUT_WAIT,
        log_folder=str(tmp_path / "logs"),
    )


def masked_choice(decisions: DecisionSteps, rng: np.random.Generator) -> ActionTuple:
    """One legal discrete action (branch 0) per deciding agent, chosen at random from its mask."""
    mask = decisions.action_mask
    assert mask is not None, "the game sent no action mask"
    choices = [int(rng.choice(np.flatnonzero(~mask[0][row]))) for row in range(len(decisions))]
    return ActionTuple(discrete=np.array(choices, dtype=np.int32).reshape(-1, 1))


def test_simple_tag_has_two_behaviors_and_episodes_cut_off_at_25_steps(tmp_path: Path) -> None:
    stats = StatsSideChannel()
    env = launch(tmp_path, "SimpleTag", num_areas=2, seed=5, side_channels=[stats])
    try:
        env.reset()
        assert set(env.behavior_specs) == {PREDATOR, PREY}
        assert env.behavior_specs[PREDATOR].observation_specs[0].shape == (16,)
        assert env.behavior_specs[PREY].observation_specs[0].shape == (14,)
        for behavior in (PREDATOR, PREY):
            assert env.behavior_specs[behavior].action_spec.discrete_branches == (5,)
        assert len(env.get_steps(PREDATOR)[0]) == 6 and len(env.get_steps(PREY)[0]) == 2
        predators = set(env.get_steps(PREDATOR)[0].agent_id)
        rng = np.random.default_rng(0)
        for step in range(1, 26):
            for behavior in (PREDATOR, PREY):
                decisions, _ = env.get_steps(behavior)
                env.set_actions(behavior, env.behavior_specs[behavior].action_spec.random_action(len(decisions), rng))
            env.step()
            for behavior, count in ((PREDATOR, 6), (PREY, 2)):
                decisions, terminals = env.get_steps(behavior)
                assert len(decisions) == count  # a new episode starts in the step the last one ends
                assert len(terminals) == (count if step == 25 else 0)
        _, terminals = env.get_steps(PREDATOR)
        assert set(terminals.agent_id) == predators and terminals.interrupted.all()
        assert set(env.get_steps(PREDATOR)[0].agent_id) == predators  # ids are stable across episodes
        lengths = stats.get_and_reset_stats()["SimpleTag/Episode Length"]
        assert [value for value, _ in lengths] == [25.0, 25.0]
    finally:
        env.close()


def test_connect_four_turns_masks_and_a_whole_game(tmp_path: Path) -> None:
    stats = StatsSideChannel()
    env = launch(tmp_path, "ConnectFour", seed=1, side_channels=[stats])
    try:
        env.reset()
        assert set(env.behavior_specs) == {TEAM0}  # the second team's spec comes with its first decision
        spec = env.behavior_specs[TEAM0]
        assert spec.observation_specs[0].shape == (2, 6, 7)  # the board as a grid sensor
        assert spec.action_spec.discrete_branches == (7,)
        rng = np.random.default_rng(4)
        movers: list[str] = []
        players: dict[str, int] = {}
        ended: dict[str, tuple[float, bool]] = {}
        for move in range(42):
            deciding = [b for b in env.behavior_specs if len(env.get_steps(b)[0]) > 0]
            assert len(deciding) == 1, f"move {move}: {deciding} decide; only the player to move may"
            behavior = deciding[0]
            decisions, _ = env.get_steps(behavior)
            assert len(decisions) == 1
            players.setdefault(behavior, int(decisions.agent_id[0]))
            assert int(decisions.agent_id[0]) == players[behavior]
            movers.append(behavior)
            column_zero_full = move >= 6
            assert bool(decisions.action_mask[0][0, 0]) == column_zero_full
            if move < 6:  # the players fill column 0 in turn (no four in a row)
                action = ActionTuple(discrete=np.zeros((1, 1), dtype=np.int32))
            else:
                action = masked_choice(decisions, rng)
            env.set_actions(behavior, action)
            env.step()
            for team in env.behavior_specs:
                _, terminals = env.get_steps(team)
                for agent_id in terminals.agent_id:
                    ended[team] = (float(terminals[agent_id].reward), bool(terminals[agent_id].interrupted))
            if ended:
                break
        assert movers[:4] == [TEAM0, TEAM1, TEAM0, TEAM1], "the teams must take turns, team 0 first"
        assert all(a != b for a, b in zip(movers, movers[1:]))
        assert set(ended) == {TEAM0, TEAM1}, "both players must end the game together"
        assert sorted(reward for reward, _ in ended.values()) == [-1.0, 1.0]
        assert not any(interrupted for _, interrupted in ended.values())
        winner = TEAM0 if ended[TEAM0][0] > 0 else TEAM1
        assert movers[-1] == winner, "the player who made the last move won"
        decisions, _ = env.get_steps(TEAM0)
        assert len(decisions) == 1 and not decisions.action_mask[0].any()  # the next game started
        assert int(decisions.agent_id[0]) == players[TEAM0]
        lengths = stats.get_and_reset_stats()["ConnectFour/Episode Length"]
        assert [value for value, _ in lengths] == [float(len(movers))]
    finally:
        env.close()
    assert "disabled action" not in (tmp_path / "logs" / "Player-0.log").read_text()


def test_simple_spread_groups_per_area_with_group_rewards(tmp_path: Path) -> None:
    env = launch(tmp_path, "SimpleSpread", num_areas=2, seed=2)
    try:
        env.reset()
        decisions, _ = env.get_steps(SPREAD)
        assert len(decisions) == 6
        first_ids = decisions.group_id.copy()
        groups: dict[int, list[int]] = {}
        for agent_id, group_id in zip(decisions.agent_id, decisions.group_id):
            groups.setdefault(int(group_id), []).append(int(agent_id))
        assert len(groups) == 2 and all(g > 0 for g in groups), f"expected one group per area: {groups}"
        assert all(len(members) == 3 for members in groups.values())
        rng = np.random.default_rng(0)
        spec = env.behavior_specs[SPREAD]
        for _ in range(3):
            env.set_actions(SPREAD, spec.action_spec.random_action(len(decisions), rng))
            env.step()
            decisions, _ = env.get_steps(SPREAD)
            np.testing.assert_array_equal(decisions.group_id, first_ids)
            assert np.all(decisions.group_reward < 0), "the group reward is minus the landmarks' distances"
            for members in groups.values():  # the agents of one group share its reward
                rows = [decisions.agent_id_to_index[a] for a in members]
                assert np.ptp(decisions.group_reward[rows]) == 0
            assert np.all(decisions.reward <= 0), "an agent's own reward is its collision penalty"
    finally:
        env.close()


@pytest.mark.filterwarnings("ignore:The old environment creation API:DeprecationWarning")
def test_a_pettingzoo_module_scene_tictactoe(tmp_path: Path) -> None:
    env = launch(tmp_path, "pettingzoo:pettingzoo.classic.tictactoe_v3", seed=0)
    behavior = "player?team=0"
    try:
        env.reset()
        assert set(env.behavior_specs) == {behavior}
        spec = env.behavior_specs[behavior]
        assert spec.observation_specs[0].shape == (18,) and spec.action_spec.discrete_branches == (9,)
        rng = np.random.default_rng(3)
        seen: set[int] = set()
        for move in range(9):
            decisions, _ = env.get_steps(behavior)
            assert len(decisions) == 1  # one player moves at a time
            seen.add(int(decisions.agent_id[0]))
            assert int(decisions.action_mask[0].sum()) == move  # one more square taken each move
            env.set_actions(behavior, masked_choice(decisions, rng))
            env.step()
            _, terminals = env.get_steps(behavior)
            if len(terminals):
                break
        assert len(seen) == 2
        assert len(terminals) == 2 and set(terminals.agent_id) == seen
        assert sorted(terminals.reward.tolist()) in ([-1.0, 1.0], [0.0, 0.0])
    finally:
        env.close()


@pytest.mark.parametrize("scene", ["pettingzoo:no.such.module", "pettingzoo:json"])
def test_a_bad_module_scene_is_refused_when_built(tmp_path: Path, scene: str) -> None:
    with pytest.raises((ModuleNotFoundError, ValueError), match="no.such.module|parallel_env"):
        write_build(scene, tmp_path)
