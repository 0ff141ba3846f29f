"""The Gymnasium adapter in process: space conversion, decision periods, environment parameters, the named scenes
and their example trainer configurations."""

from __future__ import annotations

from typing import Mapping

import gymnasium
import numpy as np
import pytest
import yaml
from gymnasium import spaces

from rayagents.configs.examples import example_config
from rayagents.protocol.side_channels import EnvironmentParametersChannel, SideChannelManager
from rayagents.protocol.side_channels.environment_parameters import EnvironmentParametersReceiver
from rayagents.protocol.side_channels.stats import StatsRecorder
from rayagents.protocol.types import ActionSpec
from rayagents.sims.adapters.decision_period import DecisionPeriodArea, with_decision_period
from rayagents.sims.adapters.gymnasium import GymSceneError, scene_from_id
from rayagents.sims.adapters.parameters import ParameterBinder
from rayagents.sims.adapters.spaces import action_adapter, observation_adapter
from rayagents.sims.scene import AgentAction, AgentReport, Area, AreaContext, SensorKind, sensor_order
from rayagents.sims.scenes import get_scene

GYMNASIUM_SCENES = (
    "CartPole",
    "CartPoleMemory",
    "CartPoleVisual",
    "Pendulum",
    "LunarLander",
    "MountainCar",
    "HalfCheetah",
    "Hopper",
    "Walker2d",
    "Ant",
)


def action(continuous: list[float] = (), discrete: list[int] = ()) -> AgentAction:
    """One agent's action."""
    return AgentAction(np.asarray(continuous, np.float32), np.asarray(discrete, np.int32))


def receiver(**values: float) -> EnvironmentParametersReceiver:
    """A player-side parameters receiver holding ``values``, sent through the real channel encoding."""
    channel, player = EnvironmentParametersChannel(), EnvironmentParametersReceiver()
    for key, value in values.items():
        channel.set_float_parameter(key, value)
    SideChannelManager([player]).process_side_channel_message(
        SideChannelManager([channel]).generate_side_channel_messages()
    )
    return player


# -- observations ---------------------------------------------------------------------------------------------


def test_vector_and_image_boxes() -> None:
    vector = observation_adapter(spaces.Box(-1, 1, (3,)), "test")
    assert [(s.name, s.shape, s.kind) for s in vector.sensors] == [("VectorSensor", (3,), SensorKind.FLOAT)]
    (values,) = vector.observations(np.array([0.5, -1, 1], np.float64))
    assert values.dtype == np.float32 and values.tolist() == [0.5, -1, 1]

    flat = observation_adapter(spaces.Box(0, 1, (2, 3)), "test")  # not an image: flattened
    assert flat.sensors[0].shape == (6,)
    assert observation_adapter(spaces.Box(0, 1, ()), "test").sensors[0].shape == (1,)

    image = observation_adapter(spaces.Box(0, 255, (4, 5, 3), np.uint8), "test")
    assert [(s.name, s.shape, s.kind) for s in image.sensors] == [("CameraSensor", (3, 4, 5), SensorKind.PNG)]
    raw = np.arange(60, dtype=np.uint8).reshape(4, 5, 3)
    (chw,) = image.observations(raw)
    assert chw.shape == (3, 4, 5) and chw.dtype == np.float32 and chw.flags.c_contiguous
    assert chw[2, 1, 3] == pytest.approx(raw[1, 3, 2] / 255.0)
    assert observation_adapter(spaces.Box(0, 255, (4, 5, 2), np.uint8), "test").sensors[0].kind == SensorKind.FLOAT


def test_discrete_observations_are_one_hot() -> None:
    adapter = observation_adapter(spaces.Discrete(3, start=-1), "test")
    assert adapter.sensors[0].shape == (3,)
    assert adapter.observations(np.int64(0))[0].tolist() == [0, 1, 0]
    multi = observation_adapter(spaces.MultiDiscrete([2, 3]), "test")
    assert multi.observations(np.array([1, 2]))[0].tolist() == [0, 1, 0, 0, 1]
    binary = observation_adapter(spaces.MultiBinary(3), "test")
    assert binary.observations(np.array([1, 0, 1], np.int8))[0].tolist() == [1, 0, 1]


def test_dict_and_tuple_give_one_sensor_per_part_named_by_path() -> None:
    space = spaces.Dict(
        {
            "velocity": spaces.Box(-1, 1, (2,)),
            "Camera": spaces.Box(0, 255, (8, 8, 1), np.uint8),
            "inventory": spaces.Tuple((spaces.Discrete(2), spaces.Box(0, 1, (1,)))),
        }
    )
    adapter = observation_adapter(space, "test")
    names = [s.name for s in adapter.sensors]
    assert sorted(names) == sorted(["velocity", "Camera", "inventory/0", "inventory/1"])
    by_name = dict(zip(names, adapter.observations(space.sample())))
    assert by_name["Camera"].shape == (1, 8, 8) and by_name["inventory/0"].sum() == 1.0
    assert [names[i] for i in sensor_order(adapter.sensors)] == ["Camera", "inventory/0", "inventory/1", "velocity"]
    top = observation_adapter(spaces.Tuple((spaces.Box(0, 1, (2,)), spaces.Discrete(4))), "test")
    assert [(s.name, s.shape) for s in top.sensors] == [("0", (2,)), ("1", (4,))]


def test_unsupported_observation_space_names_the_environment() -> None:
    with pytest.raises(ValueError, match="scene 'X'.*Text"):
        observation_adapter(spaces.Dict({"note": spaces.Text(5)}), "scene 'X'")


# -- actions --------------------------------------------------------------------------------------------------


def test_discrete_actions_keep_their_start() -> None:
    adapter = action_adapter(spaces.Discrete(4, start=2), "test")
    assert adapter.spec == ActionSpec.create_discrete((4,))
    assert adapter.to_env(action(discrete=[3])) == 5
    multi = action_adapter(spaces.MultiDiscrete([[2, 3], [4, 5]], start=[[1, 1], [0, 0]]), "test")
    assert multi.spec.discrete_branches == (2, 3, 4, 5)
    assert multi.to_env(action(discrete=[1, 2, 3, 4])).tolist() == [[2, 3], [3, 4]]
    binary = action_adapter(spaces.MultiBinary(3), "test")
    assert binary.spec.discrete_branches == (2, 2, 2)
    assert binary.to_env(action(discrete=[1, 0, 1])).tolist() == [1, 0, 1]


def test_box_actions_are_clipped_then_mapped_onto_the_bounds() -> None:
    box = spaces.Box(np.array([-2, 0, -np.inf], np.float32), np.array([2, 10, np.inf], np.float32), dtype=np.float32)
    adapter = action_adapter(box, "test")
    assert adapter.spec == ActionSpec.create_continuous(3)
    mapped = adapter.to_env(action(continuous=[0.5, -1.0, 7.5]))
    assert mapped.dtype == np.float32 and mapped.tolist() == [1.0, 0.0, 7.5]  # unbounded entries pass through
    assert adapter.to_env(action(continuous=[4.0, 2.0, -3.0])).tolist() == [2.0, 10.0, -3.0]
    shaped = action_adapter(spaces.Box(-1, 1, (2, 2)), "test")
    assert shaped.spec.continuous_size == 4 and shaped.to_env(action(continuous=[0, 0, 0, 1])).shape == (2, 2)


def test_tuple_and_dict_actions_are_hybrid() -> None:
    space = spaces.Tuple(
        (spaces.Discrete(3), spaces.Box(0, 4, (2,)), spaces.MultiDiscrete([2, 2]), spaces.Box(-1, 1, (1,)))
    )
    adapter = action_adapter(space, "test")
    assert adapter.spec == ActionSpec.create_hybrid(3, (3, 2, 2))
    choice, box, multi, last = adapter.to_env(action(continuous=[-1.0, 1.0, 0.5], discrete=[2, 1, 0]))
    assert choice == 2 and box.tolist() == [0.0, 4.0] and multi.tolist() == [1, 0] and last.tolist() == [0.5]
    named = action_adapter(spaces.Dict({"steer": spaces.Box(-1, 1, (1,)), "gear": spaces.Discrete(5)}), "test")
    taken = named.to_env(action(continuous=[0.25], discrete=[4]))
    assert set(taken) == {"steer", "gear"} and taken["gear"] == 4 and taken["steer"].tolist() == [0.25]
    with pytest.raises(ValueError, match="can't be taken"):
        action_adapter(spaces.Text(3), "test")


# -- decision period ------------------------------------------------------------------------------------------


class Walker(Area):
    """Two agents; ``b`` requests a decision every step, ``a`` too and ends its episode every 5th step."""

    def __init__(self) -> None:
        self.received: list[dict[str, float]] = []
        self._t = 0

    def reset(self) -> list[AgentReport]:
        self._t = 0
        return [self._report("a"), self._report("b")]

    def step(self, actions: Mapping[str, AgentAction]) -> list[AgentReport]:
        self.received.append({agent: float(a.continuous[0]) for agent, a in actions.items()})
        self._t += 1
        if self._t % 5 == 0:
            return [self._report("a", reward=1.0, done=True), self._report("a"), self._report("b", reward=1.0)]
        return [self._report("a", reward=1.0), self._report("b", reward=1.0)]

    def _report(self, agent: str, reward: float = 0.0, done: bool = False) -> AgentReport:
        observations = (np.array([self._t], np.float32),)
        return AgentReport(agent, "W?team=0", observations, reward=reward, done=done, group_reward=reward / 2)


def test_decision_period_reports_on_every_kth_step_episode_starts_and_ends() -> None:
    inner = Walker()
    area = DecisionPeriodArea(inner, 3)
    reports = area.reset()
    assert [r.agent for r in reports] == ["a", "b"]
    seen: list[tuple[int, str, float, float, bool]] = []
    for t in range(1, 9):
        actions = {r.agent: action(continuous=[float(t)]) for r in reports if not r.done}
        reports = area.step(actions)
        seen += [(t, r.agent, r.reward, r.group_reward, r.done) for r in reports]
    assert seen == [
        (3, "a", 3.0, 1.5, False),
        (3, "b", 3.0, 1.5, False),
        (5, "a", 2.0, 1.0, True),  # the episode end reports at once, with the rewards since the last report
        (5, "a", 0.0, 0.0, False),  # and the next episode's first request goes to the trainer
        (6, "a", 1.0, 0.5, False),  # then the agent decides on the common steps again
        (6, "b", 3.0, 1.5, False),
    ]
    # Between decisions the agents act on their last decision's action.
    assert [r["a"] for r in inner.received] == [1.0, 1.0, 1.0, 4.0, 4.0, 6.0, 7.0, 7.0]
    assert [r["b"] for r in inner.received] == [1.0, 1.0, 1.0, 4.0, 4.0, 4.0, 7.0, 7.0]
    assert area.reset()[0].reward == 0.0 and area.period == 3


def test_with_decision_period_wraps_a_scenes_areas() -> None:
    scene = get_scene("CartPole")
    assert with_decision_period(scene, 1) is scene
    context = AreaContext(0, 1, 0, EnvironmentParametersReceiver(), StatsRecorder())
    area = with_decision_period(scene, 4).make_area(context)
    assert isinstance(area, DecisionPeriodArea) and area.period == 4
    area.close()
    with pytest.raises(ValueError, match="decision period"):
        with_decision_period(scene, 0)


# -- environment parameters -----------------------------------------------------------------------------------


def test_cartpole_parameters_and_their_derived_quantities() -> None:
    env = gymnasium.make("CartPole-v1")
    binder = ParameterBinder(env, "test")
    applied = binder.apply(receiver(length=1.5, masspole=0.2, screen=3.0, nothing_here=1.0))
    assert applied == {"length": 1.5, "masspole": pytest.approx(0.2)}  # 'screen' is not a number attribute
    pole = env.unwrapped
    assert pole.length == 1.5 and pole.polemass_length == pytest.approx(0.3)
    assert pole.total_mass == pytest.approx(1.2)


def test_lunar_lander_gravity_reaches_the_box2d_world_and_bools_are_set() -> None:
    env = gymnasium.make("LunarLander-v3")
    ParameterBinder(env, "test").apply(receiver(gravity=-3.0, enable_wind=1.0))
    assert env.unwrapped.world.gravity[1] == pytest.approx(-3.0) and env.unwrapped.enable_wind is True


def test_mujoco_warnings_go_to_the_log_not_to_the_working_directory(
    tmp_path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    scene = get_scene("HalfCheetah")  # its model uses a deprecated compiler attribute: MuJoCo warns
    assert scene.behaviors[0].action_spec.continuous_size == 6
    assert not (tmp_path / "MUJOCO_LOG.TXT").exists()
    assert any(record.name == "mujoco" and "settotalmass" in record.getMessage() for record in caplog.records)


def test_mujoco_model_parameters() -> None:
    env = gymnasium.make("Hopper-v5")
    model = env.unwrapped.model
    mass, friction = model.body_mass.copy(), model.geom_friction[:, 0].copy()
    binder = ParameterBinder(env, "test")
    binder.apply(receiver(gravity=3.5, timestep=0.004, mass_scale=2.0, friction_scale=0.5, _ctrl_cost_weight=0.0))
    assert model.opt.gravity[2] == pytest.approx(-3.5) and model.opt.timestep == pytest.approx(0.004)
    np.testing.assert_allclose(model.body_mass, mass * 2.0)
    np.testing.assert_allclose(model.geom_friction[:, 0], friction * 0.5)
    assert env.unwrapped._ctrl_cost_weight == 0.0
    binder.apply(receiver(mass_scale=1.0))  # relative to the model as loaded, not compounding
    np.testing.assert_allclose(model.body_mass, mass)


# -- scenes and configurations --------------------------------------------------------------------------------


def test_gym_prefix_builds_any_registered_id_with_options() -> None:
    scene = get_scene("gym:MountainCarContinuous-v0?decision_period=2&max_episode_steps=7")
    assert scene.name == "gym:MountainCarContinuous-v0?decision_period=2&max_episode_steps=7"
    assert [b.name for b in scene.behaviors] == ["MountainCarContinuous-v0"]
    context = AreaContext(0, 1, 0, EnvironmentParametersReceiver(), StatsRecorder())
    area = scene.make_area(context)
    reports, ends = area.reset(), []
    for _ in range(7):
        reports = area.step({r.agent: action(continuous=[1.0]) for r in reports if not r.done})
        ends += [r for r in reports if r.done]
    assert len(ends) == 1 and ends[0].max_step_reached  # 7 steps: cut off
    area.close()
    for bad in ("gym:NoSuchEnv-v0", "gym:CartPole-v1?decision_period=0", "gym:CartPole-v1?oops"):
        with pytest.raises(GymSceneError, match="could not be built from Gymnasium"):
            get_scene(bad)
    with pytest.raises(GymSceneError, match="no_module_here"):
        scene_from_id("no_module_here:Env-v0")


@pytest.mark.parametrize("name", GYMNASIUM_SCENES)
def test_named_scene_steps_and_has_an_example_config(name: str) -> None:
    scene = get_scene(name)
    (behavior,) = scene.behaviors
    assert behavior.name == name and scene.description
    stats = StatsRecorder()
    area = scene.make_area(AreaContext(0, 1, 3, EnvironmentParametersReceiver(), stats))
    try:
        reports = area.reset()
        for _ in range(3):
            assert all(len(r.observations) == len(behavior.sensors) for r in reports)
            for report in reports:
                for sensor, values in zip(behavior.sensors, report.observations):
                    assert values.shape == sensor.shape and values.dtype == np.float32
            spec = behavior.action_spec
            random = spec.random_action(1, np.random.default_rng(0))
            reports = area.step({r.agent: AgentAction(random.continuous[0], random.discrete[0]) for r in reports})
    finally:
        area.close()

    text = example_config(name).read_text()
    config = yaml.safe_load(text)
    assert list(config) == ["behaviors"] and list(config["behaviors"]) == [name]
    settings = config["behaviors"][name]
    trainer = settings["trainer_type"]
    assert trainer in ("ppo", "sac")
    assert set(settings) <= TRAINER_KEYS and {"hyperparameters", "network_settings", "reward_signals"} <= set(settings)
    assert set(settings["hyperparameters"]) <= HYPERPARAMETER_KEYS[trainer]
    assert set(settings["network_settings"]) <= NETWORK_KEYS
    assert "extrinsic" in settings["reward_signals"] and set(settings["reward_signals"]) <= {"extrinsic", "curiosity"}
    for key in ("max_steps", "time_horizon", "summary_freq"):
        assert isinstance(settings[key], int) and settings[key] > 0
    hyper = settings["hyperparameters"]
    assert hyper["buffer_size"] >= hyper["batch_size"]
    memory = settings["network_settings"].get("memory")
    if name == "CartPoleMemory":
        assert memory and hyper["batch_size"] % memory["sequence_length"] == 0 and memory["memory_size"] % 2 == 0
    if name == "CartPoleVisual":
        _, height, width = behavior.sensors[0].shape
        assert settings["network_settings"]["vis_encode_type"] == "simple" and min(height, width) >= 20


TRAINER_KEYS = {
    "trainer_type",
    "hyperparameters",
    "network_settings",
    "reward_signals",
    "init_path",
    "keep_checkpoints",
    "checkpoint_interval",
    "even_checkpoints",
    "max_steps",
    "time_horizon",
    "summary_freq",
    "threaded",
    "self_play",
    "behavioral_cloning",
}
"""The keys of an ML-Agents behavior's settings."""
HYPERPARAMETER_KEYS = {
    "ppo": {
        "batch_size", "buffer_size", "learning_rate", "learning_rate_schedule", "beta", "epsilon", "lambd",
        "num_epoch", "shared_critic", "beta_schedule", "epsilon_schedule",
    },
    "sac": {
        "batch_size", "buffer_size", "learning_rate", "learning_rate_schedule", "buffer_init_steps", "tau",
        "steps_per_update", "save_replay_buffer", "init_entcoef", "reward_signal_steps_per_update",
    },
}
"""The hyperparameters ML-Agents knows, per trainer."""
NETWORK_KEYS = {
    "normalize", "hidden_units", "num_layers", "vis_encode_type", "memory", "goal_conditioning_type", "deterministic"
}
"""The keys of ML-Agents' network_settings."""
