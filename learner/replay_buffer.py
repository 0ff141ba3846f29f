"""SAC's replay buffer: the newest ``buffer_size`` experiences of every EnvActor, held where the learner trains.

Columns are preallocated tensors of ``buffer_size`` rows, filled as a ring: once full, each new experience
replaces the oldest (ML-Agents truncates its buffer to 80 % of ``buffer_size`` once it exceeds it; a ring keeps
the same newest experiences without the copy). Minibatches are drawn uniformly from the rows filled.

Placement (:func:`place_replay_buffer`): on the learner's GPU when the buffer takes at most half of the GPU's free
memory, else in host memory when it takes at most :data:`HOST_MEMORY_SHARE` of what is available; a buffer that
fits neither is a :class:`ReplayBufferTooLarge` error when the trainer is made, naming ``buffer_size``, the bytes
per experience and what would fit, instead of an out-of-memory crash hours into a run.

The buffer is saved (``save_replay_buffer``) as its filled rows as they lie in the ring, with the position of the
oldest (:data:`RING_START`), in a ``torch.save``'d dict of tensors, read back with ``weights_only=True`` and
memory-mapped (see :mod:`checkpoint_format`): neither saving nor loading makes a second copy of a buffer that may
take most of the host's memory.
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


RING_START = "ring_start"
"""The entry of a saved buffer that holds the row of its oldest experience (0 when it had not wrapped)."""


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
    def experiences(self) -> int:
        """The experiences held (every row is one)."""
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
            if self.columns[name].dtype == torch.uint8 and torch.as_tensor(value[:0]).dtype != torch.uint8:
                raise ValueError(
                    f"replay buffer column {name!r} keeps images as uint8, but {torch.as_tensor(value[:0]).dtype} "
                    "values arrived: a (C, H, W) sensor sent uncompressed floats (e.g. a grid sensor with "
                    "CompressionType.None). SAC keeps such sensors as PNG-compressed bytes: set the sensor's "
                    "compression to PNG in Unity"
                )
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

    def filled(self, name: str) -> torch.Tensor:
        """Column ``name``'s filled rows as they lie in the ring (a view, no copy; not in age order)."""
        return self._data[name][: self._size]

    def oldest_first(self) -> dict[str, torch.Tensor]:
        """A copy of the experiences held, oldest first, by column (for inspection; a copy of the whole buffer)."""
        start = self._next if self._size == self.capacity else 0
        order = ((start + torch.arange(self._size)) % self.capacity).to(self.device)
        return {name: column[order] for name, column in self._data.items()}

    def state_dict(self) -> dict[str, torch.Tensor]:
        """What ``save_replay_buffer`` writes: each column's filled rows as they lie in the ring (views, on the CPU
        without a copy), and :data:`RING_START`, the row of the oldest."""
        start = self._next if self._size == self.capacity else 0
        state = {name: column[: self._size].cpu() for name, column in self._data.items()}
        state[RING_START] = torch.tensor(start, dtype=torch.int64)
        return state

    def load_saved(self, state: Mapping[str, torch.Tensor]) -> str:
        """Replaces the buffer's experiences with saved ones, oldest first (only the newest ``capacity`` when there
        are more); returns '' or why they were not taken (the buffer is then left as it was)."""
        rows = {name: value for name, value in state.items() if name != RING_START}
        if set(rows) != set(self.columns):
            return f"has columns {sorted(rows)}, not this buffer's {sorted(self.columns)}"
        for name, column in self.columns.items():
            if tuple(rows[name].shape[1:]) != column.shape:
                return f"column {name!r} has rows of shape {tuple(rows[name].shape[1:])}, not {column.shape}"
        counts = {int(value.shape[0]) for value in rows.values()}
        if len(counts) != 1:
            return f"has columns of different lengths ({sorted(counts)} rows)"
        count = counts.pop()
        start = int(state[RING_START]) % max(count, 1) if RING_START in state else 0
        self._next = 0
        self._size = 0
        self.add({name: value[start:] for name, value in rows.items()})  # the oldest part, then the newest
        self.add({name: value[:start] for name, value in rows.items()})
        return ""
