"""RLlib PPO (current API stack) on the simulation host's CartPole, through the ML-Agents wire.

    python -m rayagents.rllib.examples.cartpole [--env sim:CartPole] [--env-runners 1] [--target 450]

Trains until the mean episode return reaches ``--target`` (CartPole-v1's episodes end at 500) or
``--max-iterations``, printing one line per iteration; exits 0 when the target was reached. ``--env`` takes any
build with one CartPole-like behavior (a path to a Unity build works the same way).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import ray
from ray.rllib.algorithms.ppo import PPOConfig
from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

from rayagents.rllib import behavior_policies


def ppo_config() -> PPOConfig:
    """RLlib's tuned CartPole PPO settings (its own CartPole example's): a small linear network, 6 epochs."""
    return (
        PPOConfig()
        .training(lr=0.0003, num_epochs=6, vf_loss_coeff=0.01)
        .rl_module(
            model_config=DefaultModelConfig(fcnet_hiddens=[32], fcnet_activation="linear", vf_share_layers=True)
        )
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Trains and prints the mean return per iteration; returns 0 if it reached the target."""
    parser = argparse.ArgumentParser(prog="python -m rayagents.rllib.examples.cartpole", description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="sim:CartPole", help="the build (default: sim:CartPole)")
    parser.add_argument("--env-runners", type=int, default=1, help="RLlib EnvRunners, each with its own player")
    parser.add_argument("--target", type=float, default=450.0, help="the mean episode return to reach")
    parser.add_argument("--max-iterations", type=int, default=100, help="the most training iterations")
    parser.add_argument("--address", default=None, help="a Ray cluster to join (default: a local one)")
    args = parser.parse_args(argv)

    ray.init(address=args.address)
    try:
        # The ten lines: read the build's behaviors, give RLlib one policy per behavior, train.
        env_config = {"file_name": args.env}
        config = behavior_policies(env_config).apply(ppo_config()).env_runners(num_env_runners=args.env_runners)
        algo = config.build_algo()
        start = time.monotonic()
        try:
            for iteration in range(1, args.max_iterations + 1):
                result = algo.train()
                runners = result["env_runners"]
                mean = runners.get("episode_return_mean", float("nan"))
                steps = int(runners.get("num_env_steps_sampled_lifetime", 0))
                print(f"iteration {iteration}: {steps:,} steps, mean return {mean:.1f}, {time.monotonic() - start:.0f} s")
                if mean >= args.target:
                    print(f"reached a mean return of {mean:.1f} ≥ {args.target:g} at {steps:,} steps")
                    return 0
        finally:
            algo.stop()
    finally:
        ray.shutdown()
    print(f"did not reach a mean return of {args.target:g} in {args.max_iterations} iterations")
    return 1


if __name__ == "__main__":
    sys.exit(main())
