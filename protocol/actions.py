"""Actions on the wire: ``ActionTuple`` ⇄ one ``AgentActionProto`` per agent, at both ends.

The trainer end (:func:`action_protos`, :func:`action_list_proto`, and :class:`ActionEncoder` for a
behavior's every step) fills ``continuous_actions``, ``discrete_actions`` and, for players that still read
it, ``vector_actions_deprecated`` (continuous values, then the discrete ones as floats). The Unity end
(:func:`actions_from_protos`) reads ``continuous_actions`` and ``discrete_actions``, as Unity does.

Both directions go through bytes when the batch has the usual layout (every discrete action in 0..127, so
one varint byte each): a batch is written as one numpy array of rows and parsed once, or serialized one
proto per row and read back with ``np.frombuffer``. Anything else takes the per-field path.
"""

from __future__ import annotations

import struct
import sys
from typing import Sequence

import numpy as np

from rayagents.protocol.communicator_objects.agent_action_pb2 import AgentActionProto
from rayagents.protocol.communicator_objects.unity_rl_input_pb2 import UnityRLInputProto
from rayagents.protocol.exceptions import UnityActionException
from rayagents.protocol.types import ActionSpec, ActionTuple
from rayagents.protocol.wire import tag, varint

# Keys of the AgentActionProto fields (field numbers from agent_action.proto), all packed.
_TAG_VECTOR_ACTIONS_DEPRECATED = tag(1, 2)
_TAG_CONTINUOUS_ACTIONS = tag(6, 2)
_TAG_DISCRETE_ACTIONS = tag(7, 2)
_TAG_LIST_VALUE = tag(1, 2)  # ListAgentActionProto.value

_LITTLE_ENDIAN = sys.byteorder == "little"
"""Whether float32 in memory is the wire's little-endian float32."""

_LISTED_CHECK_MAX = 256
"""Up to this many discrete actions, their range is checked on a Python list (fewer numpy calls)."""

ListAgentActionProto = UnityRLInputProto.ListAgentActionProto
"""The per-behavior list of ``UnityRLInputProto.agent_actions``."""


def action_protos(actions: ActionTuple) -> list[AgentActionProto]:
    """One ``AgentActionProto`` per agent (row) of ``actions``, in order."""
    continuous, discrete = _checked_parts(actions)
    return ActionEncoder(continuous.shape[1], discrete.shape[1]).protos_of_parts(continuous, discrete)


def action_list_proto(actions: ActionTuple) -> ListAgentActionProto:
    """The actions of a behavior's agents as the ``ListAgentActionProto`` of ``UnityRLInputProto.agent_actions``.

    Equal to a list of :func:`action_protos`, built in one parse; put it in place with
    ``rl_input.agent_actions[behavior].CopyFrom(result)``, or use an :class:`ActionEncoder` to write it there
    directly every step.
    """
    continuous, discrete = _checked_parts(actions)
    result = ListAgentActionProto()
    ActionEncoder(continuous.shape[1], discrete.shape[1]).write_parts(continuous, discrete, result)
    return result


class ActionEncoder:
    """Writes the actions of one action layout (``continuous_size`` floats, ``discrete_size`` branches) into a
    ``ListAgentActionProto``, step after step, equal to :func:`action_list_proto`.

    The serialized message is ``n_agents`` records of equal width whose headers are worked out once: a step
    puts the values in place (in a row buffer kept from the last step with as many agents, or, for one agent,
    by joining bytes) and parses once. An encoder is for one thread: it reuses its row buffer.
    """

    __slots__ = (
        "continuous_size",
        "discrete_size",
        "_template",
        "_framing",
        "_deprecated",
        "_continuous",
        "_discrete",
        "_headers",
        "_pack_discrete",
        "_rows",
    )

    def __init__(self, continuous_size: int, discrete_size: int) -> None:
        self.continuous_size = int(continuous_size)
        """Continuous actions per agent."""
        self.discrete_size = int(discrete_size)
        """Discrete branches per agent."""
        layout = _row_layout(self.continuous_size, self.discrete_size)
        width = sum(len(header) + size for header, size in layout)
        self._framing = _TAG_LIST_VALUE + varint(width) if width else b""
        # Each field's header bytes and the column where its values start, in a record with the framing.
        self._headers = [header for header, _ in layout]
        fields = []
        template = bytearray(self._framing)
        for header, size in layout:
            template += header
            fields.append(len(template))
            template += bytes(size)
        self._template = np.frombuffer(bytes(template), dtype=np.uint8)
        starts = iter(fields)
        n_values = self.continuous_size + self.discrete_size
        self._deprecated = next(starts) if n_values else -1
        self._continuous = next(starts) if self.continuous_size else -1
        self._discrete = next(starts) if self.discrete_size else -1
        self._pack_discrete = struct.Struct(f"<{self.discrete_size}f").pack  # discrete actions as float32
        self._rows = np.empty((0, self._template.size), dtype=np.uint8)

    def write(self, actions: ActionTuple, target: ListAgentActionProto) -> None:
        """Appends one ``AgentActionProto`` per agent of ``actions`` to the empty ``target``, in order."""
        continuous, discrete = actions.continuous, actions.discrete
        if (
            _LITTLE_ENDIAN
            and continuous.shape == (1, self.continuous_size)
            and discrete.shape == (1, self.discrete_size)
            and continuous.dtype == np.float32
            and discrete.dtype == np.int32
            and self._template.size
        ):
            record = self._one_record(continuous, discrete)
            if record is not None:
                target.MergeFromString(record)
                return
        continuous, discrete = _checked_parts(actions)
        self.write_parts(continuous, discrete, target)

    def write_parts(self, continuous: np.ndarray, discrete: np.ndarray, target: ListAgentActionProto) -> None:
        """As :meth:`write`, from contiguous ``<f4 (n, continuous_size)`` and ``<i4 (n, discrete_size)`` arrays."""
        if continuous.shape[1] != self.continuous_size or discrete.shape[1] != self.discrete_size:
            raise UnityActionException(
                f"Actions of shapes {continuous.shape} and {discrete.shape} do not fit an encoder for "
                f"{self.continuous_size} continuous actions and {self.discrete_size} discrete branches."
            )
        n_agents = continuous.shape[0]
        if n_agents == 0 or not self._template.size:
            target.value.extend(AgentActionProto() for _ in range(n_agents))
            return
        if not _one_byte_discrete(discrete):
            target.value.extend(_field_by_field(continuous, discrete))
            return
        target.MergeFromString(self._records(continuous, discrete))

    def protos_of_parts(self, continuous: np.ndarray, discrete: np.ndarray) -> list[AgentActionProto]:
        """One ``AgentActionProto`` per agent, from arrays as :meth:`write_parts` takes them."""
        n_agents = continuous.shape[0]
        if n_agents == 0 or not self._template.size:
            return [AgentActionProto() for _ in range(n_agents)]
        if not _one_byte_discrete(discrete):
            return _field_by_field(continuous, discrete)
        data = self._records(continuous, discrete)
        width = self._template.size
        skip = len(self._framing)
        return [AgentActionProto.FromString(data[i * width + skip : (i + 1) * width]) for i in range(n_agents)]

    def _one_record(self, continuous: np.ndarray, discrete: np.ndarray) -> bytes | None:
        """The serialized list of one agent's actions, joined from bytes; None when a discrete action is not in
        0..127 (``bytes`` refuses values past 255 and ``isascii`` those past 127)."""
        values = discrete.tolist()[0]
        try:
            discrete_bytes = bytes(values)
        except ValueError:
            return None
        if not discrete_bytes.isascii():
            return None
        continuous_bytes = continuous.tobytes()
        headers = iter(self._headers)
        parts = [self._framing, next(headers), continuous_bytes, self._pack_discrete(*values)]
        if self.continuous_size:
            parts += [next(headers), continuous_bytes]
        if self.discrete_size:
            parts += [next(headers), discrete_bytes]
        return b"".join(parts)

    def _records(self, continuous: np.ndarray, discrete: np.ndarray) -> bytes:
        """The serialized ``ListAgentActionProto``: the template on every row, the values put in place."""
        n_agents = continuous.shape[0]
        n_continuous = self.continuous_size
        rows = self._rows
        if rows.shape[0] != n_agents:  # headers written once per batch size; the values overwrite their columns
            rows = np.empty((n_agents, self._template.size), dtype=np.uint8)
            rows[...] = self._template
            self._rows = rows
        if n_continuous:
            start = self._deprecated
            rows[:, start : start + 4 * n_continuous] = continuous.view(np.uint8)
            start = self._continuous
            rows[:, start : start + 4 * n_continuous] = continuous.view(np.uint8)
        if self.discrete_size:
            start = self._deprecated + 4 * n_continuous
            rows[:, start : start + 4 * self.discrete_size] = discrete.astype("<f4").view(np.uint8)
            start = self._discrete
            rows[:, start : start + self.discrete_size] = discrete
        return rows.tobytes()


def _field_by_field(continuous: np.ndarray, discrete: np.ndarray) -> list[AgentActionProto]:
    """The general path: each agent's proto built from its fields (any int32 discrete action)."""
    deprecated = np.concatenate([continuous, discrete.astype(np.float32)], axis=1)
    return [
        AgentActionProto(
            vector_actions_deprecated=deprecated[i].tolist(),
            continuous_actions=continuous[i].tolist(),
            discrete_actions=discrete[i].tolist(),
        )
        for i in range(continuous.shape[0])
    ]


def _checked_parts(actions: ActionTuple) -> tuple[np.ndarray, np.ndarray]:
    """The continuous ``<f4 (n, c)`` and discrete ``<i4 (n, d)`` parts, with the same number of rows."""
    continuous = np.ascontiguousarray(actions.continuous, dtype="<f4")
    discrete = np.ascontiguousarray(actions.discrete, dtype="<i4")
    n_agents = actions.n_agents
    if continuous.shape[1] == 0 and continuous.shape[0] != n_agents:
        continuous = np.zeros((n_agents, 0), dtype="<f4")
    if discrete.shape[1] == 0 and discrete.shape[0] != n_agents:
        discrete = np.zeros((n_agents, 0), dtype="<i4")
    if continuous.shape[0] != discrete.shape[0]:
        raise UnityActionException(
            f"The continuous actions are for {continuous.shape[0]} agents but the discrete actions for "
            f"{discrete.shape[0]}: both parts of an ActionTuple need one row per agent."
        )
    return continuous, discrete


def _one_byte_discrete(discrete: np.ndarray) -> bool:
    """True when every discrete action is in 0..127, so that its varint is one byte."""
    if discrete.size == 0:
        return True
    if discrete.size <= _LISTED_CHECK_MAX:
        values = discrete.reshape(-1).tolist()
        return min(values) >= 0 and max(values) < 0x80
    # As unsigned, a negative int32 is 2**31 or more: one comparison covers both ends.
    return int(discrete.view(np.uint32).max()) < 0x80


def actions_from_protos(protos: Sequence[AgentActionProto], spec: ActionSpec) -> ActionTuple:
    """The actions of a batch of agents, shaped by ``spec``: ``float32 (n, continuous)``, ``int32 (n, branches)``.

    An agent whose proto carries neither continuous nor discrete actions but ``vector_actions_deprecated``
    of the right length (a trainer older than API 1.3) is read from that field.
    """
    n_continuous = spec.continuous_size
    n_discrete = spec.discrete_size
    if len(protos) == 0:
        return ActionTuple(np.zeros((0, n_continuous), np.float32), np.zeros((0, n_discrete), np.int32))
    fast = _actions_from_bytes(protos, n_continuous, n_discrete)
    if fast is not None:
        return ActionTuple(*fast)
    continuous = np.zeros((len(protos), n_continuous), dtype=np.float32)
    discrete = np.zeros((len(protos), n_discrete), dtype=np.int32)
    for row, proto in enumerate(protos):
        sent_continuous = len(proto.continuous_actions)
        sent_discrete = len(proto.discrete_actions)
        if sent_continuous == 0 and sent_discrete == 0 and len(proto.vector_actions_deprecated) > 0:
            legacy = np.array(proto.vector_actions_deprecated, dtype=np.float32)
            if len(legacy) != n_continuous + n_discrete:
                raise UnityActionException(_size_error(row, spec, f"{len(legacy)} values in vector_actions_deprecated"))
            continuous[row] = legacy[:n_continuous]
            discrete[row] = legacy[n_continuous:].astype(np.int32)
            continue
        if sent_continuous != n_continuous or sent_discrete != n_discrete:
            sent = f"{sent_continuous} continuous and {sent_discrete} discrete actions"
            raise UnityActionException(_size_error(row, spec, sent))
        if n_continuous:
            continuous[row] = proto.continuous_actions
        if n_discrete:
            discrete[row] = proto.discrete_actions
    return ActionTuple(continuous, discrete)


def _size_error(row: int, spec: ActionSpec, sent: str) -> str:
    return (
        f"The actions for agent {row} of the batch hold {sent}, but the behavior's action spec has "
        f"{spec.continuous_size} continuous actions and discrete branches {list(spec.discrete_branches)}. "
        "Check that the trainer was built for this behavior's action spec."
    )


def _row_layout(n_continuous: int, n_discrete: int) -> list[tuple[bytes, int]]:
    """The fields of an agent's action as ``(field header bytes, payload length in bytes)``, in wire order.

    ``vector_actions_deprecated`` (float32 each), ``continuous_actions`` (float32 each), ``discrete_actions``
    (one varint byte each); a field without values is left out, as protobuf leaves it out.
    """
    fields = []
    for key, size in (
        (_TAG_VECTOR_ACTIONS_DEPRECATED, 4 * (n_continuous + n_discrete)),
        (_TAG_CONTINUOUS_ACTIONS, 4 * n_continuous),
        (_TAG_DISCRETE_ACTIONS, n_discrete),
    ):
        if size:
            fields.append((key + varint(size), size))
    return fields


def _actions_from_bytes(
    protos: Sequence[AgentActionProto], n_continuous: int, n_discrete: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """Reads a batch laid out as :func:`action_protos` writes it; None when any proto is laid out otherwise."""
    layout = _row_layout(n_continuous, n_discrete)
    width = sum(len(header) + size for header, size in layout)
    chunks = [proto.SerializeToString() for proto in protos]
    if width == 0 or not all(len(chunk) == width for chunk in chunks):
        return None
    rows = np.frombuffer(b"".join(chunks), dtype=np.uint8).reshape(len(chunks), width)
    offsets = []
    position = 0
    for header, size in layout:
        if not (rows[:, position : position + len(header)] == np.frombuffer(header, dtype=np.uint8)).all():
            return None
        position += len(header)
        offsets.append((position, size))
        position += size
    continuous = np.zeros((len(protos), 0), dtype=np.float32)
    discrete = np.zeros((len(protos), 0), dtype=np.int32)
    if n_continuous:
        start, size = offsets[1]
        continuous = np.ascontiguousarray(rows[:, start : start + size]).view("<f4").astype(np.float32, copy=False)
    if n_discrete:
        start, size = offsets[-1]
        payload = rows[:, start : start + size]
        if (payload >= 0x80).any():
            return None
        discrete = payload.astype(np.int32)
    return continuous, discrete
