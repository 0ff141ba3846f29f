"""TrajectoryBuilder's groups on hand-built steps: the groupmates' statuses of each experience (``groupmates=True``),
their next observations at a cut, the padding, and the episodes' group returns (every trainer)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rayagents.actors.trajectories import TrajectoryBuilder, global_agent_id
from rayagents.configs.hyperparameters import PPOSettings
from rayagents.configs.network import NetworkSettings
from rayagents.configs.trainer import TrainerSettings
from rayagents.learner.summaries import CUMULATIVE_REWARD, GROUP_CUMULATIVE_REWARD
from rayagents.learner.trainer import Trainer
from rayagents.protocol.trajectories import ActionTaken, EpisodeStats, GroupmateSteps, Trajectory
from rayagents.protocol.types import (
    ActionSpec,
    ActionTuple,
    BehaviorSpec,
    DecisionSteps,
    DimensionProperty,
    ObservationSpec,
    ObservationType,
    TerminalSteps,
)

BEHAVIOR = "Spread?team=0"
VISUAL = (1, 2, 2)
"""The second sensor: a (C, H, W) uint8 one, every pixel ``obs % 256``."""


def sensors(obs: list[float]) -> list[np.ndarray]:
    """Agent i observes ``[obs[i], -obs[i]]`` (float32) and a uint8 image filled with ``obs[i] % 256``."""
    n = len(obs)
    vector = np.array([[o, -o] for o in obs], dtype=np.float32).reshape(n, 2)
    image = np.array([np.full(VISUAL, int(o) % 256) for o in obs], dtype=np.uint8).reshape(n, *VISUAL)
    return [vector, image]


def decisions(
    ids: list[int], obs: list[float], rewards: list[float], groups: list[int], group_rewards: list[float]
) -> DecisionSteps:
    """Agents ``ids`` of groups ``groups`` request a decision."""
    return DecisionSteps(
        obs=sensors(obs),
        reward=np.array(rewards, dtype=np.float32),
        agent_id=np.array(ids, dtype=np.int32),
        action_mask=None,
        group_id=np.array(groups, dtype=np.int32),
        group_reward=np.array(group_rewards, dtype=np.float32),
    )


def terminals(
    ids: list[int], obs: list[float], rewards: list[float], groups: list[int], group_rewards: list[float]
) -> TerminalSteps:
    """Agents ``ids`` of groups ``groups`` ended their episode (interrupted)."""
    return TerminalSteps(
        obs=sensors(obs),
        reward=np.array(rewards, dtype=np.float32),
        interrupted=np.ones(len(ids), dtype=bool),
        agent_id=np.array(ids, dtype=np.int32),
        group_id=np.array(groups, dtype=np.int32),
        group_reward=np.array(group_rewards, dtype=np.float32),
    )


NO_DECISIONS = decisions([], [], [], [], [])
NO_TERMINALS = terminals([], [], [], [], [])


def taken(actions: list[int]) -> ActionTaken:
    """One continuous action (the action / 10) and two branches (action % 3, action % 2) per agent."""
    n = len(actions)
    continuous = np.array(actions, dtype=np.float32).reshape(n, 1) / 10
    discrete = np.array([[a % 3, a % 2] for a in actions], dtype=np.int32).reshape(n, 2)
    return ActionTaken(ActionTuple(continuous, discrete), continuous, discrete, policy_version=0)


def by_agent(trajectories: list[Trajectory]) -> dict[int, Trajectory]:
    """The trajectories of env actor 0, by Unity agent id (one each)."""
    found = {int(t.agent_id.split("-")[1]): t for t in trajectories}
    assert len(found) == len(trajectories), "an agent completed two trajectories at once"
    return found


def mates(trajectory: Trajectory) -> GroupmateSteps:
    """The trajectory's groupmates, which must be there."""
    assert trajectory.groupmates is not None, f"{trajectory.agent_id} has no groupmates"
    return trajectory.groupmates


def first_values(groupmates: GroupmateSteps) -> list[list[float]]:
    """Per step, the first float of each present groupmate's observation, by slot order."""
    return [
        [float(groupmates.obs[0][t, m, 0]) for m in range(groupmates.slots) if groupmates.present[t, m]]
        for t in range(len(groupmates.present))
    ]


def play_early_leaver(builder: TrajectoryBuilder) -> list[Trajectory]:
    """Agents 1, 2, 3 of group 5: agent 3 ends at the third exchange, 1 and 2 together at the fifth. Agent a's
    observation is ``10 * a + exchange``, its reward ``a`` then ``10 * a`` ..., its group rewards 0.5, 0.5, 1, 2."""
    out = builder.add(decisions([1, 2, 3], [10, 20, 30], [0, 0, 0], [5] * 3, [0.0] * 3), NO_TERMINALS, taken([1, 2, 3]))
    second = decisions([1, 2, 3], [11, 21, 31], [1, 2, 3], [5] * 3, [0.5] * 3)
    out += builder.add(second, NO_TERMINALS, taken([4, 5, 6]))
    leaves = terminals([3], [32], [30], [5], [0.5])
    out += builder.add(decisions([1, 2], [12, 22], [10, 20], [5] * 2, [0.5] * 2), leaves, taken([7, 8]))
    out += builder.add(decisions([1, 2], [13, 23], [100, 200], [5] * 2, [1.0] * 2), NO_TERMINALS, taken([9, 10]))
    out += builder.add(NO_DECISIONS, terminals([1, 2], [14, 24], [1000, 2000], [5] * 2, [2.0] * 2), None)
    return out


def test_an_early_leaver_sees_its_groupmates_live_and_the_survivors_end_together() -> None:
    builder = TrajectoryBuilder(BEHAVIOR, env_actor=0, time_horizon=10, groupmates=True)
    trajectories = by_agent(play_early_leaver(builder))
    assert sorted(trajectories) == [1, 2, 3]

    leaver = mates(trajectories[3])
    assert trajectories[3].done and not leaver.all_done_at_end()
    assert leaver.slots == 2 and leaver.present.all() and not leaver.dones.any()
    assert [sorted(row) for row in first_values(leaver)] == [[10.0, 20.0], [11.0, 21.0]]  # what they acted on
    np.testing.assert_array_equal(leaver.rewards, [1 + 2, 10 + 20])
    assert leaver.next_present.all()
    assert sorted(leaver.next_obs[0][:, 0].tolist()) == [12.0, 22.0]  # their new observations

    first = mates(trajectories[1])
    assert first.slots == 2  # the first step had two groupmates
    assert first_values(first) == [[20.0, 30.0], [21.0], [22.0], [23.0]]  # agent 3 gone once it ended
    np.testing.assert_array_equal(first.rewards, [2 + 3, 20, 200, 2000])
    np.testing.assert_array_equal(first.present.sum(axis=1), [2, 1, 1, 1])
    assert first.dones[-1][first.present[-1]].all() and not first.dones[:-1].any()
    assert first.all_done_at_end()
    np.testing.assert_array_equal(first.next_present, [True, False])
    np.testing.assert_array_equal(first.next_obs[0][0], [24.0, -24.0])  # agent 2's terminal observation
    assert mates(trajectories[2]).all_done_at_end()
    assert first_values(mates(trajectories[2])) == [[10.0, 30.0], [11.0], [12.0], [13.0]]

    np.testing.assert_array_equal(builder.take_episodes().group_returns, [0.5 + 0.5 + 1.0 + 2.0] * 2)


def test_statuses_carry_the_actions_taken_and_keep_the_dtypes() -> None:
    builder = TrajectoryBuilder(BEHAVIOR, env_actor=0, time_horizon=10, groupmates=True)
    first = mates(by_agent(play_early_leaver(builder))[1])
    slot_of_2 = [int(np.flatnonzero(first.obs[0][t, :, 0] == 20 + t)[0]) for t in range(4)]
    actions_of_2 = [2, 5, 8, 10]
    np.testing.assert_array_equal(
        [first.continuous_actions[t, s, 0] for t, s in enumerate(slot_of_2)],
        np.array(actions_of_2, dtype=np.float32) / 10,
    )
    np.testing.assert_array_equal(
        [first.discrete_actions[t, s] for t, s in enumerate(slot_of_2)], [[a % 3, a % 2] for a in actions_of_2]
    )
    np.testing.assert_array_equal([first.obs[1][t, s, 0, 0, 0] for t, s in enumerate(slot_of_2)], [20, 21, 22, 23])
    assert first.obs[0].dtype == np.float32 and first.obs[1].dtype == np.uint8
    assert first.obs[1].shape == (4, 2, *VISUAL) and first.next_obs[1].shape == (2, *VISUAL)
    assert first.continuous_actions.dtype == np.float32 and first.discrete_actions.dtype == np.int32
    assert first.rewards.dtype == np.float32 and first.present.dtype == bool and first.dones.dtype == bool
    # Padding is zeros and absent.
    assert not first.present[1:, 1].any()
    assert not first.obs[0][1:, 1].any() and not first.obs[1][1:, 1].any() and not first.continuous_actions[1:, 1].any()
    assert not first.next_obs[0][1].any() and not first.next_obs[1][1].any()


def test_without_groupmates_only_the_group_returns_are_kept() -> None:
    builder = TrajectoryBuilder(BEHAVIOR, env_actor=0, time_horizon=10)
    trajectories = play_early_leaver(builder)
    assert len(trajectories) == 3 and all(t.groupmates is None for t in trajectories)
    assert all(t.group_id == 5 and t.group_rewards is not None for t in trajectories)
    episodes = builder.take_episodes()
    np.testing.assert_array_equal(episodes.returns, [0 + 3 + 30, 1 + 10 + 100 + 1000, 2 + 20 + 200 + 2000])
    assert episodes.group_returns.dtype == np.float32
    np.testing.assert_array_equal(episodes.group_returns, [4.0, 4.0])  # the early leaver reports none
    assert len(builder.take_episodes().group_returns) == 0


def test_a_time_horizon_cut_bootstraps_from_the_groupmates_latest_observations() -> None:
    builder = TrajectoryBuilder(BEHAVIOR, env_actor=0, time_horizon=2, groupmates=True)
    group = 7
    assert builder.add(decisions([1, 2], [0, 100], [0, 0], [group] * 2, [0] * 2), NO_TERMINALS, taken([1, 1])) == []
    assert builder.add(decisions([1], [1], [1], [group], [0]), NO_TERMINALS, taken([2])) == []  # agent 2 absent
    (cut,) = builder.add(decisions([1, 2], [2, 102], [1, 5], [group] * 2, [0] * 2), NO_TERMINALS, taken([3, 4]))
    assert cut.agent_id == global_agent_id(0, 1) and not cut.done
    first = mates(cut)
    assert first.slots == 1
    np.testing.assert_array_equal(first.present, [[False], [True]])  # a groupmate that did not step is absent
    np.testing.assert_array_equal(first.rewards, [0.0, 5.0])
    np.testing.assert_array_equal(first.obs[0][:, 0], [[0.0, 0.0], [100.0, -100.0]])
    np.testing.assert_array_equal(first.next_obs[0], [[102.0, -102.0]])  # agent 2's new observation
    assert not first.all_done_at_end()

    # Agent 2 steps no more: agent 1's next cut has no groupmate at any step, yet its latest observation to
    # bootstrap from (M = 1 from the next observations alone).
    assert builder.add(decisions([1], [3], [1], [group], [0]), NO_TERMINALS, taken([5])) == []
    (second,) = builder.add(decisions([1], [4], [1], [group], [0]), NO_TERMINALS, taken([6]))
    later = mates(second)
    assert later.slots == 1 and not later.present.any() and later.all_done_at_end()
    np.testing.assert_array_equal(later.next_present, [True])
    np.testing.assert_array_equal(later.next_obs[0], [[102.0, -102.0]])


def test_an_agent_alone_in_its_group_has_no_groupmate_slots_and_reports_its_group_return() -> None:
    builder = TrajectoryBuilder(BEHAVIOR, env_actor=0, time_horizon=10, groupmates=True)
    builder.add(decisions([9], [0], [0], [3], [0]), NO_TERMINALS, taken([1]))
    builder.add(decisions([9], [1], [0], [3], [1.5]), NO_TERMINALS, taken([2]))
    (alone,) = builder.add(NO_DECISIONS, terminals([9], [2], [0], [3], [0.25]), None)
    groupmates = mates(alone)
    assert groupmates.slots == 0 and groupmates.all_done_at_end()
    assert groupmates.obs[0].shape == (2, 0, 2) and groupmates.obs[1].shape == (2, 0, *VISUAL)
    assert groupmates.obs[1].dtype == np.uint8
    assert groupmates.continuous_actions.shape == (2, 0, 1) and groupmates.discrete_actions.shape == (2, 0, 2)
    assert groupmates.next_obs[0].shape == (0, 2) and groupmates.next_obs[1].shape == (0, *VISUAL)
    assert groupmates.next_present.shape == (0,)
    np.testing.assert_array_equal(groupmates.rewards, [0.0, 0.0])
    np.testing.assert_array_equal(builder.take_episodes().group_returns, [1.75])


def test_agents_in_no_group_have_no_groupmates_and_no_group_return() -> None:
    builder = TrajectoryBuilder(BEHAVIOR, env_actor=0, time_horizon=10, groupmates=True)
    builder.add(decisions([1, 2], [0, 10], [0, 0], [0, 0], [0, 0]), NO_TERMINALS, taken([1, 1]))
    ended = builder.add(NO_DECISIONS, terminals([1, 2], [1, 11], [1, 1], [0, 0], [0, 0]), None)
    assert len(ended) == 2 and all(t.groupmates is None for t in ended)
    episodes = builder.take_episodes()
    assert len(episodes) == 2 and len(episodes.group_returns) == 0


def test_an_agent_ending_and_restarting_in_one_exchange_leaves_its_groupmates_rows_until_it_acts_again() -> None:
    builder = TrajectoryBuilder(BEHAVIOR, env_actor=0, time_horizon=3, groupmates=True)
    builder.add(decisions([1, 2], [0, 100], [0, 0], [4, 4], [0, 0]), NO_TERMINALS, taken([1, 1]))
    # Agent 1 ends (observation 1) and starts again (observation 50) while agent 2 decides on 101.
    restart = decisions([1, 2], [50, 101], [0, 2], [4, 4], [0, 1])
    (ended,) = builder.add(restart, terminals([1], [1], [3], [4], [1]), taken([1, 1]))
    ended_mates = mates(ended)
    assert first_values(ended_mates) == [[100.0]] and not ended_mates.dones.any()
    np.testing.assert_array_equal(ended_mates.next_obs[0], [[101.0, -101.0]])
    assert len(builder.take_episodes().group_returns) == 0  # agent 2 is still in the group's episode
    builder.add(decisions([1, 2], [51, 102], [4, 5], [4, 4], [0, 0]), NO_TERMINALS, taken([1, 1]))
    (cut,) = builder.add(decisions([2], [103], [6], [4], [0]), NO_TERMINALS, taken([1]))
    # The ended agent is not agent 2's groupmate at the exchange it ended; from its new episode's action on, it is
    # (and absent again at the last exchange, where it did not step).
    assert cut.agent_id == global_agent_id(0, 2)
    assert first_values(mates(cut)) == [[], [50.0], []]
    np.testing.assert_array_equal(mates(cut).rewards, [0.0, 4.0, 0.0])
    np.testing.assert_array_equal(mates(cut).next_obs[0], [[51.0, -51.0]])


def test_two_groups_in_one_exchange_do_not_mix() -> None:
    builder = TrajectoryBuilder(BEHAVIOR, env_actor=0, time_horizon=10, groupmates=True)
    groups = [1, 2, 1, 2]
    builder.add(decisions([1, 2, 3, 4], [10, 20, 30, 40], [0] * 4, groups, [0] * 4), NO_TERMINALS, taken([1, 2, 3, 4]))
    builder.add(decisions([1, 2, 3, 4], [11, 21, 31, 41], [1] * 4, groups, [1, 2, 1, 2]), NO_TERMINALS, taken([1] * 4))
    end = terminals([1, 2, 3, 4], [12, 22, 32, 42], [1] * 4, groups, [1] * 4)
    ended = by_agent(builder.add(NO_DECISIONS, end, None))
    partner = {1: 3, 3: 1, 2: 4, 4: 2}
    for agent, trajectory in ended.items():
        groupmates = mates(trajectory)
        other = partner[agent]
        assert trajectory.group_id == groups[agent - 1] and groupmates.slots == 1
        assert first_values(groupmates) == [[10.0 * other], [10.0 * other + 1]]
        np.testing.assert_array_equal(groupmates.next_obs[0], [[10.0 * other + 2, -(10.0 * other + 2)]])
        assert groupmates.all_done_at_end()
    np.testing.assert_array_equal(sorted(builder.take_episodes().group_returns), [2.0, 2.0, 3.0, 3.0])


def test_drop_partial_forgets_the_groups_and_their_returns_in_progress() -> None:
    builder = TrajectoryBuilder(BEHAVIOR, env_actor=0, time_horizon=10, groupmates=True)
    builder.add(decisions([1, 2, 3], [0, 10, 20], [0] * 3, [6] * 3, [0] * 3), NO_TERMINALS, taken([1, 1, 1]))
    builder.add(decisions([1, 2, 3], [1, 11, 21], [0] * 3, [6] * 3, [9] * 3), NO_TERMINALS, taken([1, 1, 1]))
    builder.drop_partial()
    # After the restart agent 3 is never seen again: agents 1 and 2 end their group's episode on their own.
    builder.add(decisions([1, 2], [5, 15], [0] * 2, [6] * 2, [0] * 2), NO_TERMINALS, taken([1, 1]))
    ended = builder.add(NO_DECISIONS, terminals([1, 2], [6, 16], [0] * 2, [6] * 2, [0.5] * 2), None)
    assert len(ended) == 2 and all(mates(t).slots == 1 and mates(t).all_done_at_end() for t in ended)
    np.testing.assert_array_equal(builder.take_episodes().group_returns, [0.5, 0.5])  # the 9s before were dropped


def test_the_trainer_records_the_group_cumulative_reward() -> None:
    spec = BehaviorSpec(
        (ObservationSpec((2,), (DimensionProperty.NONE,), ObservationType.DEFAULT, "vector"),), ActionSpec(1, (3, 2))
    )
    settings = TrainerSettings(
        hyperparameters=PPOSettings(batch_size=16, buffer_size=32),
        network_settings=NetworkSettings(hidden_units=8),
        summary_freq=10,
    )
    torch.manual_seed(0)
    trainer = Trainer(BEHAVIOR, spec, settings, seed=0)
    returns = np.array([1.0, 2.0, 3.0], np.float32)
    trainer.record_episodes(EpisodeStats(BEHAVIOR, returns, np.array([4, 4, 4]), np.array([4.0, 6.0], np.float32)))
    trainer.record_episodes(EpisodeStats(BEHAVIOR, returns[:1], np.array([4])))  # no group ended: no value
    summary = trainer.summary(10)
    assert summary[GROUP_CUMULATIVE_REWARD] == pytest.approx(5.0)
    assert summary[CUMULATIVE_REWARD] == pytest.approx(7.0 / 4)
    assert GROUP_CUMULATIVE_REWARD == "Environment/Group Cumulative Reward"
