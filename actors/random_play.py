"""``python -m rayagents.actors.random_play``: connect to a player as a trainer does and play random actions.

A first look at an environment before training it: it launches the player (a Unity build, or ``sim:NAME`` for a
scene of the bundled simulation host), runs the handshake, prints each behavior's observations and actions,
plays random actions for ``--steps`` exchanges and prints the episodes that ended and the statistics the
player sent. It checks a build without a trainer config, and shows what ``rayagents-learn`` will see.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from typing import Sequence

import numpy as np

from rayagents.actors.environment import UnityEnvironment
from rayagents.protocol.exceptions import UnityException
from rayagents.protocol.side_channels import StatsSideChannel
from rayagents.protocol.types import BehaviorSpec


def describe(name: str, spec: BehaviorSpec) -> str:
    """One line per behavior: its sensors and actions."""
    sensors = ", ".join(f"{o.name} {'x'.join(map(str, o.shape))}" for o in spec.observation_specs)
    actions = spec.action_spec
    parts = []
    if actions.continuous_size:
        parts.append(f"{actions.continuous_size} continuous")
    if actions.discrete_branches:
        parts.append(f"discrete branches {list(actions.discrete_branches)}")
    return f"behavior {name}: observations [{sensors}]; actions: {' + '.join(parts) or 'none'}"


def play(env: UnityEnvironment, steps: int, seed: int) -> dict[str, list[float]]:
    """Plays ``steps`` exchanges of random actions; returns the episode returns per behavior."""
    rng = np.random.default_rng(seed)
    returns: dict[str, list[float]] = defaultdict(list)
    running: dict[tuple[str, int], float] = defaultdict(float)
    described: set[str] = set()
    env.reset()
    for _ in range(steps):
        for name, spec in env.behavior_specs.items():
            if name not in described:
                print(describe(name, spec))
                described.add(name)
            decisions, terminals = env.get_steps(name)
            for agent, reward in zip(terminals.agent_id, terminals.reward):
                returns[name].append(running.pop((name, int(agent)), 0.0) + float(reward))
            for agent, reward in zip(decisions.agent_id, decisions.reward):
                running[(name, int(agent))] += float(reward)
            env.set_actions(name, spec.action_spec.random_action(len(decisions), rng))
        env.step()
    return returns


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m rayagents.actors.random_play",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--env", default="sim:CartPole", help="a Unity build path, or sim:NAME for a bundled scene")
    parser.add_argument("--num-areas", type=int, default=4, help="training areas in the player")
    parser.add_argument("--steps", type=int, default=1000, help="exchanges to play")
    parser.add_argument("--seed", type=int, default=0, help="the seed sent to the player and of the random actions")
    parser.add_argument("--timeout-wait", type=float, default=60, help="seconds to wait for the player")
    options = parser.parse_args(argv)
    stats = StatsSideChannel()
    try:
        with UnityEnvironment(
            options.env,
            seed=options.seed,
            num_areas=options.num_areas,
            timeout_wait=options.timeout_wait,
            side_channels=[stats],
        ) as env:
            returns = play(env, options.steps, options.seed)
    except UnityException as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    for name, values in returns.items():
        mean = f"mean return {np.mean(values):.2f}" if values else "no episode ended"
        print(f"{name}: {len(values)} episodes, {mean}")
    for key, values in sorted(stats.get_and_reset_stats().items()):
        print(f"stat {key}: mean {np.mean([v for v, _ in values]):.2f} over {len(values)} values")
    return 0


if __name__ == "__main__":
    sys.exit(main())
