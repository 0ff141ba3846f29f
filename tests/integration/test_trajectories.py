"""Trajectory building against real players of the bundled simulation host, played by a uniform random policy.

Besides the trajectories, the test loop keeps its own log of what each agent received (every DecisionStep and
TerminalStep, in the order the builder processes them) and checks the trajectories against it step by step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
import pytest

from rayagents.actors.environment import UnityEnvironment
from rayagents.actors.trajectories import Policy, TrajectoryBuilder, global_agent_id
from rayagents.protocol.side_channels import StatsSideChannel
from rayagents.protocol.trajectories import LOG_PROBS, ActionTaken, Trajectory
from rayagents.protocol.types import ActionTuple, BehaviorSpec, DecisionSteps

pytestmark = pytest.mark.slow

TRUNCATED_CARTPOLE = "sim:gym:CartPole-v1?max_episode_steps=20"
MAX_EPISODE_STEPS = 20


class UniformPolicy:
    """Samples each action uniformly: continuous in [-1, 1], each discrete branch among its allowed choices.

    Its log probabilities are exact: ``-continuous_size * log 2 - sum(log allowed choices)``. Its version goes up
    by one every ``version_every`` calls, as if new weights kept arriving.
    """

    def __init__(self, specs: Mapping[str, BehaviorSpec], seed: int, version_every: int = 50) -> None:
        self._specs = specs
        self._rng = np.random.default_rng(seed)
        self._version_every = version_every
        self.calls = 0

    @property
    def version(self) -> int:
        """The version the next call acts with."""
        return self.calls // self._version_every

    def act(self, behavior: str, decision_steps: DecisionSteps) -> ActionTaken:
        spec = self._specs[behavior].action_spec
        n = len(decision_steps)
        version = self.version
        self.calls += 1
        continuous = self._rng.uniform(-1.0, 1.0, size=(n, spec.continuous_size)).astype(np.float32)
        discrete = np.zeros((n, spec.discrete_size), dtype=np.int32)
        log_probs = np.full(n, -spec.continuous_size * np.log(2.0))
        masks = decision_steps.action_mask
        for b, size in enumerate(spec.discrete_branches):
            allowed = np.ones((n, size), dtype=bool) if masks is None else ~masks[b]
            for row in range(n):
                choices = np.flatnonzero(allowed[row])
                discrete[row, b] = self._rng.choice(choices)
                log_probs[row] -= np.log(len(choices))
        return ActionTaken(
            env_actions=ActionTuple(continuous=continuous, discrete=discrete),
            continuous=continuous,
            discrete=discrete,
            policy_version=version,
            extras={LOG_PROBS: log_probs.astype(np.float32)},
        )


@dataclass(frozen=True)
class Arrival:
    """One step an agent received: a DecisionStep (``terminal`` False) or a TerminalStep."""

    obs: np.ndarray
    """The observation (one sensor in these scenes)."""
    reward: float
    """The step's reward."""
    terminal: bool
    """A TerminalStep."""
    interrupted: bool
    """The TerminalStep's interrupted flag (False for a DecisionStep)."""
    mask: np.ndarray | None
    """The flat mask of a DecisionStep, True = disabled."""
    version: int
    """The policy version of the decision taken on a DecisionStep (-1 for a TerminalStep)."""


@dataclass
class Play:
    """What a run of the random policy produced, and the test's own log of it."""

    builders: dict[str, TrajectoryBuilder] = field(default_factory=dict)
    trajectories: list[Trajectory] = field(default_factory=list)
    arrivals: dict[str, list[Arrival]] = field(default_factory=dict)
    decisions: int = 0

    def of_agent(self, agent: str) -> list[Trajectory]:
        return [t for t in self.trajectories if t.agent_id == agent]


def play(env: UnityEnvironment, policy: Policy, exchanges: int, time_horizon: int, run: Play) -> None:
    """``exchanges`` exchanges of the EnvActor loop: per behavior, get the steps, act, build, set the actions."""
    for _ in range(exchanges):
        for behavior in env.behavior_specs:
            builder = run.builders.get(behavior)
            if builder is None:
                builder = run.builders[behavior] = TrajectoryBuilder(behavior, env_actor=1, time_horizon=time_horizon)
            decision_steps, terminal_steps = env.get_steps(behavior)
            taken = policy.act(behavior, decision_steps) if len(decision_steps) else None
            run.trajectories += builder.add(decision_steps, terminal_steps, taken)
            for row, agent in enumerate(terminal_steps.agent_id.tolist()):
                run.arrivals.setdefault(global_agent_id(1, agent), []).append(
                    Arrival(
                        terminal_steps.obs[0][row],
                        float(terminal_steps.reward[row]),
                        True,
                        bool(terminal_steps.interrupted[row]),
                        None,
                        -1,
                    )
                )
            masks = None if decision_steps.action_mask is None else np.concatenate(decision_steps.action_mask, axis=1)
            for row, agent in enumerate(decision_steps.agent_id.tolist()):
                assert taken is not None
                run.arrivals.setdefault(global_agent_id(1, agent), []).append(
                    Arrival(
                        decision_steps.obs[0][row],
                        float(decision_steps.reward[row]),
                        False,
                        False,
                        None if masks is None else masks[row],
                        taken.policy_version,
                    )
                )
            if taken is not None:
                run.decisions += taken.n_agents
                env.set_actions(behavior, taken.env_actions)
        env.step()


def check_against_log(run: Play) -> int:
    """Walks each agent's trajectories along its arrivals; returns the number of rows with a disabled action."""
    masked_rows = 0
    for agent, log in run.arrivals.items():
        position = 0  # the arrival of the trajectory's next decision
        mine = run.of_agent(agent)
        for index, trajectory in enumerate(mine):
            for t in range(len(trajectory)):
                decided, outcome = log[position], log[position + 1]
                assert not decided.terminal
                np.testing.assert_array_equal(trajectory.obs[0][t], decided.obs)  # obs[t+1] = the obs after action t
                assert trajectory.rewards[t] == np.float32(outcome.reward)
                assert trajectory.versions[t] == decided.version
                if trajectory.action_mask is not None:
                    assert decided.mask is not None
                    np.testing.assert_array_equal(trajectory.action_mask[t], decided.mask)
                    masked_rows += int(decided.mask.any())
                    chosen = trajectory.discrete_actions[t, 0]
                    assert not trajectory.action_mask[t, chosen], "the policy chose a disabled action"
                position += 1
            after = log[position]
            np.testing.assert_array_equal(trajectory.next_obs[0], after.obs)
            assert trajectory.done == after.terminal
            if trajectory.done:
                assert trajectory.interrupted == after.interrupted
                assert trajectory.rewards[-1] == np.float32(after.reward)  # the TerminalStep's reward
                position += 1
            elif index + 1 < len(mine):
                np.testing.assert_array_equal(trajectory.next_obs[0], mine[index + 1].obs[0][0])
    return masked_rows


def episodes_of(trajectories: list[Trajectory]) -> tuple[list[float], list[int]]:
    """Returns and experience counts of the episodes the trajectories complete, in the order they ended."""
    returns, lengths = [], []
    running: dict[str, tuple[float, int]] = {}
    for trajectory in trajectories:
        total, length = running.pop(trajectory.agent_id, (0.0, 0))
        total, length = total + float(trajectory.rewards.sum()), length + len(trajectory)
        if trajectory.done:
            returns.append(total)
            lengths.append(length)
        else:
            running[trajectory.agent_id] = (total, length)
    return returns, lengths


@pytest.mark.parametrize("num_areas", [2, 4])
def test_cartpole_trajectories_follow_the_steps_and_truncation_interrupts(num_areas: int) -> None:
    stats = StatsSideChannel()
    time_horizon = 8
    with UnityEnvironment(TRUNCATED_CARTPOLE, num_areas=num_areas, seed=num_areas, side_channels=[stats]) as env:
        env.reset()
        policy = UniformPolicy(env.behavior_specs, seed=num_areas)
        run = Play()
        play(env, policy, 300, time_horizon, run)
        player_stats = stats.get_and_reset_stats()
    (behavior,) = run.builders
    builder = run.builders[behavior]

    assert all(1 <= len(t) <= time_horizon for t in run.trajectories)
    assert all(len(t) == time_horizon for t in run.trajectories if not t.done)
    assert all(t.behavior == behavior and t.continuous_actions.shape == (len(t), 0) for t in run.trajectories)
    # Every decision taken is in a trajectory, buffered, or awaiting the agent's next step.
    emitted = sum(len(t) for t in run.trajectories)
    assert emitted + builder.buffered_experiences + builder.awaiting_decisions == run.decisions
    assert builder.awaiting_decisions == num_areas

    check_against_log(run)
    assert set(np.concatenate([t.versions for t in run.trajectories]).tolist()) >= {0, 1, 2}

    # Episodes: the builder's returns and lengths are those of the trajectories, and those the player reports.
    episodes = builder.take_episodes()
    returns, experiences = episodes_of(run.trajectories)
    assert len(returns) > 10
    np.testing.assert_allclose(episodes.returns, returns)
    np.testing.assert_array_equal(episodes.lengths, np.array(experiences) - 1)
    name = behavior.split("?")[0]
    assert sorted(v for v, _ in player_stats[f"{name}/Episode Return"]) == sorted(returns)
    assert sorted(int(v) for v, _ in player_stats[f"{name}/Episode Length"]) == sorted(experiences)

    # Truncation at max_episode_steps interrupts; a pole that falls ends the episode without interruption.
    done = [t for t in run.trajectories if t.done]
    interrupted = [t for t in done if t.interrupted]
    assert interrupted and len(interrupted) < len(done)
    lengths_by_end = dict(zip((id(t) for t in done), experiences))
    assert all(lengths_by_end[id(t)] == MAX_EPISODE_STEPS for t in interrupted)
    assert all(lengths_by_end[id(t)] <= MAX_EPISODE_STEPS for t in done)

    # Dropping the partial trajectories leaves nothing behind.
    builder.drop_partial()
    assert builder.buffered_experiences == 0 and builder.awaiting_decisions == 0
    assert len(builder.take_episodes()) == 0


def test_drop_partial_after_a_reset_starts_from_the_new_episodes() -> None:
    with UnityEnvironment("sim:CartPole", num_areas=3, seed=5) as env:
        env.reset()
        policy = UniformPolicy(env.behavior_specs, seed=5)
        run = Play()
        play(env, policy, 40, 16, run)
        (builder,) = run.builders.values()
        env.reset()
        builder.drop_partial()
        before = len(run.trajectories)
        run.arrivals.clear()
        play(env, policy, 60, 16, run)
    after = run.trajectories[before:]
    assert after, "the run after the reset produced no trajectory"
    # Every trajectory after the reset starts at or after the reset's first observation, which the log begins at.
    run.trajectories = after
    check_against_log(run)


def test_connect_four_masks_reach_the_trajectories() -> None:
    with UnityEnvironment("sim:ConnectFour", num_areas=1, seed=3) as env:
        env.reset()
        policy = UniformPolicy(env.behavior_specs, seed=3)
        run = Play()
        play(env, policy, 400, 64, run)
    assert set(run.builders) == {"ConnectFour?team=0", "ConnectFour?team=1"}
    assert all(t.action_mask is not None and t.action_mask.shape == (len(t), 7) for t in run.trajectories)
    masked_rows = check_against_log(run)
    assert masked_rows > 0, "no move was ever made with a full column: the masks were not exercised"
    # A game ends for both players: the winner's last reward is +1, the loser's -1.
    finals = sorted(float(t.rewards[-1]) for t in run.trajectories if t.done and not t.interrupted)
    assert finals and finals[0] < 0 < finals[-1]
    for behavior, builder in run.builders.items():
        returns, experiences = episodes_of([t for t in run.trajectories if t.behavior == behavior])
        episodes = builder.take_episodes()
        assert len(episodes) > 0
        np.testing.assert_allclose(episodes.returns, returns)
        np.testing.assert_array_equal(episodes.lengths, np.array(experiences) - 1)
