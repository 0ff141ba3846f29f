"""Writing ML-Agents ``.demo`` files as Unity's Demonstration Recorder does (the layout and the pairing of records
are described in :mod:`rayagents.protocol.demonstrations`, which reads them)."""

from __future__ import annotations

import math
import re
from typing import BinaryIO, Sequence

import numpy as np

from rayagents.protocol.agents import brain_parameters_proto, legacy_brain_parameters_proto
from rayagents.protocol.communicator_objects.agent_action_pb2 import AgentActionProto
from rayagents.protocol.communicator_objects.agent_info_action_pair_pb2 import AgentInfoActionPairProto
from rayagents.protocol.communicator_objects.agent_info_pb2 import AgentInfoProto
from rayagents.protocol.communicator_objects.brain_parameters_pb2 import BrainParametersProto
from rayagents.protocol.communicator_objects.demonstration_meta_pb2 import DemonstrationMetaProto
from rayagents.protocol.demonstrations import API_VERSION, BRAIN_PARAMETERS_OFFSET, DemonstrationMeta
from rayagents.protocol.steps import behavior_spec_from_proto
from rayagents.protocol.types import ActionSpec
from rayagents.protocol.wire import varint

MAX_NAME_LENGTH = 16
"""The longest demonstration name Unity's recorder writes (longer names are cut)."""

_NAME_DISALLOWED = re.compile(r"[^a-zA-Z0-9 -]")

def sanitize_demonstration_name(name: str) -> str:
    """``name`` as Unity's recorder keeps it: letters, digits, spaces and dashes only, at most 16 characters."""
    return _NAME_DISALLOWED.sub("", name)[:MAX_NAME_LENGTH]


def demonstration_brain_parameters(behavior: str, action_spec: ActionSpec) -> BrainParametersProto:
    """The brain parameters Unity's recorder writes (``BrainParameters.ToProto(name, isTraining: false)``):
    ``action_spec`` plus the deprecated action fields (those stay empty for hybrid actions, which they cannot say)."""
    if action_spec.continuous_size > 0 and action_spec.discrete_size > 0:
        return brain_parameters_proto(behavior, action_spec, is_training=False)
    return legacy_brain_parameters_proto(behavior, action_spec, is_training=False)


class DemonstrationWriter:
    """Writes one agent's experiences as a ``.demo`` file, as Unity's Demonstration Recorder does.

    Give it every info the agent sends, in order, with :meth:`record`: each decision request with the action the
    agent takes on it, and the final info of each episode (``done``) with none. Each record is written with the
    action of the agent's previous decision (zeros at an episode's start), as Unity stores it. :meth:`close`
    writes the counts: the steps recorded, the episodes (the finished ones, plus one still in progress) and the
    mean reward (all rewards recorded / episodes); Unity also appends the meta bytes at the end of the file and
    rewrites the header at offset 0, and so does this writer.

    Arguments:
        stream: a seekable binary stream, positioned where the file starts.
        demonstration_name: the name in the header (cut, if needed, so that the header fits its 32 bytes).
        brain_parameters: the behavior's (see :func:`demonstration_brain_parameters`).
    """

    def __init__(self, stream: BinaryIO, demonstration_name: str, brain_parameters: BrainParametersProto) -> None:
        self._stream = stream
        self._start = stream.tell()
        self._name = demonstration_name
        self._action_spec = behavior_spec_from_proto(brain_parameters, AgentInfoProto()).action_spec
        self._steps = 0
        self._episodes = 0
        self._in_episode = False
        self._cumulative_reward = 0.0
        self._stored = self._zero_action()
        self._closed = False
        placeholder = DemonstrationMetaProto(api_version=API_VERSION, demonstration_name=self._fitting_name(0, 0, 0.0))
        stream.write(_delimited(placeholder.SerializeToString()))
        stream.write(b"\0" * (self._start + BRAIN_PARAMETERS_OFFSET - stream.tell()))
        stream.write(_delimited(brain_parameters.SerializeToString()))

    @property
    def steps(self) -> int:
        """Records written so far."""
        return self._steps

    def record(
        self,
        agent_info: AgentInfoProto,
        continuous: np.ndarray | Sequence[float] | None = None,
        discrete: np.ndarray | Sequence[int] | None = None,
    ) -> None:
        """Records one info of the agent; ``continuous``/``discrete`` are the action it takes on it (required for
        a decision request with actions of that kind, ignored for a final info)."""
        pair = AgentInfoActionPairProto(agent_info=agent_info, action_info=self._stored)
        self.record_pair(pair)
        if agent_info.done:
            self._stored = self._zero_action()
            return
        self._stored = self._action_proto(continuous, discrete)

    def record_pair(self, pair: AgentInfoActionPairProto) -> None:
        """Writes a record as it is given (its action already the one Unity stores: the previous decision's)."""
        if self._closed:
            raise ValueError("the demonstration writer is closed")
        self._stream.write(_delimited(pair.SerializeToString()))
        self._steps += 1
        self._cumulative_reward += pair.agent_info.reward
        if pair.agent_info.done:
            self._episodes += 1
            self._in_episode = False
        else:
            self._in_episode = True

    def close(self) -> DemonstrationMeta:
        """Writes the final header and returns it; the stream is left open (its owner closes it)."""
        if self._closed:
            raise ValueError("the demonstration writer is closed")
        self._closed = True
        episodes = self._episodes + (1 if self._in_episode else 0)
        mean_reward = float(np.float32(self._cumulative_reward / episodes)) if episodes else 0.0
        name = self._fitting_name(self._steps, episodes, mean_reward)
        meta = DemonstrationMetaProto(
            api_version=API_VERSION,
            demonstration_name=name,
            number_steps=self._steps,
            number_episodes=episodes,
            mean_reward=mean_reward,
        ).SerializeToString()
        self._stream.write(meta)
        end = self._stream.tell()
        self._stream.seek(self._start)
        self._stream.write(_delimited(meta))
        self._stream.seek(end)
        self._stream.flush()
        return DemonstrationMeta(name, self._steps, episodes, mean_reward, API_VERSION)

    def __enter__(self) -> "DemonstrationWriter":
        return self

    def __exit__(self, *exc_info: object) -> None:
        if not self._closed:
            self.close()

    def _fitting_name(self, steps: int, episodes: int, mean_reward: float) -> str:
        """The name, cut until the delimited header fits before offset 33."""
        name = self._name
        while True:
            meta = DemonstrationMetaProto(
                api_version=API_VERSION,
                demonstration_name=name,
                number_steps=steps,
                number_episodes=episodes,
                mean_reward=mean_reward,
            ).SerializeToString()
            if len(_delimited(meta)) <= BRAIN_PARAMETERS_OFFSET or not name:
                return name
            name = name[:-1]

    def _zero_action(self) -> AgentActionProto:
        spec = self._action_spec
        return AgentActionProto(
            continuous_actions=[0.0] * spec.continuous_size, discrete_actions=[0] * spec.discrete_size
        )

    def _action_proto(
        self, continuous: np.ndarray | Sequence[float] | None, discrete: np.ndarray | Sequence[int] | None
    ) -> AgentActionProto:
        """The action of a decision as the proto Unity stores, checked against the behavior's actions."""
        spec = self._action_spec
        values = np.zeros(0, np.float32) if continuous is None else np.asarray(continuous, np.float32).reshape(-1)
        choices = np.zeros(0, np.int64) if discrete is None else np.asarray(discrete, np.int64).reshape(-1)
        if len(values) != spec.continuous_size or len(choices) != spec.discrete_size:
            raise ValueError(
                f"a decision's action must have {spec.continuous_size} continuous value(s) and {spec.discrete_size} "
                f"discrete choice(s), got {len(values)} and {len(choices)}"
            )
        if not all(map(math.isfinite, values.tolist())):
            raise ValueError(f"a continuous action holds NaN or Inf: {values.tolist()}")
        return AgentActionProto(continuous_actions=values.tolist(), discrete_actions=choices.tolist())


def _delimited(payload: bytes) -> bytes:
    return varint(len(payload)) + payload
