"""The PettingZoo adapter in process: roles, behaviors from spaces, turns, masks, accumulated rewards, groups,
episode ends and resets, seeding and statistics, on two small games written here and on the named scenes.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytest
import yaml
from gymnasium import spaces
from pettingzoo.utils import AECEnv, ParallelEnv
from pettingzoo.utils import AgentSelector

from rayagents.configs.examples import example_config
from rayagents.protocol.side_channels import SideChannelManager, StatsSideChannel
from rayagents.protocol.side_channels.environment_parameters import EnvironmentParametersReceiver
from rayagents.protocol.side_channels.stats import StatsRecorder
from rayagents.sims.adapters.pettingzoo import (
    AgentRole,
    Cooperation,
    PettingZooGame,
    agent_prefix,
    module_game,
    pettingzoo_scene,
    role_by_prefix,
    roles_from,
)
from rayagents.sims.scene import AgentAction, AgentReport, Area, AreaContext, Scene
from rayagents.sims.scenes import get_scene



class TakeTurns(AECEnv):
    """Two players move in turn (red first). A move of ``a`` gives the mover ``a`` and the other player 10.
    Action 2 is illegal on the second player's moves; after ``limit`` moves the game is cut off."""

    metadata = {"name": "take_turns_v0"}

    def __init__(self, limit: int = 5) -> None:
        super().__init__()
        self.limit = limit
        self.possible_agents = ["red_0", "blue_0"]
        self._obs = spaces.Dict(
            {"observation": spaces.Box(0, 100, (2,), np.float32), "action_mask": spaces.Box(0, 1, (3,), np.int8)}
        )

    def observation_space(self, agent: str) -> spaces.Space:
        return self._obs

    def action_space(self, agent: str) -> spaces.Space:
        return spaces.Discrete(3)

    def observe(self, agent: str) -> dict:
        mask = np.array([1, 1, 0 if agent == "blue_0" else 1], np.int8)
        return {"observation": np.array([self.moves, self.seed_seen], np.float32), "action_mask": mask}

    def reset(self, seed: int | None = None, options: dict | None = None) -> None:
        if seed is not None:
            self.seed_seen = seed
        elif not hasattr(self, "seed_seen"):
            self.seed_seen = -1
        self.agents = list(self.possible_agents)
        self.moves = 0
        self.played: list[tuple[str, int]] = []
        self.rewards = {a: 0.0 for a in self.agents}
        self._cumulative_rewards = {a: 0.0 for a in self.agents}
        self.terminations = {a: False for a in self.agents}
        self.truncations = {a: False for a in self.agents}
        self.infos = {a: {} for a in self.agents}
        self._selector = AgentSelector(self.agents)
        self.agent_selection = self._selector.next()

    def step(self, action: Any) -> None:
        if self.terminations[self.agent_selection] or self.truncations[self.agent_selection]:
            self._was_dead_step(action)
            return
        mover = self.agent_selection
        assert self.observe(mover)["action_mask"][action] == 1, f"{mover} played illegal {action}"
        self.played.append((mover, int(action)))
        other = next(a for a in self.agents if a != mover)
        self._cumulative_rewards[mover] = 0
        self.rewards = {mover: float(action), other: 10.0}
        self.moves += 1
        if self.moves >= self.limit:
            self.truncations = {a: True for a in self.agents}
        self.agent_selection = self._selector.next()
        self._accumulate_rewards()


class Race(ParallelEnv):
    """Two runners and a chaser, every one acting each step. ``runner_0`` finishes (terminates) after 2 steps,
    the others are cut off after 4. Rewards per step: runner_0 1, runner_1 3, chaser_0 -1; the chaser's info
    carries a mask that disables its action 1."""

    metadata = {"name": "race_v0"}

    def __init__(self) -> None:
        self.possible_agents = ["runner_0", "runner_1", "chaser_0"]
        self.agents: list[str] = []

    def observation_space(self, agent: str) -> spaces.Space:
        return spaces.Box(-10, 10, (1,), np.float32)

    def action_space(self, agent: str) -> spaces.Space:
        return spaces.Discrete(2)

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        self.agents = list(self.possible_agents)
        self.t = 0
        self.actions: list[dict] = []
        return {a: np.zeros(1, np.float32) for a in self.agents}, self._infos()

    def _infos(self) -> dict:
        return {a: ({"action_mask": np.array([1, 0], np.int8)} if a == "chaser_0" else {}) for a in self.agents}

    def step(self, actions: dict) -> tuple[dict, dict, dict, dict, dict]:
        assert set(actions) == set(self.agents), f"actions for {sorted(actions)}, agents {self.agents}"
        self.actions.append(dict(actions))
        self.t += 1
        observations = {a: np.full(1, self.t, np.float32) for a in self.agents}
        rewards = {"runner_0": 1.0, "runner_1": 3.0, "chaser_0": -1.0}
        rewards = {a: rewards[a] for a in self.agents}
        terminations = {a: a == "runner_0" and self.t >= 2 for a in self.agents}
        truncations = {a: self.t >= 4 for a in self.agents}
        infos = self._infos()
        self.agents = [a for a in self.agents if not (terminations[a] or truncations[a])]
        return observations, rewards, terminations, truncations, infos


def context(index: int = 0, seed: int = 0, stats: StatsRecorder | None = None) -> AreaContext:
    """The context the academy gives area ``index``."""
    return AreaContext(index, 2, seed + index, EnvironmentParametersReceiver(), stats or StatsRecorder())


def act(*discrete: int) -> AgentAction:
    """A discrete action."""
    return AgentAction(np.zeros(0, np.float32), np.array(discrete, np.int32))


def recorded(stats: StatsRecorder) -> dict:
    """What the trainer end reads of the statistics ``stats`` sent."""
    trainer = StatsSideChannel()
    sent = SideChannelManager([stats]).generate_side_channel_messages()
    SideChannelManager([trainer]).process_side_channel_message(sent)
    return {key: [value for value, _ in values] for key, values in trainer.get_and_reset_stats().items()}


def take_turns_scene(limit: int = 5, cooperation: Cooperation | None = None) -> Scene:
    return pettingzoo_scene(
        PettingZooGame(
            "TakeTurns",
            "test",
            lambda: TakeTurns(limit),
            roles=roles_from({"red_0": AgentRole("Player", 0), "blue_0": AgentRole("Player", 1)}),
            cooperation=cooperation,
        )
    )


# -- roles and behaviors ------------------------------------------------------------------------------------


def test_roles_by_full_name_then_by_kind() -> None:
    assert agent_prefix("adversary_12") == "adversary" and agent_prefix("pursuer") == "pursuer"
    assert agent_prefix("red_team_0") == "red_team"
    assert role_by_prefix("agent_3") == AgentRole("agent", 0)
    role = roles_from(
        {"adversary": AgentRole("Predator"), "agent_0": AgentRole("Leader", 2), "agent": AgentRole("Prey")}
    )
    assert role("adversary_2") == AgentRole("Predator")
    assert role("agent_0") == AgentRole("Leader", 2) and role("agent_1") == AgentRole("Prey")
    with pytest.raises(KeyError, match="runner_0.*adversary, agent, agent_0"):
        role("runner_0")


def test_behaviors_come_from_the_roles_and_spaces() -> None:
    scene = take_turns_scene()
    assert [b.qualified_name for b in scene.behaviors] == ["Player?team=0", "Player?team=1"]
    behavior = scene.behaviors[0]
    assert [(s.name, s.shape) for s in behavior.sensors] == [("VectorSensor", (2,))]  # the mask is no sensor
    assert behavior.action_spec.discrete_branches == (3,)
    race = pettingzoo_scene(PettingZooGame("Race", "test", Race))
    assert [b.qualified_name for b in race.behaviors] == ["runner?team=0", "chaser?team=0"]


def test_agents_of_one_behavior_must_sense_and_act_alike() -> None:
    class Uneven(Race):
        def action_space(self, agent: str) -> spaces.Space:
            return spaces.Discrete(3 if agent == "runner_1" else 2)

    with pytest.raises(ValueError, match="'runner_0' and 'runner_1' play behavior 'runner\\?team=0'"):
        pettingzoo_scene(PettingZooGame("Uneven", "test", Uneven))
    scene = pettingzoo_scene(PettingZooGame("Uneven", "test", Uneven, roles=lambda a: AgentRole(a)))
    assert len(scene.behaviors) == 3


# -- AEC: turns, masks, accumulated rewards, ends --------------------------------------------------------------


def test_aec_turns_rewards_between_decisions_and_a_cut_off_game() -> None:
    stats = StatsRecorder()
    area = take_turns_scene(limit=3).make_area(context(seed=7, stats=stats))
    first = area.reset()
    assert [(r.agent, r.behavior, r.reward) for r in first] == [("red_0", "Player?team=0", 0.0)]
    np.testing.assert_array_equal(first[0].observations[0], [0, 7])  # seeded with the area's seed
    assert first[0].action_mask is not None and not first[0].action_mask.any()
    (blue,) = area.step({"red_0": act(1)})
    assert (blue.agent, blue.behavior, blue.reward) == ("blue_0", "Player?team=1", 10.0)
    np.testing.assert_array_equal(blue.action_mask, [False, False, True])  # PettingZoo 0 = disabled
    (red,) = area.step({"blue_0": act(0)})
    # red got 1 for its own move and 10 while blue moved: everything since red's previous decision
    assert (red.agent, red.reward) == ("red_0", 11.0)
    reports = area.step({"red_0": act(2)})  # the third move cuts the game off
    assert [(r.agent, r.done, r.max_step_reached) for r in reports] == [
        ("blue_0", True, True),
        ("red_0", True, True),
        ("red_0", False, False),  # the next game starts in the same step
    ]
    assert reports[0].reward == 10.0 and reports[1].reward == 2.0
    assert reports[0].action_mask is None and reports[1].action_mask is None
    np.testing.assert_array_equal(reports[2].observations[0], [0, 7])
    assert recorded(stats) == {"TakeTurns/Episode Length": [3.0]}


def test_aec_reward_of_the_mover_comes_with_its_next_decision() -> None:
    area = take_turns_scene(limit=10).make_area(context())
    area.reset()
    area.step({"red_0": act(2)})  # red gets 2, blue 10
    (red,) = area.step({"blue_0": act(1)})  # blue gets 1, red 10
    assert red.reward == pytest.approx(12.0)
    (blue,) = area.step({"red_0": act(0)})  # red 0, blue 10
    assert blue.reward == pytest.approx(11.0)


def test_a_masked_action_from_the_trainer_is_replaced_by_a_legal_one(caplog: pytest.LogCaptureFixture) -> None:
    scene = take_turns_scene(limit=20)
    area = scene.make_area(context())
    area.reset()
    area.step({"red_0": act(0)})
    with caplog.at_level(logging.WARNING):
        for _ in range(5):
            area.step({"blue_0": act(2)})  # illegal for blue: the game would assert
            area.step({"red_0": act(2)})  # legal for red
    env: TakeTurns = area._env.unwrapped  # type: ignore[attr-defined]
    blue_moves = [a for who, a in env.played if who == "blue_0"]
    assert len(blue_moves) == 5 and 2 not in blue_moves
    assert [a for who, a in env.played if who == "red_0"][1:] == [2] * 5
    warnings = [r for r in caplog.records if "disabled action" in r.getMessage()]
    assert len(warnings) == 1 and "blue_0" in warnings[0].getMessage()


def test_connect_four_masks_full_columns() -> None:
    area = get_scene("ConnectFour").make_area(context())
    (report,) = area.reset()
    assert report.observations[0].shape == (2, 6, 7)  # the board as a grid sensor: (pieces of the mover, of the other)
    teams = []
    for _ in range(6):
        teams.append(report.behavior)
        assert not report.action_mask[0]
        (report,) = area.step({report.agent: act(0)})
    assert teams == ["ConnectFour?team=0", "ConnectFour?team=1"] * 3
    np.testing.assert_array_equal(report.action_mask, [True] + [False] * 6)
    # the board as seen by the player to move: its own pieces in channel 0, the opponent's in channel 1
    board = report.observations[0]  # (channel, row, column)
    assert board[:, :, 0].sum() == 6 and board[:, :, 1:].sum() == 0


# -- Parallel: every agent each step, early ends, info masks, groups --------------------------------------------


def test_parallel_agents_that_end_early_wait_for_the_reset() -> None:
    stats = StatsRecorder()
    area = pettingzoo_scene(PettingZooGame("Race", "test", Race, stat_prefix="race")).make_area(context(stats=stats))
    first = area.reset()
    assert [r.agent for r in first] == ["runner_0", "runner_1", "chaser_0"]
    assert first[2].action_mask.tolist() == [False, True] and first[0].action_mask is None  # the info's mask
    everyone = {a: act(0) for a in ("runner_0", "runner_1", "chaser_0")}
    assert [r.done for r in area.step(everyone)] == [False, False, False]
    second = area.step(everyone)
    assert [(r.agent, r.done, r.max_step_reached) for r in second] == [
        ("runner_0", True, False),
        ("runner_1", False, False),
        ("chaser_0", False, False),
    ]
    third = area.step({"runner_1": act(1), "chaser_0": act(1)})  # chaser's 1 is masked → replaced by 0
    assert [r.agent for r in third] == ["runner_1", "chaser_0"]
    env: Race = area._env  # type: ignore[attr-defined]
    assert env.actions[-1] == {"runner_1": 1, "chaser_0": 0}
    fourth = area.step({"runner_1": act(0), "chaser_0": act(0)})
    assert [(r.agent, r.done, r.max_step_reached) for r in fourth] == [
        ("runner_1", True, True),
        ("chaser_0", True, True),
        ("runner_0", False, False),
        ("runner_1", False, False),
        ("chaser_0", False, False),
    ]
    assert [r.reward for r in fourth[:2]] == [3.0, -1.0]
    assert recorded(stats) == {"race/Episode Length": [4.0]}


def test_a_cooperative_area_shares_a_group_and_the_mean_reward() -> None:
    scene = pettingzoo_scene(PettingZooGame("Race", "test", Race, cooperation=Cooperation()))
    areas = [scene.make_area(context(index)) for index in range(2)]
    for index, area in enumerate(areas):
        assert {r.group_id for r in area.reset()} == {index + 1}
    reports = areas[1].step({a: act(0) for a in ("runner_0", "runner_1", "chaser_0")})
    mean = (1.0 + 3.0 - 1.0) / 3
    assert [r.group_reward for r in reports] == pytest.approx([mean] * 3)
    assert [r.reward + r.group_reward for r in reports] == pytest.approx([1.0, 3.0, -1.0])
    assert {r.group_id for r in reports} == {2}


def test_groups_per_behavior_have_distinct_ids_in_every_area() -> None:
    scene = pettingzoo_scene(
        PettingZooGame("Race", "test", Race, cooperation=Cooperation(group_per_behavior=True))
    )
    ids = [{r.agent: r.group_id for r in scene.make_area(context(index)).reset()} for index in range(2)]
    assert ids == [
        {"runner_0": 1, "runner_1": 1, "chaser_0": 2},
        {"runner_0": 3, "runner_1": 3, "chaser_0": 4},
    ]


def test_aec_group_rewards_accumulate_until_the_agents_report() -> None:
    area = take_turns_scene(limit=10, cooperation=Cooperation()).make_area(context())
    area.reset()
    (blue,) = area.step({"red_0": act(2)})  # step rewards red 2, blue 10: each agent's share 6
    assert blue.group_reward == pytest.approx(6.0) and blue.reward == pytest.approx(10.0 - 6.0)
    (red,) = area.step({"blue_0": act(1)})  # red 10, blue 1: share 5.5; red's pending: 6 + 5.5
    assert red.group_reward == pytest.approx(11.5) and red.reward + red.group_reward == pytest.approx(12.0)


def test_simple_spread_group_reward_is_the_global_part() -> None:
    scene = get_scene("SimpleSpread")
    area = scene.make_area(context(index=1))
    first = area.reset()
    assert {r.group_id for r in first} == {2} and len(first) == 3
    reports = area.step({r.agent: act(0) for r in first})
    env = area._env.unwrapped  # type: ignore[attr-defined]
    expected = 0.5 * env.scenario.global_reward(env.world)
    assert [r.group_reward for r in reports] == pytest.approx([expected] * 3)
    assert expected < 0


def test_areas_are_seeded_with_their_seed() -> None:
    scene = get_scene("SimpleTag")

    def first_observations(seed: int) -> np.ndarray:
        area: Area = scene.make_area(context(seed=seed))
        try:
            return np.concatenate([r.observations[0] for r in area.reset()])
        finally:
            area.close()

    np.testing.assert_array_equal(first_observations(3), first_observations(3))
    assert not np.array_equal(first_observations(3), first_observations(4))


# -- module scenes and example configurations --------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:The old environment creation API:DeprecationWarning")
def test_module_and_registry_scenes() -> None:
    tictactoe = get_scene("pettingzoo:pettingzoo.classic.tictactoe_v3")
    assert tictactoe.name == "pettingzoo:pettingzoo.classic.tictactoe_v3"
    assert [b.qualified_name for b in tictactoe.behaviors] == ["player?team=0"]
    simple = get_scene("pettingzoo:mpe2.simple_v3")
    assert "parallel" in simple.description and [b.name for b in simple.behaviors] == ["agent"]
    registry = get_scene("pettingzoo:classic/tictactoe-v3")
    assert registry.behaviors == tictactoe.behaviors
    reports: list[AgentReport] = registry.make_area(context()).reset()
    assert len(reports) == 1 and reports[0].action_mask is not None
    with pytest.raises(ValueError, match="pettingzoo:<module>"):
        module_game("pettingzoo:")
    with pytest.raises(ModuleNotFoundError, match="no_such_game"):
        get_scene("pettingzoo:no_such_game")
    with pytest.raises(ValueError, match="registry has no environment 'classic/nothing-v1'"):
        get_scene("pettingzoo:classic/nothing-v1")


@pytest.mark.parametrize(
    "scene, trainers",
    [
        ("ConnectFour", {"ConnectFour": "ppo"}),
        ("SimpleSpread", {"SimpleSpread": "poca"}),
        ("SimpleTag", {"Predator": "ppo", "Prey": "ppo"}),
    ],
)
def test_example_configurations_name_the_scene_behaviors(scene: str, trainers: dict[str, str]) -> None:
    config = yaml.safe_load(example_config(scene).read_text())
    assert set(config) == {"behaviors"}
    behaviors = config["behaviors"]
    assert {name: settings["trainer_type"] for name, settings in behaviors.items()} == trainers
    assert set(behaviors) == {b.name for b in get_scene(scene).behaviors}
    for settings in behaviors.values():
        assert settings["hyperparameters"]["batch_size"] <= settings["hyperparameters"]["buffer_size"]
        assert "extrinsic" in settings["reward_signals"]
    assert ("self_play" in behaviors.get("ConnectFour", {})) == (scene == "ConnectFour")
