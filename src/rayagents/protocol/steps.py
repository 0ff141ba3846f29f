"""The trainer end of a step: ``AgentInfoProto`` batches → ``BehaviorSpec``, ``DecisionSteps``, ``TerminalSteps``;
``ActionTuple`` → ``AgentActionProto`` (:func:`action_protos`, :func:`action_list_proto`, from
:mod:`rayagents.protocol.actions`).

Semantics are those of ``mlagents_envs``: agents whose info says ``done`` go to ``TerminalSteps`` (interrupted
= ``max_step_reached``), the others to ``DecisionSteps``, each keeping the order Unity sent them in; one agent
can be in both (it ended an episode and requested its next decision in the same step).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from rayagents.protocol.actions import action_list_proto, action_protos
from rayagents.protocol.communicator_objects.agent_info_pb2 import AgentInfoProto
from rayagents.protocol.communicator_objects.brain_parameters_pb2 import BrainParametersProto
from rayagents.protocol.communicator_objects.space_type_pb2 import continuous as SPACE_TYPE_CONTINUOUS
from rayagents.protocol.exceptions import UnityObservationException
from rayagents.protocol.observations import observation_spec_from_proto, observations_to_array
from rayagents.protocol.types import ActionSpec, BehaviorSpec, DecisionSteps, TerminalSteps

__all__ = ["action_list_proto", "action_protos", "behavior_spec_from_proto", "steps_from_proto"]


def behavior_spec_from_proto(brain: BrainParametersProto, agent_info: AgentInfoProto) -> BehaviorSpec:
    """A behavior's spec: its actions from ``brain``, its sensors from the observations of ``agent_info``.

    The actions come from ``brain.action_spec`` (API ≥ 1.3). When that is unset or empty and the deprecated
    fields are filled (an older player, or one talking to a trainer without hybrid actions), space type 1
    means ``vector_action_size_deprecated[0]`` continuous actions, and otherwise those sizes are the
    discrete branches.
    """
    observation_specs = tuple(observation_spec_from_proto(obs) for obs in agent_info.observations)
    spec = brain.action_spec
    has_actions = spec.num_continuous_actions > 0 or len(spec.discrete_branch_sizes) > 0
    has_action_spec = brain.HasField("action_spec") and has_actions
    if has_action_spec or len(brain.vector_action_size_deprecated) == 0:
        action_spec = ActionSpec(int(spec.num_continuous_actions), tuple(int(b) for b in spec.discrete_branch_sizes))
    elif brain.vector_action_space_type_deprecated == SPACE_TYPE_CONTINUOUS:
        action_spec = ActionSpec(int(brain.vector_action_size_deprecated[0]), ())
    else:
        action_spec = ActionSpec(0, tuple(int(b) for b in brain.vector_action_size_deprecated))
    return BehaviorSpec(observation_specs=observation_specs, action_spec=action_spec)


def steps_from_proto(
    agent_infos: Sequence[AgentInfoProto], spec: BehaviorSpec, behavior: str
) -> tuple[DecisionSteps, TerminalSteps]:
    """Splits one step's infos of ``behavior`` into the agents that request a decision and those that ended.

    Observations are batched per sensor (see :func:`observations_to_array`). ``action_mask`` is one
    ``bool (n, branch_size)`` array per discrete branch, True = disabled; an agent whose flat mask is not
    ``sum(branches)`` long is unmasked; it is None without discrete branches or without deciding agents.
    NaN or Inf in a reward or group reward raises ``UnityObservationException`` naming the behavior.
    """
    deciding: list[AgentInfoProto] = []
    ended: list[AgentInfoProto] = []
    for info in agent_infos:
        (ended if info.done else deciding).append(info)

    obs, reward, agent_id, group_id, group_reward = _batch(deciding, spec, behavior)
    decision_steps = DecisionSteps(
        obs=obs,
        reward=reward,
        agent_id=agent_id,
        action_mask=_action_masks(deciding, spec.action_spec),
        group_id=group_id,
        group_reward=group_reward,
    )
    obs, reward, agent_id, group_id, group_reward = _batch(ended, spec, behavior)
    terminal_steps = TerminalSteps(
        obs=obs,
        reward=reward,
        interrupted=np.fromiter((info.max_step_reached for info in ended), dtype=bool, count=len(ended)),
        agent_id=agent_id,
        group_id=group_id,
        group_reward=group_reward,
    )
    return decision_steps, terminal_steps


def _batch(
    infos: list[AgentInfoProto], spec: BehaviorSpec, behavior: str
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Observations per sensor, rewards, agent ids, group ids and group rewards of a batch of infos."""
    count = len(infos)
    sensors = len(spec.observation_specs)
    observation_lists = [info.observations for info in infos]
    for info, observations in zip(infos, observation_lists):
        if len(observations) != sensors:
            names = [obs_spec.name for obs_spec in spec.observation_specs]
            raise UnityObservationException(
                f"Agent {info.id} of behavior '{behavior}' sent {len(observations)} observations, but the behavior "
                f"has {sensors} sensors ({names}). All agents of a behavior must have the same sensors; check the "
                "sensor components of each agent in the scene."
            )
    obs = [
        observations_to_array([observations[k] for observations in observation_lists], obs_spec, behavior=behavior)
        for k, obs_spec in enumerate(spec.observation_specs)
    ]
    reward = np.fromiter((info.reward for info in infos), dtype=np.float32, count=count)
    agent_id = np.fromiter((info.id for info in infos), dtype=np.int32, count=count)
    group_id = np.fromiter((info.group_id for info in infos), dtype=np.int32, count=count)
    group_reward = np.fromiter((info.group_reward for info in infos), dtype=np.float32, count=count)
    _raise_on_nan_or_inf(reward, agent_id, "reward", behavior)
    _raise_on_nan_or_inf(group_reward, agent_id, "group reward", behavior)
    return obs, reward, agent_id, group_id, group_reward


def _action_masks(infos: list[AgentInfoProto], action_spec: ActionSpec) -> list[np.ndarray] | None:
    """One ``bool (n, branch_size)`` mask per branch (True = disabled); None without branches or agents."""
    branches = action_spec.discrete_branches
    if len(branches) == 0 or len(infos) == 0:
        return None
    total = int(sum(branches))
    # bytes() over a repeated bool field gives one 0/1 byte per entry in one C loop: the fastest way to numpy.
    flats = [bytes(info.action_mask) for info in infos]
    if all(len(flat) == total for flat in flats):
        masks = np.frombuffer(bytearray(b"".join(flats)), dtype=bool).reshape(len(infos), total)
    else:
        masks = np.zeros((len(infos), total), dtype=bool)
        for row, flat in enumerate(flats):
            if len(flat) == total:
                masks[row] = np.frombuffer(flat, dtype=bool)
    return np.split(masks, np.cumsum(branches)[:-1], axis=1)


def _raise_on_nan_or_inf(values: np.ndarray, agent_id: np.ndarray, what: str, behavior: str) -> None:
    """Raises ``UnityObservationException`` naming the behavior and an agent when ``values`` holds NaN or Inf."""
    finite = np.isfinite(values)
    if finite.all():
        return
    bad = np.flatnonzero(~finite)
    raise UnityObservationException(
        f"The {what} of behavior '{behavior}' is {values[bad[0]]} for agent {int(agent_id[bad[0]])} "
        f"({len(bad)} of {len(values)} agents have NaN or Inf). Check the reward code of the scene "
        "(AddReward / SetReward) for a division by zero or an unbounded value."
    )
