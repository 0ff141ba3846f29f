"""TrajectoryBuilder on hand-built steps: the cases a sim does not produce on demand, checked value by value."""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest

from rayagents.actors.trajectories import TrajectoryBuilder, global_agent_id
from rayagents.protocol.side_channels.stats import StatsAggregationMethod
from rayagents.protocol.trajectories import LOG_PROBS, ActionTaken, Trajectory, TrajectoryBatch
from rayagents.protocol.types import ActionTuple, DecisionSteps, TerminalSteps

BEHAVIOR = "Ball?team=0"
BRANCHES = (3, 2)


def decisions(
    ids: list[int], obs: list[float], rewards: list[float], masks: list[list[bool]] | None = None
) -> DecisionSteps:
    """Agents ``ids`` request a decision; agent i observes ``[obs[i], -obs[i]]``; flat masks split per branch."""
    n = len(ids)
    flat = None if masks is None else np.array(masks, dtype=bool).reshape(n, sum(BRANCHES))
    return DecisionSteps(
        obs=[np.array([[o, -o] for o in obs], dtype=np.float32).reshape(n, 2)],
        reward=np.array(rewards, dtype=np.float32),
        agent_id=np.array(ids, dtype=np.int32),
        action_mask=None if flat is None else [flat[:, :3], flat[:, 3:]],
        group_id=np.zeros(n, dtype=np.int32),
        group_reward=np.zeros(n, dtype=np.float32),
    )


def terminals(ids: list[int], obs: list[float], rewards: list[float], interrupted: list[bool]) -> TerminalSteps:
    """Agents ``ids`` ended their episode with final observation ``[obs[i], -obs[i]]``."""
    n = len(ids)
    return TerminalSteps(
        obs=[np.array([[o, -o] for o in obs], dtype=np.float32).reshape(n, 2)],
        reward=np.array(rewards, dtype=np.float32),
        interrupted=np.array(interrupted, dtype=bool),
        agent_id=np.array(ids, dtype=np.int32),
        group_id=np.zeros(n, dtype=np.int32),
        group_reward=np.zeros(n, dtype=np.float32),
    )


NO_TERMINALS = terminals([], [], [], [])


def taken(actions: list[int], version: int = 0) -> ActionTaken:
    """One continuous action (= the discrete action / 10) and two branches (action % 3, action % 2) per agent;
    extras: log prob = -action, and a (2,)-shaped "memory" of [action, version]."""
    n = len(actions)
    continuous = np.array(actions, dtype=np.float32).reshape(n, 1) / 10
    discrete = np.array([[a % 3, a % 2] for a in actions], dtype=np.int32).reshape(n, 2)
    return ActionTaken(
        env_actions=ActionTuple(continuous=continuous, discrete=discrete),
        continuous=continuous,
        discrete=discrete,
        policy_version=version,
        extras={
            LOG_PROBS: -np.array(actions, dtype=np.float32),
            "memory": np.array([[a, version] for a in actions], dtype=np.float32).reshape(n, 2),
        },
    )


def test_an_agent_both_terminal_and_deciding_ends_one_trajectory_and_starts_the_next() -> None:
    builder = TrajectoryBuilder(BEHAVIOR, env_actor=3, time_horizon=10)
    assert builder.add(decisions([7], [0.0], [0.0]), NO_TERMINALS, taken([1])) == []
    assert builder.add(decisions([7], [1.0], [1.0]), NO_TERMINALS, taken([2])) == []
    # Episode 1 ends with reward 5 on observation 2; episode 2 starts on observation 10 (its reward 0.5 belongs
    # to no action) in the same exchange.
    ended = builder.add(decisions([7], [10.0], [0.5]), terminals([7], [2.0], [5.0], [False]), taken([4]))
    assert len(ended) == 1
    trajectory = ended[0]
    assert trajectory.agent_id == global_agent_id(3, 7) == "agent_3-7"
    assert trajectory.behavior == BEHAVIOR
    assert trajectory.done and not trajectory.interrupted
    np.testing.assert_array_equal(trajectory.obs[0], [[0.0, -0.0], [1.0, -1.0]])
    np.testing.assert_array_equal(trajectory.next_obs[0], [2.0, -2.0])
    np.testing.assert_array_equal(trajectory.rewards, [1.0, 5.0])
    np.testing.assert_array_equal(trajectory.continuous_actions, np.array([[0.1], [0.2]], dtype=np.float32))
    np.testing.assert_array_equal(trajectory.discrete_actions, [[1, 1], [2, 0]])
    np.testing.assert_array_equal(trajectory.extra(LOG_PROBS), [-1.0, -2.0])
    np.testing.assert_array_equal(trajectory.extras["memory"], [[1.0, 0.0], [2.0, 0.0]])
    np.testing.assert_array_equal(trajectory.versions, [0, 0])
    assert trajectory.action_mask is None and trajectory.group_id == 0 and trajectory.group_rewards is None
    episodes = builder.take_episodes()
    np.testing.assert_array_equal(episodes.returns, [6.0])
    np.testing.assert_array_equal(episodes.lengths, [1])  # ML-Agents' Episode Length: the terminal step uncounted
    assert len(builder.take_episodes()) == 0

    # The new episode's first experience is the decision on observation 10, interrupted after one more.
    assert builder.add(decisions([7], [11.0], [3.0]), NO_TERMINALS, taken([5])) == []
    (second,) = builder.add(decisions([], [], []), terminals([7], [12.0], [-1.0], [True]), None)
    assert second.done and second.interrupted and second.bootstraps()
    np.testing.assert_array_equal(second.obs[0][:, 0], [10.0, 11.0])
    np.testing.assert_array_equal(second.rewards, [3.0, -1.0])
    np.testing.assert_array_equal(builder.take_episodes().returns, [2.0])
    assert builder.buffered_experiences == 0 and builder.awaiting_decisions == 0


def test_time_horizon_cuts_with_next_obs_the_next_trajectorys_first_obs() -> None:
    builder = TrajectoryBuilder(BEHAVIOR, env_actor=0, time_horizon=2)
    emitted: list[Trajectory] = []
    for step in range(7):
        emitted += builder.add(decisions([1, 2], [step, 100 + step], [step, -step]), NO_TERMINALS, taken([step, step]))
    # 7 decisions per agent: 6 experiences completed, cut into 3 trajectories of 2 each; the 7th awaits.
    assert [(t.agent_id, len(t)) for t in emitted] == [("agent_0-1", 2), ("agent_0-2", 2)] * 3
    assert builder.awaiting_decisions == 2 and builder.buffered_experiences == 0
    for agent in ("agent_0-1", "agent_0-2"):
        mine = [t for t in emitted if t.agent_id == agent]
        assert not any(t.done for t in mine)
        for before, after in zip(mine, mine[1:]):
            np.testing.assert_array_equal(before.next_obs[0], after.obs[0][0])
    np.testing.assert_array_equal(emitted[0].rewards, [1.0, 2.0])
    np.testing.assert_array_equal(emitted[1].rewards, [-1.0, -2.0])


def test_masks_are_the_ones_each_agent_saw_flat_over_branches() -> None:
    builder = TrajectoryBuilder(BEHAVIOR, env_actor=0, time_horizon=5)
    first = [[False, True, False, False, True]]
    second = [[True, True, False, False, False]]
    builder.add(decisions([4], [0.0], [0.0], first), NO_TERMINALS, taken([2]))
    builder.add(decisions([4], [1.0], [0.0], second), NO_TERMINALS, taken([3]))
    (trajectory,) = builder.add(decisions([], [], []), terminals([4], [2.0], [1.0], [False]), None)
    assert trajectory.action_mask is not None and trajectory.action_mask.dtype == bool
    np.testing.assert_array_equal(trajectory.action_mask, first + second)


def test_an_agent_absent_from_a_step_keeps_its_decision_and_each_step_its_version() -> None:
    builder = TrajectoryBuilder(BEHAVIOR, env_actor=1, time_horizon=3)
    builder.add(decisions([1, 2], [0.0, 0.0], [0.0, 0.0]), NO_TERMINALS, taken([1, 1], version=4))
    builder.add(decisions([1], [1.0], [1.0]), NO_TERMINALS, taken([1], version=5))  # agent 2 does not decide
    builder.add(decisions([1, 2], [2.0, 2.0], [1.0, 7.0]), NO_TERMINALS, taken([1, 1], version=5))
    (one,) = builder.add(decisions([1], [3.0], [1.0]), NO_TERMINALS, taken([1], version=6))
    assert one.agent_id == "agent_1-1" and len(one) == 3 and int(one.versions.min()) == 4
    np.testing.assert_array_equal(one.versions, [4, 5, 5])
    (two,) = builder.add(decisions([], [], []), terminals([2], [3.0], [0.0], [False]), None)
    np.testing.assert_array_equal(two.rewards, [7.0, 0.0])
    np.testing.assert_array_equal(two.obs[0][:, 0], [0.0, 2.0])
    np.testing.assert_array_equal(two.versions, [4, 5])
    np.testing.assert_array_equal(two.extras["memory"][:, 1], [4.0, 5.0])


def test_drop_partial_forgets_everything_unfinished() -> None:
    builder = TrajectoryBuilder(BEHAVIOR, env_actor=0, time_horizon=10)
    builder.add(decisions([1, 2], [0.0, 0.0], [0.0, 0.0]), NO_TERMINALS, taken([1, 1]))
    builder.add(decisions([1, 2], [1.0, 1.0], [1.0, 1.0]), NO_TERMINALS, taken([1, 1]))
    assert builder.buffered_experiences == 2 and builder.awaiting_decisions == 2
    builder.drop_partial()
    assert builder.buffered_experiences == 0 and builder.awaiting_decisions == 0
    # An agent ending an episode the builder no longer knows yields nothing, and records no episode.
    assert builder.add(decisions([2], [5.0], [0.0]), terminals([1], [2.0], [1.0], [False]), taken([1])) == []
    assert len(builder.take_episodes()) == 0


def test_actions_must_cover_the_deciding_agents() -> None:
    builder = TrajectoryBuilder(BEHAVIOR, env_actor=0, time_horizon=10)
    with pytest.raises(ValueError, match="2 agents of behavior 'Ball\\?team=0' requested a decision"):
        builder.add(decisions([1, 2], [0.0, 0.0], [0.0, 0.0]), NO_TERMINALS, None)
    with pytest.raises(ValueError, match="for 1 agents, but 2 agents requested"):
        builder.add(decisions([1, 2], [0.0, 0.0], [0.0, 0.0]), NO_TERMINALS, taken([1]))
    with pytest.raises(ValueError, match="time_horizon"):
        TrajectoryBuilder(BEHAVIOR, env_actor=0, time_horizon=0)


def test_a_batch_survives_pickling() -> None:
    builder = TrajectoryBuilder(BEHAVIOR, env_actor=2, time_horizon=10)
    builder.add(decisions([1], [0.0], [0.0], [[False] * 5]), NO_TERMINALS, taken([1], version=9))
    trajectories = builder.add(decisions([], [], []), terminals([1], [1.0], [2.0], [False]), None)
    batch = TrajectoryBatch(
        env_actor=2,
        trajectories=tuple(trajectories),
        episodes=(builder.take_episodes(),),
        player_stats={"Ball/Score": ((1.5, StatsAggregationMethod.AVERAGE),)},
    )
    copy = pickle.loads(pickle.dumps(batch))
    assert copy.num_steps == 1 and copy.env_actor == 2
    np.testing.assert_array_equal(copy.of_behavior(BEHAVIOR)[0].versions, [9])
    np.testing.assert_array_equal(copy.trajectories[0].rewards, [2.0])
    np.testing.assert_array_equal(copy.episodes[0].returns, [2.0])
    assert copy.player_stats["Ball/Score"] == ((1.5, StatsAggregationMethod.AVERAGE),)


def test_new_weights_mid_trajectory_cut_nothing() -> None:
    builder = TrajectoryBuilder(BEHAVIOR, env_actor=0, time_horizon=4)
    emitted = []
    for step, version in enumerate([0, 0, 1, 1, 2]):  # new weights arrive twice while the agent plays
        emitted += builder.add(decisions([1], [step], [1.0]), NO_TERMINALS, taken([step], version=version))
    (cut,) = emitted  # cut at time_horizon only
    assert len(cut) == 4 and not cut.done
    np.testing.assert_array_equal(cut.versions, [0, 0, 1, 1])
    np.testing.assert_array_equal(cut.next_obs[0], [4.0, -4.0])
    (last,) = builder.add(decisions([], [], []), terminals([1], [9.0], [5.0], [False]), None)
    np.testing.assert_array_equal(last.versions, [2])
    assert builder.take_episodes().returns.tolist() == [1.0 * 4 + 5.0]


def test_group_ids_and_group_rewards_are_kept() -> None:
    builder = TrajectoryBuilder(BEHAVIOR, env_actor=0, time_horizon=10)
    grouped = dataclasses.replace(
        decisions([1], [0.0], [0.0]), group_id=np.array([3], np.int32), group_reward=np.array([0.0], np.float32)
    )
    builder.add(grouped, NO_TERMINALS, taken([1]))
    second = dataclasses.replace(
        decisions([1], [1.0], [1.0]), group_id=np.array([3], np.int32), group_reward=np.array([0.5], np.float32)
    )
    builder.add(second, NO_TERMINALS, taken([2]))
    end = dataclasses.replace(
        terminals([1], [2.0], [1.0], [False]), group_id=np.array([3], np.int32), group_reward=np.array([2.0], np.float32)
    )
    (trajectory,) = builder.add(decisions([], [], []), end, None)
    assert trajectory.group_id == 3
    assert trajectory.group_rewards is not None
    np.testing.assert_array_equal(trajectory.group_rewards, [0.5, 2.0])
