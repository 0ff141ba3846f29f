"""The Unity end, batched: one behavior's agent infos for a step, built from numpy arrays in one go.

:func:`rayagents.protocol.agents.agent_info_proto` builds one agent's info from protos, a few microseconds
of Python per agent. A simulation host that holds its agents' observations, rewards and flags as arrays can
instead call :func:`agent_info_list_proto`: it writes the serialized ``ListAgentInfoProto`` of the whole
batch with numpy (each agent's record is a row of a byte matrix; rows are cut to their lengths and joined)
and parses it once. The result equals the list built agent by agent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Union

import numpy as np

from rayagents.protocol.communicator_objects.observation_pb2 import ObservationProto
from rayagents.protocol.communicator_objects.unity_rl_output_pb2 import UnityRLOutputProto
from rayagents.protocol.observations import float_observation_layout
from rayagents.protocol.wire import tag, varint

ListAgentInfoProto = UnityRLOutputProto.ListAgentInfoProto
"""The per-behavior list of ``UnityRLOutputProto.agentInfos``."""

# Keys of the AgentInfoProto fields (field numbers from agent_info.proto) and of ListAgentInfoProto.value.
_TAG_REWARD = tag(7, 5)  # float, fixed32
_TAG_DONE = tag(8, 0)
_TAG_MAX_STEP_REACHED = tag(9, 0)
_TAG_ID = tag(10, 0)
_TAG_ACTION_MASK = tag(11, 2)  # packed bool
_TAG_OBSERVATIONS = tag(13, 2)
_TAG_GROUP_ID = tag(14, 0)
_TAG_GROUP_REWARD = tag(15, 5)  # float, fixed32
_TAG_LIST_VALUE = tag(1, 2)


@dataclass(frozen=True)
class FloatObservations:
    """One float sensor's observations for a batch of agents (sent uncompressed)."""

    name: str
    """The sensor's name (an agent's sensors are sent sorted by name)."""
    values: np.ndarray
    """``(n_agents, *shape)``; sent as float32."""
    dimension_properties: tuple[int, ...] | None = None
    """One flag per dimension of ``shape``; None: as :func:`float_observation_proto` chooses."""
    observation_type: int = 0
    """0 = DEFAULT, 1 = GOAL_SIGNAL."""


SensorBatch = Union[FloatObservations, Sequence[ObservationProto]]
"""One sensor's observations for a batch: float arrays, or one prebuilt proto per agent (e.g. PNG)."""


def agent_info_list_proto(
    agent_ids: np.ndarray | Sequence[int],
    observations: Sequence[SensorBatch],
    *,
    rewards: np.ndarray | None = None,
    dones: np.ndarray | None = None,
    max_step_reached: np.ndarray | None = None,
    action_masks: np.ndarray | None = None,
    group_ids: np.ndarray | None = None,
    group_rewards: np.ndarray | None = None,
) -> ListAgentInfoProto:
    """The infos of a batch of agents, as ``agent_info_proto`` would build them one by one.

    ``observations`` holds one entry per sensor, in the order they are sent (sorted by name). Every other
    argument is one value per agent (None: zeros / False); ``action_masks`` is ``bool (n, sum(branches))``,
    True = the action is disabled. Put the result in place with
    ``output.agentInfos[behavior].CopyFrom(result)``.
    """
    ids = np.asarray(agent_ids, dtype=np.int64).reshape(-1)
    count = len(ids)
    if count == 0:
        return ListAgentInfoProto()
    blocks: list[tuple[np.ndarray, np.ndarray | None]] = [
        _fixed32_field(_TAG_REWARD, rewards, count),
        _bool_field(_TAG_DONE, dones, count),
        _bool_field(_TAG_MAX_STEP_REACHED, max_step_reached, count),
        _varint_field(_TAG_ID, ids),
    ]
    if action_masks is not None:
        masks = np.asarray(action_masks, dtype=bool).reshape(count, -1)
        if masks.shape[1] > 0:
            header = _TAG_ACTION_MASK + varint(masks.shape[1])
            blocks.append((_constant(header, count), None))
            blocks.append((masks.view(np.uint8), None))
    for sensor in observations:
        blocks.extend(_observation_blocks(sensor, count))
    blocks.append(_varint_field(_TAG_GROUP_ID, _ints(group_ids, count)))
    blocks.append(_fixed32_field(_TAG_GROUP_REWARD, group_rewards, count))

    record_lengths = np.zeros(count, dtype=np.int64)
    for block, lengths in blocks:
        record_lengths += block.shape[1] if lengths is None else lengths
    framing = [(_constant(_TAG_LIST_VALUE, count), None), _varints(record_lengths)]
    return ListAgentInfoProto.FromString(_cut_and_join(framing + blocks, count))


def _observation_blocks(sensor: SensorBatch, count: int) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """The field-13 bytes of one sensor for every agent, as blocks (constant header, values, constant tail)."""
    if isinstance(sensor, FloatObservations):
        values = np.ascontiguousarray(sensor.values, dtype="<f4")
        if values.shape[0] != count:
            raise ValueError(f"sensor '{sensor.name}' has observations for {values.shape[0]} agents, not {count}")
        head, tail = float_observation_layout(
            values.shape[1:],
            sensor.name,
            dimension_properties=sensor.dimension_properties,
            observation_type=sensor.observation_type,
        )
        message_length = len(head) + 4 * int(np.prod(values.shape[1:])) + len(tail)
        blocks = [(_constant(_TAG_OBSERVATIONS + varint(message_length) + head, count), None)]
        if values.size:
            blocks.append((values.reshape(count, -1).view(np.uint8), None))
        if tail:
            blocks.append((_constant(tail, count), None))
        return blocks
    if len(sensor) != count:
        raise ValueError(f"a sensor has {len(sensor)} observation protos for {count} agents")
    messages = [proto.SerializeToString() for proto in sensor]
    lengths = np.fromiter((len(m) for m in messages), dtype=np.int64, count=count)
    width = int(lengths.max())
    matrix = np.zeros((count, width), dtype=np.uint8)
    if width:
        for row, message in enumerate(messages):
            matrix[row, : len(message)] = np.frombuffer(message, dtype=np.uint8)
    return [(_constant(_TAG_OBSERVATIONS, count), None), _varints(lengths), (matrix, lengths)]


def _cut_and_join(blocks: list[tuple[np.ndarray, np.ndarray | None]], count: int) -> bytes:
    """Concatenates each row's blocks, every block cut to its row's length (None: the whole block), then the rows."""
    matrix = np.concatenate([block for block, _ in blocks], axis=1)
    if all(lengths is None for _, lengths in blocks):
        return matrix.tobytes()
    keep = np.concatenate(
        [
            np.ones(block.shape, dtype=bool) if lengths is None else np.arange(block.shape[1]) < lengths[:, None]
            for block, lengths in blocks
        ],
        axis=1,
    )
    return matrix[keep].tobytes()  # boolean indexing walks rows in order: the records, back to back


def _constant(data: bytes, count: int) -> np.ndarray:
    """The same bytes on every row."""
    return np.broadcast_to(np.frombuffer(data, dtype=np.uint8), (count, len(data)))


def _ints(values: np.ndarray | None, count: int) -> np.ndarray:
    return np.zeros(count, dtype=np.int64) if values is None else np.asarray(values, dtype=np.int64).reshape(count)


def _fixed32_field(key: bytes, values: np.ndarray | None, count: int) -> tuple[np.ndarray, None]:
    """A float field on every row: key and 4 little-endian bytes."""
    floats = np.zeros(count, dtype="<f4") if values is None else np.asarray(values, dtype="<f4").reshape(count)
    return np.concatenate([_constant(key, count), floats.reshape(count, 1).view(np.uint8)], axis=1), None


def _bool_field(key: bytes, values: np.ndarray | None, count: int) -> tuple[np.ndarray, None]:
    """A bool field on every row: key and one 0/1 byte."""
    flags = np.zeros(count, dtype=bool) if values is None else np.asarray(values, dtype=bool).reshape(count)
    return np.concatenate([_constant(key, count), flags.reshape(count, 1).view(np.uint8)], axis=1), None


def _varint_field(key: bytes, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An int32 field on every row: key and the value's varint, as a padded block and its lengths."""
    digits, lengths = _varints(values)
    return np.concatenate([_constant(key, len(values)), digits], axis=1), lengths + len(key)


def _varints(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The varint of each value as a padded ``uint8 (n, width)`` block and each varint's length.

    Negative values take 10 bytes (int32 is sign-extended to 64 bits on the wire).
    """
    remaining = np.asarray(values, dtype=np.int64).view(np.uint64)
    columns = []
    lengths = np.ones(len(remaining), dtype=np.int64)
    while True:
        rest = remaining >> np.uint64(7)
        more = rest != 0
        columns.append(((remaining & np.uint64(0x7F)) | (more.astype(np.uint64) << np.uint64(7))).astype(np.uint8))
        if not more.any():
            break
        lengths += more
        remaining = rest
    return np.stack(columns, axis=1), lengths

