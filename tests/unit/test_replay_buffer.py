"""SAC's replay buffer: the ring of the newest experiences, uniform minibatches, its saved form (oldest first) and
refusals of saved rows that do not fit, and the memory check that refuses a buffer no node can hold."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rayagents.learner import replay_buffer
from rayagents.learner.replay_buffer import (
    HOST_MEMORY_SHARE,
    Column,
    ReplayBuffer,
    RING_START,
    ReplayBufferTooLarge,
    bytes_per_experience,
    place_replay_buffer,
)

CPU = torch.device("cpu")
COLUMNS = {
    "obs": Column((3,), torch.float32),
    "action": Column((2,), torch.int64),
    "reward": Column((), torch.float32),
}


def rows(first: int, count: int) -> dict[str, np.ndarray]:
    """``count`` experiences numbered ``first``, ``first + 1``, ...: every column of row i holds its number."""
    numbers = np.arange(first, first + count)
    return {
        "obs": np.repeat(numbers[:, None], 3, axis=1).astype(np.float32),
        "action": np.repeat(numbers[:, None], 2, axis=1).astype(np.int64),
        "reward": numbers.astype(np.float32),
    }


def numbers_held(buffer: ReplayBuffer) -> list[int]:
    """The experience numbers the buffer holds, oldest first (checking every column agrees)."""
    state = buffer.oldest_first()
    numbers = state["reward"].long().tolist()
    assert state["obs"].long().tolist() == [[n] * 3 for n in numbers]
    assert state["action"].tolist() == [[n] * 2 for n in numbers]
    return numbers


def test_the_ring_keeps_the_newest_capacity_experiences_oldest_first() -> None:
    buffer = ReplayBuffer(5, COLUMNS, CPU)
    assert len(buffer) == 0 and numbers_held(buffer) == []
    buffer.add(rows(0, 3))
    assert len(buffer) == 3 and numbers_held(buffer) == [0, 1, 2]
    buffer.add(rows(3, 4))  # two of the oldest go
    assert len(buffer) == 5 and numbers_held(buffer) == [2, 3, 4, 5, 6]
    buffer.add(rows(7, 1))
    assert numbers_held(buffer) == [3, 4, 5, 6, 7]
    buffer.add(rows(100, 12))  # more rows than the buffer holds: only the newest stay
    assert len(buffer) == 5 and numbers_held(buffer) == [107, 108, 109, 110, 111]
    buffer.add(rows(200, 0))
    assert numbers_held(buffer) == [107, 108, 109, 110, 111]


def test_rows_with_missing_columns_or_different_lengths_are_refused() -> None:
    buffer = ReplayBuffer(4, COLUMNS, CPU)
    incomplete = rows(0, 2)
    del incomplete["reward"]
    with pytest.raises(ValueError, match="expected \\['action', 'obs', 'reward'\\]"):
        buffer.add(incomplete)
    uneven = rows(0, 2)
    uneven["reward"] = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match="different lengths"):
        buffer.add(uneven)
    assert len(buffer) == 0
    with pytest.raises(ValueError, match="at least one experience"):
        ReplayBuffer(0, COLUMNS, CPU)


def test_sample_draws_whole_experiences_of_the_filled_rows_with_the_column_shapes_and_dtypes() -> None:
    buffer = ReplayBuffer(50, COLUMNS, CPU)
    with pytest.raises(ValueError, match="empty"):
        buffer.sample(4)
    buffer.add(rows(10, 7))
    batch = buffer.sample(300, torch.Generator().manual_seed(0))
    assert batch["obs"].shape == (300, 3) and batch["obs"].dtype == torch.float32
    assert batch["action"].shape == (300, 2) and batch["action"].dtype == torch.int64
    assert batch["reward"].shape == (300,) and batch["reward"].dtype == torch.float32
    numbers = batch["reward"].long()
    assert set(numbers.tolist()) == set(range(10, 17))  # only filled rows, every one of them over 300 draws
    assert torch.equal(batch["obs"].long(), numbers[:, None].expand(300, 3))  # rows stay whole
    assert torch.equal(batch["action"], numbers[:, None].expand(300, 2))
    again = buffer.sample(300, torch.Generator().manual_seed(0))
    assert torch.equal(again["reward"], batch["reward"])  # a seeded generator draws the same minibatch


def test_state_dict_round_trips_into_a_fresh_buffer_and_the_ring_goes_on_from_there() -> None:
    buffer = ReplayBuffer(4, COLUMNS, CPU)
    buffer.add(rows(0, 3))
    buffer.add(rows(3, 3))  # wrapped around: the ring's start is in the middle of the columns
    state = buffer.state_dict()
    assert int(state.pop(RING_START)) == 2  # saved as the ring lies, with the row of the oldest
    assert all(tensor.device == CPU and tensor.shape[0] == 4 for tensor in state.values())
    assert state["reward"].long().tolist() == [4, 5, 2, 3]
    fresh = ReplayBuffer(4, COLUMNS, CPU)
    assert fresh.load_saved(buffer.state_dict()) == ""
    assert len(fresh) == 4 and numbers_held(fresh) == [2, 3, 4, 5]
    for name, tensor in buffer.oldest_first().items():
        assert torch.equal(fresh.oldest_first()[name], tensor) and fresh.oldest_first()[name].dtype == tensor.dtype
    fresh.add(rows(6, 1))  # the oldest saved experience is the first to go
    assert numbers_held(fresh) == [3, 4, 5, 6]
    assert buffer.load_saved(fresh.state_dict()) == "" and numbers_held(buffer) == [3, 4, 5, 6]

    partly = ReplayBuffer(4, COLUMNS, CPU)
    partly.add(rows(0, 3))  # its ring's next position is not the first
    half = ReplayBuffer(4, COLUMNS, CPU)
    half.add(rows(50, 2))
    assert partly.load_saved(half.state_dict()) == ""  # replaces what it held
    assert len(partly) == 2 and numbers_held(partly) == [50, 51]
    partly.add(rows(52, 3))
    assert numbers_held(partly) == [51, 52, 53, 54]


def test_a_saved_buffer_larger_than_the_capacity_keeps_its_newest_experiences() -> None:
    big = ReplayBuffer(10, COLUMNS, CPU)
    big.add(rows(0, 8))
    small = ReplayBuffer(3, COLUMNS, CPU)
    assert small.load_saved(big.state_dict()) == ""
    assert numbers_held(small) == [5, 6, 7]


def test_load_saved_refuses_other_columns_or_shapes_and_leaves_the_buffer_as_it_was() -> None:
    buffer = ReplayBuffer(4, COLUMNS, CPU)
    buffer.add(rows(0, 3))
    before = buffer.state_dict()

    other_columns = dict(before)
    del other_columns["action"]
    other_columns["mask"] = torch.zeros(3, 2)
    problem = buffer.load_saved(other_columns)
    assert "has columns ['mask', 'obs', 'reward']" in problem and "['action', 'obs', 'reward']" in problem

    other_shape = dict(before)
    other_shape["obs"] = torch.zeros(3, 5)
    problem = buffer.load_saved(other_shape)
    assert "column 'obs' has rows of shape (5,), not (3,)" in problem

    uneven = dict(before)
    uneven["reward"] = torch.zeros(2)
    assert "different lengths ([2, 3] rows)" in buffer.load_saved(uneven)

    assert len(buffer) == 3 and numbers_held(buffer) == [0, 1, 2]
    buffer.add(rows(3, 2))  # and it still works as a ring from where it was
    assert numbers_held(buffer) == [1, 2, 3, 4]


def test_an_absurd_buffer_size_is_refused_naming_buffer_size_and_what_would_fit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(replay_buffer, "host_memory_available", lambda: 8 * 2**30)
    per_experience = bytes_per_experience(COLUMNS)
    assert per_experience == 3 * 4 + 2 * 8 + 4
    with pytest.raises(ReplayBufferTooLarge) as refused:
        place_replay_buffer(10**12, COLUMNS, CPU)
    message = str(refused.value)
    fits = int(HOST_MEMORY_SHARE * 8 * 2**30 // per_experience)
    assert "buffer_size 1000000000000" in message
    assert f"set buffer_size to at most {fits}," in message
    assert f"{per_experience} bytes per experience" in message


def test_a_buffer_that_fits_goes_to_host_memory_for_a_cpu_learner() -> None:
    assert replay_buffer.host_memory_available() > 0
    assert place_replay_buffer(1000, COLUMNS, CPU) == CPU
    with pytest.raises(ReplayBufferTooLarge, match="buffer_size 1000000000000 "):
        place_replay_buffer(10**12, COLUMNS, CPU)  # this machine's real memory


def test_float_values_for_an_image_column_are_refused_rather_than_truncated() -> None:
    buffer = ReplayBuffer(4, {"obs_0": Column((1, 2, 2), torch.uint8)}, torch.device("cpu"))
    buffer.add({"obs_0": np.full((1, 1, 2, 2), 200, dtype=np.uint8)})
    with pytest.raises(ValueError, match="obs_0.*uncompressed floats.*PNG"):
        buffer.add({"obs_0": np.full((1, 1, 2, 2), 0.5, dtype=np.float32)})
    assert len(buffer) == 1
