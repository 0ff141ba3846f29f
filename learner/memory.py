"""Recurrent memory (``network_settings.memory``), as ML-Agents builds it: an LSTM after the network body.

A memory is one float vector of ``memory_size`` per agent: the LSTM's hidden state and cell state, each
``memory_size / 2``, concatenated (ML-Agents' layout, which is also what ``recurrent_in`` / ``recurrent_out`` of an
exported model carry). The LSTM's output, ``memory_size / 2`` wide, is what the action heads and value heads read.

Training runs on whole sequences of ``sequence_length`` steps: each trajectory is cut into sequences, the last
one padded at its end (ML-Agents pads the same way), and every sequence starts from the memory stored with its
first step. :func:`sequence_layout` computes that layout once for a batch of trajectories; :func:`pad_rows` and
:func:`unpad_rows` move columns in and out of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from rayagents.configs.network import MemorySettings
from rayagents.learner.trajectory import ACTION_MASKS, CRITIC_MEMORY, LOSS_MASKS

MEMORY = "memory"
"""The extra an acting policy with memory keeps per step: float32 ``(n, memory_size)``, the agent's memory before
the step (what the step's action was chosen from)."""
SEQUENCE_COLUMNS = (MEMORY, CRITIC_MEMORY)
"""The columns :func:`padded_sequences` keeps once per sequence (the memories at its first step); every other
column is kept per row."""


class LSTMMemory(nn.Module):
    """An LSTM of ``memory_size / 2`` cells over encodings of ``input_size``.

    ML-Agents initializes its LSTM's weights with Xavier-uniform and its biases with zeros, the forget gate's bias
    with 1; so does this one.
    """

    def __init__(self, input_size: int, settings: MemorySettings) -> None:
        super().__init__()
        self.memory_size = settings.memory_size
        self.hidden_size = settings.memory_size // 2
        self.lstm = nn.LSTM(input_size, self.hidden_size, batch_first=True)
        for name, parameter in self.lstm.named_parameters():
            if name.startswith("weight"):
                nn.init.xavier_uniform_(parameter)
            else:
                nn.init.zeros_(parameter)
                with torch.no_grad():
                    parameter[self.hidden_size : 2 * self.hidden_size].fill_(1.0)  # the forget gate's bias
        self.output_size = self.hidden_size

    def forward(self, encoding: torch.Tensor, memories: torch.Tensor, sequence_length: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Runs the LSTM over ``encoding`` ``(n_sequences * sequence_length, input_size)`` (sequences one after the
        other) from ``memories`` ``(n_sequences, memory_size)``, one per sequence. Returns the output
        ``(n_sequences * sequence_length, memory_size / 2)`` and each sequence's memory after its last step,
        ``(n_sequences, memory_size)``."""
        count = memories.shape[0]
        inputs = encoding.reshape(count, sequence_length, encoding.shape[-1])
        hidden, cell = memories.reshape(count, 2, self.hidden_size).permute(1, 0, 2).contiguous().unbind(0)
        output, (hidden_n, cell_n) = self.lstm(inputs, (hidden.unsqueeze(0), cell.unsqueeze(0)))
        return output.reshape(count * sequence_length, self.hidden_size), torch.cat([hidden_n[0], cell_n[0]], dim=-1)

    def run_packed(
        self, inputs: torch.Tensor, lengths: torch.Tensor, memories: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Runs sequences of different lengths: ``inputs`` ``(n, max_length, input_size)`` padded at their ends,
        ``lengths`` int64 ``(n,)`` on the CPU, ``memories`` ``(n, memory_size)``. Returns the outputs
        ``(n, max_length, memory_size / 2)`` (zeros in the padding) and each sequence's memory after its last real
        step, ``(n, memory_size)``."""
        count, max_length = inputs.shape[0], inputs.shape[1]
        hidden, cell = memories.reshape(count, 2, self.hidden_size).permute(1, 0, 2).contiguous().unbind(0)
        packed = nn.utils.rnn.pack_padded_sequence(inputs, lengths, batch_first=True, enforce_sorted=False)
        output, (hidden_n, cell_n) = self.lstm(packed, (hidden.unsqueeze(0), cell.unsqueeze(0)))
        padded, _ = nn.utils.rnn.pad_packed_sequence(output, batch_first=True, total_length=max_length)
        return padded, torch.cat([hidden_n[0], cell_n[0]], dim=-1)


@dataclass(frozen=True)
class SequenceLayout:
    """Where the experiences of a batch of trajectories go when each is cut into padded sequences.

    Trajectory ``i``'s experiences (``lengths[i]`` of them) fill ``ceil(lengths[i] / sequence_length)`` sequences;
    the padded rows of its last sequence hold zeros and a 0 in :attr:`mask`.
    """

    sequence_length: int
    """Steps per sequence."""
    rows: np.ndarray
    """int64, per experience (the trajectories one after the other): its row in the padded layout."""
    mask: np.ndarray
    """float32, per padded row: 1 for an experience, 0 for padding."""
    starts: np.ndarray
    """int64, per sequence: the experience (in the unpadded order) at its first step."""

    @property
    def padded_rows(self) -> int:
        """Rows of the padded layout: sequences × ``sequence_length``."""
        return int(self.mask.shape[0])

    @property
    def sequences(self) -> int:
        """The number of sequences."""
        return int(self.starts.shape[0])


class AgentMemories:
    """Memories the learner carries from one trajectory of an agent to the next (the critic's, which the EnvActors
    do not run), by the agent's global id; an agent's is forgotten when its episode ends."""

    def __init__(self, memory_size: int) -> None:
        self.memory_size = memory_size
        self._memories: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self._memories)

    def start(self, agent_id: str) -> np.ndarray:
        """float32 ``(memory_size,)``: the agent's memory at the start of its next trajectory (zeros at first)."""
        memory = self._memories.get(agent_id)
        return np.zeros(self.memory_size, dtype=np.float32) if memory is None else memory

    def carry(self, agent_id: str, memory: np.ndarray, episode_ended: bool) -> None:
        """Keeps the agent's memory after its trajectory for its next one; forgets it when its episode ended."""
        if episode_ended:
            self._memories.pop(agent_id, None)
        else:
            self._memories[agent_id] = memory

    def clear(self) -> None:
        """Forgets every agent's memory (the networks were replaced: a restore)."""
        self._memories.clear()


def sequence_layout(lengths: np.ndarray, sequence_length: int) -> SequenceLayout:
    """The padded-sequence layout of trajectories of ``lengths`` experiences each."""
    if sequence_length < 1:
        raise ValueError(f"sequence_length is {sequence_length}: it must be at least 1")
    lengths = np.asarray(lengths, dtype=np.int64)
    per_trajectory = -(-lengths // sequence_length)
    padded_starts = np.concatenate([[0], np.cumsum(per_trajectory * sequence_length)[:-1]]).astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    within = np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(starts, lengths)
    rows = np.repeat(padded_starts, lengths) + within
    total = int((per_trajectory * sequence_length).sum())
    mask = np.zeros(total, dtype=np.float32)
    mask[rows] = 1.0
    first = np.flatnonzero(within % sequence_length == 0).astype(np.int64)
    return SequenceLayout(sequence_length=sequence_length, rows=rows, mask=mask, starts=first)


def pad_rows(column: np.ndarray, layout: SequenceLayout) -> np.ndarray:
    """``column`` (one row per experience) in the padded layout, zeros in the padding."""
    padded = np.zeros((layout.padded_rows, *column.shape[1:]), dtype=column.dtype)
    padded[layout.rows] = column
    return padded


def unpad_rows(padded: np.ndarray, layout: SequenceLayout) -> np.ndarray:
    """The experiences' rows of a column in the padded layout, in the unpadded order."""
    return padded[layout.rows]


def padded_sequences(
    columns: Mapping[str, np.ndarray],
    layout: SequenceLayout,
    keep: np.ndarray,
    memories: np.ndarray,
    critic_memories: Mapping[str, np.ndarray],
) -> dict[str, np.ndarray]:
    """The experiences' ``columns`` (one row per experience) cut into the padded sequences of ``layout``, with the
    loss mask (``keep`` says which experiences may be trained on), the actor's and the critics' memories at each
    sequence's first step (``memories``: the actor's per experience, as :data:`MEMORY`; ``critic_memories``: per
    sequence, by column: :data:`CRITIC_MEMORY`, and POCA's baseline memory), and only the sequences that hold an
    experience to train on. Padding allows every action, so that log probabilities stay finite there."""
    padded = {name: pad_rows(column, layout) for name, column in columns.items()}
    if ACTION_MASKS in padded:
        padded[ACTION_MASKS][layout.mask == 0] = 1.0
    mask = layout.mask.copy()
    mask[layout.rows] *= keep
    padded[LOSS_MASKS] = mask
    trained = mask.reshape(-1, layout.sequence_length).any(axis=1)
    rows = np.repeat(trained, layout.sequence_length)
    sequences = {name: column[rows] for name, column in padded.items()}
    sequences[MEMORY] = np.asarray(memories, dtype=np.float32)[layout.starts][trained]
    for name, starts in critic_memories.items():
        sequences[name] = np.asarray(starts, dtype=np.float32)[trained]
    return sequences


def real_rows(batch: Mapping[str, torch.Tensor]) -> Mapping[str, torch.Tensor]:
    """The row columns of a drawn minibatch at its real experiences only (the loss mask's 1s): what a reward signal
    rewards or learns from. A minibatch without a loss mask (no memory) is all real: it is returned as it is."""
    if LOSS_MASKS not in batch:
        return batch
    real = batch[LOSS_MASKS] > 0
    return {name: column[real] for name, column in batch.items() if name not in SEQUENCE_COLUMNS}
