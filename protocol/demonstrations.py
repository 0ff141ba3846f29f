"""ML-Agents ``.demo`` demonstration files, read and written (what Unity's Demonstration Recorder makes, and what
GAIL and behavioral cloning train on).

The layout (every message written length-delimited: a varint byte count, then the message):

- offset 0: ``DemonstrationMetaProto`` (``api_version`` 1, the name, the numbers of steps and episodes, the mean
  reward), inside a header region of :data:`META_REGION_BYTES` bytes;
- offset :data:`BRAIN_PARAMETERS_OFFSET` (33): ``BrainParametersProto`` of the recorded behavior;
- then ``number_steps`` ``AgentInfoActionPairProto`` records, one per ``AgentInfo`` the agent sent: each decision
  request, and the final info of each episode (``done``). Bytes after them are ignored (Unity leaves a copy of
  the meta there).

**What a record pairs.** Unity records an agent's info when the agent sends it, before its policy decides, with
``AgentInfo.storedActions``: the action the agent received at its *previous* decision (zeros in the first
record of an episode). So record ``t`` holds the observation of decision ``t``, the reward earned since decision
``t - 1`` and the action *of decision* ``t - 1``; the final record of an episode holds the terminal observation,
the last reward and the last action. :func:`read_demonstration` realigns them: experience ``t`` is record
``t``'s observation and action mask, record ``t + 1``'s action (the one taken on that observation), reward and
done flag. A final record starts no experience, nor does the last record of a file. :class:`DemonstrationWriter`
(:mod:`rayagents.protocol.demonstration_writer`) does the reverse: it is handed each info with the action taken
on it, and writes the Unity layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, TypeVar

import numpy as np
from google.protobuf.message import DecodeError, Message

from rayagents.protocol.actions import actions_from_protos
from rayagents.protocol.communicator_objects.agent_info_action_pair_pb2 import AgentInfoActionPairProto
from rayagents.protocol.communicator_objects.agent_info_pb2 import AgentInfoProto
from rayagents.protocol.communicator_objects.brain_parameters_pb2 import BrainParametersProto
from rayagents.protocol.communicator_objects.demonstration_meta_pb2 import DemonstrationMetaProto
from rayagents.protocol.exceptions import UnityActionException, UnityObservationException
from rayagents.protocol.observations import ObservationDecoder, observation_dtype
from rayagents.protocol.steps import behavior_spec_from_proto
from rayagents.protocol.types import ActionSpec, BehaviorSpec

META_REGION_BYTES = 32
"""Bytes Unity reserves for the meta message at the start of the file (``DemonstrationWriter.MetaDataBytes``)."""
BRAIN_PARAMETERS_OFFSET = META_REGION_BYTES + 1
"""Where the brain parameters start (33): the delimited meta must end before it."""
API_VERSION = 1
"""The ``api_version`` written (``DemonstrationMetaData.ApiVersion``)."""
SUPPORTED_API_VERSIONS = (0, 1)
"""The ``api_version`` values ML-Agents' reader accepts."""

_MAX_VARINT_BYTES = 10
_Message = TypeVar("_Message", bound=Message)


class DemonstrationError(ValueError):
    """A demonstration cannot be read or used: the message names the file, says what is wrong and what to do."""


@dataclass(frozen=True)
class DemonstrationMeta:
    """The header of a ``.demo`` file."""

    name: str
    """The demonstration's name (``demonstration_name``)."""
    number_steps: int
    """How many records follow the brain parameters (every info recorded, final ones included)."""
    number_episodes: int
    """Episodes recorded (Unity counts the one in progress when the recorder closed)."""
    mean_reward: float
    """The summed reward of all records divided by ``number_episodes``."""
    api_version: int
    """0 or 1."""


@dataclass(frozen=True, eq=False)
class Demonstration:
    """Experiences aligned for training: the agent saw observations[k][t], took the action at row t, then got
    rewards[t]; dones[t] is True where the episode ended after that action."""

    behavior_name: str
    """The recorded behavior, as the file names it (Unity writes the fully qualified ``Name?team=N``)."""
    behavior_spec: BehaviorSpec
    """Its sensors (from the first record's observations) and actions (from the brain parameters)."""
    observations: list[np.ndarray]
    """One array per sensor, ``(n, *shape)``, as an EnvActor keeps them: float32, or uint8 (0..255) for a sensor
    sent as PNG."""
    continuous_actions: np.ndarray
    """float32 ``(n, continuous_size)``: what the agent received (a policy's clipped or squashed output)."""
    discrete_actions: np.ndarray
    """int64 ``(n, len(branches))``."""
    action_masks: np.ndarray
    """bool ``(n, sum(branches))``, True = the action was disabled (the wire's convention); all False when none
    was recorded."""
    rewards: np.ndarray
    """float32 ``(n,)``."""
    dones: np.ndarray
    """bool ``(n,)``."""
    number_episodes: int
    """The episodes the file(s) say they hold."""
    sources: tuple[str, ...]
    """The file(s) read."""

    def __len__(self) -> int:
        return int(self.rewards.shape[0])


@dataclass(frozen=True)
class DemonstrationRecords:
    """A ``.demo`` file as it lies: its header, its brain parameters and its records, not realigned."""

    meta: DemonstrationMeta
    """The header."""
    brain_parameters: BrainParametersProto
    """The recorded behavior's name and actions."""
    pairs: list[AgentInfoActionPairProto]
    """The ``number_steps`` records, in file order."""


# ---- reading -----------------------------------------------------------------------------------------------------
def read_demonstration_records(data: bytes, source: str) -> DemonstrationRecords:
    """Parses one file's bytes as ML-Agents' reader does: the meta at 0, the brain parameters at 33, then exactly
    ``number_steps`` records (trailing bytes ignored). ``source`` names the file in errors."""
    view = memoryview(data)
    if len(view) == 0:
        raise DemonstrationError(f"{source} is empty: it is not a .demo file. Record it again or copy it again.")
    not_demo = (
        f"{source} is not a .demo file ({{why}}). Give a file written by Unity's Demonstration Recorder or "
        "'rayagents-sim record'."
    )
    try:
        size, position = _read_varint(view, 0)
    except _Truncated:
        raise DemonstrationError(not_demo.format(why="its first bytes are not a message length")) from None
    if position + size > BRAIN_PARAMETERS_OFFSET:
        raise DemonstrationError(
            not_demo.format(why=f"its header claims {size} bytes, more than the {META_REGION_BYTES} a header has")
        )
    meta_proto = _parse(DemonstrationMetaProto, view[position : position + size], not_demo, "its header")
    if meta_proto.api_version not in SUPPORTED_API_VERSIONS:
        raise DemonstrationError(
            f"{source} has demonstration api_version {meta_proto.api_version}; this reader (as ML-Agents') reads "
            f"versions {' and '.join(map(str, SUPPORTED_API_VERSIONS))}. Record it again with com.unity.ml-agents "
            "2.x/3.x or 'rayagents-sim record' (or check that it is a .demo file at all)."
        )
    meta = DemonstrationMeta(
        name=meta_proto.demonstration_name,
        number_steps=int(meta_proto.number_steps),
        number_episodes=int(meta_proto.number_episodes),
        mean_reward=float(meta_proto.mean_reward),
        api_version=int(meta_proto.api_version),
    )
    truncated = f"{source} is truncated: {{what}}. Record it again, or copy it again if the copy was cut short."
    try:
        size, position = _read_varint(view, BRAIN_PARAMETERS_OFFSET)
    except _Truncated:
        raise DemonstrationError(truncated.format(what="it ends before its brain parameters")) from None
    if position + size > len(view):
        raise DemonstrationError(truncated.format(what="it ends inside its brain parameters"))
    brain = _parse(BrainParametersProto, view[position : position + size], not_demo, "its brain parameters")
    position += size
    spec = brain.action_spec
    if spec.num_continuous_actions == 0 and len(spec.discrete_branch_sizes) == 0:
        if len(brain.vector_action_size_deprecated) == 0:
            raise DemonstrationError(not_demo.format(why="its brain parameters declare no actions"))
    if meta.number_steps <= 0:
        raise DemonstrationError(
            f"{source} holds no steps (its header says {meta.number_steps}): Unity writes the counts when the "
            "recorder closes, so the recording was empty or never closed. Record it again and stop the scene "
            "normally."
        )
    pairs: list[AgentInfoActionPairProto] = []
    total = meta.number_steps
    for k in range(1, total + 1):
        where = f"record {k} of {total}"
        try:
            size, position = _read_varint(view, position)
        except _Truncated:
            raise DemonstrationError(truncated.format(what=f"it ends before {where}")) from None
        if position + size > len(view):
            raise DemonstrationError(truncated.format(what=f"it ends inside {where}"))
        pairs.append(_parse(AgentInfoActionPairProto, view[position : position + size], not_demo, where))
        position += size
    return DemonstrationRecords(meta, brain, pairs)


def read_demonstration(data: bytes, source: str) -> Demonstration:
    """The aligned experiences of one ``.demo`` file's bytes (see the module docstring); ``source`` names the
    file in errors."""
    records = read_demonstration_records(data, source)
    pairs = records.pairs
    infos = [pair.agent_info for pair in pairs]
    behavior = records.brain_parameters.brain_name
    spec = behavior_spec_from_proto(records.brain_parameters, infos[0])
    sensors = len(spec.observation_specs)
    for k, info in enumerate(infos):
        if len(info.observations) != sensors:
            raise DemonstrationError(
                f"{source}: record {k + 1} of {len(infos)} has {len(info.observations)} observations but the first "
                f"has {sensors}: the file is damaged, or not one agent's recording. Record it again."
            )
    try:
        per_record_obs = [
            ObservationDecoder(obs_spec, behavior, observation_dtype(infos[0].observations[i], "uint8")).decode(
                [info.observations[i] for info in infos]
            )
            for i, obs_spec in enumerate(spec.observation_specs)
        ]
        actions = actions_from_protos([pair.action_info for pair in pairs], spec.action_spec)
    except (UnityObservationException, UnityActionException) as error:
        raise DemonstrationError(f"{source}: {error} Record the demonstration again.") from error
    done = np.fromiter((info.done for info in infos), bool, len(infos))
    rewards = np.fromiter((info.reward for info in infos), np.float32, len(infos))
    if not np.isfinite(rewards).all():
        raise DemonstrationError(
            f"{source} holds a NaN or infinite reward: check the scene's rewards and record it again."
        )
    masks = _action_masks(infos, spec.action_spec)
    # Experience t: record t's observation and mask; record t+1's action (taken on that observation), reward, done.
    rows = np.flatnonzero(~done[:-1])
    following = rows + 1
    if len(rows) == 0:
        raise DemonstrationError(
            f"{source} holds {len(infos)} record(s) but no complete experience (an observation followed by the "
            "action taken on it): record at least one decision and the step after it."
        )
    return Demonstration(
        behavior_name=behavior,
        behavior_spec=spec,
        observations=[obs[rows] for obs in per_record_obs],
        continuous_actions=actions.continuous[following].astype(np.float32),
        discrete_actions=actions.discrete[following].astype(np.int64),
        action_masks=masks[rows],
        rewards=rewards[following],
        dones=done[following],
        number_episodes=records.meta.number_episodes,
        sources=(source,),
    )


def concatenate_demonstrations(demos: Sequence[Demonstration]) -> Demonstration:
    """The experiences of several demonstrations (a folder's files) one after the other; their observation
    shapes and actions must agree. A sensor kept as uint8 in one and float32 in another becomes float32 in [0, 1]."""
    if len(demos) == 0:
        raise DemonstrationError("no demonstrations to put together: give at least one .demo file")
    if len(demos) == 1:
        return demos[0]
    first = demos[0]
    for other in demos[1:]:
        if _spec_summary(other.behavior_spec) != _spec_summary(first.behavior_spec):
            raise DemonstrationError(
                f"{_files(other)} and {_files(first)} were recorded from different behaviors: "
                f"{_describe(other.behavior_spec)} against {_describe(first.behavior_spec)}. Put only demonstrations "
                "of one behavior in a folder."
            )
    observations = []
    for i in range(len(first.observations)):
        columns = [demo.observations[i] for demo in demos]
        if len({column.dtype for column in columns}) > 1:
            columns = [c.astype(np.float32) / 255.0 if c.dtype == np.uint8 else c for c in columns]
        observations.append(np.concatenate(columns))
    return Demonstration(
        behavior_name=first.behavior_name,
        behavior_spec=first.behavior_spec,
        observations=observations,
        continuous_actions=np.concatenate([demo.continuous_actions for demo in demos]),
        discrete_actions=np.concatenate([demo.discrete_actions for demo in demos]),
        action_masks=np.concatenate([demo.action_masks for demo in demos]),
        rewards=np.concatenate([demo.rewards for demo in demos]),
        dones=np.concatenate([demo.dones for demo in demos]),
        number_episodes=sum(demo.number_episodes for demo in demos),
        sources=tuple(source for demo in demos for source in demo.sources),
    )


def check_demonstration_spec(demo: Demonstration, expected: BehaviorSpec) -> None:
    """DemonstrationError unless ``demo`` has the observation shapes and actions of ``expected`` (the policy's)."""
    if _spec_summary(demo.behavior_spec) == _spec_summary(expected):
        return
    raise DemonstrationError(
        f"The demonstration {_files(demo)} does not fit the policy it is meant to train: it has "
        f"{_describe(demo.behavior_spec)}, the policy has {_describe(expected)}. Record the demonstration from "
        "this behavior (same sensors, same actions), or point demo_path at one that was."
    )


def _action_masks(infos: Sequence[AgentInfoProto], action_spec: ActionSpec) -> np.ndarray:
    """bool ``(records, sum(branches))``, True = disabled; a record whose mask is not that long is unmasked."""
    width = sum(action_spec.discrete_branches)
    masks = np.zeros((len(infos), width), dtype=bool)
    if width:
        for k, info in enumerate(infos):
            if len(info.action_mask) == width:
                masks[k] = info.action_mask
    return masks


def _spec_summary(spec: BehaviorSpec) -> tuple:
    return (tuple(tuple(s.shape) for s in spec.observation_specs), spec.action_spec)


def _describe(spec: BehaviorSpec) -> str:
    shapes = ", ".join(str(tuple(s.shape)) for s in spec.observation_specs) or "none"
    actions = spec.action_spec
    return (
        f"observation shapes [{shapes}] and {actions.continuous_size} continuous action(s) and discrete branches "
        f"{list(actions.discrete_branches)}"
    )


def _files(demo: Demonstration) -> str:
    return ", ".join(demo.sources) or "(unnamed)"


class _Truncated(Exception):
    """The bytes end inside a varint."""


def _read_varint(data: memoryview, position: int) -> tuple[int, int]:
    """The varint at ``position`` and the position after it."""
    value = 0
    for shift_index in range(_MAX_VARINT_BYTES):
        if position >= len(data):
            raise _Truncated
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << (7 * shift_index)
        if byte < 0x80:
            return value, position
    raise _Truncated


def _parse(message_type: type[_Message], payload: memoryview, not_demo: str, what: str) -> _Message:
    """``payload`` parsed as ``message_type``; a DemonstrationError saying ``what`` could not be parsed otherwise."""
    try:
        return message_type.FromString(payload.tobytes())
    except DecodeError:
        raise DemonstrationError(not_demo.format(why=f"{what} could not be parsed")) from None
