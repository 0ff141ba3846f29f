"""SAC's replay buffer with recurrent memory: experiences kept, drawn and dropped as whole padded sequences.

With ``network_settings.memory`` ML-Agents' SAC appends each trajectory to its update buffer cut into sequences of
``sequence_length`` (``resequence_and_append(training_length=sequence_length)``), draws minibatches of
``batch_size / sequence_length`` whole sequences (at least one; ``sample_mini_batch(batch_size, sequence_length)``,
uniform, with replacement) and truncates the buffer by whole sequences, the oldest first. So does
:class:`SequenceReplayBuffer`: a :class:`~rayagents.learner.replay_buffer.ReplayBuffer` ring whose every slot is one
sequence (each row column holds ``sequence_length`` rows per slot), ``buffer_size // sequence_length`` slots, so
the capacity still counts rows.

Each trajectory is laid out as :func:`~rayagents.learner.memory.sequence_layout` lays it out (its last sequence
padded at its end) with :data:`~rayagents.learner.trajectory.LOSS_MASKS`, 1 on an experience to train on and 0 on
padding (and on an experience whose acting weights are not trainable). Beside the rows, each sequence keeps two
memories: :data:`~rayagents.learner.memory.MEMORY`, the acting policy's memory at its first step (what ML-Agents
reads of its per-step ``MEMORY`` column: the first row of each sequence, the only one it ever reads), and
:data:`~rayagents.learner.trajectory.CRITIC_MEMORY`, the value network's memory there. A drawn minibatch holds the
row columns flattened (``n_sequences * sequence_length`` rows, one sequence after the other) and the two memory
columns with one row per sequence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from rayagents.configs.network import MemorySettings
from rayagents.learner.encoders import observation_tensor
from rayagents.learner.memory import SEQUENCE_COLUMNS, AgentMemories, SequenceLayout, sequence_layout
from rayagents.learner.networks import Critic
from rayagents.learner.replay_buffer import Column, ReplayBuffer
from rayagents.learner.sequence_values import values_by_sequence
from rayagents.learner.trajectory import LOSS_MASKS
from rayagents.protocol.trajectories import Trajectory


def make_replay_buffer(
    capacity: int, columns: Mapping[str, Column], memory: MemorySettings | None, device: torch.device
) -> ReplayBuffer | SequenceReplayBuffer:
    """SAC's replay buffer of ``capacity`` rows: a ring of experiences, or with ``memory`` of whole sequences."""
    if memory is None:
        return ReplayBuffer(capacity, columns, device)
    return SequenceReplayBuffer(capacity, columns, memory.memory_size, memory.sequence_length, device)


@torch.no_grad()
def recurrent_values(
    value_network: Critic,
    observations: Sequence[torch.Tensor],
    trajectories: Sequence[Trajectory],
    memories: AgentMemories,
    sequence_length: int,
) -> tuple[dict[str, np.ndarray], SequenceLayout, np.ndarray]:
    """ML-Agents' ``get_trajectory_value_estimates`` of a recurrent critic, as SAC's trainer runs it on arriving
    trajectories: the value estimate of every experience (``observations``: each sensor's rows, the trajectories
    one after the other), the trajectories' sequence layout, and the value network's memory at each sequence's
    first step (ML-Agents' ``CRITIC_MEMORY``), each agent's memory carried on from its last trajectory."""
    layout = sequence_layout(np.array([len(t) for t in trajectories]), sequence_length)
    device = observations[0].device
    sensors = range(len(observations))
    next_obs = [observation_tensor(np.stack([t.next_obs[k] for t in trajectories]), device) for k in sensors]
    values, starts = values_by_sequence(value_network, observations, next_obs, trajectories, memories, layout)
    count = int(layout.rows.shape[0])
    return {name: v[:count] for name, v in values.items()}, layout, starts


class SequenceReplayBuffer:
    """A ring of whole sequences of ``sequence_length`` rows, ``capacity // sequence_length`` of them (at least one).

    Arguments:
        capacity: the most rows held (``buffer_size``), padding included, as ML-Agents counts its buffer.
        columns: the per-row columns, by name, with one row's shape and dtype (:data:`LOSS_MASKS` is added).
        memory_size: the size of a memory (:data:`MEMORY`, :data:`CRITIC_MEMORY`, one of each per sequence).
        sequence_length: the rows of a sequence.
        device: where the columns live.
    """

    def __init__(
        self,
        capacity: int,
        columns: Mapping[str, Column],
        memory_size: int,
        sequence_length: int,
        device: torch.device,
    ) -> None:
        if sequence_length < 1:
            raise ValueError(f"sequence_length is {sequence_length}: it must be at least 1")
        self.sequence_length = sequence_length
        self.row_columns = {**columns, LOSS_MASKS: Column((), torch.float32)}
        slots = {name: Column((sequence_length, *c.shape), c.dtype) for name, c in self.row_columns.items()}
        slots.update({name: Column((memory_size,), torch.float32) for name in SEQUENCE_COLUMNS})
        self._ring = ReplayBuffer(max(capacity // sequence_length, 1), slots, device)
        self._experiences: int | None = 0

    def __len__(self) -> int:
        """The rows held, padding included (ML-Agents' ``num_experiences`` of its update buffer)."""
        return len(self._ring) * self.sequence_length

    @property
    def capacity(self) -> int:
        """The most rows held: whole sequences of ``buffer_size``."""
        return self._ring.capacity * self.sequence_length

    @property
    def device(self) -> torch.device:
        """Where the columns live."""
        return self._ring.device

    @property
    def sequences(self) -> int:
        """The sequences held."""
        return len(self._ring)

    @property
    def experiences(self) -> int:
        """The experiences to train on held (the loss mask's 1s; padding not counted)."""
        if self._experiences is None:
            self._experiences = int(self._ring.filled(LOSS_MASKS).sum())
        return self._experiences

    @property
    def bytes_per_experience(self) -> int:
        """The bytes one row takes (a sequence's memories shared among its rows)."""
        return -(-self._ring.bytes_per_experience // self.sequence_length)

    def add(self, sequences: Mapping[str, np.ndarray | torch.Tensor]) -> None:
        """Appends whole sequences (:func:`padded_sequences`): the row columns with ``n * sequence_length`` rows,
        :data:`SEQUENCE_COLUMNS` with ``n``; the oldest sequences go once the buffer is full."""
        length = self.sequence_length
        slots: dict[str, np.ndarray | torch.Tensor] = {}
        for name, value in sequences.items():
            if name in SEQUENCE_COLUMNS or name not in self.row_columns:
                slots[name] = value  # the ring refuses a column it does not know
                continue
            if value.shape[0] % length:
                raise ValueError(f"column {name!r} has {value.shape[0]} rows, not whole sequences of {length}")
            slots[name] = value.reshape(value.shape[0] // length, length, *value.shape[1:])
        self._ring.add(slots)
        self._experiences = None

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """``batch_size / sequence_length`` whole sequences (at least one) drawn uniformly, with replacement: the row
        columns flattened to one row per step, sequence after sequence; the memories one row per sequence."""
        drawn = self._ring.sample(max(batch_size // self.sequence_length, 1), generator)
        return self._flattened(drawn)

    def oldest_first(self) -> dict[str, torch.Tensor]:
        """A copy of the sequences held, oldest first, flattened as :meth:`sample` flattens them."""
        return self._flattened(self._ring.oldest_first())

    def state_dict(self) -> dict[str, torch.Tensor]:
        """What ``save_replay_buffer`` writes: the ring's (one row per sequence)."""
        return self._ring.state_dict()

    def load_saved(self, state: Mapping[str, torch.Tensor]) -> str:
        """Replaces the sequences with saved ones (see :meth:`ReplayBuffer.load_saved`); '' or why not."""
        problem = self._ring.load_saved(state)
        self._experiences = None
        return problem

    def _flattened(self, slots: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        def rows(value: torch.Tensor) -> torch.Tensor:  # (n, length, ...) -> (n * length, ...), zero widths too
            return value.reshape(value.shape[0] * value.shape[1], *value.shape[2:])

        return {name: value if name in SEQUENCE_COLUMNS else rows(value) for name, value in slots.items()}
