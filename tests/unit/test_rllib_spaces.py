"""RLlib's view of ML-Agents behaviors: spaces, the conversions of observations and actions, agent ids, settings."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium import spaces

pytest.importorskip("ray.rllib")

from rayagents.protocol.types import (  # noqa: E402
    ActionSpec,
    BehaviorSpec,
    DimensionProperty,
    ObservationSpec,
    ObservationType,
)
from rayagents.rllib import UnitySettings, agent_id, behavior_name, parse_agent_id, policy_for_agent  # noqa: E402
from rayagents.rllib.spaces import MASK_KEY, OBSERVATIONS_KEY, BehaviorSpaces, action_space  # noqa: E402


def sensor(*shape: int) -> ObservationSpec:
    return ObservationSpec(
        shape=shape,
        dimension_property=(DimensionProperty.NONE,) * len(shape),
        observation_type=ObservationType.DEFAULT,
        name=f"sensor{len(shape)}",
    )


def behavior(action: ActionSpec, *sensors: ObservationSpec, masked: bool = False) -> BehaviorSpaces:
    return BehaviorSpaces(BehaviorSpec(tuple(sensors), action), masked)


def test_action_spaces_of_each_kind() -> None:
    assert action_space(ActionSpec.create_continuous(3)) == spaces.Box(-1.0, 1.0, (3,), np.float32)
    assert action_space(ActionSpec.create_discrete((4,))) == spaces.Discrete(4)
    assert action_space(ActionSpec.create_discrete((3, 2))) == spaces.MultiDiscrete([3, 2])
    hybrid = action_space(ActionSpec.create_hybrid(2, (5,)))
    assert hybrid == spaces.Tuple((spaces.Box(-1.0, 1.0, (2,), np.float32), spaces.Discrete(5)))
    with pytest.raises(ValueError, match="no action"):
        action_space(ActionSpec.create_continuous(0))


def test_one_sensor_is_a_box_and_several_a_tuple() -> None:
    one = behavior(ActionSpec.create_discrete((2,)), sensor(4))
    assert one.observation_space == spaces.Box(-np.inf, np.inf, (4,), np.float32)
    several = behavior(ActionSpec.create_discrete((2,)), sensor(6, 4), sensor(3, 8, 8))
    assert several.observation_space == spaces.Tuple(
        (spaces.Box(-np.inf, np.inf, (6, 4), np.float32), spaces.Box(-np.inf, np.inf, (3, 8, 8), np.float32))
    )
    rows = [np.arange(2 * 24, dtype=np.float32).reshape(2, 6, 4), np.ones((2, 3, 8, 8), np.float32)]
    observation = several.observation(rows, 1, None)
    assert several.observation_space.contains(observation)
    np.testing.assert_array_equal(observation[0], rows[0][1])


def test_masks_become_rllibs_allowed_vector_over_all_branches() -> None:
    masked = behavior(ActionSpec.create_discrete((3, 2)), sensor(5), masked=True)
    space = masked.observation_space
    assert isinstance(space, spaces.Dict) and set(space.spaces) == {MASK_KEY, OBSERVATIONS_KEY}
    assert space[MASK_KEY].shape == (5,)
    # ML-Agents' masks: True = not allowed; two agents, two branches.
    mask = [np.array([[False, True, False], [True, True, False]]), np.array([[False, False], [False, True]])]
    first = masked.observation([np.zeros((2, 5), np.float32)], 0, mask)
    second = masked.observation([np.zeros((2, 5), np.float32)], 1, mask)
    np.testing.assert_array_equal(first[MASK_KEY], [1, 0, 1, 1, 1])
    np.testing.assert_array_equal(second[MASK_KEY], [0, 0, 1, 1, 0])
    assert space.contains(first) and space.contains(second)
    unmasked_agent = masked.observation([np.zeros((1, 5), np.float32)], 0, None)
    np.testing.assert_array_equal(unmasked_agent[MASK_KEY], np.ones(5))
    with pytest.raises(ValueError, match="only discrete actions can be masked"):
        behavior(ActionSpec.create_continuous(2), sensor(5), masked=True).observation_space


def test_actions_become_an_action_tuple_with_zeros_for_agents_without_one() -> None:
    hybrid = behavior(ActionSpec.create_hybrid(2, (3, 4)), sensor(1))
    tuple_ = hybrid.actions([(np.array([0.5, 3.0]), np.array([2, 1])), None])
    np.testing.assert_allclose(tuple_.continuous, [[0.5, 1.0], [0.0, 0.0]])  # clipped to Unity's [-1, 1]
    np.testing.assert_array_equal(tuple_.discrete, [[2, 1], [0, 0]])
    assert tuple_.continuous.dtype == np.float32 and tuple_.discrete.dtype == np.int32
    discrete = behavior(ActionSpec.create_discrete((7,)), sensor(1)).actions([np.int64(6), 3])
    np.testing.assert_array_equal(discrete.discrete, [[6], [3]])
    assert discrete.continuous.shape == (2, 0)


def test_agent_ids_keep_behavior_team_and_agent() -> None:
    rllib_id = agent_id("Soccer Twos?team=1", 17)
    assert rllib_id == "Soccer Twos?team=1_17"
    assert parse_agent_id(rllib_id) == ("Soccer Twos?team=1", 17)
    assert behavior_name(rllib_id) == "Soccer Twos"
    assert policy_for_agent("Predator?team=0_2", None) == "Predator"
    with pytest.raises(ValueError, match="BEHAVIOR\\?team=N_AGENT"):
        parse_agent_id("CartPole")


def test_settings_from_env_config() -> None:
    settings = UnitySettings.from_env_config({"file_name": "sim:CartPole", "timeout_wait": 5, "port": None})
    assert settings.file_name == "sim:CartPole" and settings.timeout_wait == 5.0 and settings.episode_horizon == 1000
    with pytest.raises(ValueError, match=r"unknown keys \['worker_id'\]"):
        UnitySettings.from_env_config({"worker_id": 3})
    with pytest.raises(ValueError, match=r"env_config\['seed'\] is True: it must be an int"):
        UnitySettings.from_env_config({"seed": True})
    with pytest.raises(ValueError, match=r"env_config\['file_name'\] is 3"):
        UnitySettings.from_env_config({"file_name": 3})
    with pytest.raises(ValueError, match="num_areas"):
        UnitySettings.from_env_config({"num_areas": 0})
