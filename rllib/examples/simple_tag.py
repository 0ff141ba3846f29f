"""RLlib PPO on the simulation host's SimpleTag: one policy per behavior (``Predator`` and ``Prey``).

    python -m rayagents.rllib.examples.simple_tag [--iterations 20] [--num-areas 1]

Each iteration prints both policies' mean episode returns: the predators' rises as they learn to catch the
prey, and the prey's falls (it is the negative of the catches, minus its penalty for leaving the arena).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

import ray
from ray.rllib.algorithms.ppo import PPOConfig

from rayagents.rllib import behavior_policies


def main(argv: Sequence[str] | None = None) -> int:
    """Trains both behaviors for ``--iterations`` and prints their returns."""
    parser = argparse.ArgumentParser(prog="python -m rayagents.rllib.examples.simple_tag", description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="sim:SimpleTag", help="the build (default: sim:SimpleTag)")
    parser.add_argument("--iterations", type=int, default=20, help="training iterations")
    parser.add_argument("--num-areas", type=int, default=1, help="areas per player (4 agents each)")
    parser.add_argument("--env-runners", type=int, default=1, help="RLlib EnvRunners, each with its own player")
    parser.add_argument("--address", default=None, help="a Ray cluster to join (default: a local one)")
    args = parser.parse_args(argv)

    ray.init(address=args.address)
    try:
        policies = behavior_policies({"file_name": args.env, "num_areas": args.num_areas})
        print(f"policies: {', '.join(f'{n} ({p.observation_space.shape[0]} floats)' for n, p in sorted(policies.policies.items()))}")
        config = policies.apply(PPOConfig()).env_runners(num_env_runners=args.env_runners)
        algo = config.build_algo()
        start = time.monotonic()
        try:
            for iteration in range(1, args.iterations + 1):
                runners = algo.train()["env_runners"]
                returns = runners.get("module_episode_returns_mean", {})
                text = ", ".join(f"{name} {value:.1f}" for name, value in sorted(returns.items()))
                steps = int(runners.get("num_env_steps_sampled_lifetime", 0))
                print(f"iteration {iteration}: {steps:,} steps, mean returns {text}, {time.monotonic() - start:.0f} s")
        finally:
            algo.stop()
    finally:
        ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
