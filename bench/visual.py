"""Visual observations: what a step of images costs on its way to the learner, and how fast the learner takes them.

``python -m bench.visual bytes``: a ``sim:CartPoleVisual`` player (3 × 40 × 60 uint8 images, the last three
grayscale frames) is played as an EnvActor plays it: ``UnityEnvironment(..., visual_observations="uint8")``, a
:class:`TrajectoryBuilder` cutting trajectories at the example config's ``time_horizon`` and at episode ends, and a
:class:`TrajectoryBatch` of the trajectories completed (with the ended episodes and the player's statistics) every
``--exchanges-per-batch`` exchanges. The actions are drawn at random and keep what PPO's acting policy keeps per
step (log probability and entropy), so the batches hold what a PPO run sends. Each batch is serialized as Ray
serializes the argument of ``learner.submit.remote(batch)`` (Ray's serialization context: pickle protocol 5 with
the numpy arrays as out-of-band buffers); the figure is those bytes per step, beside the image itself
(3 · 40 · 60 = 7,200 bytes) and the overhead, split into the trajectories' bootstrap observations (``next_obs``, one
image per trajectory) and everything else (actions, rewards, versions, extras, framing).

``python -m bench.visual learner``: the learner's ingestion and PPO update rates on real CartPoleVisual
trajectories (recorded from the player as above), with ``configs/ppo/CartPoleVisual.yaml`` and its
``vis_encode_type`` set to ``simple`` and to ``nature_cnn`` (both accept 40 × 60; nature_cnn needs 36 × 36 or more),
in samples (observations of three frames) per second, on the CPU with the LearnerActor's torch threads and on CUDA
where there is one. Measured as ``bench.training`` measures the learner: trajectories arriving 16 at a time through
``Trainer.ingest`` (one critic pass, GAE, one actor pass for the log-probabilities), and the PPO update on the full
buffer (``buffer_size × num_epoch`` ÷ update seconds).

``python -m bench.visual cartpole``: ``configs/ppo/CartPoleVisual.yaml`` (the ``simple`` encoder) trained on
``sim:CartPoleVisual`` at 1 EnvActor × 8 areas, each seed until its first summary with a mean reward of 400 or
500,000 steps: that summary's step and wall time. Target: 400 within 500k steps, every seed.

    python -m bench.visual bytes|learner|cartpole [--areas N] [--exchanges N] [--seconds S] [--seeds 0,1] [--no-readme]
"""

from __future__ import annotations

import argparse
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from bench.networks import train_seeds
from bench.table import Row, report
from bench.training import learner_rates, load_example, trainer_settings
from rayagents.actors.environment import UnityEnvironment
from rayagents.actors.trajectories import TrajectoryBuilder
from rayagents.configs.hyperparameters import PPOSettings
from rayagents.configs.run import ClusterSettings
from rayagents.learner.policy import ENTROPY
from rayagents.protocol.side_channels import StatsSideChannel
from rayagents.protocol.trajectories import LOG_PROBS, ActionTaken, Trajectory, TrajectoryBatch
from rayagents.protocol.types import ActionTuple, BehaviorSpec

COMMAND = "python -m bench.visual"
SECTIONS = {
    "bytes": "Visual observations over Ray",
    "learner": "Visual observations through the learner",
    "cartpole": "Learning from pixels on CartPoleVisual",
}
"""The README section each part writes."""
LEARNING_STEPS = 500_000
LEARNING_TARGET = 400.0
LEARNING_AREAS = 8
"""The README heading (``### Visual observations``) whose table this benchmark rewrites."""
SCENE = "CartPoleVisual"
"""The scene and its example config's behavior."""
BEHAVIOR = f"{SCENE}?team=0"
ENV = f"sim:{SCENE}"
ENCODERS = ("simple", "nature_cnn")
"""The visual encoders compared by the learner part."""
DEFAULT_AREAS = 8
"""Areas of the player."""
DEFAULT_EXCHANGES = 500
"""Exchanges played: 4,000 steps at 8 areas (the player renders about 200 steps/s on two cores)."""
DEFAULT_EXCHANGES_PER_BATCH = 4
"""Exchanges between two trajectory batches: an EnvActor sends every 0.02 s (``seconds_per_batch``), about four
exchanges of a visual training run on a CPU."""


# ---- sizes (pure) --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SerializedSize:
    """An object pickled with protocol 5, its contiguous numpy arrays out of band (as Ray does)."""

    inband: int
    """The pickle stream's bytes: the objects' structure, names, small scalars."""
    buffers: int
    """The out-of-band buffers' bytes: the arrays' data."""

    @property
    def total(self) -> int:
        return self.inband + self.buffers


def pickle5_size(value: Any) -> SerializedSize:
    """The bytes of ``value`` pickled with protocol 5 and its buffers taken out of band."""
    buffers: list[pickle.PickleBuffer] = []
    inband = pickle.dumps(value, protocol=5, buffer_callback=buffers.append)
    return SerializedSize(inband=len(inband), buffers=sum(buffer.raw().nbytes for buffer in buffers))


def ray_serialized_bytes(value: Any) -> int:
    """The bytes Ray's own serializer makes of ``value`` (what a task argument or ``ray.put`` stores: metadata,
    the pickle stream and the aligned buffers); no Ray cluster is needed."""
    import ray

    return int(ray._private.worker.global_worker.get_serialization_context().serialize(value).total_bytes)


@dataclass(frozen=True)
class StepBytes:
    """What the trajectory batches of a run weigh, per step."""

    steps: int
    trajectories: int
    batches: int
    ray_bytes: int
    """Every batch through Ray's serializer."""
    pickle: SerializedSize
    """Every batch through pickle protocol 5 with out-of-band buffers."""
    observation_bytes: int
    """The bytes of the observations the decisions were made on (``Trajectory.obs``)."""
    next_obs_bytes: int
    """The bytes of the trajectories' bootstrap observations (``Trajectory.next_obs``)."""

    @property
    def per_step(self) -> float:
        return self.ray_bytes / self.steps

    @property
    def observation_per_step(self) -> float:
        return self.observation_bytes / self.steps

    @property
    def overhead_per_step(self) -> float:
        return self.per_step - self.observation_per_step

    @property
    def next_obs_per_step(self) -> float:
        return self.next_obs_bytes / self.steps


def step_bytes(batches: Sequence[TrajectoryBatch], ray_sizes: Sequence[int]) -> StepBytes:
    """The per-step weight of ``batches``, each of which Ray serialized to ``ray_sizes[i]`` bytes."""
    if len(batches) != len(ray_sizes):
        raise ValueError(f"{len(batches)} batches but {len(ray_sizes)} sizes")
    trajectories = [t for batch in batches for t in batch.trajectories]
    steps = sum(len(t) for t in trajectories)
    if steps == 0:
        raise ValueError("the batches hold no step")
    sizes = [pickle5_size(batch) for batch in batches]
    return StepBytes(
        steps=steps,
        trajectories=len(trajectories),
        batches=len(batches),
        ray_bytes=sum(ray_sizes),
        pickle=SerializedSize(sum(s.inband for s in sizes), sum(s.buffers for s in sizes)),
        observation_bytes=sum(o.nbytes for t in trajectories for o in t.obs),
        next_obs_bytes=sum(o.nbytes for t in trajectories for o in t.next_obs),
    )


# ---- playing CartPoleVisual as an EnvActor does --------------------------------------------------------------------


def random_ppo_actions(spec: BehaviorSpec, n: int, rng: np.random.Generator, version: int = 0) -> ActionTaken:
    """Uniformly random actions for ``n`` agents, with the extras PPO's acting policy keeps per step: the joint log
    probability of the actions and the entropy (both of the uniform distribution)."""
    action_spec = spec.action_spec
    branches = action_spec.discrete_branches
    discrete = np.zeros((n, len(branches)), np.int32)
    for column, size in enumerate(branches):
        discrete[:, column] = rng.integers(0, size, size=n)
    continuous = rng.normal(size=(n, action_spec.continuous_size)).astype(np.float32)
    log_prob = -float(np.sum(np.log(branches))) + (-0.5 * continuous**2 - 0.5 * np.log(2 * np.pi)).sum(axis=1)
    entropy = float(np.sum(np.log(branches))) + 0.5 * action_spec.continuous_size * (1 + np.log(2 * np.pi))
    return ActionTaken(
        env_actions=ActionTuple(continuous=np.clip(continuous, -3, 3) / 3, discrete=discrete),
        continuous=continuous,
        discrete=discrete,
        policy_version=version,
        extras={
            LOG_PROBS: np.broadcast_to(log_prob, (n,)).astype(np.float32),
            ENTROPY: np.full(n, entropy, dtype=np.float32),
        },
    )


def play_batches(
    areas: int, exchanges: int, time_horizon: int, exchanges_per_batch: int, seed: int = 0
) -> tuple[BehaviorSpec, list[TrajectoryBatch]]:
    """Plays a CartPoleVisual player with random PPO-shaped actions and returns its spec and the trajectory batches
    an EnvActor would have sent (the trajectories completed every ``exchanges_per_batch`` exchanges)."""
    rng = np.random.default_rng(seed)
    stats = StatsSideChannel()
    env = UnityEnvironment(
        ENV, num_areas=areas, seed=seed, timeout_wait=60, side_channels=[stats], visual_observations="uint8"
    )
    batches: list[TrajectoryBatch] = []
    try:
        env.reset()
        spec = env.behavior_specs[BEHAVIOR]
        builder = TrajectoryBuilder(BEHAVIOR, 0, time_horizon)
        pending: list[Trajectory] = []
        for exchange in range(1, exchanges + 1):
            decisions, terminals = env.get_steps(BEHAVIOR)
            taken = random_ppo_actions(spec, len(decisions), rng) if len(decisions) else None
            pending.extend(builder.add(decisions, terminals, taken))
            if taken is not None:
                env.set_actions(BEHAVIOR, taken.env_actions)
            env.step()
            if exchange % exchanges_per_batch == 0 and pending:
                episodes = builder.take_episodes()
                batches.append(
                    TrajectoryBatch(
                        env_actor=0,
                        trajectories=tuple(pending),
                        episodes=(episodes,) if len(episodes) else (),
                        player_stats={k: tuple(v) for k, v in stats.get_and_reset_stats().items()},
                    )
                )
                pending = []
    finally:
        env.close()
    return spec, batches


def example_time_horizon() -> int:
    """The ``time_horizon`` of ``configs/ppo/CartPoleVisual.yaml``."""
    return int(load_example(SCENE)["behaviors"][SCENE]["time_horizon"])


def bytes_rows(areas: int, exchanges: int, exchanges_per_batch: int) -> list[Row]:
    horizon = example_time_horizon()
    spec, batches = play_batches(areas, exchanges, horizon, exchanges_per_batch)
    measured = step_bytes(batches, [ray_serialized_bytes(batch) for batch in batches])
    image = int(np.prod(spec.observation_specs[0].shape))
    where = (
        f"sim:{SCENE} ({'×'.join(map(str, spec.observation_specs[0].shape))} uint8), {areas} areas, random actions "
        f"with PPO's per-step extras, time_horizon {horizon}, a batch every {exchanges_per_batch} exchanges"
    )
    other = measured.overhead_per_step - measured.next_obs_per_step
    mean_length = measured.steps / measured.trajectories
    return [
        Row(
            f"trajectory batches EnvActor → learner, Ray-serialized bytes per step: {where}",
            f"{measured.per_step:,.0f} bytes/step = image {image:,} + overhead {measured.overhead_per_step:,.0f} "
            f"({measured.overhead_per_step / image:.1%}): each trajectory's bootstrap image "
            f"{measured.next_obs_per_step:,.0f} ({image:,} ÷ {mean_length:.1f} steps per trajectory; "
            f"{image / horizon:,.0f} once trajectories reach time_horizon), the rest {other:,.0f}; "
            f"{measured.steps:,} steps, {measured.trajectories:,} trajectories, {measured.batches:,} batches",
            "—",
            None,
            f"{COMMAND} bytes",
        ),
        Row(
            "the same batches pickled with protocol 5, arrays out of band",
            f"{measured.pickle.total / measured.steps:,.0f} bytes/step (pickle stream "
            f"{measured.pickle.inband / measured.steps:,.0f}, buffers {measured.pickle.buffers / measured.steps:,.0f}); "
            f"as float32 the image alone would be {4 * image:,}",
            "—",
            None,
            f"{COMMAND} bytes",
        ),
    ]


# ---- the learner -----------------------------------------------------------------------------------------------------


def encoder_config(example: Mapping[str, Any], encoder: str) -> dict[str, Any]:
    """The CartPoleVisual example config with ``network_settings.vis_encode_type`` set to ``encoder`` (a copy)."""
    config = {"behaviors": {}}
    for name, settings in example["behaviors"].items():
        copied = {key: (dict(value) if isinstance(value, Mapping) else value) for key, value in settings.items()}
        copied["network_settings"] = {**settings.get("network_settings", {}), "vis_encode_type": encoder}
        config["behaviors"][name] = copied
    return config


def learner_rows(seconds: float, areas: int, exchanges: int) -> list[Row]:
    """Ingestion and update rates per encoder, on the CPU and on CUDA where there is one."""
    example = load_example(SCENE)
    horizon = int(example["behaviors"][SCENE]["time_horizon"])
    spec, batches = play_batches(areas, exchanges, horizon, DEFAULT_EXCHANGES_PER_BATCH)
    pool = [t for batch in batches for t in batch.trajectories]
    shape = "×".join(map(str, spec.observation_specs[0].shape))
    threads = max(1, int(ClusterSettings().learner_num_cpus))
    devices = {f"CPU ({threads} torch thread{'s' if threads > 1 else ''}, as the LearnerActor)": "cpu"}
    if torch.cuda.is_available():
        devices[f"CUDA ({torch.cuda.get_device_name()})"] = "cuda"
    rows = []
    for encoder in ENCODERS:
        settings = trainer_settings(encoder_config(example, encoder), SCENE)
        hp = settings.hyperparameters
        assert isinstance(hp, PPOSettings)
        what = (
            f"learner, CartPoleVisual ({shape} uint8, real trajectories), `{encoder}` encoder, "
            f"{settings.network_settings.num_layers} × {settings.network_settings.hidden_units} units, PPO buffer "
            f"{hp.buffer_size:,} × {hp.num_epoch} epochs, batch {hp.batch_size:,}"
        )
        for name, device in devices.items():
            rates = learner_rates(spec, settings, device, seconds, pool)
            rows.append(
                Row(
                    f"{what}, {name}",
                    f"ingest {rates.ingest:,.0f} samples/s, update {rates.update:,.0f} samples/s",
                    "—",
                    None,
                    f"{COMMAND} learner",
                )
            )
    if not torch.cuda.is_available():
        rows.append(Row("learner, CartPoleVisual, CUDA", "no GPU (not measured)", "—", None, f"{COMMAND} learner"))
    return rows


def cartpole_rows(seeds: Sequence[int]) -> list[Row]:
    """CartPoleVisual learned from pixels with the example config."""
    config = load_example(SCENE)
    results = train_seeds(
        config, SCENE, ENV, seeds, LEARNING_AREAS, LEARNING_STEPS, LEARNING_TARGET,
        "simple", stop_at_target=True,
    )  # fmt: skip
    return [
        Row(
            f"PPO on sim:CartPoleVisual (configs/ppo/CartPoleVisual.yaml, simple encoder), 1 × {LEARNING_AREAS}: first "
            f"summary with a mean reward ≥ {LEARNING_TARGET:.0f}",
            "; ".join(r.text(LEARNING_TARGET) for r in results),
            f"within {LEARNING_STEPS:,} steps, every seed",
            all(r.reached is not None for r in results),
            f"{COMMAND} cartpole",
        )
    ]


def main(argv: Sequence[str] | None = None) -> None:
    """Runs one part of the benchmark, prints it and (unless ``--no-readme``) writes it into the README."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("part", choices=tuple(SECTIONS))
    parser.add_argument("--seeds", type=lambda v: [int(p) for p in v.split(",")], default=[0], help="cartpole: seeds")
    parser.add_argument("--areas", type=int, default=DEFAULT_AREAS, help="areas of the CartPoleVisual player")
    parser.add_argument("--exchanges", type=int, default=DEFAULT_EXCHANGES, help="exchanges played")
    parser.add_argument(
        "--exchanges-per-batch",
        type=int,
        default=DEFAULT_EXCHANGES_PER_BATCH,
        help="bytes: exchanges between two trajectory batches",
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="learner: how long each update measurement runs")
    parser.add_argument("--no-readme", action="store_true", help="print only; leave README.md as it is")
    options = parser.parse_args(argv)
    if options.part == "bytes":
        rows = bytes_rows(options.areas, options.exchanges, options.exchanges_per_batch)
    elif options.part == "learner":
        rows = learner_rows(options.seconds, options.areas, options.exchanges)
    else:
        rows = cartpole_rows(options.seeds)
    report(SECTIONS[options.part], rows, write_readme=not options.no_readme)


if __name__ == "__main__":
    main()
