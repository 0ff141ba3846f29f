"""Training throughput: ``rayagents-learn`` against random actions on the same players, and the learner's rates.

- ``HalfCheetah``, 2 players × 8 areas: (a) random actions, each player stepped by its own process (two
  ``multiprocessing`` processes, 'spawn' context, measuring over the same seconds), agent steps/s summed;
  (b) ``rayagents-learn`` training PPO with 2 EnvActors × 8 areas. (a) and (b) alternate :data:`PAIRS` times
  (``--pairs``) and the ratio is the median of the pairs' ratios. Target: (b) ≥ 0.6 × (a) on a machine with fewer
  cores than the run's busy processes, ≥ 0.9 × (a) with a core for each; at most 1% of the steps dropped.
- ``CartPole``: ``rayagents-learn`` with the CartPole example config, 2 EnvActors × 8 areas.
- The learner on HalfCheetah experiences, on the CPU with the LearnerActor's torch threads and on CUDA when there
  is one: its ingestion (trajectories of ``time_horizon`` arriving 16 at a time through :meth:`Trainer.ingest`:
  normalizers, one critic pass, GAE, the update buffer), and its PPO update on the full buffer (``buffer_size`` ×
  ``num_epoch`` ÷ update seconds), both in samples/s.

The HalfCheetah example config trains SAC, whose learner sets the players' pace (one gradient step per
``steps_per_update`` agent steps: ``python -m bench.sac`` measures it); this benchmark measures the streaming core,
which PPO, whose EnvActors wait only when they are an update's worth ahead of the learner, shows, so HalfCheetah is trained with the example made PPO (:func:`halfcheetah_ppo_config`): its network, reward signal, ``time_horizon`` and checkpoints, with the
PPO hyperparameters in :data:`HALFCHEETAH_PPO_HYPERPARAMETERS`.

A training run is ``rayagents-learn`` in a subprocess with a fresh results folder, ``max_steps`` out of reach and
``summary_freq`` :data:`SUMMARY_FREQ`. Its summary lines ("Step: S. Time Elapsed: T s.") are printed when the
driver polls the learner (every second), so T is a poll time and S the last summary step reached by then: the
true step at T lies in [S, S + summary_freq). The rate is taken between the first poll :data:`WARMUP_S` seconds
after the first summary and the first poll ``--seconds`` later (:func:`measure_window`); then the run gets
SIGINT, saves and exits. Steps are every experience the EnvActors sent, including those the learner drops (acted
by weights older than PPO's lag bound); the dropped share is shown beside the rate.

    python -m bench.training [--seconds N] [--pairs N] [--no-readme]
    python -m bench              # every benchmark, and rewrites the README tables
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from bench import acting
from bench.sims import play_random
from bench.table import Row, report
from rayagents.actors.environment import UnityEnvironment
from rayagents.configs.examples import example_config
from rayagents.configs.hyperparameters import OnPolicyHyperparamSettings
from rayagents.configs.loader import run_options_from_dict
from rayagents.configs.run import ClusterSettings
from rayagents.configs.trainer import TrainerSettings
from rayagents.learner.policy import ENTROPY
from rayagents.learner.summaries import DROPPED_STEPS
from rayagents.learner.trainer import Trainer
from rayagents.protocol.side_channels import StatsSideChannel
from rayagents.protocol.trajectories import LOG_PROBS, Trajectory
from rayagents.protocol.types import BehaviorSpec

COMMAND = "python -m bench.training"
SECTION = "Training"
"""The README heading (``### Training``) whose table this benchmark rewrites."""

NUM_ENVS = 2
"""EnvActors of a training run, and random-action processes."""
NUM_AREAS = 8
"""Areas per player."""
RATIO_TARGET_SHARED = 0.6
"""HalfCheetah training steps/s ÷ random-action steps/s on the same players, on a machine with fewer cores than a
training run has busy processes (a player and an EnvActor per EnvActor, the learner, the driver)."""
RATIO_TARGET_CORE_PER_PROCESS = 0.9
"""The same ratio with a core per busy process."""
PAIRS = 3
"""How many times the HalfCheetah random and training measurements alternate. The machine's speed drifts (random
rates of one 2-core machine ranged over a third from one run to the next), so one pair measures the drift as much as
the trainer; the median of several pairs, each measured back to back, much less."""
DROPPED_TARGET = 0.01
"""The most of a training run's steps the learner may drop."""
WARMUP_S = 10.0
"""Seconds of training after the first summary line before the measurement starts (the first updates)."""
RANDOM_WARMUP_EXCHANGES = 50
"""Exchanges each random-action process makes before the measurement."""
SUMMARY_FREQ = 1000
"""The training runs' summary_freq: the step resolution of the measurement."""
MAX_STEPS = 1_000_000_000
"""The training runs' max_steps: out of reach, the run is stopped with SIGINT."""
STARTUP_TIMEOUT_S = 180.0
"""How long a training run may take to print its first summary line (Ray, the actors, the players)."""
STOP_TIMEOUT_S = 60.0
"""How long a training run may take to save and exit after SIGINT before it is killed."""

HALFCHEETAH_PPO_HYPERPARAMETERS: dict[str, Any] = {
    "batch_size": 1024,
    "buffer_size": 10240,
    "learning_rate": 0.0003,
    "beta": 0.005,
    "epsilon": 0.2,
    "lambd": 0.95,
    "num_epoch": 3,
    "learning_rate_schedule": "linear",
}
"""PPO hyperparameters of the HalfCheetah example made PPO: the ML-Agents PPO defaults, written out."""

SUMMARY_LINE = re.compile(r"^(?P<behavior>.+?)\. Step: (?P<step>\d+)\. Time Elapsed: (?P<seconds>\d+(?:\.\d+)?) s\.")
"""A summary line of ``rayagents-learn`` (as mlagents-learn prints it)."""


# ---- configs --------------------------------------------------------------------------------------------------------


def load_example(name: str) -> dict[str, Any]:
    """The example config ``<name>.yaml`` as a dict."""
    with example_config(name).open(encoding="utf-8") as stream:
        return yaml.safe_load(stream)


def halfcheetah_ppo_config(example: Mapping[str, Any]) -> dict[str, Any]:
    """The HalfCheetah example (SAC) made PPO: trainer_type and hyperparameters replaced, the rest kept."""
    config = _copy(example)
    for settings in config["behaviors"].values():
        settings["trainer_type"] = "ppo"
        settings["hyperparameters"] = dict(HALFCHEETAH_PPO_HYPERPARAMETERS)
    return config


def benchmark_config(
    config: Mapping[str, Any], summary_freq: int = SUMMARY_FREQ, max_steps: int = MAX_STEPS
) -> dict[str, Any]:
    """``config`` with every behavior's ``summary_freq`` and ``max_steps`` replaced (a copy)."""
    copy = _copy(config)
    for settings in copy["behaviors"].values():
        settings["summary_freq"] = summary_freq
        settings["max_steps"] = max_steps
    return copy


def trainer_settings(config: Mapping[str, Any], behavior: str) -> TrainerSettings:
    """The resolved trainer settings of ``behavior`` in ``config``."""
    return run_options_from_dict(_copy(config)).behaviors[behavior]


def _copy(config: Mapping[str, Any]) -> dict[str, Any]:
    return yaml.safe_load(yaml.safe_dump(dict(config)))


# ---- summary lines and the measurement window ----------------------------------------------------------------------


def parse_summary_lines(lines: Iterable[str], behavior: str) -> list[tuple[int, float]]:
    """The (step, seconds elapsed) of each summary line of ``behavior``, in the order printed."""
    points = []
    for line in lines:
        match = SUMMARY_LINE.match(line.strip())
        if match is not None and match["behavior"] == behavior:
            points.append((int(match["step"]), float(match["seconds"])))
    return points


def poll_points(points: Iterable[tuple[int, float]]) -> list[tuple[int, float]]:
    """One (step, seconds) per poll time: the highest step printed at that time, sorted by time."""
    highest: dict[float, int] = {}
    for step, seconds in points:
        highest[seconds] = max(step, highest.get(seconds, step))
    return sorted(((step, seconds) for seconds, step in highest.items()), key=lambda point: point[1])


@dataclass(frozen=True)
class Window:
    """The measured stretch of a training run: from (start_step, start_s) to (end_step, end_s)."""

    start_step: int
    start_s: float
    end_step: int
    end_s: float

    @property
    def steps_per_s(self) -> float:
        """Steps per second over the window."""
        return (self.end_step - self.start_step) / (self.end_s - self.start_s)


def measure_window(points: Sequence[tuple[int, float]], warmup_s: float, seconds: float) -> Window | None:
    """The window of ``seconds`` (at least) that starts ``warmup_s`` after the first summary; None until the
    summary lines reach its end.

    It starts at the first poll at least ``warmup_s`` after the first summary line and ends at the first poll
    at least ``seconds`` after that (the points of :func:`poll_points`)."""
    polls = poll_points(points)
    if not polls:
        return None
    first_s = polls[0][1]
    start = next((p for p in polls if p[1] >= first_s + warmup_s), None)
    if start is None:
        return None
    end = next((p for p in polls if p[1] >= start[1] + seconds and p[1] > start[1]), None)
    if end is None:
        return None
    return Window(start_step=start[0], start_s=start[1], end_step=end[0], end_s=end[1])


def dropped_share(dropped: Sequence[tuple[int, float]], window: Window) -> float:
    """The share of the window's steps that the learner dropped, from the ``Policy/Dropped Steps`` scalars
    (steps dropped per summary period, at the period's summary step)."""
    in_window = sum(value for step, value in dropped if window.start_step < step <= window.end_step)
    return in_window / max(1, window.end_step - window.start_step)


# ---- (a) random actions ---------------------------------------------------------------------------------------------


def _random_player(
    scene: str, num_areas: int, seed: int, seconds: float, barrier: Any, results: Any
) -> None:
    """One random-action process: a player of ``scene``, warmed up, then stepped for ``seconds`` once every
    process is ready. Puts ``(seed, agent steps, seconds)`` or ``(seed, None, traceback)`` on ``results``."""
    try:
        rng = np.random.default_rng(seed)
        env = UnityEnvironment(
            scene, num_areas=num_areas, seed=seed, timeout_wait=60, side_channels=[StatsSideChannel()]
        )
        try:
            env.reset()

            def run(exchanges: int) -> int:
                return play_random(env, rng, exchanges)

            run(RANDOM_WARMUP_EXCHANGES)
            barrier.wait(timeout=STARTUP_TIMEOUT_S)
            steps, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds:
                steps += run(10)
            results.put((seed, steps, time.perf_counter() - start))
        finally:
            env.close()
    except BaseException:
        barrier.abort()
        results.put((seed, None, traceback.format_exc()))


def random_agent_steps_per_s(
    scene: str, seconds: float, num_players: int = NUM_ENVS, num_areas: int = NUM_AREAS
) -> float:
    """Agent steps/s of ``num_players`` players of ``scene`` × ``num_areas`` areas, random actions, each
    stepped by its own process over the same ``seconds``; summed. Seeds as a training run gives its EnvActors."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(num_players)
    results = context.Queue()
    seeds = [index * num_areas for index in range(num_players)]
    processes = [
        context.Process(target=_random_player, args=(scene, num_areas, seed, seconds, barrier, results), daemon=True)
        for seed in seeds
    ]
    for process in processes:
        process.start()
    try:
        found = [results.get(timeout=STARTUP_TIMEOUT_S + seconds) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.terminate()
                process.join()
    failures = [detail for _, steps, detail in found if steps is None]
    if failures:
        raise RuntimeError(f"a random-action process of {scene} failed:\n{failures[0]}")
    return sum(steps / elapsed for _, steps, elapsed in found)


# ---- (b) rayagents-learn ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingMeasurement:
    """What a training run measured."""

    window: Window
    """The measured stretch."""
    dropped_share: float | None
    """The share of the window's steps the learner dropped (None when TensorBoard had no figures)."""
    messages: tuple[str, ...]
    """Warnings and errors ``rayagents-learn`` printed (each once)."""

    @property
    def steps_per_s(self) -> float:
        return self.window.steps_per_s


def training_steps_per_s(
    config: Mapping[str, Any],
    env: str,
    behavior: str,
    seconds: float,
    warmup_s: float = WARMUP_S,
    num_envs: int = NUM_ENVS,
    num_areas: int = NUM_AREAS,
) -> TrainingMeasurement:
    """Runs ``rayagents-learn`` on ``config`` until its summary lines cover the window of
    :func:`measure_window`, stops it with SIGINT, and returns the window's rate."""
    with tempfile.TemporaryDirectory(prefix="bench-training-") as tmp:
        folder = Path(tmp)
        config_path = folder / "config.yaml"
        config_path.write_text(yaml.safe_dump(dict(config), sort_keys=False))
        command = [
            sys.executable, "-m", "rayagents.cluster.cli", str(config_path),
            "--env", env, "--num-envs", str(num_envs), "--num-areas", str(num_areas),
            "--results-dir", str(folder / "results"), "--run-id", "bench", "--seed", "0",
        ]  # fmt: skip
        with open(folder / "stderr.txt", "w+", encoding="utf-8") as stderr:
            process = subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                env=dict(os.environ, PYTHONUNBUFFERED="1"),
                start_new_session=True,  # SIGINT reaches the driver only, as Ctrl+C would the run alone
            )
            lines: queue.Queue[str | None] = queue.Queue()
            reader = threading.Thread(target=_read_lines, args=(process.stdout, lines), daemon=True)
            reader.start()
            measured: list[str] = []
            window: Window | None = None
            try:
                deadline = time.monotonic() + STARTUP_TIMEOUT_S + warmup_s + seconds
                while window is None and time.monotonic() < deadline:
                    try:
                        line = lines.get(timeout=1.0)
                    except queue.Empty:
                        continue
                    if line is None:
                        break  # the run ended by itself
                    measured.append(line)
                    window = measure_window(parse_summary_lines(measured, behavior), warmup_s, seconds)
            finally:
                _stop(process)
                reader.join(timeout=10)
            stderr.seek(0)
            messages = _messages(stderr.read().splitlines() + measured)
        if window is None:
            tail = "\n".join([*measured[-10:], *messages[-10:]])
            raise RuntimeError(
                f"rayagents-learn ({env}) exited with {process.returncode} or printed too few summary lines to "
                f"measure {seconds:g} s after {warmup_s:g} s of warm-up:\n{tail}"
            )
        share = _dropped_share(folder / "results" / "bench" / behavior, window)
    return TrainingMeasurement(window=window, dropped_share=share, messages=tuple(messages))


def _read_lines(stream: Any, lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))
    lines.put(None)


def _stop(process: subprocess.Popen[str]) -> None:
    """SIGINT (the run saves and exits); killed when it is still there after STOP_TIMEOUT_S."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _messages(lines: Iterable[str]) -> list[str]:
    """The lines that read as a warning or an error, each once."""
    found = [line.strip() for line in lines if re.search(r"warning|error|traceback", line, re.IGNORECASE)]
    return list(dict.fromkeys(found))


def _dropped_share(behavior_folder: Path, window: Window) -> float | None:
    from rayagents.cluster.tensorboard import read_scalars

    try:
        dropped = read_scalars(behavior_folder).get(DROPPED_STEPS)
    except (OSError, ValueError):
        return None
    return None if not dropped else dropped_share(dropped, window)


# ---- the learner's update --------------------------------------------------------------------------------------------


def halfcheetah_spec() -> BehaviorSpec:
    """HalfCheetah's behavior spec, from a player of the simulation host."""
    env = UnityEnvironment("sim:HalfCheetah", num_areas=1, timeout_wait=60, side_channels=[StatsSideChannel()])
    try:
        env.reset()
        return next(iter(env.behavior_specs.values()))
    finally:
        env.close()


def random_trajectory(spec: BehaviorSpec, length: int, rng: np.random.Generator) -> Trajectory:
    """A trajectory of ``spec`` with random observations, actions and rewards, acted by version 0 (the log
    probabilities those of the actions under a unit Gaussian; one discrete choice of 0 per branch)."""
    action_spec = spec.action_spec
    continuous = rng.normal(size=(length, action_spec.continuous_size)).astype(np.float32)
    log_probs = (-0.5 * continuous**2 - 0.5 * np.log(2 * np.pi)).sum(axis=1).astype(np.float32)
    return Trajectory(
        obs=tuple(rng.normal(size=(length, *o.shape)).astype(np.float32) for o in spec.observation_specs),
        next_obs=tuple(rng.normal(size=o.shape).astype(np.float32) for o in spec.observation_specs),
        continuous_actions=continuous,
        discrete_actions=np.zeros((length, len(action_spec.discrete_branches)), dtype=np.int64),
        rewards=rng.normal(size=length).astype(np.float32),
        done=False,
        interrupted=False,
        versions=np.zeros(length, dtype=np.int32),
        extras={LOG_PROBS: log_probs, ENTROPY: np.ones(length, dtype=np.float32)},
    )


@dataclass(frozen=True)
class LearnerRates:
    """How fast the learner takes trajectories in and updates, in samples per second."""

    ingest: float
    """Experiences per second through :meth:`Trainer.ingest` (normalizers, one critic pass, GAE, buffer)."""
    update: float
    """``buffer_size × num_epoch`` per update over the updates' seconds."""


def learner_rates(
    spec: BehaviorSpec,
    settings: TrainerSettings,
    device: str,
    seconds: float,
    pool: Sequence[Trajectory] | None = None,
) -> LearnerRates:
    """The learner's ingestion and update rates on trajectories drawn from ``pool`` (default: 64 random ones of
    ``time_horizon``), arriving 16 at a time, each re-stamped as acted by the current weights (one full buffer to
    warm up, then until ``seconds`` of updates). Torch runs the LearnerActor's default threads."""
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, int(ClusterSettings().learner_num_cpus)))
    try:
        torch.manual_seed(0)
        rng = np.random.default_rng(0)
        if pool is None:
            pool = [random_trajectory(spec, settings.time_horizon, rng) for _ in range(64)]
        trainer = Trainer(pool[0].behavior or "HalfCheetah", spec, settings, device, seed=0)
        assert isinstance(settings.hyperparameters, OnPolicyHyperparamSettings), "the learner benchmarks train PPO, POCA"
        epochs = settings.hyperparameters.num_epoch
        ingest_seconds = update_seconds = 0.0
        ingested = updated = 0

        def fill_and_update() -> tuple[float, int, float, int]:
            taken, start = 0, time.perf_counter()
            while not trainer.algorithm.ready_for_update(trainer.step):
                arriving = [
                    dataclasses.replace(pool[i], versions=np.full(len(pool[i]), trainer.version, np.int32))
                    for i in rng.integers(0, len(pool), size=16)
                ]  # acted by the current weights
                trainer.ingest(arriving)
                taken += sum(len(t) for t in arriving)
            _synchronize(device)
            middle = time.perf_counter()
            buffered = trainer.buffered_steps
            trainer.maybe_update()
            _synchronize(device)
            return middle - start, taken, time.perf_counter() - middle, buffered * epochs

        fill_and_update()
        while updated == 0 or update_seconds < seconds:
            took, steps, update_took, samples = fill_and_update()
            ingest_seconds += took
            ingested += steps
            update_seconds += update_took
            updated += samples
        return LearnerRates(ingest=ingested / ingest_seconds, update=updated / update_seconds)
    finally:
        torch.set_num_threads(threads)


def _synchronize(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


# ---- the rows ---------------------------------------------------------------------------------------------------------


def _training_value(measurement: TrainingMeasurement) -> str:
    value = f"{measurement.steps_per_s:,.0f} agent steps/s"
    if measurement.dropped_share is not None:
        value += f" ({measurement.dropped_share:.0%} dropped as too old)"
    return value


def ratio_target(cpus: int) -> float:
    """The training ÷ random target on a machine with ``cpus`` cores: 0.9 with a core per busy process of a
    training run (a player and an EnvActor per EnvActor, the learner and the driver), else 0.6."""
    busy = 2 * NUM_ENVS + 2
    return RATIO_TARGET_CORE_PER_PROCESS if cpus >= busy else RATIO_TARGET_SHARED


def _dropped_row(benchmark: str, measurement: TrainingMeasurement) -> Row:
    share = measurement.dropped_share
    met = None if share is None else share <= DROPPED_TARGET
    return _row(benchmark, _training_value(measurement), f"≤ {DROPPED_TARGET:.0%} dropped", met)


def _row(benchmark: str, value: str, target: str = "—", met: bool | None = None) -> Row:
    return Row(benchmark, value, target, met, COMMAND)


def _report(name: str, measurement: TrainingMeasurement, printed: set[str]) -> None:
    """Prints (to stderr) the window of a training run and what it printed that reads as a warning or error."""
    w = measurement.window
    print(
        f"  {name} training: step {w.start_step:,} at {w.start_s:.1f} s to step {w.end_step:,} at {w.end_s:.1f} s",
        file=sys.stderr,
    )
    for message in measurement.messages:
        if message not in printed:
            printed.add(message)
            print(f"  rayagents-learn ({name}) printed: {message}", file=sys.stderr)


@dataclass(frozen=True)
class RatioPair:
    """One HalfCheetah random-action measurement and the training measurement right after it."""

    random_rate: float
    """Agent steps/s with random actions."""
    trained: TrainingMeasurement
    """The training run's measurement."""

    @property
    def ratio(self) -> float:
        """Training ÷ random."""
        return self.trained.steps_per_s / self.random_rate


def ratio_pairs(config: Mapping[str, Any], seconds: float, pairs: int) -> list[RatioPair]:
    """``pairs`` HalfCheetah measurements, each random actions then training on ``config``, back to back."""
    measured = []
    for _ in range(pairs):
        random_rate = random_agent_steps_per_s("sim:HalfCheetah", seconds)
        trained = training_steps_per_s(config, "sim:HalfCheetah", "HalfCheetah", seconds)
        measured.append(RatioPair(random_rate, trained))
    return measured


def median_pair(pairs: Sequence[RatioPair]) -> RatioPair:
    """The pair of the median ratio (the lower middle one of an even count)."""
    ordered = sorted(pairs, key=lambda pair: pair.ratio)
    return ordered[(len(ordered) - 1) // 2]


def ratio_rows(pairs: Sequence[RatioPair], layout: str, cpus: int) -> list[Row]:
    """The random, training and ratio rows of the pairs: the median pair's figures, every pair's ratio, and the
    largest share any training run dropped."""
    middle = median_pair(pairs)
    target = ratio_target(cpus)
    shares = [pair.trained.dropped_share for pair in pairs]
    worst = dataclasses.replace(middle.trained, dropped_share=None if None in shares else max(shares))
    trained = _dropped_row(f"HalfCheetah, PPO training, {layout} (`rayagents-learn`, {NUM_ENVS} EnvActors)", worst)
    random_rate = f"{middle.random_rate:,.0f} agent steps/s"
    ratio = f"{middle.ratio:.2f}"
    if len(pairs) > 1:
        trained = dataclasses.replace(
            trained, value=f"{trained.value}; the median pair's, the largest share of {len(pairs)} runs"
        )
        random_rate += f" (the median pair's; {', '.join(f'{p.random_rate:,.0f}' for p in pairs)})"
        ratio += f" (median of {len(pairs)} pairs: {', '.join(f'{p.ratio:.2f}' for p in pairs)})"
    return [
        _row(f"HalfCheetah, random actions, {layout} (one process per player)", random_rate),
        trained,
        _row(f"training ÷ random (HalfCheetah, {layout})", ratio, f"≥ {target}", middle.ratio >= target),
    ]


def run(seconds: float = 5.0, pairs: int = PAIRS) -> list[Row]:
    """Every training measurement, as README rows (the HalfCheetah random and training runs alternating ``pairs``
    times)."""
    layout = f"{NUM_ENVS} × {NUM_AREAS} areas"
    cheetah = benchmark_config(halfcheetah_ppo_config(load_example("HalfCheetah")))
    measured = ratio_pairs(cheetah, seconds, pairs)
    cartpole = training_steps_per_s(benchmark_config(load_example("CartPole")), "sim:CartPole", "CartPole", seconds)
    printed: set[str] = set()
    for index, pair in enumerate(measured):
        print(f"  pair {index + 1}: random {pair.random_rate:,.0f} steps/s, ratio {pair.ratio:.2f}", file=sys.stderr)
        _report("HalfCheetah", pair.trained, printed)
    _report("CartPole", cartpole, printed)

    settings = trainer_settings(cheetah, "HalfCheetah")
    spec = halfcheetah_spec()
    threads = max(1, int(ClusterSettings().learner_num_cpus))
    hp = HALFCHEETAH_PPO_HYPERPARAMETERS
    update = (
        f"learner PPO update, HalfCheetah, buffer {hp['buffer_size']:,} × {hp['num_epoch']} epochs, "
        f"batch {hp['batch_size']:,}, 2 × 256 units"
    )
    cpu = learner_rates(spec, settings, "cpu", seconds)
    rows = [
        *ratio_rows(measured, layout, os.cpu_count() or 1),
        _dropped_row(f"CartPole, PPO training, {layout} (example config)", cartpole),
    ]
    cpu_name = f"CPU ({threads} torch thread{'s' if threads > 1 else ''}, as the LearnerActor)"
    rows += _learner_rows(update, cpu_name, cpu)
    if torch.cuda.is_available():
        gpu = learner_rates(spec, settings, "cuda", seconds)
        rows += _learner_rows(update, f"CUDA ({torch.cuda.get_device_name()})", gpu)
    else:
        rows.append(_row(f"{update}, CUDA", "no GPU (not measured)"))
    return rows + acting.run(settings, seconds)


def _learner_rows(update: str, device: str, rates: LearnerRates) -> list[Row]:
    ingest = "learner ingestion, HalfCheetah trajectories of 64 arriving 16 at a time (normalizer, critic pass, GAE)"
    return [_row(f"{ingest}, {device}", f"{rates.ingest:,.0f} samples/s"), _row(f"{update}, {device}", f"{rates.update:,.0f} samples/s")]


def main(argv: Sequence[str] | None = None) -> None:
    """Runs the training benchmarks, prints them and (unless ``--no-readme``) writes them into the README."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="how long each measurement runs")
    parser.add_argument(
        "--pairs", type=int, default=PAIRS, help="how many times the HalfCheetah random and training runs alternate"
    )
    parser.add_argument("--no-readme", action="store_true", help="print only; leave README.md as it is")
    options = parser.parse_args(argv)
    if options.pairs < 1:
        parser.error(f"--pairs {options.pairs}: give at least 1")
    report(SECTION, run(options.seconds, options.pairs), write_readme=not options.no_readme)


if __name__ == "__main__":
    main()
