"""Groupmates' statuses against a real player: the simulation host's SimpleSpread (a group of three agents per area),
two areas, played by a uniform random policy through the real wire, built with ``groupmates=True``.

The test keeps its own log of every exchange (the decision each agent took, and the step each one received) and
checks each trajectory's groupmate rows, next observations and the episodes' group returns against it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
from test_trajectories import UniformPolicy

from rayagents.actors.environment import UnityEnvironment
from rayagents.actors.trajectories import TrajectoryBuilder
from rayagents.protocol.trajectories import GroupmateSteps, Trajectory
from rayagents.protocol.types import DecisionSteps, TerminalSteps

pytestmark = pytest.mark.slow

BEHAVIOR = "SimpleSpread?team=0"
NUM_AREAS = 2
AGENTS_PER_GROUP = 3
EPISODE_STEPS = 25
TIME_HORIZON = 10
EXCHANGES = 2 * (EPISODE_STEPS + 1) + 4
"""Two whole episodes per agent, and a few decisions of the third."""


@dataclass(frozen=True)
class Decided:
    """The decision an agent took at an exchange."""

    obs: np.ndarray
    """The observation it acted on."""
    discrete: np.ndarray
    """The action it took."""
    group_id: int
    """Its group."""


@dataclass(frozen=True)
class Received:
    """The step an agent received at an exchange (its TerminalStep when it is in both)."""

    obs: np.ndarray
    """The step's observation."""
    reward: float
    """Its own reward."""
    group_reward: float
    """Its group reward."""
    terminal: bool
    """A TerminalStep."""


@dataclass
class GroupPlay:
    """What the random policy played, and the test's log of it, by exchange."""

    trajectories: list[Trajectory] = field(default_factory=list)
    decided: list[dict[int, Decided]] = field(default_factory=list)
    received: list[dict[int, Received]] = field(default_factory=list)
    group_returns: list[float] = field(default_factory=list)


def log_exchange(
    run: GroupPlay, decision_steps: DecisionSteps, terminal_steps: TerminalSteps, discrete: np.ndarray | None
) -> None:
    """Logs what each agent received and decided at this exchange."""
    received: dict[int, Received] = {}
    for steps, terminal in ((terminal_steps, True), (decision_steps, False)):
        for row, agent in enumerate(steps.agent_id.tolist()):
            obs, reward, group_reward = np.array(steps.obs[0][row]), float(steps.reward[row]), steps.group_reward[row]
            received.setdefault(agent, Received(obs, reward, float(group_reward), terminal))
    decided: dict[int, Decided] = {}
    for row, agent in enumerate(decision_steps.agent_id.tolist()):
        assert discrete is not None
        decided[agent] = Decided(np.array(decision_steps.obs[0][row]), discrete[row], int(decision_steps.group_id[row]))
    run.received.append(received)
    run.decided.append(decided)


def play_simple_spread(seed: int) -> GroupPlay:
    """EXCHANGES exchanges of the EnvActor loop on SimpleSpread with a groupmates-recording builder."""
    run = GroupPlay()
    with UnityEnvironment("sim:SimpleSpread", num_areas=NUM_AREAS, seed=seed) as env:
        env.reset()
        assert list(env.behavior_specs) == [BEHAVIOR]
        policy = UniformPolicy(env.behavior_specs, seed=seed)
        builder = TrajectoryBuilder(BEHAVIOR, env_actor=0, time_horizon=TIME_HORIZON, groupmates=True)
        for _ in range(EXCHANGES):
            decision_steps, terminal_steps = env.get_steps(BEHAVIOR)
            taken = policy.act(BEHAVIOR, decision_steps) if len(decision_steps) else None
            run.trajectories += builder.add(decision_steps, terminal_steps, taken)
            log_exchange(run, decision_steps, terminal_steps, None if taken is None else taken.discrete)
            if taken is not None:
                env.set_actions(BEHAVIOR, taken.env_actions)
            env.step()
        run.group_returns = builder.take_episodes().group_returns.tolist()
    return run


def unity_id(trajectory: Trajectory) -> int:
    """The Unity agent id in the trajectory's global id ``agent_0-<id>``."""
    return int(trajectory.agent_id.rsplit("-", 1)[1])


def decision_exchanges(run: GroupPlay) -> dict[int, list[int]]:
    """Per agent, the exchanges it took a decision at, in order."""
    exchanges: dict[int, list[int]] = {}
    for exchange, decided in enumerate(run.decided):
        for agent in decided:
            exchanges.setdefault(agent, []).append(exchange)
    return exchanges


def assert_slots_hold(groupmates: GroupmateSteps, t: int, expected: list[tuple[Decided, Received]]) -> None:
    """The present slots of step t are the expected groupmates' statuses, in some order."""
    slots = np.flatnonzero(groupmates.present[t]).tolist()
    assert len(slots) == len(expected) == AGENTS_PER_GROUP - 1
    unmatched = list(slots)
    for decided, received in expected:
        match = [m for m in unmatched if np.array_equal(groupmates.obs[0][t, m], decided.obs)]
        assert len(match) == 1, f"no single slot of step {t} holds a groupmate's observation"
        np.testing.assert_array_equal(groupmates.discrete_actions[t, match[0]], decided.discrete)
        assert groupmates.dones[t, match[0]] == received.terminal
        unmatched.remove(match[0])
    assert groupmates.rewards[t] == pytest.approx(sum(r.reward for _, r in expected), abs=1e-6)


def check_trajectories(run: GroupPlay) -> list[float]:
    """Checks every trajectory against the log; returns the group returns of the episodes the trajectories ended."""
    exchanges = decision_exchanges(run)
    consumed = {agent: 0 for agent in exchanges}
    running: dict[int, float] = {}
    ended_returns: list[float] = []
    for trajectory in run.trajectories:
        agent = unity_id(trajectory)
        groupmates = trajectory.groupmates
        assert groupmates is not None and groupmates.slots == AGENTS_PER_GROUP - 1
        steps = exchanges[agent][consumed[agent] : consumed[agent] + len(trajectory)]
        consumed[agent] += len(trajectory)
        for t, exchange in enumerate(steps):
            mine = run.decided[exchange][agent]
            assert trajectory.group_id == mine.group_id > 0
            np.testing.assert_array_equal(trajectory.obs[0][t], mine.obs)
            mates = [g for g, d in run.decided[exchange].items() if g != agent and d.group_id == mine.group_id]
            assert_slots_hold(groupmates, t, [(run.decided[exchange][g], run.received[exchange + 1][g]) for g in mates])
            running[agent] = running.get(agent, 0.0) + run.received[exchange + 1][agent].group_reward
        after = steps[-1] + 1
        group = run.decided[steps[-1]][agent].group_id
        others = [g for g, r in run.received[after].items() if g != agent and g in run.decided[steps[-1]]]
        others = [g for g in others if run.decided[steps[-1]][g].group_id == group]
        assert groupmates.next_present.sum() == len(others) == AGENTS_PER_GROUP - 1
        expected_next = sorted(run.received[after][g].obs.tolist() for g in others)
        assert sorted(groupmates.next_obs[0][groupmates.next_present].tolist()) == expected_next
        if trajectory.done:
            assert trajectory.interrupted and groupmates.all_done_at_end()
            ended_returns.append(running.pop(agent))
        else:
            assert not groupmates.dones.any()
    return ended_returns


def test_simple_spread_groupmates_follow_the_exchanges_and_groups_end_together() -> None:
    run = play_simple_spread(seed=11)
    agents = {agent for decided in run.decided for agent in decided}
    groups = {agent: {d[agent].group_id for d in run.decided if agent in d} for agent in agents}
    assert all(len(ids) == 1 for ids in groups.values()), "an agent changed group"
    members: dict[int, set[int]] = {}
    for agent, (group,) in groups.items():
        members.setdefault(group, set()).add(agent)
    assert len(members) == NUM_AREAS and all(len(m) == AGENTS_PER_GROUP for m in members.values())

    assert run.trajectories and all(t.groupmates is not None for t in run.trajectories)
    assert all(bool(t.groupmates.present.all()) for t in run.trajectories if t.groupmates is not None)
    ended_returns = check_trajectories(run)
    done = [t for t in run.trajectories if t.done]
    assert len(done) == 2 * NUM_AREAS * AGENTS_PER_GROUP  # two episodes per agent, each ended by max_step
    assert any(not t.done for t in run.trajectories), "no time_horizon cut to check the next observations of"
    # Every agent's episode ends with its whole group's: each reports its group rewards.
    assert len(run.group_returns) == len(ended_returns)
    np.testing.assert_allclose(sorted(run.group_returns), sorted(ended_returns), rtol=1e-5, atol=1e-5)
    assert any(r != 0.0 for r in run.group_returns)
