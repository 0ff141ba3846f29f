"""An EnvActor's loop without Ray: its CPU per agent step on the wire, acting and trajectories, acting in numpy and
in torch side by side.

One ``sim:HalfCheetah`` player × :data:`NUM_AREAS` areas (what one EnvActor of the training benchmark steps) is
stepped by this process as an EnvActor steps its player: read the steps, act with a policy of the training
benchmark's network (the example's, 2 × 256 units, weights as initialized), cut trajectories of the example's
``time_horizon``, send the actions and step. The player runs in its own process, so this process's CPU time (``time.process_time``) is the EnvActor's share. Blocks
of :data:`BLOCK_EXCHANGES` exchanges alternate between a policy acting in numpy (what a plain actor's EnvActor gets,
:class:`~rayagents.learner.numpy_policy.NumpyPolicy`) and one acting in torch
(:class:`~rayagents.learner.policy.InferencePolicy`), so that both see the same machine; each stage's CPU
time is summed per policy and divided by the agent steps.

``python -m bench.training`` runs it and puts its rows in its own README table.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from bench.table import Row
from rayagents.actors.environment import UnityEnvironment
from rayagents.actors.trajectories import TrajectoryBuilder
from rayagents.configs.trainer import TrainerSettings
from rayagents.learner.algorithm import ActingPolicy
from rayagents.learner.policy import InferencePolicy
from rayagents.learner.registry import trainer_entry

NUM_AREAS = 8
"""Areas of the player: one EnvActor's share of the training benchmark's 2 × 8."""
BLOCK_EXCHANGES = 200
"""Exchanges per block; the blocks alternate between the two policies."""
WARMUP_EXCHANGES = 200
"""Exchanges of each policy before the measurement."""
COMMAND = "python -m bench.training"


@dataclass
class StageTimes:
    """One policy's CPU seconds per stage of the loop, and the agent steps they served."""

    wire: float = 0.0
    """Reading the steps, sending the actions and the exchange itself (decoding and encoding included)."""
    acting: float = 0.0
    """The policy's ``act``."""
    trajectories: float = 0.0
    """``TrajectoryBuilder.add``."""
    steps: int = 0
    """Agent steps (decisions acted on)."""

    def per_step_us(self) -> dict[str, float]:
        """Each stage's µs per agent step, and their total."""
        stages = {"wire": self.wire, "acting": self.acting, "trajectories": self.trajectories}
        per_step = {name: 1e6 * seconds / max(self.steps, 1) for name, seconds in stages.items()}
        per_step["total"] = sum(per_step.values())
        return per_step


@dataclass
class LoopTimes:
    """The stage times of both policies."""

    by_mode: dict[str, StageTimes] = field(default_factory=lambda: {"numpy": StageTimes(), "torch": StageTimes()})


def _exchanges(
    env: UnityEnvironment, behavior: str, policy: ActingPolicy, builder: TrajectoryBuilder, count: int, into: StageTimes
) -> None:
    clock = time.process_time
    for _ in range(count):
        start = clock()
        decisions, terminals = env.get_steps(behavior)
        read = clock()
        taken = policy.act(behavior, decisions)
        acted = clock()
        builder.add(decisions, terminals, taken)
        built = clock()
        env.set_actions(behavior, taken.env_actions)
        env.step()
        stepped = clock()
        into.wire += (read - start) + (stepped - built)
        into.acting += acted - read
        into.trajectories += built - acted
        into.steps += len(decisions)


def measure(settings: TrainerSettings, seconds: float) -> LoopTimes:
    """Alternating blocks of the two policies on one HalfCheetah player for about ``seconds`` of wall time, with the
    network and ``time_horizon`` of ``settings``."""
    env = UnityEnvironment("sim:HalfCheetah", num_areas=NUM_AREAS, seed=0, timeout_wait=60)
    try:
        env.reset()
        behavior, spec = next(iter(env.behavior_specs.items()))
        torch_policy = InferencePolicy(behavior, spec, settings.network_settings)
        policies: dict[str, ActingPolicy] = {
            "numpy": trainer_entry("ppo").make_policy(behavior, spec, settings),
            "torch": torch_policy,
        }
        weights = {name: value.numpy() for name, value in torch_policy.actor.state_dict().items()}
        builders = {}
        for mode, policy in policies.items():
            policy.load_weights(0, weights)
            builders[mode] = TrajectoryBuilder(behavior, 0, settings.time_horizon)
            _exchanges(env, behavior, policy, builders[mode], WARMUP_EXCHANGES, StageTimes())
        times = LoopTimes()
        start = time.perf_counter()
        while time.perf_counter() - start < seconds:
            for mode, policy in policies.items():
                _exchanges(env, behavior, policy, builders[mode], BLOCK_EXCHANGES, times.by_mode[mode])
        return times
    finally:
        env.close()


def rows(times: LoopTimes) -> list[Row]:
    """README rows: each policy's µs per agent step by stage, and acting's ratio."""
    result = []
    for mode, stages in times.by_mode.items():
        us = stages.per_step_us()
        result.append(
            Row(
                f"EnvActor loop without Ray, HalfCheetah × {NUM_AREAS} areas, acting in {mode}: CPU per agent step",
                f"{us['total']:.0f} µs: wire {us['wire']:.0f}, acting {us['acting']:.0f}, "
                f"trajectories {us['trajectories']:.0f}",
                "—",
                None,
                COMMAND,
            )
        )
    numpy_us, torch_us = (times.by_mode[m].per_step_us()["acting"] for m in ("numpy", "torch"))
    result.append(Row("acting, numpy ÷ torch (the same loop)", f"{numpy_us / torch_us:.2f}", "—", None, COMMAND))
    return result


def run(settings: TrainerSettings, seconds: float = 5.0) -> list[Row]:
    """The measurement, as README rows."""
    return rows(measure(settings, seconds))
