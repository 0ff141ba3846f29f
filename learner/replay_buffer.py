"""SAC's replay buffer: the newest ``buffer_size`` experiences of every EnvActor, held where the learner trains.

Columns are preallocated tensors of ``buffer_size`` rows, filled as a ring: once full, each new experience
replaces the oldest (ML-Agents truncates its buffer to 80 % of ``buffer_size`` once it exceeds it; a ring keeps
the same newest experiences without the copy). Minibatches are drawn uniformly from the rows filled.

Placement (:func:`place_replay_buffer`): on the learner's GPU when the buffer takes at most half of the GPU's free
memory, else in host memory when it takes at most :data:`HOST_MEMORY_SHARE` of what is available; a buffer that
fits neither is a :class:`ReplayBufferTooLarge` error when the trainer is made, naming ``buffer_size``, the bytes
per experience and what would fit, instead of an out-of-memory crash hours into a run.

The buffer is saved (``save_replay_buffer``) as its filled rows, oldest first, in a ``torch.save``'d dict of
tensors, read back with ``weights_only=True`` (see :mod:`checkpoint_format`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

GPU_MEMORY_SHARE = 0.5
"""The most of a GPU's free memory a replay buffer takes: the networks, their optimizers and the minibatches need
the rest."""
HOST_MEMORY_SHARE = 0.7
"""The most of the host's available memory a replay buffer takes."""


class ReplayBufferTooLarge(ValueError):
    """A replay buffer that fits neither on the learner's device nor in its host's memory."""


@dataclass(frozen=True)
class Column:
    """One column of the replay buffer: the shape of one experience's entry and its dtype."""

    shape: tuple[int, ...]
    """The shape of one row."""
    dtype: torch.dtype
    """The tensor dtype."""

    @property
    def bytes_per_row(self) -> int:
        """The bytes one experience takes in this column."""
        return math.prod(self.shape) * torch.empty((), dtype=self.dtype).element_size()


def bytes_per_experience(columns: Mapping[str, Column]) -> int:
    """The bytes one experience takes in a buffer of ``columns``."""
    return sum(column.bytes_per_row for column in columns.values())


def host_memory_available() -> int:
    """The bytes of memory this host can still give (``MemAvailable`` on Linux, else the physical memory)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def place_replay_buffer(capacity: int, columns: Mapping[str, Column], device: torch.device) -> torch.device:
    """Where a buffer of ``capacity`` experiences goes: ``device`` when it is a GPU with room, else the host.
    ReplayBufferTooLarge, naming the numbers and what to set, when it fits neither."""
    per_experience = bytes_per_experience(columns)
    needed = capacity * per_experience
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        if needed <= GPU_MEMORY_SHARE * free:
            return device
    available = host_memory_available()
    if needed <= HOST_MEMORY_SHARE * available:
        return torch.device("cpu")
    fits = int(HOST_MEMORY_SHARE * available // max(per_experience, 1))
    raise ReplayBufferTooLarge(
        f"hyperparameters.buffer_size {capacity} makes a replay buffer of {needed / 2**30:.2f} GiB "
        f"({per_experience} bytes per experience: observations, next observations, actions, masks, reward, done), "
        f"more than the learner's node can hold ({available / 2**30:.2f} GiB available"
        f"{' and not enough free GPU memory' if device.type == 'cuda' else ''}); set buffer_size to at most "
        f"{fits}, or give the learner a node with more memory"
    )


class ReplayBuffer:
    """A ring of ``capacity`` experiences in preallocated tensor columns on one device.

    Arguments:
        capacity: the most experiences held (``buffer_size``).
        columns: the columns, by name, with one row's shape and dtype.
        device: where the columns live (see :func:`place_replay_buffer`).
    """

    def __init__(self, capacity: int, columns: Mapping[str, Column], device: torch.device) -> None:
        if capacity <= 0:
            raise ValueError(f"a replay buffer holds at least one experience, not {capacity}")
        self.capacity = capacity
        self.columns = dict(columns)
        self.device = device
        self._data = {
            name: torch.empty((capacity, *column.shape), dtype=column.dtype, device=device)
            for name, column in self.columns.items()
        }
        self._next = 0
        self._size = 0

    def __len__(self) -> int:
        return self._size

    @property
    def bytes_per_experience(self) -> int:
        """The bytes one experience takes."""
        return bytes_per_experience(self.columns)

    def add(self, rows: Mapping[str, np.ndarray | torch.Tensor]) -> None:
        """Appends experiences (every column, the same number of rows); the oldest go once the buffer is full."""
        if set(rows) != set(self.columns):
            raise ValueError(f"replay buffer rows have columns {sorted(rows)}, expected {sorted(self.columns)}")
        counts = {name: int(value.shape[0]) for name, value in rows.items()}
        if len(set(counts.values())) != 1:
            raise ValueError(f"replay buffer columns of different lengths: {counts}")
        count = next(iter(counts.values()))
        if count == 0:
            return
        start = max(0, count - self.capacity)  # more rows than the buffer holds: only the newest stay
        positions = (self._next + torch.arange(count - start)) % self.capacity
        positions = positions.to(self.device)
        for name, value in rows.items():
            tensor = torch.as_tensor(value[start:]).to(self.device, self.columns[name].dtype)
            self._data[name][positions] = tensor.reshape(count - start, *self.columns[name].shape)
        self._next = (self._next + count - start) % self.capacity
        self._size = min(self.capacity, self._size + count - start)

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """``batch_size`` experiences drawn uniformly (with replacement) from those held, every column."""
        if self._size == 0:
            raise ValueError("the replay buffer is empty: take in trajectories before sampling")
        indices = torch.randint(self._size, (batch_size,), generator=generator).to(self.device)
        return {name: column[indices] for name, column in self._data.items()}

    def _ordered(self) -> torch.Tensor:
        """The filled rows' positions, oldest first."""
        if self._size < self.capacity:
            return torch.arange(self._size)
        return (self._next + torch.arange(self.capacity)) % self.capacity

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The experiences held, oldest first, as CPU tensors by column (what ``save_replay_buffer`` writes)."""
        order = self._ordered().to(self.device)
        return {name: column[order].cpu() for name, column in self._data.items()}

    def load_saved(self, state: Mapping[str, torch.Tensor]) -> str:
        """Replaces the buffer's experiences with saved ones; returns '' or why they were not taken (the buffer is
        then left as it was)."""
        if set(state) != set(self.columns):
            return f"has columns {sorted(state)}, not this buffer's {sorted(self.columns)}; the buffer starts empty"
        for name, column in self.columns.items():
            if tuple(state[name].shape[1:]) != column.shape:
                return (
                    f"column {name!r} has rows of shape {tuple(state[name].shape[1:])}, not {column.shape}; "
                    "the buffer starts empty"
                )
        self._next = 0
        self._size = 0
        self.add(dict(state))
        return ""
