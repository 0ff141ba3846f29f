"""The per-behavior codecs of the trainer end (``StepDecoder``, ``ObservationDecoder``, ``ActionEncoder``): one
instance reused step after step gives what the one-shot functions give, on every path (one agent, many, mixed
layouts, masks, NaN, fallbacks), and what it returns belongs to the caller."""

from __future__ import annotations

import numpy as np
import pytest

from rayagents.protocol.actions import ActionEncoder, ListAgentActionProto, action_list_proto, action_protos
from rayagents.protocol.agents import actions_from_protos, agent_info_proto, brain_parameters_proto
from rayagents.protocol.communicator_objects.agent_action_pb2 import AgentActionProto
from rayagents.protocol.communicator_objects.agent_info_pb2 import AgentInfoProto
from rayagents.protocol.communicator_objects.unity_rl_input_pb2 import UnityRLInputProto
from rayagents.protocol.communicator_objects.unity_rl_output_pb2 import UnityRLOutputProto
from rayagents.protocol.exceptions import UnityActionException, UnityObservationException
from rayagents.protocol.observations import (
    ObservationDecoder,
    float_observation_proto,
    observation_spec_from_proto,
    png_observation_proto,
)
from rayagents.protocol.steps import StepDecoder, behavior_spec_from_proto
from rayagents.protocol.types import ActionSpec, ActionTuple, BehaviorSpec, DecisionSteps, TerminalSteps

BEHAVIOR = "Walker?team=0"


def _info(agent_id: int, value: float, **fields: object) -> AgentInfoProto:
    """Two sensors sorted by name: a 2-channel 3x3 camera (PNG) and a 4-float vector."""
    observations = [
        png_observation_proto(np.full((2, 3, 3), value / 10), "Camera"),
        float_observation_proto(np.arange(4, dtype=np.float32) + value, "Vector"),
    ]
    return agent_info_proto(agent_id, observations, **fields)


def _received(infos: list[AgentInfoProto]) -> UnityRLOutputProto.ListAgentInfoProto:
    """The infos as the trainer receives them: serialized in a UnityRLOutputProto and parsed."""
    output = UnityRLOutputProto()
    output.agentInfos[BEHAVIOR].value.extend(infos)
    return UnityRLOutputProto.FromString(output.SerializeToString()).agentInfos[BEHAVIOR]


def _spec(action_spec: ActionSpec) -> BehaviorSpec:
    return behavior_spec_from_proto(brain_parameters_proto(BEHAVIOR, action_spec), _info(0, 0.0))


def _expected(infos: list[AgentInfoProto], spec: BehaviorSpec) -> tuple[dict, dict]:
    """What each agent's steps must hold, read field by field from the protos (no batching, no bytes)."""
    deciding = [i for i in infos if not i.done]
    ended = [i for i in infos if i.done]
    total = sum(spec.action_spec.discrete_branches)

    def common(batch: list[AgentInfoProto]) -> dict:
        return {
            "agent_id": [i.id for i in batch],
            "reward": [np.float32(i.reward) for i in batch],
            "group_id": [i.group_id for i in batch],
            "group_reward": [np.float32(i.group_reward) for i in batch],
            "vector": [list(i.observations[1].float_data.data) for i in batch],
        }

    decision = common(deciding)
    decision["mask"] = [list(i.action_mask) if len(i.action_mask) == total else [False] * total for i in deciding]
    terminal = common(ended)
    terminal["interrupted"] = [i.max_step_reached for i in ended]
    return decision, terminal


def _check(steps: DecisionSteps | TerminalSteps, expected: dict) -> None:
    assert steps.agent_id.tolist() == expected["agent_id"] and steps.agent_id.dtype == np.int32
    assert steps.reward.tolist() == expected["reward"] and steps.reward.dtype == np.float32
    assert steps.group_id.tolist() == expected["group_id"] and steps.group_id.dtype == np.int32
    assert steps.group_reward.tolist() == expected["group_reward"] and steps.group_reward.dtype == np.float32
    assert steps.obs[1].tolist() == expected["vector"] and steps.obs[1].dtype == np.float32
    assert steps.obs[0].shape == (len(expected["agent_id"]), 2, 3, 3)


BATCHES = {
    "one deciding": [_info(3, 1.0, reward=0.5, group_id=2, group_reward=0.25)],
    "one ended": [_info(300, 2.0, reward=-1.0, done=True, max_step_reached=True)],
    "one masked": [_info(1, 0.0, action_mask=np.array([True, False, False, True, False]))],
    "many deciding": [_info(i, float(i), reward=0.1 * i) for i in range(7)],
    "all ended": [_info(i, float(i), done=True, max_step_reached=i % 2 == 0) for i in range(3)],
    "mixed": [
        _info(10, 1.0, reward=1.5, action_mask=np.array([False, True, True, False, True])),
        _info(11, 2.0, done=True),
        _info(-5, 3.0, group_id=-1, group_reward=-2.0),  # negative varints: ten bytes on the wire
        _info(12, 4.0, action_mask=np.array([True, True])),  # wrong length: unmasked
        _info(10, 5.0, done=True, max_step_reached=True),
    ],
    "none": [],
}


@pytest.mark.parametrize("name", list(BATCHES))
def test_a_reused_decoder_matches_the_protos_field_by_field(name: str) -> None:
    spec = _spec(ActionSpec.create_hybrid(1, (2, 3)))
    decoder = StepDecoder(spec, BEHAVIOR)
    infos = list(_received(BATCHES[name]).value)
    expected_decision, expected_terminal = _expected(infos, spec)
    for _ in range(2):  # the second decode must not see anything of the first
        decision, terminal = decoder.decode(infos)
        _check(decision, expected_decision)
        _check(terminal, expected_terminal)
        assert terminal.interrupted.tolist() == expected_terminal["interrupted"] and terminal.interrupted.dtype == bool
        if len(decision):
            assert decision.action_mask is not None
            assert [m.shape[1] for m in decision.action_mask] == [2, 3]
            assert np.concatenate(decision.action_mask, axis=1).tolist() == expected_decision["mask"]
        else:
            assert decision.action_mask is None


def test_results_belong_to_the_caller() -> None:
    spec = _spec(ActionSpec.create_discrete((2, 3)))
    decoder = StepDecoder(spec, BEHAVIOR)
    infos = _received([_info(1, 1.0, action_mask=np.array([True, False, False, True, False]))]).value
    first, first_terminal = decoder.decode(infos)
    first.obs[1][0, 0] = 99.0
    first.reward[0] = 99.0
    first.action_mask[1][0, 0] = True
    first_terminal.obs.append(np.zeros(1))
    first_terminal.reward.shape = (0, 1)  # an empty batch's arrays are views of their own
    second, second_terminal = decoder.decode(infos)
    assert second.obs[1][0, 0] == 1.0 and second.reward[0] == 0.0
    assert second.action_mask[1][0].tolist() == [False, True, False]
    assert len(second_terminal.obs) == 2 and second_terminal.reward.shape == (0,)
    assert second.obs[1].flags.writeable and second.obs[1].flags.aligned and second.obs[1].flags.c_contiguous


def test_one_agent_errors_name_the_behavior_the_agent_and_the_sensor() -> None:
    decoder = StepDecoder(_spec(ActionSpec.create_continuous(2)), BEHAVIOR)
    with pytest.raises(UnityObservationException, match=r"Agent 8 of behavior 'Walker\?team=0' sent 1 obs"):
        decoder.decode(_received([agent_info_proto(8, [float_observation_proto(np.zeros(4), "Vector")])]).value)
    with pytest.raises(UnityObservationException, match=r"group reward of behavior 'Walker\?team=0' is inf for agent 4"):
        decoder.decode(_received([_info(4, 0.0, group_reward=np.inf)]).value)
    with pytest.raises(UnityObservationException, match=r"reward of behavior 'Walker\?team=0' is nan for agent 6"):
        decoder.decode(_received([_info(5, 0.0), _info(6, 0.0, reward=np.nan)]).value)
    with pytest.raises(UnityObservationException, match=r"'Vector' of behavior 'Walker\?team=0' holds NaN"):
        decoder.decode(_received([_info(7, np.nan)]).value)


def test_observation_decoder_handles_every_layout_of_a_batch() -> None:
    spec = observation_spec_from_proto(float_observation_proto(np.zeros((2, 3)), "Grid"))
    decoder = ObservationDecoder(spec, BEHAVIOR)
    values = np.arange(18, dtype=np.float32).reshape(3, 2, 3)
    same = [float_observation_proto(v, "Grid") for v in values]
    other_tails = [float_observation_proto(v, name) for v, name in zip(values, ["Grid", "G", "Grid2"])]
    unpacked = AgentInfoProto(observations=[same[0]]).observations[0]
    unpacked.float_data.data[:] = values[0].ravel().tolist()  # filled field by field: same bytes, still decodes
    for protos in (same, other_tails, same[:1], [unpacked, same[1]]):
        batch = decoder.decode(protos)
        np.testing.assert_array_equal(batch, values[: len(protos)])
        assert batch.dtype == np.float32 and batch.flags.writeable and batch.flags.aligned
    short = float_observation_proto(np.zeros(5), "Grid")
    with pytest.raises(UnityObservationException, match=r"'Grid' of behavior 'Walker\?team=0' .* shape \(5,\)"):
        decoder.decode([same[0], short])


SPECS = [
    ActionSpec.create_discrete((3,)),
    ActionSpec.create_continuous(2),
    ActionSpec.create_hybrid(3, (2, 4)),
    ActionSpec.create_discrete((200, 2)),  # actions past 127: the field-by-field path
    ActionSpec(0, ()),
]


@pytest.mark.parametrize("spec", SPECS)
def test_a_reused_action_encoder_writes_what_action_list_proto_builds(spec: ActionSpec) -> None:
    encoder = ActionEncoder(spec.continuous_size, spec.discrete_size)
    rng = np.random.default_rng(3)
    for n_agents in (1, 5, 5, 0, 2, 1, 5):  # the encoder keeps a row buffer per batch size: change sizes
        actions = spec.random_action(n_agents, rng)
        rl_input = UnityRLInputProto()
        encoder.write(actions, rl_input.agent_actions[BEHAVIOR])
        assert rl_input.agent_actions[BEHAVIOR] == action_list_proto(actions)
        assert list(rl_input.agent_actions[BEHAVIOR].value) == action_protos(actions)
        read = UnityRLInputProto.FromString(rl_input.SerializeToString()).agent_actions[BEHAVIOR].value
        assert len(read) == n_agents
        back = actions_from_protos(read, spec)
        np.testing.assert_array_equal(back.continuous, actions.continuous)
        np.testing.assert_array_equal(back.discrete, actions.discrete)
        for proto, continuous, discrete in zip(read, actions.continuous, actions.discrete):
            assert list(proto.vector_actions_deprecated) == continuous.tolist() + [float(d) for d in discrete]


def test_action_encoder_takes_strided_arrays_and_refuses_other_shapes() -> None:
    encoder = ActionEncoder(2, 1)
    wide = np.arange(12, dtype=np.float64).reshape(3, 4)
    actions = ActionTuple(continuous=wide[:, ::2], discrete=np.array([[1], [0], [-3]]))  # strided, a negative action
    target = ListAgentActionProto()
    encoder.write(actions, target)
    assert [list(p.continuous_actions) for p in target.value] == [[0.0, 2.0], [4.0, 6.0], [8.0, 10.0]]
    assert [list(p.discrete_actions) for p in target.value] == [[1], [0], [-3]]
    assert target.value[2] == AgentActionProto(
        vector_actions_deprecated=[8.0, 10.0, -3.0], continuous_actions=[8.0, 10.0], discrete_actions=[-3]
    )
    with pytest.raises(UnityActionException, match=r"do not fit an encoder for 2 continuous actions and 1 discrete"):
        encoder.write(ActionTuple(continuous=np.zeros((2, 3)), discrete=np.zeros((2, 1))), ListAgentActionProto())


@pytest.mark.parametrize("action", [[150], [-1], [127]])
def test_one_agent_actions_past_one_varint_byte_take_the_general_path(action: list[int]) -> None:
    encoder = ActionEncoder(1, 1)
    actions = ActionTuple(continuous=np.array([[0.5]], dtype=np.float32), discrete=np.array([action], dtype=np.int32))
    target = ListAgentActionProto()
    encoder.write(actions, target)
    expected = AgentActionProto(
        vector_actions_deprecated=[0.5, float(action[0])], continuous_actions=[0.5], discrete_actions=action
    )
    assert list(target.value) == [expected]
    assert UnityRLInputProto.ListAgentActionProto.FromString(target.SerializeToString()) == target
