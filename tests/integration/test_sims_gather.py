"""The Gather scene's variable-length observation over the real wire: a ``rayagents-sim`` player process reached
by ``UnityEnvironment`` (real gRPC), its BufferSensor decoded as a rank-2 observation with zero rows for the
pellets absent, whose count changes from one episode to the next."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from processes import pid_alive
from rayagents.actors.environment import UnityEnvironment
from rayagents.protocol.side_channels import StatsSideChannel
from rayagents.protocol.types import ActionTuple, DimensionProperty
from rayagents.sims.scenes.gather import ENTITY_SIZE, MAX_PELLETS, MAX_STEPS, greedy_move

BEHAVIOR = "Gather?team=0"
AREAS = 4


def present_rows(buffer: np.ndarray) -> int:
    """The non-zero rows of one agent's buffer observation, checking that they come first and the rest are zeros."""
    nonzero = np.any(buffer != 0, axis=1)
    count = int(nonzero.sum())
    assert nonzero[:count].all() and not nonzero[count:].any(), buffer
    assert np.all(buffer[:count, 3] == 1.0)
    return count


def test_the_buffer_sensor_crosses_the_wire_with_zero_rows_and_varying_counts(tmp_path: Path) -> None:
    stats = StatsSideChannel()
    env = UnityEnvironment(
        "sim:Gather", seed=7, num_areas=AREAS, timeout_wait=30, side_channels=[stats], log_folder=str(tmp_path)
    )
    try:
        assert env.pid is not None and env.academy_capabilities.variableLengthObservation
        env.reset()
        spec = env.behavior_specs[BEHAVIOR]
        buffer_spec, vector_spec = spec.observation_specs
        assert buffer_spec.name == "BufferSensor" and buffer_spec.shape == (MAX_PELLETS, ENTITY_SIZE)
        assert tuple(buffer_spec.dimension_property) == (DimensionProperty.VARIABLE_SIZE, DimensionProperty.NONE)
        assert vector_spec.shape == (5,) and spec.action_spec.discrete_branches == (5,)

        decisions, _ = env.get_steps(BEHAVIOR)
        assert decisions.obs[0].shape == (AREAS, MAX_PELLETS, ENTITY_SIZE) and decisions.obs[0].dtype == np.float32
        starts = [present_rows(b) for b in decisions.obs[0]]  # the pellets of each episode's first decision
        rng = np.random.default_rng(0)
        ends = {"gathered": 0, "cut off": 0}
        for exchange in range(3 * MAX_STEPS):
            # Half the areas head for the nearest pellet (episodes that end with all gathered), half act at random
            # (episodes cut off at MAX_STEPS).
            moves = [greedy_move(b) if agent % 2 == 0 else int(rng.integers(5)) for agent, b in
                     zip(decisions.agent_id, decisions.obs[0])]  # fmt: skip
            env.set_actions(BEHAVIOR, ActionTuple(discrete=np.array(moves, np.int32).reshape(-1, 1)))
            env.step()
            decisions, terminals = env.get_steps(BEHAVIOR)
            assert len(decisions) == AREAS  # every ended episode starts the next at once
            counts = {agent: present_rows(b) for agent, b in zip(decisions.agent_id, decisions.obs[0])}
            assert all(count >= 1 for count in counts.values())  # a pellet is left while the episode goes on
            for agent, buffer, interrupted in zip(terminals.agent_id, terminals.obs[0], terminals.interrupted):
                if interrupted:
                    ends["cut off"] += 1
                else:
                    ends["gathered"] += 1
                    assert present_rows(buffer) == 0 and not buffer.any()  # all gathered: only zero rows
                starts.append(counts[agent])
        assert ends["gathered"] >= 10 and ends["cut off"] >= 4, ends
        assert len(set(starts)) >= 3, f"the pellet counts of {len(starts)} episodes: {starts}"
        assert "Gather/Episode Return" in stats.get_and_reset_stats()
    finally:
        pid = env.pid
        env.close()
    assert pid is not None and not pid_alive(pid)
