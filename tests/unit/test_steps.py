"""Steps on the wire, both ends: behavior specs, decision/terminal split, masks, groups, actions."""

from __future__ import annotations

import numpy as np
import pytest

from rayagents.protocol.agent_batch import FloatObservations, ListAgentInfoProto, agent_info_list_proto
from rayagents.protocol.agents import (
    actions_from_protos,
    agent_info_proto,
    brain_parameters_proto,
    legacy_brain_parameters_proto,
)
from rayagents.protocol.communicator_objects.agent_action_pb2 import AgentActionProto
from rayagents.protocol.communicator_objects.agent_info_pb2 import AgentInfoProto
from rayagents.protocol.communicator_objects.brain_parameters_pb2 import BrainParametersProto
from rayagents.protocol.communicator_objects.unity_rl_input_pb2 import UnityRLInputProto
from rayagents.protocol.communicator_objects.unity_rl_output_pb2 import UnityRLOutputProto
from rayagents.protocol.exceptions import UnityActionException, UnityObservationException
from rayagents.protocol.observations import float_observation_proto, png_observation_proto
from rayagents.protocol.steps import (
    StepDecoder,
    action_list_proto,
    action_protos,
    behavior_spec_from_proto,
    observation_dtypes,
    steps_from_proto,
)
from rayagents.protocol.types import ActionSpec, ActionTuple, BehaviorSpec, DimensionProperty, ObservationType

BEHAVIOR = "Soccer?team=1"


def _vector_info(agent_id: int, value: float, **fields: object) -> AgentInfoProto:
    """An info with a 3-float vector observation and a 1-channel 4x4 visual one (sensors sorted by name)."""
    observations = [
        png_observation_proto(np.full((1, 4, 4), value / 10), "Camera"),
        float_observation_proto(np.full(3, value), "Vector"),
    ]
    return agent_info_proto(agent_id, observations, **fields)


def _through_the_wire(infos: list[AgentInfoProto]) -> UnityRLOutputProto:
    """What the trainer receives: the infos in a UnityRLOutputProto, serialized and parsed."""
    output = UnityRLOutputProto()
    output.agentInfos[BEHAVIOR].value.extend(infos)
    return UnityRLOutputProto.FromString(output.SerializeToString())


def _spec(action_spec: ActionSpec) -> BehaviorSpec:
    return behavior_spec_from_proto(brain_parameters_proto(BEHAVIOR, action_spec), _vector_info(0, 0.0))


# ------------------------------------------------------------------------------------- behavior spec


def test_behavior_spec_from_action_spec_and_first_agent_observations() -> None:
    brain = brain_parameters_proto(BEHAVIOR, ActionSpec.create_hybrid(2, (3, 5)), is_training=False)
    assert brain.brain_name == BEHAVIOR and brain.is_training is False
    assert brain.action_spec.num_discrete_actions == 2 and len(brain.vector_action_size_deprecated) == 0
    wire = BrainParametersProto.FromString(brain.SerializeToString())
    spec = behavior_spec_from_proto(wire, _vector_info(4, 1.0))
    assert spec.action_spec == ActionSpec(2, (3, 5))
    assert [s.name for s in spec.observation_specs] == ["Camera", "Vector"]
    assert spec.observation_specs[0].shape == (1, 4, 4)
    assert spec.observation_specs[1].shape == (3,)
    assert spec.observation_specs[1].dimension_property == (DimensionProperty.NONE,)
    assert spec.observation_specs[1].observation_type is ObservationType.DEFAULT


@pytest.mark.parametrize(
    "action_spec", [ActionSpec.create_continuous(4), ActionSpec.create_discrete((2, 7, 3)), ActionSpec(0, ())]
)
def test_behavior_spec_from_deprecated_fields(action_spec: ActionSpec) -> None:
    legacy = legacy_brain_parameters_proto(BEHAVIOR, action_spec)
    if action_spec.continuous_size:
        assert list(legacy.vector_action_size_deprecated) == [4] and legacy.vector_action_space_type_deprecated == 1
    elif action_spec.discrete_size:
        assert list(legacy.vector_action_size_deprecated) == [2, 7, 3]
        assert legacy.vector_action_space_type_deprecated == 0
    legacy.ClearField("action_spec")  # a player older than API 1.3 sends only the deprecated fields
    assert not legacy.HasField("action_spec")
    assert behavior_spec_from_proto(legacy, _vector_info(0, 0.0)).action_spec == action_spec


def test_deprecated_fields_need_pure_actions() -> None:
    with pytest.raises(ValueError, match="both continuous and discrete"):
        legacy_brain_parameters_proto(BEHAVIOR, ActionSpec.create_hybrid(1, (2,)))


def test_action_spec_wins_over_deprecated_fields() -> None:
    brain = legacy_brain_parameters_proto(BEHAVIOR, ActionSpec.create_discrete((4,)))
    brain.action_spec.num_discrete_actions = 1
    brain.action_spec.discrete_branch_sizes[:] = [6]
    assert behavior_spec_from_proto(brain, _vector_info(0, 0.0)).action_spec == ActionSpec(0, (6,))


# ------------------------------------------------------------------------------------------- steps


def test_done_agents_go_to_terminal_steps_in_order() -> None:
    infos = [
        _vector_info(10, 1.0, reward=0.5, group_id=2, group_reward=-1.0),
        _vector_info(11, 2.0, reward=1.0, done=True, max_step_reached=True),
        _vector_info(12, 3.0, reward=-0.25, done=True),
        _vector_info(13, 4.0, reward=2.0, group_id=3, group_reward=0.75),
    ]
    wire = _through_the_wire(infos).agentInfos[BEHAVIOR].value
    decision, terminal = steps_from_proto(wire, _spec(ActionSpec.create_continuous(2)), BEHAVIOR)

    assert list(decision.agent_id) == [10, 13] and list(terminal.agent_id) == [11, 12]
    assert decision.agent_id.dtype == np.int32 and terminal.agent_id.dtype == np.int32
    np.testing.assert_array_equal(decision.reward, np.array([0.5, 2.0], dtype=np.float32))
    np.testing.assert_array_equal(terminal.reward, np.array([1.0, -0.25], dtype=np.float32))
    assert decision.reward.dtype == np.float32 and terminal.reward.dtype == np.float32
    np.testing.assert_array_equal(decision.group_id, [2, 3])
    assert decision.group_id.dtype == np.int32 and decision.group_reward.dtype == np.float32
    np.testing.assert_array_equal(decision.group_reward, [-1.0, 0.75])
    np.testing.assert_array_equal(terminal.interrupted, [True, False])
    assert terminal.interrupted.dtype == bool
    assert decision.action_mask is None  # continuous actions only
    # Observations: one array per sensor, agents on axis 0, in the same order.
    assert decision.obs[0].shape == (2, 1, 4, 4) and decision.obs[1].shape == (2, 3)
    np.testing.assert_array_equal(decision.obs[1], [[1.0] * 3, [4.0] * 3])
    np.testing.assert_array_equal(terminal.obs[1], [[2.0] * 3, [3.0] * 3])
    np.testing.assert_allclose(terminal.obs[0][:, 0, 0, 0], [np.rint(0.2 * 255) / 255, np.rint(0.3 * 255) / 255])
    assert decision[13].reward == 2.0 and terminal[11].interrupted is True


def test_an_agent_can_end_an_episode_and_decide_in_the_same_step() -> None:
    infos = [
        _vector_info(7, 1.0, reward=10.0, done=True),  # the last info of its episode
        _vector_info(8, 2.0, reward=0.1),
        _vector_info(7, 5.0, reward=0.0),  # the first decision of its next episode
    ]
    wire = _through_the_wire(infos).agentInfos[BEHAVIOR].value
    decision, terminal = steps_from_proto(wire, _spec(ActionSpec.create_discrete((3,))), BEHAVIOR)
    assert 7 in decision and 7 in terminal
    assert list(decision.agent_id) == [8, 7] and list(terminal.agent_id) == [7]
    assert terminal[7].reward == 10.0 and decision[7].reward == 0.0
    np.testing.assert_array_equal(terminal[7].obs[1], [1.0] * 3)
    np.testing.assert_array_equal(decision[7].obs[1], [5.0] * 3)
    assert terminal[7].interrupted is False


def test_empty_batches_are_shaped_by_the_spec() -> None:
    decision, terminal = steps_from_proto([], _spec(ActionSpec.create_discrete((2,))), BEHAVIOR)
    assert len(decision) == 0 and len(terminal) == 0
    assert decision.obs[0].shape == (0, 1, 4, 4) and terminal.obs[1].shape == (0, 3)
    assert decision.action_mask is None and terminal.interrupted.shape == (0,)


def test_action_masks_are_split_per_branch_true_disabled() -> None:
    spec = _spec(ActionSpec.create_hybrid(1, (2, 3)))
    first = np.array([True, False, False, True, True])  # branch 0: action 0 off; branch 1: actions 1, 2 off
    second = np.array([False, True, True, False, False])
    infos = [
        _vector_info(1, 0.0, action_mask=first),
        _vector_info(2, 0.0, action_mask=second),
        _vector_info(3, 0.0, action_mask=np.array([True, True])),  # wrong length: unmasked
        _vector_info(4, 0.0),  # no mask: unmasked
        _vector_info(5, 0.0, action_mask=first, done=True),
    ]
    decision, _ = steps_from_proto(_through_the_wire(infos).agentInfos[BEHAVIOR].value, spec, BEHAVIOR)
    assert decision.action_mask is not None and len(decision.action_mask) == 2
    branch0, branch1 = decision.action_mask
    assert branch0.shape == (4, 2) and branch1.shape == (4, 3) and branch0.dtype == bool
    np.testing.assert_array_equal(branch0, [[True, False], [False, True], [False, False], [False, False]])
    np.testing.assert_array_equal(branch1, [[False, True, True], [True, False, False], [False] * 3, [False] * 3])
    assert [m.tolist() for m in decision[1].action_mask] == [[True, False], [False, True, True]]


def test_all_agents_masked_with_full_masks() -> None:
    spec = _spec(ActionSpec.create_discrete((3, 1)))
    masks = np.random.default_rng(0).random((6, 4)) < 0.5
    infos = [_vector_info(i, 0.0, action_mask=masks[i]) for i in range(6)]
    decision, _ = steps_from_proto(_through_the_wire(infos).agentInfos[BEHAVIOR].value, spec, BEHAVIOR)
    np.testing.assert_array_equal(np.concatenate(decision.action_mask, axis=1), masks)
    decision.action_mask[0][0, 0] = not decision.action_mask[0][0, 0]  # the trainer may edit its masks


@pytest.mark.parametrize("field", ["reward", "group_reward"])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_reward_names_the_behavior(field: str, bad: float) -> None:
    infos = [_vector_info(1, 0.0), _vector_info(2, 0.0, **{field: bad}, done=True)]
    with pytest.raises(UnityObservationException) as error:
        steps_from_proto(_through_the_wire(infos).agentInfos[BEHAVIOR].value, _spec(ActionSpec(1, ())), BEHAVIOR)
    message = str(error.value)
    assert BEHAVIOR in message and "agent 2" in message
    assert field.replace("_", " ") in message


def test_nan_observation_names_behavior_and_sensor() -> None:
    infos = [_vector_info(1, 0.0), _vector_info(2, float("nan"))]
    with pytest.raises(UnityObservationException) as error:
        steps_from_proto(_through_the_wire(infos).agentInfos[BEHAVIOR].value, _spec(ActionSpec(1, ())), BEHAVIOR)
    assert BEHAVIOR in str(error.value) and "'Vector'" in str(error.value)


def test_missing_sensor_names_behavior_and_agent() -> None:
    infos = [_vector_info(1, 0.0), agent_info_proto(9, [float_observation_proto(np.zeros(3), "Vector")])]
    with pytest.raises(UnityObservationException, match=r"Agent 9 of behavior 'Soccer\?team=1' sent 1 obs"):
        steps_from_proto(_through_the_wire(infos).agentInfos[BEHAVIOR].value, _spec(ActionSpec(1, ())), BEHAVIOR)


def test_uint8_visual_observations_leave_the_rest_of_the_step_as_it_was() -> None:
    infos = [
        _vector_info(1, 1.0, reward=0.5),
        _vector_info(2, 2.5, reward=1.0, done=True),
        _vector_info(3, 7.0, reward=-1.0),
    ]
    wire = _through_the_wire(infos).agentInfos[BEHAVIOR].value
    spec = _spec(ActionSpec.create_discrete((3,)))
    as_float = steps_from_proto(wire, spec, BEHAVIOR)
    as_uint8 = steps_from_proto(wire, spec, BEHAVIOR, visual_observations="uint8")
    for float_steps, uint8_steps in zip(as_float, as_uint8):
        camera, vector = uint8_steps.obs
        assert camera.dtype == np.uint8 and camera.shape == float_steps.obs[0].shape
        np.testing.assert_array_equal(camera, np.rint(float_steps.obs[0].astype(np.float64) * 255))
        assert vector.dtype == np.float32
        np.testing.assert_array_equal(vector, float_steps.obs[1])
        np.testing.assert_array_equal(uint8_steps.reward, float_steps.reward)
        np.testing.assert_array_equal(uint8_steps.agent_id, float_steps.agent_id)
    decision, terminal = as_uint8
    np.testing.assert_array_equal(decision.obs[0][:, 0, 0, 0], [np.rint(0.1 * 255), np.rint(0.7 * 255)])
    assert terminal[2].obs[0].dtype == np.uint8 and terminal[2].obs[0][0, 0, 0] == np.rint(0.25 * 255)
    assert decision[3].obs[0].dtype == np.uint8
    np.testing.assert_array_equal(decision.action_mask[0], np.zeros((2, 3), dtype=bool))
    # One agent, the path that reads a single info.
    single, _ = steps_from_proto(wire[:1], spec, BEHAVIOR, visual_observations="uint8")
    assert single.obs[0].dtype == np.uint8 and single.obs[0].shape == (1, 1, 4, 4)


def test_nan_checks_still_guard_float_sensors_with_uint8_visual_observations() -> None:
    spec = _spec(ActionSpec(1, ()))
    wire = _through_the_wire([_vector_info(1, 0.0), _vector_info(2, float("nan"))]).agentInfos[BEHAVIOR].value
    with pytest.raises(UnityObservationException, match=r"'Vector' of behavior 'Soccer\?team=1' holds NaN"):
        steps_from_proto(wire, spec, BEHAVIOR, visual_observations="uint8")
    wire = _through_the_wire([_vector_info(1, 0.0), _vector_info(2, 0.0, reward=np.inf)]).agentInfos[BEHAVIOR].value
    with pytest.raises(UnityObservationException, match="reward of behavior 'Soccer"):
        steps_from_proto(wire, spec, BEHAVIOR, visual_observations="uint8")


def test_step_decoder_keeps_each_sensors_dtype_in_empty_batches() -> None:
    spec = _spec(ActionSpec.create_discrete((2,)))
    dtypes = observation_dtypes(_vector_info(0, 0.0), "uint8")
    assert dtypes == ("uint8", "float32")
    assert observation_dtypes(_vector_info(0, 0.0), "float32") == ("float32", "float32")
    decoder = StepDecoder(spec, BEHAVIOR, dtypes)
    assert decoder.observation_dtypes == dtypes
    for steps in (*decoder.empty(), *decoder.decode([])):
        assert steps.obs[0].dtype == np.uint8 and steps.obs[0].shape == (0, 1, 4, 4)
        assert steps.obs[1].dtype == np.float32 and steps.obs[1].shape == (0, 3)
    decision, _ = decoder.decode(_through_the_wire([_vector_info(4, 5.0)]).agentInfos[BEHAVIOR].value)
    assert decision.obs[0].dtype == np.uint8 and decision.obs[0][0, 0, 0, 0] == np.rint(0.5 * 255)
    assert StepDecoder(spec, BEHAVIOR).observation_dtypes == ("float32", "float32")
    with pytest.raises(ValueError, match=r"Soccer\?team=1' has 2 sensors \(\['Camera', 'Vector'\]\) but 1"):
        StepDecoder(spec, BEHAVIOR, ("uint8",))
    with pytest.raises(ValueError, match="visual_observations must be 'float32'"):
        steps_from_proto([], spec, BEHAVIOR, visual_observations="uint16")


# ------------------------------------------------------------------------------------------ actions


def _actions_over_the_wire(actions: ActionTuple) -> list[AgentActionProto]:
    rl_input = UnityRLInputProto()
    rl_input.agent_actions[BEHAVIOR].value.extend(action_protos(actions))
    return list(UnityRLInputProto.FromString(rl_input.SerializeToString()).agent_actions[BEHAVIOR].value)


def test_hybrid_actions_fill_all_three_fields() -> None:
    actions = ActionTuple(continuous=np.array([[0.5, -1.0], [2.0, 0.25]]), discrete=np.array([[1, 4], [0, 2]]))
    protos = action_protos(actions)
    assert len(protos) == 2
    assert list(protos[0].continuous_actions) == [0.5, -1.0] and list(protos[0].discrete_actions) == [1, 4]
    assert list(protos[1].vector_actions_deprecated) == [2.0, 0.25, 0.0, 2.0]
    assert protos[1].value == 0.0
    back = actions_from_protos(_actions_over_the_wire(actions), ActionSpec(2, (2, 5)))
    assert back.continuous.dtype == np.float32 and back.discrete.dtype == np.int32
    np.testing.assert_array_equal(back.continuous, actions.continuous)
    np.testing.assert_array_equal(back.discrete, actions.discrete)


@pytest.mark.parametrize(
    "spec",
    [ActionSpec.create_continuous(3), ActionSpec.create_discrete((2, 300)), ActionSpec(2, (5,)), ActionSpec(0, ())],
)
def test_action_round_trip_equals_the_field_by_field_messages(spec: ActionSpec) -> None:
    rng = np.random.default_rng(1)
    actions = spec.random_action(17, rng)  # branch 300 makes multi-byte varints: the general path
    protos = action_protos(actions)
    expected = [
        AgentActionProto(
            vector_actions_deprecated=list(actions.continuous[i]) + [float(d) for d in actions.discrete[i]],
            continuous_actions=actions.continuous[i].tolist(),
            discrete_actions=actions.discrete[i].tolist(),
        )
        for i in range(17)
    ]
    assert protos == expected
    listed = action_list_proto(actions)
    assert list(listed.value) == expected
    back = actions_from_protos(_actions_over_the_wire(actions), spec)
    assert back.continuous.shape == (17, spec.continuous_size) and back.discrete.shape == (17, spec.discrete_size)
    np.testing.assert_array_equal(back.continuous, actions.continuous)
    np.testing.assert_array_equal(back.discrete, actions.discrete)


def test_negative_discrete_actions_survive() -> None:
    actions = ActionTuple(discrete=np.array([[-1], [3]]))
    back = actions_from_protos(_actions_over_the_wire(actions), ActionSpec(0, (4,)))
    np.testing.assert_array_equal(back.discrete, [[-1], [3]])


def test_no_agents_no_protos() -> None:
    assert action_protos(ActionSpec(2, (3,)).empty_action(0)) == []
    back = actions_from_protos([], ActionSpec(2, (3,)))
    assert back.continuous.shape == (0, 2) and back.discrete.shape == (0, 1)


def test_unity_end_reads_deprecated_actions_from_an_old_trainer() -> None:
    protos = [
        AgentActionProto(vector_actions_deprecated=[0.5, 1.0, 2.0]),
        AgentActionProto(vector_actions_deprecated=[1, 2, 0]),
    ]
    back = actions_from_protos(protos, ActionSpec(1, (3, 4)))
    np.testing.assert_array_equal(back.continuous, [[0.5], [1.0]])
    np.testing.assert_array_equal(back.discrete, [[1, 2], [2, 0]])


def test_unity_end_rejects_actions_of_the_wrong_size() -> None:
    protos = action_protos(ActionTuple(continuous=np.zeros((2, 3))))
    with pytest.raises(UnityActionException, match=r"agent 0 .* 3 continuous and 0 discrete .* has 2 continuous"):
        actions_from_protos(protos, ActionSpec(2, ()))


# ------------------------------------------------------------------------ both ends, one full step


def test_full_step_between_the_two_ends() -> None:
    # Unity end: brain parameters with the first infos.
    action_spec = ActionSpec.create_hybrid(2, (3, 2))
    output = UnityRLOutputProto()
    masks = np.array([[i == 1, False, False, False, True] for i in range(4)])
    infos = [_vector_info(i, float(i), reward=0.1 * i, done=(i == 2), action_mask=masks[i]) for i in range(4)]
    output.agentInfos[BEHAVIOR].value.extend(infos)
    initialization = brain_parameters_proto(BEHAVIOR, action_spec)
    received = UnityRLOutputProto.FromString(output.SerializeToString())
    brain = BrainParametersProto.FromString(initialization.SerializeToString())

    # Trainer end.
    wire_infos = received.agentInfos[BEHAVIOR].value
    spec = behavior_spec_from_proto(brain, wire_infos[0])
    decision, terminal = steps_from_proto(wire_infos, spec, BEHAVIOR)
    assert list(decision.agent_id) == [0, 1, 3] and list(terminal.agent_id) == [2]
    np.testing.assert_array_equal(decision.action_mask[0][:, 0], [False, True, False])
    np.testing.assert_array_equal(decision.action_mask[1][:, 1], [True, True, True])
    actions = action_spec.random_action(len(decision), np.random.default_rng(2))
    rl_input = UnityRLInputProto()
    rl_input.agent_actions[BEHAVIOR].CopyFrom(action_list_proto(actions))

    # Unity end: one action per deciding agent, in the order it sent them.
    read = UnityRLInputProto.FromString(rl_input.SerializeToString()).agent_actions[BEHAVIOR].value
    back = actions_from_protos(read, action_spec)
    np.testing.assert_array_equal(back.continuous, actions.continuous)
    np.testing.assert_array_equal(back.discrete, actions.discrete)


def test_batched_agent_infos_equal_the_ones_built_agent_by_agent() -> None:
    rng = np.random.default_rng(5)
    count = 200  # ids past 127 need two varint bytes; a negative group id ten
    ids = np.arange(count) * 3
    vector = rng.standard_normal((count, 6)).astype(np.float32)
    entities = rng.standard_normal((count, 4, 2)).astype(np.float32)
    cameras = [png_observation_proto(rng.random((1, 5, 5)), "Camera") for _ in range(count)]
    rewards, group_rewards = rng.standard_normal(count), rng.standard_normal(count)
    dones, interrupted = rng.random(count) < 0.3, rng.random(count) < 0.2
    masks = rng.random((count, 5)) < 0.4
    group_ids = rng.integers(0, 200, count)
    group_ids[7] = -1
    batched = agent_info_list_proto(
        ids,
        [FloatObservations("Buffer", entities, observation_type=1), cameras, FloatObservations("Vector", vector)],
        rewards=rewards,
        dones=dones,
        max_step_reached=interrupted,
        action_masks=masks,
        group_ids=group_ids,
        group_rewards=group_rewards,
    )
    one_by_one = ListAgentInfoProto()
    one_by_one.value.extend(
        agent_info_proto(
            int(ids[i]),
            [
                float_observation_proto(entities[i], "Buffer", observation_type=1),
                cameras[i],
                float_observation_proto(vector[i], "Vector"),
            ],
            reward=float(rewards[i]),
            done=bool(dones[i]),
            max_step_reached=bool(interrupted[i]),
            action_mask=masks[i],
            group_id=int(group_ids[i]),
            group_reward=float(group_rewards[i]),
        )
        for i in range(count)
    )
    assert batched == one_by_one
    assert agent_info_list_proto([5, 6], []) == ListAgentInfoProto(value=[AgentInfoProto(id=5), AgentInfoProto(id=6)])
    assert agent_info_list_proto([], []) == ListAgentInfoProto()
