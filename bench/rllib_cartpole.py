"""RLlib PPO on CartPole through the wire, beside RLlib PPO on Gymnasium's CartPole-v1 in-process.

``python -m bench.rllib_cartpole``: the same RLlib PPO settings (``rayagents.rllib.examples.cartpole``'s: RLlib's
tuned CartPole PPO, 1 EnvRunner, 4,000 steps per iteration) train twice in one run, on a local Ray cluster of 2
CPUs: first on ``sim:CartPole`` through ``UnityMultiAgentEnv`` (a player process, gRPC on loopback, one agent),
then on ``gymnasium.make("CartPole-v1")`` in the EnvRunner itself. Each stops at a mean episode return of 450
(or after 60 iterations). Reported per way: the steps and seconds to reach 450, the sampled steps per second
(RLlib's own sampling throughput, updates excluded), and the wire's cost as the ratio of the two.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from bench.table import Row, report, seeded_arguments

SECTION = "RLlib on CartPole through the wire"
"""The README section this benchmark writes."""
COMMAND = "python -m bench.rllib_cartpole"
TARGET = 450.0
"""The mean return the issue asks for."""
MAX_ITERATIONS = 60


@dataclass(frozen=True)
class Training:
    """One way's training to the target."""

    steps: int
    """Environment steps sampled when it stopped."""
    seconds: float
    """Wall time of the training iterations (the algorithm's build excluded)."""
    final_return: float
    """The mean episode return of the last iteration."""
    sampling_steps_per_s: float
    """Steps sampled per second of EnvRunner sampling (RLlib's ``env_runner_sampling_timer``)."""

    @property
    def reached(self) -> bool:
        """Whether the target was reached."""
        return self.final_return >= TARGET


def train(wire: bool, seed: int) -> Training:
    """Trains RLlib PPO on CartPole through the wire (``wire``) or in-process until the target."""
    import ray

    from rayagents.rllib import behavior_policies
    from rayagents.rllib.examples.cartpole import ppo_config

    ray.init(address="local", num_cpus=2, include_dashboard=False)
    try:
        config = ppo_config().env_runners(num_env_runners=1).debugging(seed=seed)
        if wire:
            config = behavior_policies({"file_name": "sim:CartPole", "seed": seed}).apply(config)
        else:
            config = config.environment("CartPole-v1")
        algo = config.build_algo()
        start = time.monotonic()
        sampling_s = 0.0
        mean, steps = float("nan"), 0
        try:
            for _ in range(MAX_ITERATIONS):
                result = algo.train()
                runners = result["env_runners"]
                mean = float(runners.get("episode_return_mean", float("nan")))
                steps = int(runners.get("num_env_steps_sampled_lifetime", 0))
                sampling_s += float(result["timers"]["env_runner_sampling_timer"])
                print(f"    {'wire' if wire else 'in-process'}: {steps:,} steps, mean return {mean:.1f}", flush=True)
                if mean >= TARGET:
                    break
        finally:
            algo.stop()
        return Training(steps, time.monotonic() - start, mean, steps / sampling_s if sampling_s else 0.0)
    finally:
        ray.shutdown()


def rows(seed: int) -> list[Row]:
    """Both trainings, side by side, as README rows."""
    wire = train(True, seed)
    local = train(False, seed)
    command = f"{COMMAND} --seeds {seed}"

    def reach(t: Training) -> str:
        if not t.reached:
            return f"not reached in {t.steps:,} steps (mean return {t.final_return:.1f})"
        return f"{t.steps:,} steps, {t.seconds:,.0f} s"

    return [
        Row(f"RLlib PPO on sim:CartPole through the wire (seed {seed}): to a mean return of 450", reach(wire),
            "≥ 450", wire.reached, command),
        Row(f"RLlib PPO on Gymnasium CartPole-v1 in-process (same settings, seed {seed}): to 450", reach(local),
            "—", None, command),
        Row("sampling steps/s: through the wire / in-process", f"{wire.sampling_steps_per_s:,.0f} / "
            f"{local.sampling_steps_per_s:,.0f} = {wire.sampling_steps_per_s / max(local.sampling_steps_per_s, 1e-9):.2f}",
            "—", None, command),
    ]  # fmt: skip


def main(argv: Sequence[str] | None = None) -> None:
    """Runs both trainings with the first of ``--seeds``; prints (and writes into the README) the rows."""
    options = seeded_arguments(__doc__ or "", None, (0,), argv)
    report(SECTION, rows(options.seeds[0]), write_readme=not options.no_readme)


if __name__ == "__main__":
    main()
