"""The Gather scene in process: its spec, its rules (reward on touching, time penalty, episode ends), the buffer
sensor's zero rows, determinism under the seed, and its example trainer config."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from rayagents.configs.examples import example_config
from rayagents.protocol.side_channels import EnvironmentParametersChannel, SideChannelManager, StatsSideChannel
from rayagents.protocol.side_channels.environment_parameters import EnvironmentParametersReceiver
from rayagents.protocol.side_channels.stats import StatsRecorder
from rayagents.protocol.types import DimensionProperty
from rayagents.sims.messages import default_dimension_properties
from rayagents.sims.scene import AgentAction, AgentReport, AreaContext, sensor_order
from rayagents.sims.scenes import example_config_name, get_scene
from rayagents.sims.scenes.gather import (
    AGENT,
    MAX_PELLETS,
    MAX_STEPS,
    TIME_PENALTY,
    TOUCH_DISTANCE,
    GatherArea,
    greedy_move,
    heuristic,
)

STAY, LEFT, RIGHT, DOWN, UP = range(5)


def area(seed: int = 0, stats: StatsRecorder | None = None, **parameters: float) -> GatherArea:
    channel, receiver = EnvironmentParametersChannel(), EnvironmentParametersReceiver()
    for key, value in parameters.items():
        channel.set_float_parameter(key, value)
    SideChannelManager([receiver]).process_side_channel_message(
        SideChannelManager([channel]).generate_side_channel_messages()
    )
    made = get_scene("Gather").make_area(AreaContext(0, 1, seed, receiver, stats or StatsRecorder()))
    assert isinstance(made, GatherArea)
    return made


def move(action: int) -> dict[str, AgentAction]:
    return {AGENT: AgentAction(np.zeros(0, np.float32), np.array([action], np.int32))}


def present_rows(report: AgentReport) -> int:
    """The buffer's non-zero rows, checking that they come first and every other row is all zeros."""
    buffer = report.observations[0]
    nonzero = np.any(buffer != 0, axis=1)
    count = int(nonzero.sum())
    assert nonzero[:count].all() and not nonzero[count:].any(), buffer
    assert np.all(buffer[:count, 3] == 1.0) and np.all(buffer[:count].sum(axis=1) > 0)
    return count


def test_spec_has_a_variable_length_buffer_and_a_vector() -> None:
    scene = get_scene("Gather")
    (behavior,) = scene.behaviors
    assert behavior.qualified_name == "Gather?team=0" and scene.heuristic is not None
    buffer, vector = behavior.sensors
    assert (buffer.name, buffer.shape) == ("BufferSensor", (MAX_PELLETS, 4))
    assert default_dimension_properties(buffer) == (int(DimensionProperty.VARIABLE_SIZE), int(DimensionProperty.NONE))
    assert (vector.name, vector.shape) == ("VectorSensor", (5,))
    assert sensor_order(behavior.sensors) == (0, 1)  # the wire's order is the area's
    assert behavior.action_spec.continuous_size == 0 and behavior.action_spec.discrete_branches == (5,)
    assert example_config_name("Gather") == "configs/ppo/Gather.yaml"


def test_reward_on_touching_a_pellet_which_becomes_a_zero_row() -> None:
    gather = area()
    gather.reset()
    world = gather.world
    world.position = np.array([0.0, 0.0])
    world.velocity = np.zeros(2)
    world.pellets = np.array([[0.12, 0.0], [-0.5, 0.5], [0.5, -0.5]])
    world.present = np.ones(3, dtype=bool)
    (report,) = gather.step(move(STAY))  # 0.12 < TOUCH_DISTANCE: gathered at once
    assert report.reward == pytest.approx(1.0 - TIME_PENALTY) and not report.done
    assert present_rows(report) == 2
    np.testing.assert_allclose(report.observations[0][0, :2], [-0.25, 0.25], atol=1e-6)  # the next pellet moved up
    assert report.observations[1][4] == pytest.approx(2 / 3)

    (report,) = gather.step(move(STAY))  # nothing within reach: the time penalty alone
    assert report.reward == pytest.approx(-TIME_PENALTY) and present_rows(report) == 2

    world.position = np.array([-0.5, 0.5 - TOUCH_DISTANCE - 0.06])  # a step up brings it 0.03 closer: not enough
    world.velocity = np.zeros(2)
    (report,) = gather.step(move(UP))
    assert report.reward == pytest.approx(-TIME_PENALTY)
    (report,) = gather.step(move(UP))  # 0.03 × 0.7 + 0.03 = 0.051 more: within reach
    assert report.reward == pytest.approx(1.0 - TIME_PENALTY) and present_rows(report) == 1


def test_the_episode_ends_when_all_are_gathered_and_the_next_begins() -> None:
    stats = StatsRecorder()
    gather = area(stats=stats)
    gather.reset()
    world = gather.world
    world.position = np.array([0.0, 0.0])
    world.pellets = np.array([[0.1, 0.0], [0.0, -0.1]])
    world.present = np.ones(2, dtype=bool)
    final, first = gather.step(move(STAY))  # both touched in one step
    assert final.done and not final.max_step_reached
    assert final.reward == pytest.approx(2.0 - TIME_PENALTY)
    assert present_rows(final) == 0 and final.observations[1][4] == 0.0
    assert not first.done and first.reward == 0.0 and present_rows(first) >= 1
    trainer = StatsSideChannel()
    sent = SideChannelManager([stats]).generate_side_channel_messages()
    SideChannelManager([trainer]).process_side_channel_message(sent)
    recorded = trainer.get_and_reset_stats()
    assert recorded["Gather/Episode Length"][0][0] == 1.0
    assert recorded["Gather/Episode Return"][0][0] == pytest.approx(2.0 - TIME_PENALTY)


def test_an_episode_is_cut_off_at_max_steps() -> None:
    gather = area()
    (first,) = gather.reset()
    pellets = present_rows(first)
    for step in range(1, MAX_STEPS + 1):
        reports = gather.step(move(STAY))  # pellets are placed out of reach: standing still gathers none
        assert reports[0].reward == pytest.approx(-TIME_PENALTY)
        if step < MAX_STEPS:
            assert len(reports) == 1 and not reports[0].done and present_rows(reports[0]) == pellets
    final, _ = reports
    assert final.done and final.max_step_reached and present_rows(final) == pellets


def test_walls_stop_the_agent() -> None:
    gather = area()
    gather.reset()
    gather.world.position = np.array([0.99, 0.0])
    gather.world.velocity = np.array([0.1, 0.0])
    gather.step(move(RIGHT))
    assert gather.world.position[0] == 1.0 and gather.world.velocity[0] == 0.0


def test_pellet_counts_vary_between_episodes_with_zero_rows_for_the_rest() -> None:
    gather = area(seed=5)
    counts = [present_rows(gather.reset()[0]) for _ in range(60)]
    assert set(counts) == set(range(1, MAX_PELLETS + 1))
    few = area(seed=5, min_pellets=2, max_pellets=3)
    assert {present_rows(few.reset()[0]) for _ in range(30)} == {2, 3}


def test_deterministic_under_the_seed() -> None:
    def play(seed: int) -> list[np.ndarray]:
        gather, rng = area(seed), np.random.default_rng(0)
        seen = [np.concatenate([o.ravel() for o in gather.reset()[0].observations])]
        for _ in range(400):
            reports = gather.step(move(int(rng.integers(5))))
            seen += [np.concatenate([o.ravel() for o in r.observations]) for r in reports]
        return seen

    a, b, c = play(3), play(3), play(4)
    assert len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])


def test_the_heuristic_gathers_everything() -> None:
    gather = area(seed=1)
    reports = gather.reset()
    ended = []
    while len(ended) < 20:
        reports = gather.step({AGENT: heuristic(reports[-1])})  # the last report is the decision request
        if reports[0].done:
            ended.append(reports[0])
    assert not any(r.max_step_reached for r in ended)
    assert greedy_move(np.zeros((MAX_PELLETS, 4), np.float32)) == STAY


def test_example_config() -> None:
    config = yaml.safe_load(example_config("Gather").read_text())
    settings = config["behaviors"]["Gather"]
    assert settings["trainer_type"] == "ppo"
    assert "memory" not in settings["network_settings"] and "goal_conditioning_type" not in settings["network_settings"]
    assert settings["hyperparameters"]["buffer_size"] % settings["hyperparameters"]["batch_size"] == 0
