"""Actions on the wire: ``ActionTuple`` ⇄ one ``AgentActionProto`` per agent, at both ends.

The trainer end (:func:`action_protos`) fills ``continuous_actions``, ``discrete_actions`` and, for players
that still read it, ``vector_actions_deprecated`` (continuous values, then the discrete ones as floats). The
Unity end (:func:`actions_from_protos`) reads ``continuous_actions`` and ``discrete_actions``, as Unity does.

Both directions go through bytes when the batch has the usual layout (every discrete action in 0..127, so
one varint byte each): a batch is written as one numpy array of rows and parsed one row per proto, or
serialized one proto per row and read back with ``np.frombuffer``. Anything else takes the per-field path.
"""

from __future__ import annotations

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

ListAgentActionProto = UnityRLInputProto.ListAgentActionProto
"""The per-behavior list of ``UnityRLInputProto.agent_actions``."""


def action_protos(actions: ActionTuple) -> list[AgentActionProto]:
    """One ``AgentActionProto`` per agent (row) of ``actions``, in order."""
    continuous, discrete = _checked_parts(actions)
    n_agents = continuous.shape[0]
    if _one_byte_discrete(discrete):
        rows, width = _action_rows(continuous, discrete)
        return [AgentActionProto.FromString(rows[i * width : (i + 1) * width]) for i in range(n_agents)]
    deprecated = np.concatenate([continuous, discrete.astype(np.float32)], axis=1)
    return [
        AgentActionProto(
            vector_actions_deprecated=deprecated[i].tolist(),
            continuous_actions=continuous[i].tolist(),
            discrete_actions=discrete[i].tolist(),
        )
        for i in range(n_agents)
    ]


def action_list_proto(actions: ActionTuple) -> ListAgentActionProto:
    """The actions of a behavior's agents as the ``ListAgentActionProto`` of ``UnityRLInputProto.agent_actions``.

    Equal to a list of :func:`action_protos`, built in one parse; put it in place with
    ``rl_input.agent_actions[behavior].CopyFrom(result)``.
    """
    continuous, discrete = _checked_parts(actions)
    n_agents = continuous.shape[0]
    if not _one_byte_discrete(discrete):
        result = ListAgentActionProto()
        result.value.extend(action_protos(actions))
        return result
    rows, width = _action_rows(continuous, discrete)
    framing = np.frombuffer(_TAG_LIST_VALUE + varint(width), dtype=np.uint8)
    records = np.frombuffer(rows, dtype=np.uint8).reshape(n_agents, width)
    matrix = np.concatenate([np.broadcast_to(framing, (n_agents, len(framing))), records], axis=1)
    return ListAgentActionProto.FromString(matrix.tobytes())


def _checked_parts(actions: ActionTuple) -> tuple[np.ndarray, np.ndarray]:
    """The continuous ``<f4 (n, c)`` and discrete ``<i4 (n, d)`` parts, with the same number of rows."""
    continuous = np.ascontiguousarray(actions.continuous, dtype="<f4")
    discrete = np.ascontiguousarray(actions.discrete, dtype="<i4")
    n_agents = actions.n_agents
    if continuous.shape[1] == 0:
        continuous = np.zeros((n_agents, 0), dtype="<f4")
    if discrete.shape[1] == 0:
        discrete = np.zeros((n_agents, 0), dtype="<i4")
    if continuous.shape[0] != discrete.shape[0]:
        raise UnityActionException(
            f"The continuous actions are for {continuous.shape[0]} agents but the discrete actions for "
            f"{discrete.shape[0]}: both parts of an ActionTuple need one row per agent."
        )
    return continuous, discrete


def _one_byte_discrete(discrete: np.ndarray) -> bool:
    """True when every discrete action is in 0..127, so that its varint is one byte."""
    return discrete.size == 0 or bool(((discrete >= 0) & (discrete < 0x80)).all())


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


def _action_rows(continuous: np.ndarray, discrete: np.ndarray) -> tuple[bytes, int]:
    """The serialized ``AgentActionProto`` of every agent, rows of equal width, and that width.

    Needs every discrete action in 0..127 (one varint byte).
    """
    n_agents, n_continuous = continuous.shape
    n_discrete = discrete.shape[1]
    payloads = [
        np.concatenate([continuous, discrete.astype("<f4")], axis=1).view(np.uint8),
        continuous.view(np.uint8),
        discrete.astype(np.uint8),
    ]
    columns = []
    for (header, _), payload in zip(_row_layout(n_continuous, n_discrete), [p for p in payloads if p.shape[1]]):
        columns.append(np.broadcast_to(np.frombuffer(header, dtype=np.uint8), (n_agents, len(header))))
        columns.append(payload)
    if not columns:
        return b"", 0
    rows = np.concatenate(columns, axis=1)
    return rows.tobytes(), rows.shape[1]


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
