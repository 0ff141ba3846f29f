"""``PPOTrainer``: one behavior's PPO trainer on the learner side: trajectories in, weight versions out.

What ML-Agents' ``PPOTrainer`` / ``RLTrainer`` do each ``advance()`` (spec §8.3), split into calls the
LearnerActor (or a test's loop) makes in this order:

1. :meth:`PPOTrainer.process` each trajectory that arrives: the step grows by its length (agent decisions,
   summed over agents), then the policy lag is checked: a trajectory acted by weights older than the trainer
   allows (``threaded: false``: the current version only; ``threaded: true``: the current or the one before) is
   counted as dropped and not trained on; the others are turned into update-buffer columns.
2. :meth:`PPOTrainer.record_episodes` with the episodes the EnvActors saw end.
3. :meth:`PPOTrainer.maybe_update`: a PPO update once the buffer holds more than ``buffer_size`` experiences;
   each update makes a new weights version (:meth:`PPOTrainer.weights_snapshot`).
4. :meth:`PPOTrainer.summary` when :attr:`PPOTrainer.should_summarize` (every ``summary_freq`` steps) and
   :meth:`PPOTrainer.save_checkpoint` when :attr:`PPOTrainer.should_checkpoint` (every
   ``checkpoint_interval``).
"""

from __future__ import annotations

import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from rayagents.configs.behaviors import behavior_name_of
from rayagents.configs.trainer import TrainerSettings
from rayagents.learner.checkpoint import Saveable, load_checkpoint, save_checkpoint
from rayagents.learner.checkpoint_files import (
    LATEST_CHECKPOINT,
    CheckpointRecord,
    checkpoint_stem,
    rotate,
)
from rayagents.learner.distributions import allowed_from_disabled
from rayagents.learner.export import export_policy_model
from rayagents.learner.ppo import PPOOptimizer
from rayagents.learner.results_storage import ResultsStorage, join
from rayagents.learner.stats import StatsAccumulator
from rayagents.learner.trajectory import Trajectory, UpdateBuffer
from rayagents.learner.weights import PolicyWeights, actor_weights
from rayagents.protocol.trajectories import EpisodeStats
from rayagents.protocol.types import BehaviorName, BehaviorSpec

CUMULATIVE_REWARD = "Environment/Cumulative Reward"
EPISODE_LENGTH = "Environment/Episode Length"
ENTROPY = "Policy/Entropy"
DROPPED_STEPS = "Policy/Dropped Steps"
"""rayagents' own statistic: steps received in the summary period but not trained on (too old a policy)."""
POLICY_LAG = "Policy/Policy Lag"
"""rayagents' own statistic: how many versions older than the trainer's the acting weights were, per trajectory."""


@dataclass(frozen=True)
class TrainerSummary:
    """One summary of a trainer: what TensorBoard and the console show every ``summary_freq`` steps."""

    behavior_name: str
    """The behavior name (without ``?team=``): the TensorBoard category."""
    step: int
    """The step the summary is written at."""
    scalars: Mapping[str, float]
    """Each statistic's mean over the period, under ML-Agents' names."""
    cumulative_rewards: tuple[float, ...]
    """The returns of the episodes that ended in the period (the ``Environment/Cumulative Reward`` histogram)."""
    training: bool
    """The trainer was still training (ML-Agents' console "Training." / "Not Training.")."""


def reward_stat(stream: str) -> str:
    """The statistic of a reward signal's per-episode reward, e.g. ``Policy/Extrinsic Reward``."""
    return f"Policy/{stream.capitalize()} Reward"


def next_interval_step(step: int, interval: int) -> int:
    """The first multiple of ``interval`` after ``step``."""
    return step + (interval - step % interval)


class PPOTrainer:
    """Trains one behavior with PPO: counts steps, enforces the policy lag, updates, summarizes, checkpoints.

    Arguments:
        behavior: the fully qualified behavior name (``"Name?team=0"``); files are named after ``Name``.
        behavior_spec: the behavior's observations and actions.
        settings: the behavior's trainer settings (``trainer_type: ppo``).
        device: where the networks train (``"cpu"``, ``"cuda"``).
        seed: seeds the minibatch shuffling; None draws from torch's global generator.
        training: False for ``--inference``: steps and statistics are counted, nothing is buffered or updated.
    """

    def __init__(
        self,
        behavior: BehaviorName,
        behavior_spec: BehaviorSpec,
        settings: TrainerSettings,
        device: torch.device | str = "cpu",
        seed: int | None = None,
        training: bool = True,
    ) -> None:
        self.behavior = behavior
        self.training = training
        self.behavior_name = behavior_name_of(behavior)
        self.behavior_spec = behavior_spec
        self.settings = settings
        self.optimizer = PPOOptimizer(behavior_spec, settings, device)
        self.buffer = UpdateBuffer()
        self.max_policy_lag = 1 if settings.threaded else 0
        self._generator: torch.Generator | None = None if seed is None else torch.Generator().manual_seed(seed)
        self._version = 0
        self._dropped_steps = 0
        self._stats = StatsAccumulator()
        self._dropped_in_period = 0
        self._signal_rewards: dict[str, dict[str, float]] = {name: {} for name in self.optimizer.reward_signals}
        self._returns_since_update: list[float] = []
        self._returns_in_period: list[float] = []
        self._mask_size = sum(behavior_spec.action_spec.discrete_branches)
        self.checkpoints: list[CheckpointRecord] = []
        self._next_summary_step = next_interval_step(self.step, settings.summary_freq)
        self._next_checkpoint_step = next_interval_step(self.step, settings.checkpoint_interval)

    # ---- state ---------------------------------------------------------------------------------------------------
    @property
    def step(self) -> int:
        """Agent decisions received so far, summed over agents (trained on or dropped): ML-Agents' step."""
        return self.optimizer.global_step.current_step

    @property
    def version(self) -> int:
        """The weights version: 0 at the start, one more after each update (and after a restore)."""
        return self._version

    @property
    def dropped_steps(self) -> int:
        """Steps received in trajectories of too old a policy, never trained on, since the trainer started."""
        return self._dropped_steps

    @property
    def buffered_steps(self) -> int:
        """Experiences waiting in the update buffer."""
        return self.buffer.num_experiences

    @property
    def should_still_train(self) -> bool:
        """Whether the step has not passed ``max_steps`` (ML-Agents trains while ``step <= max_steps``)."""
        return self.step <= self.settings.max_steps

    def weights_snapshot(self) -> PolicyWeights:
        """The current version of the actor's weights as numpy arrays, for :class:`InferencePolicy.load_weights`."""
        return PolicyWeights(version=self._version, state=actor_weights(self.optimizer.actor))

    # ---- 1. trajectories -------------------------------------------------------------------------------------------
    def accepts_version(self, policy_version: int) -> bool:
        """Whether experience acted by weights ``policy_version`` may be trained on now."""
        return 0 <= self._version - policy_version <= self.max_policy_lag

    def process(self, trajectory: Trajectory) -> bool:
        """Counts the trajectory's steps and, unless its policy is too old, adds it to the update buffer.

        Returns whether it was trained on. A trajectory acted by a version newer than the trainer's (weights this
        trainer never made) is dropped too.
        """
        if trajectory.behavior and behavior_name_of(trajectory.behavior) != self.behavior_name:
            raise ValueError(
                f"a trajectory of behavior {trajectory.behavior!r} was sent to the trainer of {self.behavior!r}"
            )
        length = len(trajectory)
        self.optimizer.global_step.increment(length)
        self._collect_signal_rewards(trajectory)
        if not self.training:
            return False
        self._stats.add(POLICY_LAG, self._version - trajectory.policy_version)
        if not self.accepts_version(trajectory.policy_version):
            self._dropped_steps += length
            self._dropped_in_period += length
            return False
        self._stats.add(ENTROPY, self._mean_entropy(trajectory))
        columns, stats = self.optimizer.process_trajectory(trajectory)
        self.buffer.append(columns)
        for name, value in stats.items():
            self._stats.add(name, value)
        return True

    def _collect_signal_rewards(self, trajectory: Trajectory) -> None:
        """Adds the trajectory's reward per signal to its agent's episode; records the episode's when it ends."""
        for name, signal in self.optimizer.reward_signals.items():
            per_agent = self._signal_rewards[name]
            total = per_agent.get(trajectory.agent_id, 0.0) + float(np.sum(trajectory.rewards)) * signal.strength
            if trajectory.done:
                self._stats.add(reward_stat(name), total)
                per_agent.pop(trajectory.agent_id, None)
            else:
                per_agent[trajectory.agent_id] = total

    @torch.no_grad()
    def _mean_entropy(self, trajectory: Trajectory) -> float:
        """The mean entropy of the policy's action distributions on the trajectory's observations."""
        actor = self.optimizer.actor
        device = self.optimizer.device
        obs = [torch.tensor(o, dtype=torch.float32, device=device) for o in trajectory.obs]
        allowed = allowed_from_disabled(trajectory.action_mask, len(trajectory), self._mask_size)
        _, entropy = actor.evaluate(
            obs,
            torch.tensor(allowed, device=device),
            torch.tensor(trajectory.continuous_actions, dtype=torch.float32, device=device),
            torch.tensor(trajectory.discrete_actions, dtype=torch.int64, device=device),
        )
        return float(entropy.mean().item())

    # ---- 2. episodes -----------------------------------------------------------------------------------------------
    def record_episodes(self, episodes: EpisodeStats) -> None:
        """Records the returns and lengths of episodes that ended (``Environment/*`` statistics)."""
        if len(episodes) == 0:
            return
        if episodes.behavior and behavior_name_of(episodes.behavior) != self.behavior_name:
            raise ValueError(
                f"episodes of behavior {episodes.behavior!r} were sent to the trainer of {self.behavior!r}"
            )
        self._stats.extend(CUMULATIVE_REWARD, episodes.returns.tolist())
        self._stats.extend(EPISODE_LENGTH, episodes.lengths.tolist())
        self._returns_since_update.extend(float(r) for r in episodes.returns)
        self._returns_in_period.extend(float(r) for r in episodes.returns)

    def record_player_stat(self, name: str, value: float) -> None:
        """Adds a value the player sent on the stats side channel (averaged over the summary period)."""
        self._stats.add(name, value)

    # ---- 3. updates ------------------------------------------------------------------------------------------------
    def maybe_update(self) -> bool:
        """A PPO update if the buffer holds more than ``buffer_size`` experiences; True (a new version) if so."""
        if not self.training or not self.optimizer.ready_for_update(self.buffer):
            return False
        stats = self.optimizer.update(self.buffer, self._generator)
        for name, value in stats.items():
            self._stats.add(name, value)
        self._version += 1
        self._returns_since_update = []
        return True

    # ---- 4. summaries and checkpoints ------------------------------------------------------------------------------
    @property
    def summary_step(self) -> int:
        """The step the next summary is due at (a multiple of ``summary_freq``)."""
        return self._next_summary_step

    @property
    def should_summarize(self) -> bool:
        """Whether the step reached the next multiple of ``summary_freq``."""
        return self.step >= self._next_summary_step and self.step > 0

    def summary(self, step: int) -> dict[str, float]:
        """The statistics since the last summary, under ML-Agents' names, each averaged over the period.

        ``step`` is the step the summary is written at (usually :attr:`summary_step`); the next one is due at the
        first multiple of ``summary_freq`` after it. A statistic without a value in the period is absent;
        ``Policy/Dropped Steps`` is a sum, always present.
        """
        means = self._stats.take_means()
        means[DROPPED_STEPS] = float(self._dropped_in_period)
        self._dropped_in_period = 0
        self._next_summary_step = next_interval_step(max(step, self.step), self.settings.summary_freq)
        return means

    def summarize(self) -> TrainerSummary:
        """:meth:`summary` at :attr:`summary_step`, with the period's episode returns, as one record."""
        step = self.summary_step
        returns = tuple(self._returns_in_period)
        self._returns_in_period = []
        training = self.training and self.should_still_train
        return TrainerSummary(self.behavior_name, step, self.summary(step), returns, training)

    @property
    def should_checkpoint(self) -> bool:
        """Whether the step reached the next multiple of ``checkpoint_interval``."""
        return self.step >= self._next_checkpoint_step and self.step > 0

    def save_checkpoint(self, directory: str | Path, storage: ResultsStorage | None = None) -> CheckpointRecord:
        """Writes ``<behavior>-<step>.pt`` and ``.onnx`` and ``checkpoint.pt`` into ``directory`` (the behavior's
        results folder), deletes the checkpoints beyond the newest ``keep_checkpoints``, returns the new record.

        With a ``storage`` whose root is a URI, ``directory`` is a location of it: the files are written to a
        scratch folder (removed afterwards) and uploaded, and the record holds the URIs. Without one (or for a local
        folder), the files are written in place. Either way each file is written atomically, the data first
        (``.pt``, ``.onnx``) and the pointer last (``checkpoint.pt``, a copy of the ``.pt``), so that
        ``checkpoint.pt`` never names a step whose files are not there; rotation deletes from the storage."""
        step = self.step
        modules = self.optimizer.get_modules()
        reward = float(np.mean(self._returns_since_update)) if self._returns_since_update else None
        location = str(directory)
        storage = storage if storage is not None else ResultsStorage(location)
        with tempfile.TemporaryDirectory(prefix="rayagents-checkpoint-") if storage.is_uri else nullcontext(
            location
        ) as folder:
            pt_file, onnx_file = self._write_checkpoint_files(folder, step, modules)
            pt_path, onnx_path = str(pt_file), str(onnx_file)
            if storage.is_uri:
                pt_path, onnx_path = join(location, pt_file.name), join(location, onnx_file.name)
                storage.upload_file(pt_file, pt_path)
                storage.upload_file(onnx_file, onnx_path)
            storage.upload_file(pt_file, join(location, LATEST_CHECKPOINT))
        record = CheckpointRecord(
            steps=step,
            file_path=onnx_path,
            reward=reward,
            creation_time=time.time(),
            auxillary_file_paths=(pt_path,),
        )
        self.checkpoints = [r for r in self.checkpoints if r.steps != step] + [record]
        self.checkpoints = rotate(self.checkpoints, self.settings.keep_checkpoints, storage)
        self._next_checkpoint_step = next_interval_step(step, self.settings.checkpoint_interval)
        return record

    def _write_checkpoint_files(
        self, directory: str | Path, step: int, modules: Mapping[str, Saveable]
    ) -> tuple[Path, Path]:
        """Writes ``<behavior>-<step>.pt`` then ``.onnx`` into the local folder ``directory``; returns both paths."""
        stem = checkpoint_stem(directory, self.behavior_name, step)
        pt_path = save_checkpoint(stem.with_suffix(".pt"), modules)
        with torch.random.fork_rng(devices=[]):  # tracing samples actions: keep training's random stream as it is
            onnx_path = export_policy_model(self.optimizer.actor, stem.with_suffix(".onnx"))
        return pt_path, onnx_path

    def restore(self, path: str | Path, reset_global_step: bool = False, source_name: str | None = None) -> list[str]:
        """Loads a local ``.pt`` checkpoint (``--resume``; ``reset_global_step`` for ``--initialize-from``).

        The weights change, so the version goes up by one; the buffer is emptied. Returns the load warnings, which
        call the file ``source_name`` when given (the URI a downloaded checkpoint came from).
        """
        warnings = load_checkpoint(path, self.optimizer.get_modules(), reset_global_step, source_name)
        self.buffer.clear()
        self._version += 1
        self._next_summary_step = next_interval_step(self.step, self.settings.summary_freq)
        self._next_checkpoint_step = next_interval_step(self.step, self.settings.checkpoint_interval)
        return warnings
