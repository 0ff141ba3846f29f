"""A recurrent critic's value estimates of arriving trajectories, as ML-Agents' ``_evaluate_by_sequence`` makes them.

The EnvActors run the actor, not the critic, so the learner carries the critic's memory from one trajectory of an
agent to the next (:class:`~rayagents.learner.memory.AgentMemories`, zeros when its episode starts). Each
trajectory is run sequence by sequence from that memory; the memory at each sequence's start is what the update
starts that sequence from, and the memory after the last experience estimates the value of the next observation
(the bootstrap) and carries over to the agent's next trajectory.

All trajectories of a batch run side by side: the network body encodes every observation in one pass, the LSTM
then runs once per sequence index (the k-th sequence of every trajectory together, shorter last sequences packed),
and the value heads read every output in one pass. Two trajectories of one agent in the same batch run one after
the other, the second from the first one's memory. :func:`run_by_sequence` is the same run for any encoding (POCA's
critic encodes a group, not one agent).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from rayagents.learner.memory import AgentMemories, LSTMMemory, SequenceLayout
from rayagents.learner.networks import Critic
from rayagents.protocol.trajectories import Trajectory


def _rounds(trajectories: Sequence[Trajectory]) -> list[np.ndarray]:
    """The trajectories' indices in rounds that hold at most one trajectory of an agent, in arrival order."""
    seen: dict[str, int] = {}
    occurrence = []
    for trajectory in trajectories:
        occurrence.append(seen.get(trajectory.agent_id, 0))
        seen[trajectory.agent_id] = occurrence[-1] + 1
    order = np.asarray(occurrence, dtype=np.int64)
    return [np.flatnonzero(order == r) for r in range(int(order.max(initial=-1)) + 1)]


@torch.no_grad()
def values_by_sequence(
    critic: Critic,
    observations: Sequence[torch.Tensor],
    next_observations: Sequence[torch.Tensor],
    trajectories: Sequence[Trajectory],
    memories: AgentMemories,
    layout: SequenceLayout,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The value estimates of every experience of ``trajectories`` (``observations``: each sensor's rows one
    trajectory after the other) followed by those of each trajectory's next observation (``next_observations``:
    one row per trajectory), per reward signal as float64; and the critic's memory at the start of each sequence of
    ``layout``, float32 ``(sequences, memory_size)``. ``memories`` is read and carried forward."""
    memory = critic.memory
    if memory is None:
        raise ValueError("values_by_sequence runs a critic with memory")
    encoding = critic.network_body([torch.cat([o, n]) for o, n in zip(observations, next_observations)])
    outputs, starts = run_by_sequence(encoding, memory, trajectories, memories, layout)
    values = {name: v.cpu().numpy().astype(np.float64) for name, v in critic.value_heads(outputs).items()}
    return values, starts


@torch.no_grad()
def run_by_sequence(
    encoding: torch.Tensor,
    memory: LSTMMemory,
    trajectories: Sequence[Trajectory],
    memories: AgentMemories,
    layout: SequenceLayout,
) -> tuple[torch.Tensor, np.ndarray]:
    """``memory``'s LSTM over the ``encoding`` of every experience of ``trajectories`` (one trajectory after the
    other), sequence by sequence from each agent's carried memory, which is read and carried forward. When
    ``encoding`` has one more row per trajectory after the experiences (its next observation's), that row is run one
    step on from the trajectory's last memory (the bootstrap). Returns the LSTM's outputs, a row per row of
    ``encoding``, and the memory at the start of each sequence of ``layout``, float32 ``(sequences, memory_size)``."""
    length = layout.sequence_length
    lengths = np.array([len(t) for t in trajectories], dtype=np.int64)
    count, device = int(lengths.sum()), encoding.device
    bootstraps = encoding.shape[0] == count + len(trajectories)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    per_trajectory = -(-lengths // length)
    first_sequence = np.concatenate([[0], np.cumsum(per_trajectory)[:-1]]).astype(np.int64)
    outputs = encoding.new_zeros((encoding.shape[0], memory.output_size))
    starts = np.zeros((layout.sequences, memory.memory_size), dtype=np.float32)
    steps = torch.arange(length)
    for members in _rounds(trajectories):
        state = torch.as_tensor(np.stack([memories.start(trajectories[i].agent_id) for i in members]), device=device)
        for k in range(int(per_trajectory[members].max())):
            active = np.flatnonzero(per_trajectory[members] > k)
            chosen = members[active]
            chunk = torch.as_tensor(np.minimum(length, lengths[chosen] - k * length))
            rows = torch.as_tensor(offsets[chosen] + k * length)[:, None] + steps[None]
            rows = torch.minimum(rows, torch.as_tensor(offsets[chosen] + lengths[chosen] - 1)[:, None])
            starts[first_sequence[chosen] + k] = state[active].cpu().numpy()
            run, after = memory.run_packed(encoding[rows.to(device)], chunk, state[active])
            real = steps[None] < chunk[:, None]
            outputs[rows[real].to(device)] = run[real.to(device)]
            state[active] = after
        if bootstraps:
            bootstrap, _ = memory(encoding[count + members], state, 1)
            outputs[count + members] = bootstrap
        carried = state.cpu().numpy()
        for position, index in enumerate(members):
            memories.carry(trajectories[index].agent_id, carried[position], trajectories[index].done)
    return outputs, starts
