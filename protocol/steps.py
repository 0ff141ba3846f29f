"""The trainer end of a step: ``AgentInfoProto`` batches → ``BehaviorSpec``, ``DecisionSteps``, ``TerminalSteps``;
``ActionTuple`` → ``AgentActionProto`` (:func:`action_protos`, :func:`action_list_proto`, from
:mod:`rayagents.protocol.actions`).

Semantics are those of ``mlagents_envs``: agents whose info says ``done`` go to ``TerminalSteps`` (interrupted
= ``max_step_reached``), the others to ``DecisionSteps``, each keeping the order Unity sent them in; one agent
can be in both (it ended an episode and requested its next decision in the same step).

Each sensor's observations are ``float32``, or ``uint8`` for a PNG-compressed sensor when visual observations
are kept as 8-bit values (``visual_observations="uint8"``, see :mod:`rayagents.protocol.observations`).
"""

from __future__ import annotations

import math
from itertools import chain, compress
from operator import attrgetter, itemgetter
from typing import Sequence

import numpy as np

from rayagents.protocol.actions import action_list_proto, action_protos
from rayagents.protocol.communicator_objects.agent_info_pb2 import AgentInfoProto
from rayagents.protocol.communicator_objects.brain_parameters_pb2 import BrainParametersProto
from rayagents.protocol.communicator_objects.space_type_pb2 import continuous as SPACE_TYPE_CONTINUOUS
from rayagents.protocol.exceptions import UnityObservationException
from rayagents.protocol.observations import (
    ObservationDecoder,
    VisualObservations,
    check_visual_observations,
    observation_dtype,
    observation_spec_from_proto,
)
from rayagents.protocol.png import PixelDtype
from rayagents.protocol.types import ActionSpec, BehaviorSpec, DecisionSteps, TerminalSteps

__all__ = [
    "StepDecoder",
    "action_list_proto",
    "action_protos",
    "behavior_spec_from_proto",
    "observation_dtypes",
    "steps_from_proto",
]

# The fields of an info that a step reads, in the order of the columns of a batch; the mask comes last.
_FIELDS = attrgetter("done", "reward", "id", "group_id", "group_reward", "observations")
_FIELDS_AND_MASK = attrgetter("done", "reward", "id", "group_id", "group_reward", "observations", "action_mask")
_MASK_COLUMN = 6
_MAX_STEP_REACHED = attrgetter("max_step_reached")
_FIRST = itemgetter(0)

_Batch = tuple[list[np.ndarray], np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""Observations per sensor, rewards, agent ids, group ids and group rewards of a batch."""


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


def observation_dtypes(agent_info: AgentInfoProto, visual_observations: VisualObservations) -> tuple[PixelDtype, ...]:
    """The dtype of each sensor of a behavior for a run, from the observations of its first ``agent_info``:
    ``"uint8"`` for a PNG-compressed one when ``visual_observations`` is ``"uint8"``, else ``"float32"``."""
    return tuple(observation_dtype(obs, visual_observations) for obs in agent_info.observations)


def steps_from_proto(
    agent_infos: Sequence[AgentInfoProto],
    spec: BehaviorSpec,
    behavior: str,
    *,
    visual_observations: VisualObservations = "float32",
) -> tuple[DecisionSteps, TerminalSteps]:
    """Splits one step's infos of ``behavior`` into the agents that request a decision and those that ended.

    Observations are batched per sensor (see :func:`observations_to_array`); with ``visual_observations="uint8"``
    the sensors whose observation in the first info is PNG-compressed come out ``uint8``. ``action_mask`` is one
    ``bool (n, branch_size)`` array per discrete branch, True = disabled; an agent whose flat mask is not
    ``sum(branches)`` long is unmasked; it is None without discrete branches or without deciding agents.
    NaN or Inf in a reward or group reward raises ``UnityObservationException`` naming the behavior.
    To decode the same behavior every step, keep a :class:`StepDecoder`.
    """
    check_visual_observations(visual_observations)
    dtypes = None
    if len(agent_infos) > 0 and len(agent_infos[0].observations) == len(spec.observation_specs):
        dtypes = observation_dtypes(agent_infos[0], visual_observations)
    # A first info that lacks a sensor gets no dtypes here: decoding raises the error that names the agent.
    return StepDecoder(spec, behavior, dtypes).decode(agent_infos)


class StepDecoder:
    """Decodes the steps of one behavior, step after step, as :func:`steps_from_proto` does.

    ``observation_dtypes`` gives each sensor's dtype, in the spec's order (see :func:`observation_dtypes`);
    None means ``float32`` for all. Everything that depends on the spec alone (the observation decoders, the
    mask layout, the empty arrays of a batch without agents) is worked out once; the fields of a batch are
    read in one C-level pass over the infos.
    """

    __slots__ = (
        "spec",
        "behavior",
        "observation_dtypes",
        "_sensors",
        "_mask_size",
        "_mask_slices",
        "_empty",
        "_fields",
    )

    def __init__(
        self, spec: BehaviorSpec, behavior: str, observation_dtypes: Sequence[PixelDtype] | None = None
    ) -> None:
        sensor_count = len(spec.observation_specs)
        dtypes: tuple[PixelDtype, ...] = (
            ("float32",) * sensor_count if observation_dtypes is None else tuple(observation_dtypes)
        )
        if len(dtypes) != sensor_count:
            names = [obs_spec.name for obs_spec in spec.observation_specs]
            raise ValueError(
                f"Behavior '{behavior}' has {sensor_count} sensors ({names}) but {len(dtypes)} observation dtypes "
                f"were given ({list(dtypes)}): give one per sensor, in the spec's order."
            )
        self.spec = spec
        """The behavior's spec."""
        self.behavior = behavior
        """The behavior's fully qualified name, named in errors."""
        self.observation_dtypes = dtypes
        """The dtype of each sensor's observations, in the spec's order."""
        self._sensors = tuple(
            ObservationDecoder(obs_spec, behavior, dtype) for obs_spec, dtype in zip(spec.observation_specs, dtypes)
        )
        branches = tuple(int(b) for b in spec.action_spec.discrete_branches)
        self._mask_size = sum(branches)
        bounds = np.cumsum((0,) + branches).tolist()
        self._mask_slices = tuple(slice(start, stop) for start, stop in zip(bounds[:-1], bounds[1:]))
        self._empty = _EmptyBatch(spec, dtypes)
        self._fields = _FIELDS_AND_MASK if branches else _FIELDS

    def decode(self, agent_infos: Sequence[AgentInfoProto]) -> tuple[DecisionSteps, TerminalSteps]:
        """The ``DecisionSteps`` and ``TerminalSteps`` of one step's infos (see :func:`steps_from_proto`)."""
        count = len(agent_infos)
        if count == 0:
            return self._empty.decision_steps(), self._empty.terminal_steps()
        if count == 1:
            info = agent_infos[0]
            if info.done:
                return self._empty.decision_steps(), self._terminal_steps(self._single(info), [info])
            masks = [info.action_mask] if self._mask_slices else None
            return self._decision_steps(self._single(info), masks), self._empty.terminal_steps()
        # One pass over the infos reads every field (attrgetter with several names: one C call per agent).
        columns = list(zip(*map(self._fields, agent_infos)))
        dones = columns[0]
        if not any(dones):
            return self._decision_steps(self._batch(columns), self._masks(columns)), self._empty.terminal_steps()
        if all(dones):
            return self._empty.decision_steps(), self._terminal_steps(self._batch(columns), agent_infos)
        deciding = [not done for done in dones]
        decision_columns = [tuple(compress(column, deciding)) for column in columns]
        terminal_columns = [tuple(compress(column, dones)) for column in columns]
        return (
            self._decision_steps(self._batch(decision_columns), self._masks(decision_columns)),
            self._terminal_steps(self._batch(terminal_columns), list(compress(agent_infos, dones))),
        )

    def empty(self) -> tuple[DecisionSteps, TerminalSteps]:
        """New ``DecisionSteps`` and ``TerminalSteps`` without agents, with this decoder's observation dtypes."""
        return self._empty.decision_steps(), self._empty.terminal_steps()

    def _decision_steps(self, batch: _Batch, masks: Sequence[Sequence[bool]] | None) -> DecisionSteps:
        obs, reward, agent_id, group_id, group_reward = batch
        return DecisionSteps(
            obs=obs,
            reward=reward,
            agent_id=agent_id,
            action_mask=None if masks is None else self._action_masks(masks),
            group_id=group_id,
            group_reward=group_reward,
        )

    @staticmethod
    def _terminal_steps(batch: _Batch, ended: Sequence[AgentInfoProto]) -> TerminalSteps:
        obs, reward, agent_id, group_id, group_reward = batch
        return TerminalSteps(
            obs=obs,
            reward=reward,
            interrupted=np.array(list(map(_MAX_STEP_REACHED, ended)), dtype=bool),
            agent_id=agent_id,
            group_id=group_id,
            group_reward=group_reward,
        )

    def _masks(self, columns: Sequence[tuple]) -> Sequence[Sequence[bool]] | None:
        """The column of the infos' flat masks; None without discrete branches."""
        return columns[_MASK_COLUMN] if self._mask_slices else None

    def _batch(self, columns: Sequence[tuple]) -> _Batch:
        """Observations per sensor, rewards, agent ids, group ids and group rewards of the columns of a batch."""
        _, rewards, ids, group_ids, group_rewards, observation_lists = columns[:_MASK_COLUMN]
        sensors = len(self._sensors)
        if set(map(len, observation_lists)) != {sensors}:
            self._raise_on_missing_sensor(ids, observation_lists)
        if sensors == 1:
            obs = [self._sensors[0].decode(list(map(_FIRST, observation_lists)))]
        else:
            obs = [decoder.decode([o[k] for o in observation_lists]) for k, decoder in enumerate(self._sensors)]
        agent_id = np.array(ids, dtype=np.int32)
        # A sum of float32 values as Python floats cannot overflow: it is NaN or Inf exactly when a value is.
        if not math.isfinite(sum(rewards)):
            _raise_on_nan_or_inf(np.array(rewards, dtype=np.float32), agent_id, "reward", self.behavior)
        if not math.isfinite(sum(group_rewards)):
            _raise_on_nan_or_inf(np.array(group_rewards, dtype=np.float32), agent_id, "group reward", self.behavior)
        return (
            obs,
            np.array(rewards, dtype=np.float32),
            agent_id,
            np.array(group_ids, dtype=np.int32),
            np.array(group_rewards, dtype=np.float32),
        )

    def _single(self, info: AgentInfoProto) -> _Batch:
        """:meth:`_batch` of one agent, read from its info directly."""
        observations = info.observations
        if len(observations) != len(self._sensors):
            self._raise_on_missing_sensor([info.id], [observations])
        obs = [decoder.decode((observations[k],)) for k, decoder in enumerate(self._sensors)]
        reward = np.array((info.reward,), dtype=np.float32)
        agent_id = np.array((info.id,), dtype=np.int32)
        group_reward = np.array((info.group_reward,), dtype=np.float32)
        if not math.isfinite(info.reward):
            _raise_on_nan_or_inf(reward, agent_id, "reward", self.behavior)
        if not math.isfinite(info.group_reward):
            _raise_on_nan_or_inf(group_reward, agent_id, "group reward", self.behavior)
        return obs, reward, agent_id, np.array((info.group_id,), dtype=np.int32), group_reward

    def _action_masks(self, flats: Sequence[Sequence[bool]]) -> list[np.ndarray]:
        """One ``bool (n, branch_size)`` mask per branch (True = disabled) from the agents' flat masks, views of
        one new array; a flat mask that is not ``sum(branches)`` long leaves its agent unmasked."""
        total = self._mask_size
        lengths = set(map(len, flats))
        if lengths == {total}:
            # Slicing a repeated bool field gives a list of bools, which bytearray() packs one byte each in C.
            packed = bytearray(chain.from_iterable([flat[:] for flat in flats]))
            masks = np.frombuffer(packed, dtype=bool).reshape(len(flats), total)
        else:
            masks = np.zeros((len(flats), total), dtype=bool)
            if total in lengths:
                for row, flat in enumerate(flats):
                    if len(flat) == total:
                        masks[row] = flat[:]
        return [masks[:, columns] for columns in self._mask_slices]

    def _raise_on_missing_sensor(self, ids: Sequence[int], observation_lists: Sequence[Sequence[object]]) -> None:
        """Raises ``UnityObservationException`` naming the first agent whose sensors are not the behavior's."""
        sensors = len(self._sensors)
        for agent_id, observations in zip(ids, observation_lists):
            if len(observations) != sensors:
                names = [obs_spec.name for obs_spec in self.spec.observation_specs]
                raise UnityObservationException(
                    f"Agent {agent_id} of behavior '{self.behavior}' sent {len(observations)} observations, but the "
                    f"behavior has {sensors} sensors ({names}). All agents of a behavior must have the same sensors; "
                    "check the sensor components of each agent in the scene."
                )


class _EmptyBatch:
    """The arrays of a batch without agents, shaped for a spec: each batch gets new views of them (cheaper
    than new arrays; a zero-size view holds no data to share, and its shape is its own)."""

    __slots__ = ("obs", "float32", "int32", "bool")

    def __init__(self, spec: BehaviorSpec, dtypes: Sequence[PixelDtype]) -> None:
        self.obs = tuple(
            np.zeros((0,) + tuple(s.shape), dtype=np.dtype(dtype)) for s, dtype in zip(spec.observation_specs, dtypes)
        )
        self.float32 = np.zeros(0, dtype=np.float32)
        self.int32 = np.zeros(0, dtype=np.int32)
        self.bool = np.zeros(0, dtype=bool)

    def decision_steps(self) -> DecisionSteps:
        """A new ``DecisionSteps`` without agents (no masks)."""
        return DecisionSteps(
            obs=[obs[:] for obs in self.obs],
            reward=self.float32[:],
            agent_id=self.int32[:],
            action_mask=None,
            group_id=self.int32[:],
            group_reward=self.float32[:],
        )

    def terminal_steps(self) -> TerminalSteps:
        """A new ``TerminalSteps`` without agents."""
        return TerminalSteps(
            obs=[obs[:] for obs in self.obs],
            reward=self.float32[:],
            interrupted=self.bool[:],
            agent_id=self.int32[:],
            group_id=self.int32[:],
            group_reward=self.float32[:],
        )


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
