"""Simulation host throughput: random actions through the wire against the same simulators in-process.

- ``HalfCheetah`` with 16 areas in one player, driven through the wire by ``UnityEnvironment``, against
  Gymnasium's in-process ``SyncVectorEnv`` of 16 ``HalfCheetah-v5`` copies (target: ≥ 0.6 of in-process).
- ``CartPole`` agent steps/s through the wire at 1, 16 and 64 areas.

    python -m bench.sims
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import gymnasium
import numpy as np

from bench.table import Row
from rayagents.actors.environment import UnityEnvironment
from rayagents.sims.build import write_build

COMMAND = "python -m bench.sims"


def play_random(env: UnityEnvironment, rng: np.random.Generator, exchanges: int) -> int:
    """Plays ``exchanges`` exchanges of random actions; returns the agent decisions made."""
    decided = 0
    for _ in range(exchanges):
        for behavior, spec in env.behavior_specs.items():
            decisions, _ = env.get_steps(behavior)
            decided += len(decisions)
            env.set_actions(behavior, spec.action_spec.random_action(len(decisions), rng))
        env.step()
    return decided


def wire_agent_steps_per_s(scene: str, num_areas: int, seconds: float, seed: int = 0) -> float:
    """Agent steps/s of ``scene`` with ``num_areas`` areas, random actions through the wire."""
    rng = np.random.default_rng(seed)
    with tempfile.TemporaryDirectory() as tmp:
        env = UnityEnvironment(str(write_build(scene, Path(tmp))), num_areas=num_areas, seed=seed, timeout_wait=60)
        try:
            env.reset()

            def run(n: int) -> int:
                return play_random(env, rng, n)

            run(20)
            steps, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds:
                steps += run(20)
            return steps / (time.perf_counter() - start)
        finally:
            env.close()


def in_process_agent_steps_per_s(env_id: str, copies: int, seconds: float, seed: int = 0) -> float:
    """Agent steps/s of Gymnasium's ``SyncVectorEnv`` of ``copies`` copies of ``env_id``, random actions."""
    envs = gymnasium.vector.SyncVectorEnv([lambda: gymnasium.make(env_id) for _ in range(copies)])
    try:
        envs.reset(seed=seed)
        envs.action_space.seed(seed)
        for _ in range(20):
            envs.step(envs.action_space.sample())
        steps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            for _ in range(20):
                envs.step(envs.action_space.sample())
            steps += 20 * copies
        return steps / (time.perf_counter() - start)
    finally:
        envs.close()


def run(seconds: float = 5.0) -> list[Row]:
    """Every simulation-host measurement, as README rows (the HalfCheetah pair measured back to back)."""
    wire = wire_agent_steps_per_s("HalfCheetah", 16, seconds)
    local = in_process_agent_steps_per_s("HalfCheetah-v5", 16, seconds)
    ratio = wire / local
    rows = [
        Row("HalfCheetah, 16 areas, random actions through the wire", f"{wire:,.0f} agent steps/s", "—", None, COMMAND),
        Row("HalfCheetah-v5, `SyncVectorEnv` of 16, in-process", f"{local:,.0f} agent steps/s", "—", None, COMMAND),
        Row("wire ÷ in-process (HalfCheetah × 16)", f"{ratio:.2f}", "≥ 0.6", ratio >= 0.6, COMMAND),
    ]
    for areas in (1, 16, 64):
        rate = wire_agent_steps_per_s("CartPole", areas, seconds)
        rows.append(Row(f"CartPole, {areas} area{'s' if areas > 1 else ''}, through the wire", f"{rate:,.0f} agent steps/s", "—", None, COMMAND))
    return rows


if __name__ == "__main__":
    for row in run():
        print(f"{row.benchmark}: {row.value}  (target {row.target})")
