"""Reward signals and imitation: what each signal costs the learner, exploration on a sparse task, imitation.

``python -m bench.reward_signals update``: the learner's ingestion and PPO update rates (HalfCheetah's 17
observations and 6 actions, the PPO settings of ``bench.training``) with the extrinsic reward alone and with each
of curiosity, RND, GAIL (a demonstration of random HalfCheetah-shaped steps) and GAIL with behavioral cloning,
on one CPU thread and, where there is one, on CUDA.

``python -m bench.reward_signals mountaincar``: ``sim:MountainCar`` (-1 per step until the flag, 200 steps) with
``configs/ppo/MountainCar.yaml`` (curiosity), ``configs/ppo/MountainCarRND.yaml`` (RND) and the same config with the
extrinsic reward alone, seeds 0–2 at 1 EnvActor × 8 areas: the mean reward at 300,000 steps and the first summary
at or above -120 (the flag reached in about 120 steps). Target: both intrinsic signals reach -120 within 300k
steps, the extrinsic reward alone does not.

``python -m bench.reward_signals imitation``: an expert trained with ``configs/ppo/CartPole.yaml`` (seed 0, until a
mean reward of 475), 20 of its episodes recorded with ``rayagents-sim record``, then
``configs/imitation/CartPole.yaml`` (GAIL and behavioral cloning, no extrinsic reward) reading that demonstration,
seeds 0–2 at 1 × 4: the steps to a mean reward of 450 (target: within 100k), the same for GAIL alone (the config
without ``behavioral_cloning``), and the policy behavioral cloning makes before any step (pretraining alone), scored
over 20 episodes (target ≥ 300).
"""

from __future__ import annotations

import argparse
import copy
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.runs import RunOutput, example, layout_arguments, learn, write_config
from bench.table import Row, report
from bench.training import HALFCHEETAH_PPO_HYPERPARAMETERS, LearnerRates, halfcheetah_ppo_config, learner_rates
from bench.training import benchmark_config, load_example, trainer_settings
from rayagents.configs import run_options_from_dict
from rayagents.learner.demonstrations import load_demonstrations
from rayagents.learner.trainer import Trainer
from rayagents.protocol.agents import agent_info_proto
from rayagents.protocol.demonstration_writer import DemonstrationWriter, demonstration_brain_parameters
from rayagents.protocol.demonstrations import read_demonstration_records
from rayagents.protocol.observations import float_observation_proto
from rayagents.protocol.types import ActionSpec, BehaviorSpec, DimensionProperty, ObservationSpec, ObservationType
from rayagents.sims.record import play_model

COMMAND = "python -m bench.reward_signals"
RUN_TIMEOUT_S = 3600.0
"""The longest one training run may take."""

MOUNTAINCAR_STEPS = 300_000
MOUNTAINCAR_TARGET = -120.0
MOUNTAINCAR_AREAS = 8
EXPERT_REWARD = 475.0
DEMO_EPISODES = 20
IMITATION_STEPS = 100_000
IMITATION_TARGET = 450.0
PRETRAINING_TARGET = 300.0
DEFAULT_SEEDS = (0, 1, 2)
SECTIONS = {
    "update": "Reward signal costs",
    "mountaincar": "Exploration on MountainCar",
    "imitation": "Imitation on CartPole",
}
"""The README heading each part rewrites."""


# ---- what a signal costs -----------------------------------------------------------------------------------------


def halfcheetah_like_spec() -> BehaviorSpec:
    """HalfCheetah's 17 observations and 6 continuous actions."""
    sensor = ObservationSpec((17,), (DimensionProperty.NONE,), ObservationType.DEFAULT, "obs")
    return BehaviorSpec((sensor,), ActionSpec(6, ()))


def write_random_demo(path: Path, spec: BehaviorSpec, steps: int) -> Path:
    """A demonstration of ``steps`` random steps of ``spec`` (episodes of 1,000)."""
    rng = np.random.default_rng(0)
    brain = demonstration_brain_parameters("Expert", spec.action_spec)
    with path.open("wb") as stream, DemonstrationWriter(stream, "Expert", brain) as writer:
        for t in range(steps):
            done = (t + 1) % 1000 == 0
            info = agent_info_proto(0, [float_observation_proto(rng.normal(size=17), "obs")], reward=1.0, done=done)
            writer.record(info, continuous=rng.uniform(-1, 1, size=6))
    return path


def signal_settings(signals: Mapping[str, Any], cloning: Mapping[str, Any] | None) -> dict[str, Any]:
    """The HalfCheetah PPO config of ``bench.training`` with these reward signals (and behavioral cloning)."""
    config = benchmark_config(halfcheetah_ppo_config(load_example("HalfCheetah")))
    behavior = config["behaviors"]["HalfCheetah"]
    behavior["reward_signals"] = {"extrinsic": {"gamma": 0.99, "strength": 1.0}, **signals}
    if cloning is not None:
        behavior["behavioral_cloning"] = dict(cloning)
    return config


def update_rows(seconds: float) -> list[Row]:
    """Ingestion and update rates with each signal, on the CPU (one thread) and on CUDA where there is one."""
    spec = halfcheetah_like_spec()
    devices = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
    rows = []
    with tempfile.TemporaryDirectory(prefix="rayagents-bench-signals-") as folder:
        demo = str(write_random_demo(Path(folder) / "Random.demo", spec, 4000))
        signal = {"gamma": 0.99, "strength": 0.01, "network_settings": {"hidden_units": 128, "num_layers": 2}}
        variants: dict[str, tuple[dict[str, Any], dict[str, Any] | None]] = {
            "extrinsic only": ({}, None),
            "+ curiosity": ({"curiosity": signal}, None),
            "+ RND": ({"rnd": signal}, None),
            "+ GAIL": ({"gail": {**signal, "demo_path": demo}}, None),
            "+ GAIL and behavioral cloning": ({"gail": {**signal, "demo_path": demo}}, {"demo_path": demo}),
        }
        hp = HALFCHEETAH_PPO_HYPERPARAMETERS
        for device in devices:
            name = "CPU, 1 torch thread" if device == "cpu" else f"CUDA ({torch.cuda.get_device_name()})"
            base: LearnerRates | None = None
            for variant, (signals, cloning) in variants.items():
                settings = trainer_settings(signal_settings(signals, cloning), "HalfCheetah")
                rates = learner_rates(spec, settings, device, seconds)
                base = base or rates
                rows.append(
                    Row(
                        f"learner, HalfCheetah-shaped PPO (buffer {hp['buffer_size']:,} × {hp['num_epoch']} epochs, "
                        f"batch {hp['batch_size']:,}), {variant}, {name}",
                        f"ingest {rates.ingest:,.0f} samples/s ({rates.ingest / base.ingest:.2f} ×), update "
                        f"{rates.update:,.0f} samples/s ({rates.update / base.update:.2f} ×)",
                        "—",
                        None,
                        f"{COMMAND} update",
                    )
                )
    return rows


# ---- exploration on MountainCar ----------------------------------------------------------------------------------


def mountaincar_configs() -> dict[str, dict[str, Any]]:
    """The curiosity and RND examples, and the curiosity example with the extrinsic reward alone."""
    curiosity = example("ppo/MountainCar.yaml")
    extrinsic = copy.deepcopy(curiosity)
    signals = extrinsic["behaviors"]["MountainCar"]["reward_signals"]
    extrinsic["behaviors"]["MountainCar"]["reward_signals"] = {"extrinsic": signals["extrinsic"]}
    return {"curiosity": curiosity, "RND": example("ppo/MountainCarRND.yaml"), "extrinsic only": extrinsic}


def mountaincar_rows(seeds: Sequence[int], variants: Sequence[str] | None = None) -> list[Row]:
    rows = []
    for variant, config in mountaincar_configs().items():
        if variants is not None and variant not in variants:
            continue
        parts, reached_all, reached_any = [], True, False
        for seed in seeds:
            with tempfile.TemporaryDirectory(prefix="rayagents-bench-mountaincar-") as folder:
                path = write_config(config, Path(folder), "MountainCar")
                arguments = [str(path), *layout_arguments("sim:MountainCar", 1, MOUNTAINCAR_AREAS, seed, "mc", Path(folder))]
                output = learn(
                    arguments, "MountainCar", lambda s: s.step >= MOUNTAINCAR_STEPS, RUN_TIMEOUT_S, f"{variant} seed {seed}"
                )
            reached = next((s for s in output.summaries if s.reward >= MOUNTAINCAR_TARGET and s.step <= MOUNTAINCAR_STEPS), None)
            at = output.reward_at(MOUNTAINCAR_STEPS) or output.summaries[-1]
            text = f"seed {seed}: {at.reward:,.1f} at {at.step:,} ({at.seconds:,.0f} s)"
            text += f", ≥ {MOUNTAINCAR_TARGET:.0f} from {reached.step:,}" if reached else f", never ≥ {MOUNTAINCAR_TARGET:.0f}"
            parts.append(text)
            reached_all = reached_all and reached is not None
            reached_any = reached_any or reached is not None
        intrinsic = variant != "extrinsic only"
        rows.append(
            Row(
                f"PPO on sim:MountainCar, 1 × {MOUNTAINCAR_AREAS}, {variant}: mean reward at {MOUNTAINCAR_STEPS:,} steps",
                "; ".join(parts),
                f"≥ {MOUNTAINCAR_TARGET:.0f} within {MOUNTAINCAR_STEPS:,}, every seed" if intrinsic else "never reaches it",
                reached_all if intrinsic else not reached_any,
                f"{COMMAND} mountaincar",
            )
        )
    return rows


# ---- imitation on CartPole ---------------------------------------------------------------------------------------


def record_demo(model: Path, episodes: int, out: Path) -> float:
    """Records ``episodes`` CartPole episodes of ``model`` into ``out`` with ``rayagents-sim record``, as a user
    does; returns the demonstration's mean episode reward, from its header."""
    command = [sys.executable, "-m", "rayagents.sims", "record", "CartPole", "--model", str(model),
               "--episodes", str(episodes), "--out", str(out)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"rayagents-sim record failed ({done.returncode}): {done.stdout}{done.stderr}")
    return read_demonstration_records(out.read_bytes(), str(out)).meta.mean_reward


def pretrained_reward(config: Mapping[str, Any], demo: Path, folder: Path) -> tuple[float, float]:
    """Behavioral cloning before any step (the pretraining a fresh run makes), the policy exported and scored over
    20 episodes; (mean reward, pretraining loss)."""
    options = run_options_from_dict(dict(config))
    spec = load_demonstrations(str(demo)).behavior_spec
    torch.manual_seed(0)
    trainer = Trainer("CartPole", spec, options.behaviors["CartPole"], "cpu", seed=0)
    loss = trainer.algorithm.pretrain()["Losses/Pretraining Loss"]
    model = trainer.algorithm.export(folder / "Pretrained.onnx")
    return float(np.mean(play_model("CartPole", model, DEMO_EPISODES).returns)), loss


def imitation_rows(seeds: Sequence[int]) -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="rayagents-bench-imitation-") as name:
        folder = Path(name)
        expert_config = write_config(example("ppo/CartPole.yaml"), folder, "Expert")
        arguments = [str(expert_config), *layout_arguments("sim:CartPole", 1, 4, 0, "expert", folder)]
        expert = learn(arguments, "CartPole", lambda s: s.reward >= EXPERT_REWARD, RUN_TIMEOUT_S, "expert")
        demo = folder / "ExpertCartPole.demo"
        demo_reward = record_demo(folder / "expert" / "CartPole.onnx", DEMO_EPISODES, demo)
        rows.append(
            Row(
                f"expert: configs/ppo/CartPole.yaml at 1 × 4, seed 0, stopped at a mean reward of {EXPERT_REWARD:.0f}; "
                f"{DEMO_EPISODES} episodes recorded with `rayagents-sim record`",
                f"stopped at step {expert.summaries[-1].step:,}; the demonstration's mean reward {demo_reward:,.1f}",
                "—",
                None,
                f"{COMMAND} imitation",
            )
        )
        config = example("imitation/CartPole.yaml")
        behavior = config["behaviors"]["CartPole"]
        behavior["reward_signals"]["gail"]["demo_path"] = str(demo)
        behavior["behavioral_cloning"]["demo_path"] = str(demo)
        reward, loss = pretrained_reward(config, demo, folder)
        rows.append(
            Row(
                "behavioral cloning alone, before any step (the pretraining of configs/imitation/CartPole.yaml): "
                f"the policy's mean reward over {DEMO_EPISODES} episodes",
                f"{reward:,.1f} (pretraining loss {loss:.3f})",
                f"≥ {PRETRAINING_TARGET:.0f}",
                reward >= PRETRAINING_TARGET,
                f"{COMMAND} imitation",
            )
        )
        gail_alone = copy.deepcopy(config)
        del gail_alone["behaviors"]["CartPole"]["behavioral_cloning"]
        variants = {
            "GAIL + behavioral cloning, no extrinsic reward (configs/imitation/CartPole.yaml)": (config, True),
            "GAIL alone (the same without behavioral_cloning: no pretraining either)": (gail_alone, False),
        }
        for variant, (variant_config, targeted) in variants.items():
            path = write_config(variant_config, folder, f"Imitation{len(rows)}")
            outputs: list[tuple[int, RunOutput]] = []
            for seed in seeds:
                arguments = [str(path), *layout_arguments("sim:CartPole", 1, 4, seed, f"run{len(rows)}-{seed}", folder)]
                stop = lambda s: s.reward >= IMITATION_TARGET or s.step >= IMITATION_STEPS  # noqa: E731
                outputs.append((seed, learn(arguments, "CartPole", stop, RUN_TIMEOUT_S, f"{variant[:20]} seed {seed}")))
            rows.append(imitation_row(variant, outputs, targeted))
    return rows


def imitation_row(variant: str, outputs: Sequence[tuple[int, RunOutput]], targeted: bool) -> Row:
    """Each seed's first summary at or above the imitation target (within the step budget)."""
    parts, met = [], True
    for seed, output in outputs:
        reached = output.first_reaching(IMITATION_TARGET)
        if reached is not None and reached.step <= IMITATION_STEPS:
            parts.append(f"seed {seed}: {reached.reward:,.1f} at step {reached.step:,} ({reached.seconds:,.0f} s)")
        else:
            last = output.summaries[-1]
            parts.append(f"seed {seed}: not reached; {last.reward:,.1f} at step {last.step:,}")
            met = False
    return Row(
        f"{variant}, 1 × 4: first summary with a mean reward ≥ {IMITATION_TARGET:.0f}",
        "; ".join(parts),
        f"within {IMITATION_STEPS:,} steps, every seed" if targeted else "—",
        met if targeted else None,
        f"{COMMAND} imitation",
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Runs one part of the benchmark, prints it and (unless ``--no-readme``) writes it into the README."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("part", choices=sorted(SECTIONS))
    parser.add_argument("--seeds", type=lambda s: [int(p) for p in s.split(",")], default=list(DEFAULT_SEEDS))
    parser.add_argument("--seconds", type=float, default=5.0, help="how long each update measurement runs")
    parser.add_argument(
        "--variants",
        type=lambda s: s.split(","),
        default=None,
        help="mountaincar: only these of curiosity, RND, 'extrinsic only' (comma-separated)",
    )
    parser.add_argument("--no-readme", action="store_true", help="print only; leave README.md as it is")
    options = parser.parse_args(argv)
    if options.part == "update":
        rows = update_rows(options.seconds)
    elif options.part == "mountaincar":
        rows = mountaincar_rows(options.seeds, options.variants)
    else:
        rows = imitation_rows(options.seeds)
    report(SECTIONS[options.part], rows, write_readme=not options.no_readme)


if __name__ == "__main__":
    main()
