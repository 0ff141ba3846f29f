"""The DungeonEscape scene in process: its spec, the observation's layout, the slayer leaving the episode early, the
door opening only once the dragon is slain, the group's escape and the time limit, group ids, determinism under the
seed, the heuristic against random play, and its example trainer config."""

from __future__ import annotations

from typing import Callable

import numpy as np
import pytest
import yaml

from rayagents.configs.examples import example_config
from rayagents.protocol.side_channels import SideChannelManager, StatsSideChannel
from rayagents.protocol.side_channels.environment_parameters import EnvironmentParametersReceiver
from rayagents.protocol.side_channels.stats import StatsRecorder
from rayagents.sims.scene import AgentAction, AgentReport, AreaContext, sensor_order
from rayagents.sims.scenes import example_config_name, get_scene, scene_names
from rayagents.sims.scenes.dungeon_escape import (
    AGENTS,
    DRAGON_FLAG,
    LEFT,
    LENGTH,
    MAX_STEPS,
    OBSERVATION_SIZE,
    RIGHT,
    SPAWN_HIGH,
    SPAWN_LOW,
    STAY,
    DungeonEscapeArea,
    heuristic,
    heuristic_move,
)

A0, A1, A2 = AGENTS
HEURISTIC_SEED = 11
"""The seed of the area the heuristic plays its 200 episodes in."""
RANDOM_SEED = 12
"""The seed of the area (and of the actions) random play's 200 episodes use."""


def area(seed: int = 0, index: int = 0, stats: StatsRecorder | None = None) -> DungeonEscapeArea:
    made = get_scene("DungeonEscape").make_area(
        AreaContext(index, index + 1, seed, EnvironmentParametersReceiver(), stats or StatsRecorder())
    )
    assert isinstance(made, DungeonEscapeArea)
    return made


def act(**moves: int) -> dict[str, AgentAction]:
    return {agent: AgentAction(np.zeros(0, np.float32), np.array([move], np.int32)) for agent, move in moves.items()}


def setup(dungeon: DungeonEscapeArea, *cells: int) -> None:
    """Puts the agents on ``cells`` at the start of an episode, the dragon alive."""
    world = dungeon.world
    world.positions = np.array(cells, dtype=np.int64)
    world.present = np.ones(3, dtype=bool)
    world.dragon_alive = True
    world.steps = 0


def expected(own: int, dragon_alive: bool, others: dict[int, int]) -> np.ndarray:
    """The observation of an agent on cell ``own`` that sees ``others[cell]`` other agents on each cell."""
    observation = np.zeros(OBSERVATION_SIZE, np.float32)
    observation[own] = 1.0
    observation[DRAGON_FLAG] = float(dragon_alive)
    for cell, count in others.items():
        observation[DRAGON_FLAG + 1 + cell] = count / 2
    return observation


def observation(report: AgentReport) -> np.ndarray:
    (values,) = report.observations
    assert values.shape == (OBSERVATION_SIZE,) and values.dtype == np.float32
    return values


def recorded(stats: StatsRecorder) -> dict[str, list[float]]:
    trainer = StatsSideChannel()
    SideChannelManager([trainer]).process_side_channel_message(
        SideChannelManager([stats]).generate_side_channel_messages()
    )
    return {key: [value for value, _ in values] for key, values in trainer.get_and_reset_stats().items()}


def assert_new_episode(reports: list[AgentReport]) -> None:
    """Three fresh decision requests, in name order: reward 0, dragon alive, agents on the spawn cells."""
    assert [r.agent for r in reports] == list(AGENTS)
    for report in reports:
        assert not report.done and report.reward == 0.0 and report.group_reward == 0.0
        values = observation(report)
        assert values[DRAGON_FLAG] == 1.0
        assert SPAWN_LOW <= int(np.argmax(values[:LENGTH])) <= SPAWN_HIGH
        assert values[DRAGON_FLAG + 1 :].sum() * 2 == 2  # both other agents are in the episode


def test_spec_and_registration() -> None:
    scene = get_scene("DungeonEscape")
    assert "DungeonEscape" in scene_names()
    (behavior,) = scene.behaviors
    assert behavior.qualified_name == "DungeonEscape?team=0" and scene.heuristic is not None
    (sensor,) = behavior.sensors
    assert (sensor.name, sensor.shape) == ("VectorSensor", (19,)) and sensor_order(behavior.sensors) == (0,)
    assert behavior.action_spec.continuous_size == 0 and behavior.action_spec.discrete_branches == (3,)
    assert example_config_name("DungeonEscape") == "configs/poca/DungeonEscape.yaml"
    assert "\n" not in scene.description


def test_first_requests_and_the_observation_layout() -> None:
    dungeon = area(seed=0, index=2)
    first = dungeon.reset()
    assert_new_episode(first)
    setup(dungeon, 3, 3, 5)
    reports = dungeon.step(act(agent_0=STAY, agent_1=STAY, agent_2=STAY))
    assert [r.agent for r in reports] == [A0, A1, A2]
    assert all(not r.done and r.reward == 0.0 and r.group_reward == 0.0 and r.group_id == 3 for r in reports)
    np.testing.assert_array_equal(observation(reports[0]), expected(3, True, {3: 1, 5: 1}))
    np.testing.assert_array_equal(observation(reports[1]), expected(3, True, {3: 1, 5: 1}))
    np.testing.assert_array_equal(observation(reports[2]), expected(5, True, {3: 2}))
    # value by value, agent_2's: cells 0..8 one-hot, the dragon flag, then 2 agents / 2 on cell 3
    assert observation(reports[2]).tolist() == [0, 0, 0, 0, 0, 1, 0, 0, 0] + [1] + [0, 0, 0, 1.0, 0, 0, 0, 0, 0]

    reports = dungeon.step(act(agent_0=LEFT, agent_1=RIGHT, agent_2=RIGHT))  # 2, 4, 6
    assert observation(reports[0]).tolist() == [0, 0, 1, 0, 0, 0, 0, 0, 0] + [1] + [0, 0, 0, 0, 0.5, 0, 0.5, 0, 0]
    np.testing.assert_array_equal(observation(reports[1]), expected(4, True, {2: 1, 6: 1}))
    np.testing.assert_array_equal(observation(reports[2]), expected(6, True, {2: 1, 4: 1}))



def test_the_walls_clip_the_moves() -> None:
    dungeon = area()
    dungeon.reset()
    setup(dungeon, 0, 1, 4)
    dungeon.step(act(agent_0=LEFT, agent_1=LEFT, agent_2=STAY))
    dungeon.step(act(agent_0=LEFT, agent_1=LEFT, agent_2=STAY))
    assert dungeon.world.positions.tolist() == [0, 0, 4]  # the locked door is a wall
    setup(dungeon, 1, 8, 4)
    dungeon.world.dragon_alive = False
    reports = dungeon.step(act(agent_0=STAY, agent_1=RIGHT, agent_2=STAY))
    assert dungeon.world.positions.tolist() == [1, 8, 4]
    np.testing.assert_array_equal(observation(reports[1]), expected(8, False, {1: 1, 4: 1}))


def test_the_slayer_leaves_and_the_others_escape_without_it() -> None:
    stats = StatsRecorder()
    dungeon = area(seed=1, index=0, stats=stats)
    dungeon.reset()
    recorded(stats)
    setup(dungeon, 7, 3, 3)
    reports = dungeon.step(act(agent_0=RIGHT, agent_1=STAY, agent_2=STAY))
    assert [r.agent for r in reports] == [A0, A1, A2]
    slayer, first, second = reports
    assert slayer.done and not slayer.max_step_reached and slayer.reward == 0.0 and slayer.group_reward == 0.0
    np.testing.assert_array_equal(observation(slayer), expected(8, False, {3: 2}))  # the dragon is dead now
    assert slayer.group_id == 1
    for report in (first, second):
        assert not report.done and report.group_reward == 0.0 and report.group_id == 1
        np.testing.assert_array_equal(observation(report), expected(3, False, {3: 1}))  # agent_0 no longer counts
    assert not dungeon.world.dragon_alive and dungeon.world.present.tolist() == [False, True, True]

    # The slayer is not reported again this episode, whatever it is sent; the others walk to the door.
    for _ in range(2):
        reports = dungeon.step(act(agent_0=LEFT, agent_1=LEFT, agent_2=LEFT))
        assert [r.agent for r in reports] == [A1, A2]
        assert all(not r.done and r.group_reward == 0.0 for r in reports)
    assert dungeon.world.positions.tolist() == [8, 1, 1]  # the slayer did not move
    reports = dungeon.step(act(agent_1=LEFT, agent_2=STAY))  # agent_1 reaches the open door
    ends, starts = reports[:2], reports[2:]
    assert [r.agent for r in ends] == [A1, A2]
    for end in ends:
        assert end.done and not end.max_step_reached and end.group_reward == 1.0 and end.reward == 0.0
        assert end.group_id == 1
    np.testing.assert_array_equal(observation(ends[0]), expected(0, False, {1: 1}))
    assert_new_episode(starts)  # the slayer rejoins the new episode
    assert all(r.group_id == 1 for r in starts)
    assert recorded(stats) == {"DungeonEscape/Escaped": [1.0], "DungeonEscape/Episode Length": [4.0]}


def test_the_door_opens_only_once_the_dragon_is_slain_even_in_the_same_step() -> None:
    stats = StatsRecorder()
    dungeon = area(seed=2, stats=stats)
    dungeon.reset()
    recorded(stats)
    setup(dungeon, 1, 2, 6)
    for _ in range(10):  # agents on the door while the dragon lives: no escape
        reports = dungeon.step(act(agent_0=LEFT, agent_1=LEFT, agent_2=STAY))
        assert [r.agent for r in reports] == [A0, A1, A2] and not any(r.done for r in reports)
        assert observation(reports[0])[DRAGON_FLAG] == 1.0
    assert dungeon.world.positions.tolist() == [0, 0, 6]
    reports = dungeon.step(act(agent_0=STAY, agent_1=STAY, agent_2=RIGHT))  # 7: still alive
    assert not any(r.done for r in reports)
    reports = dungeon.step(act(agent_0=STAY, agent_1=RIGHT, agent_2=RIGHT))  # agent_2 slays; agent_0 waits
    slayer, *ends = reports[:3]
    assert (slayer.agent, slayer.done, slayer.group_reward, slayer.max_step_reached) == (A2, True, 0.0, False)
    assert [r.agent for r in ends] == [A0, A1]
    assert all(r.done and not r.max_step_reached and r.group_reward == 1.0 for r in ends)
    np.testing.assert_array_equal(observation(ends[0]), expected(0, False, {1: 1}))
    assert_new_episode(reports[3:])
    assert recorded(stats) == {"DungeonEscape/Escaped": [1.0], "DungeonEscape/Episode Length": [12.0]}


def test_only_the_first_mover_slays() -> None:
    dungeon = area(seed=3)
    dungeon.reset()
    setup(dungeon, 5, 7, 7)
    reports = dungeon.step(act(agent_0=STAY, agent_1=RIGHT, agent_2=RIGHT))
    assert [(r.agent, r.done) for r in reports] == [(A1, True), (A0, False), (A2, False)]
    np.testing.assert_array_equal(observation(reports[2]), expected(8, False, {5: 1}))  # stands on the dragon's cell
    reports = dungeon.step(act(agent_0=RIGHT, agent_2=STAY))
    assert [(r.agent, r.done) for r in reports] == [(A0, False), (A2, False)]
    assert dungeon.world.present.tolist() == [True, False, True]


def test_the_time_limit_cuts_the_remaining_agents_off() -> None:
    stats = StatsRecorder()
    dungeon = area(seed=4, index=1, stats=stats)
    dungeon.reset()
    recorded(stats)
    setup(dungeon, 3, 4, 5)
    for step in range(1, MAX_STEPS):
        reports = dungeon.step(act(agent_0=STAY, agent_1=STAY, agent_2=STAY))
        assert [(r.agent, r.done) for r in reports] == [(A0, False), (A1, False), (A2, False)], step
    reports = dungeon.step(act(agent_0=STAY, agent_1=STAY, agent_2=STAY))
    ends, starts = reports[:3], reports[3:]
    assert [r.agent for r in ends] == list(AGENTS)
    for end in ends:
        assert end.done and end.max_step_reached and end.reward == 0.0 and end.group_reward == 0.0
        assert end.group_id == 2
    assert_new_episode(starts)
    assert recorded(stats) == {"DungeonEscape/Escaped": [0.0], "DungeonEscape/Episode Length": [float(MAX_STEPS)]}

    # With the dragon slain and no one at the door: the slayer left, the two others are cut off.
    setup(dungeon, 7, 4, 4)
    reports = dungeon.step(act(agent_0=RIGHT, agent_1=STAY, agent_2=STAY))
    assert reports[0].done and not reports[0].max_step_reached
    for _ in range(MAX_STEPS - 2):
        assert [r.agent for r in dungeon.step(act(agent_1=RIGHT, agent_2=STAY))] == [A1, A2]
    reports = dungeon.step(act(agent_1=STAY, agent_2=STAY))
    ends = reports[:2]
    assert [r.agent for r in ends] == [A1, A2]
    assert all(r.done and r.max_step_reached and r.group_reward == 0.0 for r in ends)
    assert_new_episode(reports[2:])


def test_group_ids_are_the_area_index_plus_one() -> None:
    for index in range(4):
        dungeon = area(seed=index, index=index)
        reports = dungeon.reset()
        for _ in range(60):
            assert {r.group_id for r in reports} == {index + 1}
            reports = dungeon.step({r.agent: heuristic(r) for r in reports if not r.done})


def play(
    seed: int, policy: Callable[[AgentReport], AgentAction], episodes: int
) -> tuple[list[bool], list[int], list[np.ndarray]]:
    """Plays ``episodes`` episodes in an area seeded ``seed``: whether each escaped, its length, every observation."""
    stats = StatsRecorder()
    dungeon = area(seed=seed, stats=stats)
    reports = dungeon.reset()
    seen = [observation(r) for r in reports]
    escaped: list[bool] = []
    lengths: list[int] = []
    while len(escaped) < episodes:
        reports = dungeon.step({r.agent: policy(r) for r in reports if not r.done})
        seen += [observation(r) for r in reports]
        finished = recorded(stats)
        if finished:
            escaped += [value == 1.0 for value in finished["DungeonEscape/Escaped"]]
            lengths += [int(value) for value in finished["DungeonEscape/Episode Length"]]
    return escaped, lengths, seen


def random_policy(seed: int) -> Callable[[AgentReport], AgentAction]:
    rng = np.random.default_rng(seed)
    return lambda report: AgentAction(np.zeros(0, np.float32), np.array([rng.integers(3)], np.int32))


def test_deterministic_under_the_seed() -> None:
    _, _, a = play(3, random_policy(0), 5)
    _, _, b = play(3, random_policy(0), 5)
    _, _, c = play(4, random_policy(0), 5)
    assert len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))
    assert len(a) != len(c) or not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_the_heuristic_escapes_and_random_play_mostly_does_not() -> None:
    heuristic_escaped, heuristic_lengths, _ = play(HEURISTIC_SEED, heuristic, 200)
    random_escaped, _, _ = play(RANDOM_SEED, random_policy(RANDOM_SEED), 200)
    heuristic_rate, random_rate = float(np.mean(heuristic_escaped)), float(np.mean(random_escaped))
    # Measured: the heuristic 200 / 200 with seed 11 (every episode within 14 steps, 3.5 on average), random play
    # 116 / 200 = 0.58 with seed 12 (0.58-0.64 over seeds 0-4).
    assert heuristic_rate >= 0.95, heuristic_rate
    assert max(heuristic_lengths) <= 14
    assert random_rate <= 0.75 and heuristic_rate - random_rate >= 0.25, (heuristic_rate, random_rate)


def test_the_heuristic_moves() -> None:
    assert heuristic_move(expected(4, True, {2: 1, 3: 1})) == RIGHT  # the right-most walks to the dragon
    assert heuristic_move(expected(4, True, {4: 1, 2: 1})) == RIGHT  # a tie: right anyway
    assert heuristic_move(expected(3, True, {4: 1, 2: 1})) == LEFT  # someone is further right: to the door
    assert heuristic_move(expected(0, True, {5: 1, 6: 1})) == LEFT  # wait at the locked door
    assert heuristic_move(expected(7, False, {2: 1})) == LEFT  # the door is open: everyone leaves
    assert heuristic_move(expected(8, False, {})) == LEFT


def test_example_config() -> None:
    config = yaml.safe_load(example_config("DungeonEscape").read_text())
    settings = config["behaviors"]["DungeonEscape"]
    assert settings["trainer_type"] == "poca"
    assert settings["hyperparameters"] == {
        "batch_size": 512,
        "buffer_size": 5120,
        "learning_rate": 0.0003,
        "beta": 0.01,
        "epsilon": 0.2,
        "lambd": 0.95,
        "num_epoch": 3,
        "learning_rate_schedule": "constant",
    }
    assert settings["network_settings"] == {"normalize": False, "hidden_units": 128, "num_layers": 2}
    assert settings["reward_signals"] == {"extrinsic": {"gamma": 0.99, "strength": 1.0}}
    assert (settings["keep_checkpoints"], settings["max_steps"]) == (5, 300000)
    assert (settings["time_horizon"], settings["summary_freq"]) == (64, 10000)


@pytest.mark.parametrize("cells", [(2, 2, 2), (6, 6, 6), (2, 6, 2), (6, 2, 2)])
def test_the_heuristic_escapes_from_the_extreme_placements(cells: tuple[int, int, int]) -> None:
    dungeon = area(seed=5)
    dungeon.reset()
    setup(dungeon, *cells)
    reports = [AgentReport(name, "DungeonEscape?team=0", (dungeon.world.observation(i),)) for i, name in
               enumerate(AGENTS)]  # fmt: skip
    for _ in range(14):
        reports = dungeon.step({r.agent: heuristic(r) for r in reports if not r.done})
        if any(r.group_reward == 1.0 for r in reports):
            return
    pytest.fail(f"the heuristic did not escape from {cells} within 14 steps")
