"""POCA against independent PPO on the cooperative scenes, and the learner's POCA update rate.

``python -m bench.poca spread``: ``sim:SimpleSpread`` (MPE2 simple_spread_v3, three agents of one group per area)
with ``configs/poca/SimpleSpread.yaml``, against independent PPO with the same file (``trainer_type: ppo``: one
shared policy, each agent's own critic; the group reward is added to each agent's reward, as ML-Agents does for
every trainer) at ML-Agents' default extrinsic strength of 1.0. The example scales its reward by 0.01, which helps
POCA's attention critic; independent PPO collapses at that scale (its mean group reward at 300,000 agent steps was
-44.25 against -19.24 at 1.0, seeds 0-2), so the twin trains at the scale where it does best. Seeds 0–2 at 1
EnvActor × 8 areas to :data:`SPREAD_STEPS` agent steps: the mean group reward (``Environment/Group Cumulative
Reward``, the episode's sum of the global coverage term) over the summaries of the run's last
:data:`SPREAD_SCORED_SHARE`. The MPE literature trains simple_spread for 2M (EPyMARL) to 20M (MAPPO) environment
steps; :data:`SPREAD_STEPS` is a third of EPyMARL's budget, the most that three seeds of both trainers fit in on two
cores (about 70 minutes).

``python -m bench.poca escape``: ``sim:DungeonEscape`` (one agent must slay the dragon and leave the episode so that
the others can escape; only the group is paid) with ``configs/poca/DungeonEscape.yaml`` and its PPO twin, seeds 0–2
at 1 × 8 to :data:`ESCAPE_STEPS`: the mean group reward (the share of episodes escaped), beside the scene's
heuristic and random play. Independent PPO cannot credit the agent that leaves: its return is 0 whatever the group
does after; POCA bootstraps it from the value of the group it left.

``python -m bench.poca memory``: the same DungeonEscape example with an LSTM of 64 on sequences of 16 in the actor
and in the group critic (value and baseline memories carried per agent), seeds 0–2 to :data:`ESCAPE_STEPS`.

``python -m bench.poca learner``: the learner's ingestion and update rates (samples/s, one thread as the
LearnerActor runs by default; CUDA too when there is one) for POCA on SimpleSpread-shaped trajectories (3 agents
of a group, 18 floats, 5 actions, the example's network), beside PPO on the same trajectories.
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.networks import AREAS, DEFAULT_SEEDS, RUN_TIMEOUT_S, SCORED_EPISODES
from bench.runs import Summary, example, layout_arguments, learn, write_config
from bench.table import Row, report, seeded_arguments
from bench.training import learner_rates
from rayagents.configs import load_run_options
from rayagents.learner.policy import ENTROPY
from rayagents.protocol.side_channels.environment_parameters import EnvironmentParametersReceiver
from rayagents.protocol.side_channels.stats import StatsRecorder
from rayagents.protocol.trajectories import LOG_PROBS, GroupmateSteps, Trajectory
from rayagents.protocol.types import ActionSpec, BehaviorSpec, DimensionProperty, ObservationSpec, ObservationType
from rayagents.sims.scene import AgentAction, AreaContext, Heuristic
from rayagents.sims.scenes import dungeon_escape

COMMAND = "python -m bench.poca"
SECTIONS = {
    "spread": "POCA on SimpleSpread",
    "escape": "POCA on DungeonEscape",
    "memory": "POCA with memory on DungeonEscape",
    "learner": "POCA through the learner",
}
"""The README section each part writes."""
SPREAD_STEPS = 2_000_000
"""Agent steps per SimpleSpread run (about 667,000 environment steps of three agents, 26,700 episodes)."""
SPREAD_SCORED_SHARE = 0.2
"""The last share of a SimpleSpread run whose summaries are averaged into its figure (1.6M to 2M steps)."""
TWIN_STRENGTH = 1.0
"""The extrinsic strength SimpleSpread's independent-PPO twin trains with: ML-Agents' default."""
ESCAPE_STEPS = 150_000
"""Agent steps per DungeonEscape run."""
MEMORY_SIZE = 64
SEQUENCE_LENGTH = 16
LEARNER_SECONDS = 10.0


def as_ppo(config: Mapping[str, Any], behavior: str) -> dict[str, Any]:
    """``config`` with ``behavior`` trained by independent PPO: the same hyperparameters, network and budget."""
    copied = copy.deepcopy(dict(config))
    copied["behaviors"][behavior]["trainer_type"] = "ppo"
    return copied


@dataclass(frozen=True)
class GroupResult:
    """One seed's run."""

    seed: int
    group_reward: float
    """The mean group reward of the summaries scored: the one at (or first after) the budget, and those of the
    run's last ``scored_share`` before it."""
    step: int
    seconds: float

    def text(self) -> str:
        """``seed 0: -28.41 at 300,000 (412 s)``."""
        return f"seed {self.seed}: {self.group_reward:,.2f} at {self.step:,} ({self.seconds:,.0f} s)"


def train_groups(
    config: Mapping[str, Any],
    behavior: str,
    env: str,
    seeds: Sequence[int],
    steps: int,
    label: str,
    scored_share: float = 0.0,
) -> list[GroupResult]:
    """Trains ``config`` on ``env`` at 1 EnvActor × :data:`AREAS` for each seed until ``steps``; each seed's figure
    averages the summaries from ``(1 - scored_share) × steps`` to the budget."""
    results = []
    for seed in seeds:
        with tempfile.TemporaryDirectory(prefix="rayagents-bench-") as folder:
            path = write_config(config, Path(folder), behavior)
            arguments = [str(path), *layout_arguments(env, 1, AREAS, seed, "bench", Path(folder))]

            def stop(summary: Summary) -> bool:
                return summary.step >= steps

            output = learn(arguments, behavior, stop, RUN_TIMEOUT_S, f"{label} seed {seed}")
        results.append(scored_result(seed, output.summaries, steps, scored_share, f"{label} seed {seed}"))
    return results


def scored_result(seed: int, summaries: Sequence[Summary], steps: int, scored_share: float, run: str) -> GroupResult:
    """``seed``'s figure from the summaries of its run (named ``run`` in errors): the mean group reward of the summary
    at (or first after) ``steps`` and of those from ``(1 - scored_share) × steps`` on before it."""
    grouped = [s for s in summaries if s.group_reward is not None]
    if not grouped:
        raise RuntimeError(f"the run {run} printed no mean group reward")
    at = next((s for s in grouped if s.step >= steps), grouped[-1])
    scored = [s.group_reward for s in grouped if (1.0 - scored_share) * steps <= s.step <= at.step] or [at.group_reward]
    return GroupResult(seed, float(np.mean(scored)), at.step, at.seconds)


def with_strength(config: Mapping[str, Any], behavior: str, strength: float) -> dict[str, Any]:
    """``config`` with the extrinsic reward of ``behavior`` scaled by ``strength`` instead."""
    copied = copy.deepcopy(dict(config))
    copied["behaviors"][behavior]["reward_signals"]["extrinsic"]["strength"] = strength
    return copied


def comparison_rows(
    path: str,
    behavior: str,
    env: str,
    seeds: Sequence[int],
    steps: int,
    reference: str,
    twin_strength: float | None = None,
    scored_share: float = 0.0,
) -> list[Row]:
    """POCA with the example at ``path`` against independent PPO with the same file (its extrinsic reward scaled by
    ``twin_strength`` when given), seeds each; POCA meets the target when its mean is at least PPO's."""
    config = example(path)
    command = f"{COMMAND} {'spread' if behavior == 'SimpleSpread' else 'escape'}"
    scored = f"over the summaries from {(1.0 - scored_share) * steps:,.0f} to " if scored_share else "at "
    title = f"on {env}, 1 × {AREAS}: mean group reward {scored}{steps:,} agent steps"
    poca = train_groups(config, behavior, env, seeds, steps, "poca", scored_share)
    twin = as_ppo(config, behavior)
    label = "independent PPO"
    if twin_strength is not None:
        twin = with_strength(twin, behavior, twin_strength)
        label += f", extrinsic strength {twin_strength:g}"
    ppo = train_groups(twin, behavior, env, seeds, steps, label, scored_share)
    poca_mean = float(np.mean([r.group_reward for r in poca]))
    ppo_mean = float(np.mean([r.group_reward for r in ppo]))
    return [
        Row(f"POCA {title}", f"mean {poca_mean:,.2f}; " + "; ".join(r.text() for r in poca),
            f"≥ independent PPO's ({reference})", poca_mean >= ppo_mean, command),
        Row(f"{label} {title}", f"mean {ppo_mean:,.2f}; " + "; ".join(r.text() for r in ppo), "(the comparison)",
            None, command),
    ]  # fmt: skip


def escape_share(policy: Heuristic, episodes: int, seed: int) -> float:
    """The share of ``episodes`` episodes of one DungeonEscape area (seeded ``seed``) that ``policy`` escapes: an
    episode escapes when its agents end it paid by the group, and fails when they are cut off."""
    context = AreaContext(0, 1, seed, EnvironmentParametersReceiver(), StatsRecorder())
    area = dungeon_escape.DungeonEscapeArea(context)
    reports = area.reset()
    escaped: list[bool] = []
    while len(escaped) < episodes:
        reports = area.step({r.agent: policy(r) for r in reports if not r.done})
        if any(r.done and r.group_reward > 0 for r in reports):
            escaped.append(True)
        elif any(r.done and r.max_step_reached for r in reports):
            escaped.append(False)
    return float(np.mean(escaped))


def random_moves(seed: int) -> Heuristic:
    """Uniformly random moves."""
    rng = np.random.default_rng(seed)
    return lambda report: AgentAction(np.zeros(0, np.float32), np.array([rng.integers(3)], np.int32))


def escape_rows(seeds: Sequence[int]) -> list[Row]:
    """DungeonEscape: POCA, PPO, the heuristic and random play."""
    heuristic = escape_share(dungeon_escape.heuristic, SCORED_EPISODES, 100)
    random = escape_share(random_moves(100), SCORED_EPISODES, 100)
    reference = f"of {SCORED_EPISODES} episodes the heuristic escapes {heuristic:.2f}, random moves {random:.2f}"
    return list(comparison_rows("poca/DungeonEscape.yaml", "DungeonEscape", "sim:DungeonEscape", seeds,
                                ESCAPE_STEPS, reference))  # fmt: skip


def with_memory(config: Mapping[str, Any], behavior: str) -> dict[str, Any]:
    """``config`` with an LSTM of :data:`MEMORY_SIZE` on sequences of :data:`SEQUENCE_LENGTH` for ``behavior``."""
    copied = copy.deepcopy(dict(config))
    memory = {"memory_size": MEMORY_SIZE, "sequence_length": SEQUENCE_LENGTH}
    copied["behaviors"][behavior]["network_settings"]["memory"] = memory
    return copied


def memory_rows(seeds: Sequence[int]) -> list[Row]:
    """DungeonEscape with memory in the actor and in the group critic."""
    config = with_memory(example("poca/DungeonEscape.yaml"), "DungeonEscape")
    results = train_groups(config, "DungeonEscape", "sim:DungeonEscape", seeds, ESCAPE_STEPS, "poca+memory")
    mean = float(np.mean([r.group_reward for r in results]))
    return [
        Row(
            f"POCA with memory ({MEMORY_SIZE}, sequences of {SEQUENCE_LENGTH}) on sim:DungeonEscape, 1 × {AREAS}: "
            f"mean group reward at {ESCAPE_STEPS:,} agent steps",
            f"mean {mean:,.2f}; " + "; ".join(r.text() for r in results),
            "learns as without memory (the scene needs none: this checks the recurrent path)",
            None,
            f"{COMMAND} memory",
        )
    ]


def spread_rows(seeds: Sequence[int]) -> list[Row]:
    """SimpleSpread: POCA with the example, and independent PPO at :data:`TWIN_STRENGTH`."""
    reference = "a third of EPyMARL's 2M environment steps"
    return comparison_rows("poca/SimpleSpread.yaml", "SimpleSpread", "sim:SimpleSpread", seeds, SPREAD_STEPS,
                           reference, TWIN_STRENGTH, SPREAD_SCORED_SHARE)  # fmt: skip


# ---- the learner's rate ------------------------------------------------------------------------------------------

SPREAD_SPEC = BehaviorSpec(
    observation_specs=(ObservationSpec((18,), (DimensionProperty.NONE,), ObservationType.DEFAULT, "VectorSensor"),),
    action_spec=ActionSpec.create_discrete((5,)),
)
"""SimpleSpread's behavior: 18 floats, one branch of 5 actions."""


def group_trajectory(length: int, agent: int, rng: np.random.Generator) -> Trajectory:
    """A random trajectory of one of three agents of a group, with its two groupmates' steps."""
    mates = GroupmateSteps(
        obs=(rng.normal(size=(length, 2, 18)).astype(np.float32),),
        continuous_actions=np.zeros((length, 2, 0), dtype=np.float32),
        discrete_actions=rng.integers(0, 5, size=(length, 2, 1)).astype(np.int32),
        present=np.ones((length, 2), dtype=bool),
        dones=np.zeros((length, 2), dtype=bool),
        rewards=rng.normal(size=length).astype(np.float32),
        next_obs=(rng.normal(size=(2, 18)).astype(np.float32),),
        next_present=np.ones(2, dtype=bool),
    )
    return Trajectory(
        obs=(rng.normal(size=(length, 18)).astype(np.float32),),
        next_obs=(rng.normal(size=18).astype(np.float32),),
        continuous_actions=np.zeros((length, 0), dtype=np.float32),
        discrete_actions=rng.integers(0, 5, size=(length, 1)).astype(np.int32),
        rewards=rng.normal(size=length).astype(np.float32),
        done=False,
        interrupted=False,
        versions=np.zeros(length, dtype=np.int32),
        extras={LOG_PROBS: np.full(length, -1.6, np.float32), ENTROPY: np.full(length, 1.6, np.float32)},
        group_id=1,
        group_rewards=rng.normal(size=length).astype(np.float32),
        behavior="SimpleSpread?team=0",
        agent_id=f"agent_0-{agent}",
        groupmates=mates,
    )


def learner_rows() -> list[Row]:
    """POCA's and PPO's ingestion and update rates on the same SimpleSpread-shaped trajectories."""
    config = example("poca/SimpleSpread.yaml")
    with tempfile.TemporaryDirectory(prefix="rayagents-bench-") as folder:
        poca_settings = load_run_options(write_config(config, Path(folder), "poca")).behaviors["SimpleSpread"]
        ppo_path = write_config(as_ppo(config, "SimpleSpread"), Path(folder), "ppo")
        ppo_settings = load_run_options(ppo_path).behaviors["SimpleSpread"]
    rng = np.random.default_rng(0)
    pool = [group_trajectory(poca_settings.time_horizon, i % 3, rng) for i in range(64)]
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = []
    for device in devices:
        card = "CPU, 1 thread" if device == "cpu" else torch.cuda.get_device_name()
        poca = learner_rates(SPREAD_SPEC, poca_settings, device, LEARNER_SECONDS, pool)
        ppo = learner_rates(SPREAD_SPEC, ppo_settings, device, LEARNER_SECONDS, pool)
        rows.append(
            Row(
                f"POCA learner on SimpleSpread trajectories ({card}): ingest / update samples/s",
                f"{poca.ingest:,.0f} / {poca.update:,.0f} (PPO on the same: {ppo.ingest:,.0f} / {ppo.update:,.0f})",
                "measured",
                None,
                f"{COMMAND} learner",
            )
        )
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    """Runs the benchmark, prints it and (unless ``--no-readme``) writes it into the README."""
    options = seeded_arguments(__doc__.split("\n\n")[0], tuple(SECTIONS), DEFAULT_SEEDS, argv)
    parts = {"spread": lambda: spread_rows(options.seeds), "escape": lambda: escape_rows(options.seeds),
             "memory": lambda: memory_rows(options.seeds), "learner": learner_rows}  # fmt: skip
    report(SECTIONS[options.part], parts[options.part](), write_readme=not options.no_readme)


if __name__ == "__main__":
    main()
