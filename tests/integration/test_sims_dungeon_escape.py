"""The DungeonEscape scene over the real wire: a ``rayagents-sim`` player process reached by ``UnityEnvironment``
(real gRPC), whose agents leave their group's episode at different times. The agent that slays the dragon arrives
as a TerminalStep of its own while its groupmates keep requesting decisions; the escape ends the episode of the
remaining agents with the group reward; a group that never moves is cut off at the time limit."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from processes import pid_alive
from rayagents.actors.environment import UnityEnvironment
from rayagents.protocol.side_channels import StatsSideChannel
from rayagents.protocol.types import ActionTuple
from rayagents.sims.scenes.dungeon_escape import (
    DRAGON,
    DRAGON_FLAG,
    LEFT,
    LENGTH,
    MAX_STEPS,
    OBSERVATION_SIZE,
    STAY,
    heuristic_move,
)

BEHAVIOR = "DungeonEscape?team=0"
AREAS = 3
"""Group 1 waits for the slaying before walking to the door (the slayer always leaves first), group 2 plays the
scene's heuristic (the slaying and the escape often fall in one step), group 3 never moves (cut off)."""
EXCHANGES = 2 * MAX_STEPS + 5


def move(group: int, observation: np.ndarray) -> int:
    """The action of an agent of ``group`` (see AREAS)."""
    if group == 3:
        return STAY
    chosen = heuristic_move(observation)
    if group == 1 and chosen == LEFT and observation[DRAGON_FLAG] == 1.0:
        return STAY  # stay off the door until the dragon is slain
    return chosen


def test_agents_leave_their_group_at_different_times(tmp_path: Path) -> None:
    stats = StatsSideChannel()
    env = UnityEnvironment(
        "sim:DungeonEscape", seed=3, num_areas=AREAS, timeout_wait=30, side_channels=[stats], log_folder=str(tmp_path)
    )
    try:
        assert env.pid is not None
        env.reset()
        spec = env.behavior_specs[BEHAVIOR]
        (observation_spec,) = spec.observation_specs
        assert observation_spec.shape == (OBSERVATION_SIZE,) and spec.action_spec.discrete_branches == (3,)

        decisions, terminals = env.get_steps(BEHAVIOR)
        assert len(decisions) == 3 * AREAS and len(terminals) == 0
        group_of = {int(a): int(g) for a, g in zip(decisions.agent_id, decisions.group_id)}
        members: dict[int, set[int]] = {}
        for agent, group in group_of.items():
            members.setdefault(group, set()).add(agent)
        assert sorted(members) == list(range(1, AREAS + 1)) and all(len(m) == 3 for m in members.values())
        gone: dict[int, set[int]] = {group: set() for group in members}  # each group's slayer, this episode
        seen = {"left early": 0, "escaped": 0, "cut off": 0, "slain and escaped in one step": 0}

        for exchange in range(EXCHANGES):
            actions = [move(group_of[int(a)], o) for a, o in zip(decisions.agent_id, decisions.obs[0])]
            env.set_actions(BEHAVIOR, ActionTuple(discrete=np.array(actions, np.int32).reshape(-1, 1)))
            env.step()
            decisions, terminals = env.get_steps(BEHAVIOR)
            assert {int(a): int(g) for a, g in zip(decisions.agent_id, decisions.group_id)}.items() <= group_of.items()
            assert {int(a): int(g) for a, g in zip(terminals.agent_id, terminals.group_id)}.items() <= group_of.items()
            assert not np.any(decisions.reward) and not np.any(terminals.reward)  # only the group reward pays
            for group, agents in members.items():
                deciding = {int(a) for a in decisions.agent_id if group_of[int(a)] == group}
                ended = {int(a) for a in terminals.agent_id if group_of[int(a)] == group}
                assert not (gone[group] & ended), "a slayer is reported again in its episode"
                slayers, escaped, cut = set(), set(), set()
                for agent in ended:
                    row = terminals.agent_id_to_index[agent]
                    final = terminals.obs[0][row]
                    if terminals.interrupted[row]:
                        assert terminals.group_reward[row] == 0.0
                        cut.add(agent)
                    elif terminals.group_reward[row] == 1.0:
                        assert final[DRAGON_FLAG] == 0.0
                        escaped.add(agent)
                    else:  # the slayer: on the dragon's cell, which is dead, with no group reward
                        assert terminals.group_reward[row] == 0.0
                        assert final[DRAGON] == 1.0 and final[DRAGON_FLAG] == 0.0, final
                        slayers.add(agent)
                assert len(slayers) <= 1 and not (escaped and cut)
                remaining = agents - gone[group] - slayers
                if escaped or cut:  # the episode's end: every remaining agent, then all three start again
                    assert (escaped or cut) == remaining, (exchange, group, escaped, cut, remaining)
                    assert deciding == agents
                    for agent in agents:
                        row = decisions.agent_id_to_index[agent]
                        assert decisions.obs[0][row][DRAGON_FLAG] == 1.0 and decisions.group_reward[row] == 0.0
                    seen["escaped" if escaped else "cut off"] += 1
                    seen["slain and escaped in one step"] += len(slayers)
                    gone[group] = set()
                    continue
                assert deciding == remaining, (exchange, group, deciding, remaining)  # the groupmates go on
                for agent in deciding:
                    row = decisions.agent_id_to_index[agent]
                    assert decisions.group_reward[row] == 0.0
                    assert decisions.obs[0][row][:LENGTH].sum() == 1.0
                if slayers:
                    assert ended == slayers  # a TerminalStep for that agent alone
                    seen["left early"] += 1
                    gone[group] |= slayers

        assert seen["left early"] >= 3 and seen["escaped"] >= 6 and seen["slain and escaped in one step"] >= 1, seen
        assert seen["cut off"] == 2, seen  # group 3 at steps 40 and 80
        recorded = stats.get_and_reset_stats()
        escapes = [value for value, _ in recorded["DungeonEscape/Escaped"]]
        assert escapes.count(0.0) == 2 and escapes.count(1.0) == seen["escaped"]
        assert float(MAX_STEPS) in [value for value, _ in recorded["DungeonEscape/Episode Length"]]
    finally:
        pid = env.pid
        env.close()
    assert pid is not None and not pid_alive(pid)
