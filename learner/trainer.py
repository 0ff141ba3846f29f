"""``Trainer``: one behavior's trainer on the learner, the same for every algorithm: trajectories in, versions out.

What ML-Agents' ``RLTrainer`` does each ``advance()`` (spec §8.3), around the algorithm a registry entry builds
(:mod:`registry`), in the calls the LearnerActor (or a test's loop) makes in this order:

1. :meth:`Trainer.ingest` the trajectories that arrived, together: the step grows by their length (agent
   decisions, summed over agents); each experience's policy lag (the trainer's version minus the version that
   acted) is measured, those beyond the algorithm's bound are counted as dropped, and the algorithm takes the
   trajectories in one batched pass, training only on the experiences within the bound. The LearnerActor hands
   over what arrived with :meth:`Trainer.receive` and ingests it with :meth:`Trainer.take_in`, an update's worth at a
   time, updating in between (:attr:`Trainer.behind` says whether more waits).
2. :meth:`Trainer.record_episodes` with the episodes the EnvActors saw end.
3. :meth:`Trainer.maybe_update`: an update when the algorithm says one is due; each update makes a new weights
   version (:meth:`Trainer.weights_snapshot`).
4. :meth:`Trainer.summarize` when :attr:`Trainer.should_summarize` (every ``summary_freq`` steps) and
   :meth:`Trainer.save_checkpoint` when :attr:`Trainer.should_checkpoint` (every ``checkpoint_interval``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from rayagents.configs.behaviors import behavior_name_of
from rayagents.configs.reward_signals import RewardSignalType
from rayagents.configs.trainer import TrainerSettings
from rayagents.learner.checkpoint_format import GLOBAL_STEP, GlobalSteps, Saveable
from rayagents.learner.checkpoints import CheckpointRecord, CheckpointStore, rotate
from rayagents.learner.registry import trainer_entry
from rayagents.learner.stats import StatsAccumulator
from rayagents.learner.summaries import (
    CUMULATIVE_REWARD,
    DROPPED_STEPS,
    EPISODE_LENGTH,
    GROUP_CUMULATIVE_REWARD,
    POLICY_LAG,
    TrainerSummary,
)
from rayagents.learner.weights import PolicyWeights
from rayagents.protocol.trajectories import EpisodeStats, Trajectory
from rayagents.protocol.types import BehaviorName, BehaviorSpec


def reward_stat(stream: str) -> str:
    """The statistic of a reward signal's per-episode reward, e.g. ``Policy/Extrinsic Reward``."""
    return f"Policy/{stream.capitalize()} Reward"


def next_interval_step(step: int, interval: int) -> int:
    """The first multiple of ``interval`` after ``step``."""
    return step + (interval - step % interval)


class Trainer:
    """Trains one behavior: counts steps, enforces the policy lag, updates, summarizes, checkpoints.

    Arguments:
        behavior: the fully qualified behavior name (``"Name?team=0"``); files are named after ``Name``.
        behavior_spec: the behavior's observations and actions.
        settings: the behavior's trainer settings; ``trainer_type`` picks the algorithm from the registry.
        device: where the networks train (``"cpu"``, ``"cuda"``).
        seed: seeds the algorithm's sampling (minibatch shuffling); None draws from torch's global generator.
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
        entry = trainer_entry(settings.trainer_type)
        self.behavior = behavior
        self.behavior_name = behavior_name_of(behavior)
        self.behavior_spec = behavior_spec
        self.settings = settings
        self.training = training
        self.algorithm = entry.make_algorithm(behavior_spec, settings, torch.device(device), seed)
        self.rules = entry.play_rules(settings)
        self.global_step = GlobalSteps()
        self.checkpoints: list[CheckpointRecord] = []
        self.extra_modules: dict[str, Saveable] = {}
        """What the checkpoint holds besides the algorithm's (a self-play league), added before a restore."""
        self._version = 0
        self._dropped_steps = 0
        self._dropped_in_period = 0
        self._stats = StatsAccumulator()
        self._signal_rewards: dict[str, dict[str, float]] = {kind.value: {} for kind in settings.reward_signals}
        self._returns_since_update: list[float] = []
        self._returns_in_period: list[float] = []
        self._returns_since_taken: list[float] = []
        self._waiting: list[Trajectory] = []
        self._next_summary_step = next_interval_step(self.step, settings.summary_freq)
        self._next_checkpoint_step = next_interval_step(self.step, settings.checkpoint_interval)

    # ---- state ---------------------------------------------------------------------------------------------------
    @property
    def step(self) -> int:
        """Agent decisions received so far, summed over agents (trained on or dropped): ML-Agents' step."""
        return self.global_step.current_step

    @property
    def version(self) -> int:
        """The weights version: 0 at the start, one more after each update (and after a restore)."""
        return self._version

    @property
    def dropped_steps(self) -> int:
        """Steps received but never trained on, since the trainer started."""
        return self._dropped_steps

    @property
    def buffered_steps(self) -> int:
        """Experiences the algorithm holds for its next update."""
        return self.algorithm.buffered_steps

    @property
    def should_still_train(self) -> bool:
        """Whether the step has not passed ``max_steps`` (ML-Agents trains while ``step <= max_steps``)."""
        return self.step <= self.settings.max_steps

    def modules(self) -> dict[str, Saveable]:
        """What a checkpoint holds: the step and the algorithm's modules, under ML-Agents' names, then
        :attr:`extra_modules`."""
        return {GLOBAL_STEP: self.global_step, **self.algorithm.modules(), **self.extra_modules}

    def weights_snapshot(self) -> PolicyWeights:
        """The current version of the acting policy's weights as numpy arrays."""
        return PolicyWeights(version=self._version, state=self.algorithm.policy_state())

    # ---- 1. trajectories -------------------------------------------------------------------------------------------
    def ingest(self, trajectories: Sequence[Trajectory]) -> None:
        """Counts the trajectories' steps and hands them to the algorithm, which trains on the experiences acted
        within the lag bound. Once the step passed ``max_steps`` every further trajectory is dropped, even within
        the same call, and the step stays."""
        for trajectory in trajectories:
            if trajectory.behavior and behavior_name_of(trajectory.behavior) != self.behavior_name:
                raise ValueError(
                    f"a trajectory of behavior {trajectory.behavior!r} was sent to the trainer of {self.behavior!r}"
                )
        if self.training:
            trajectories = self._within_max_steps(trajectories)
        if not trajectories:
            return
        self.global_step.increment(sum(len(t) for t in trajectories))
        if not self.training:  # only the player's own reward is known without the signals' networks
            extrinsic = self.settings.reward_signals.get(RewardSignalType.EXTRINSIC)
            if extrinsic is not None:
                rewards = np.concatenate([t.rewards for t in trajectories]).astype(np.float64) * extrinsic.strength
                self._collect_signal_rewards(trajectories, RewardSignalType.EXTRINSIC.value, rewards)
            return
        lags = [self._version - trajectory.versions.astype(np.int64) for trajectory in trajectories]
        trainable = [self.rules.trainable(lag) for lag in lags]
        self._drop(sum(int(len(keep) - keep.sum()) for keep in trainable))
        self._stats.extend(POLICY_LAG, np.concatenate(lags).tolist())
        ingested = self.algorithm.ingest(trajectories, trainable)
        for name, value in ingested.stats.items():
            self._stats.add(name, value)
        for name, rewards in ingested.signal_rewards.items():
            self._collect_signal_rewards(trajectories, name, rewards)

    def receive(self, trajectories: Sequence[Trajectory]) -> None:
        """Queues trajectories that arrived; :meth:`take_in` ingests them, an update's worth at a time."""
        self._waiting.extend(trajectories)

    @property
    def waiting_steps(self) -> int:
        """Steps received but not yet taken in (not yet counted in :attr:`step`)."""
        return sum(len(t) for t in self._waiting)

    def take_in(self) -> None:
        """Ingests the trajectories waiting, up to the one that makes the algorithm's next update due; the rest wait
        for that update (:attr:`behind` says so). However much arrives at once, an on-policy update thus comes
        every ``buffer_size`` experiences, as in ML-Agents, whose players step in turn with its updates: folding
        a pile that arrived while the learner was busy into one larger update would leave fewer updates per step
        (on CartPole with the learner starved of CPU, 44 updates of 2,170 experiences instead of about 95 of
        1,040, and 100k steps no longer solved)."""
        if not self._waiting:
            return
        per_update = self.algorithm.experiences_per_update() if self.training and self.should_still_train else None
        taken = len(self._waiting)
        if per_update is not None:  # the experiences that bring the buffer past per_update
            limit = max(per_update + 1 - self.algorithm.buffered_steps, 1)
            steps = 0
            for taken, trajectory in enumerate(self._waiting, start=1):
                steps += len(trajectory)
                if steps >= limit:
                    break
        part, self._waiting = self._waiting[:taken], self._waiting[taken:]
        self.ingest(part)

    def _within_max_steps(self, trajectories: Sequence[Trajectory]) -> Sequence[Trajectory]:
        """The trajectories taken in one by one while the step has not passed ``max_steps``, as ML-Agents counts
        them: the one that passes it is the last, the rest are dropped. The step thus ends at most one trajectory
        past ``max_steps``, however much arrived at once."""
        step = self.step
        for taken, trajectory in enumerate(trajectories):
            if step > self.settings.max_steps:
                self._drop(sum(len(t) for t in trajectories[taken:]))
                return trajectories[:taken]
            step += len(trajectory)
        return trajectories

    def _drop(self, steps: int) -> None:
        self._dropped_steps += steps
        self._dropped_in_period += steps

    def _collect_signal_rewards(self, trajectories: Sequence[Trajectory], signal: str, rewards: np.ndarray) -> None:
        """Adds signal ``signal``'s rewards (per experience, the trajectories one after the other) to each agent's
        episode; records an episode's total (``Policy/<Signal> Reward``) when it ends."""
        per_agent = self._signal_rewards[signal]
        lengths = np.array([len(t) for t in trajectories])
        sums = np.add.reduceat(rewards, np.cumsum(lengths) - lengths) if len(rewards) else []
        for trajectory, trajectory_sum in zip(trajectories, sums):
            total = per_agent.get(trajectory.agent_id, 0.0) + float(trajectory_sum)
            if trajectory.done:
                self._stats.add(reward_stat(signal), total)
                per_agent.pop(trajectory.agent_id, None)
            else:
                per_agent[trajectory.agent_id] = total

    def pretrain(self) -> None:
        """What the algorithm learns before the first step of a run that starts afresh (behavioral cloning); its
        statistics go into the first summary. Nothing for ``--inference``."""
        if not self.training:
            return
        for name, value in self.algorithm.pretrain().items():
            self._stats.add(name, value)

    # ---- 2. episodes -----------------------------------------------------------------------------------------------
    def record_episodes(self, episodes: EpisodeStats) -> None:
        """Records the returns, lengths and group returns of episodes that ended (``Environment/*`` statistics)."""
        if len(episodes) == 0:
            return
        if episodes.behavior and behavior_name_of(episodes.behavior) != self.behavior_name:
            raise ValueError(
                f"episodes of behavior {episodes.behavior!r} were sent to the trainer of {self.behavior!r}"
            )
        self._stats.extend(CUMULATIVE_REWARD, episodes.returns.tolist())
        self._stats.extend(GROUP_CUMULATIVE_REWARD, episodes.group_returns.tolist())
        self._stats.extend(EPISODE_LENGTH, episodes.lengths.tolist())
        self._returns_since_update.extend(float(r) for r in episodes.returns)
        self._returns_in_period.extend(float(r) for r in episodes.returns)
        self._returns_since_taken.extend(float(r) for r in episodes.returns)

    def take_returns(self) -> tuple[float, ...]:
        """The returns of the episodes recorded since the last call, in order (the driver's curriculum reward
        buffer); then forgotten here."""
        returns, self._returns_since_taken = tuple(self._returns_since_taken), []
        return returns

    def record_player_stat(self, name: str, value: float) -> None:
        """Adds a value the player sent on the stats side channel (averaged over the summary period)."""
        self._stats.add(name, value)

    def record_stat(self, name: str, value: float) -> None:
        """Adds one value of a statistic kept beside the trainer (``Self-play/ELO``), averaged over the period."""
        self._stats.add(name, value)

    # ---- 3. updates ------------------------------------------------------------------------------------------------
    @property
    def update_due(self) -> bool:
        """Whether the algorithm has an update due (and the trainer still trains)."""
        return self.training and self.should_still_train and self.algorithm.ready_for_update(self.step)

    @property
    def behind(self) -> bool:
        """Whether an update is due or trajectories wait to be taken in: the learner lets no more in meanwhile."""
        return self.update_due or bool(self._waiting)

    def maybe_update(self) -> bool:
        """An update if the algorithm has one due; True (a new version) if so."""
        if not self.update_due:
            return False
        for name, value in self.algorithm.update(self.step).items():
            self._stats.add(name, value)
        self._version += 1
        self._returns_since_update = []
        return True

    # ---- 4. summaries and checkpoints ------------------------------------------------------------------------------
    @property
    def summary_step(self) -> int:
        """The step the next summary is written at: the next multiple of ``summary_freq``. A step that passed several
        multiples at once (much arrived while an update ran) writes one summary, at the first of them; but once the
        step reaches ``max_steps``, at the last multiple it reached, so that a run's last summary is at its
        ``max_steps`` (when that is a multiple of ``summary_freq``) however the steps arrived."""
        if self.step < self._next_summary_step or self.step < self.settings.max_steps:
            return self._next_summary_step
        return self.step - self.step % self.settings.summary_freq

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

    def save_checkpoint(self, store: CheckpointStore) -> CheckpointRecord:
        """Writes the checkpoint of the current step to ``store`` (``.onnx``, ``.pt``, ``checkpoint.pt``), deletes the
        checkpoints beyond the newest ``keep_checkpoints``, and returns the new record."""
        reward = float(np.mean(self._returns_since_update)) if self._returns_since_update else None

        def export(path: Path) -> Path:  # tracing samples actions: keep training's random stream as it is
            with torch.random.fork_rng(devices=[]):
                return self.algorithm.export(path)

        record = store.write(self.step, self.modules(), export, reward, self.algorithm.saved_buffers())
        self.checkpoints = [r for r in self.checkpoints if r.steps != record.steps] + [record]
        self.checkpoints = rotate(self.checkpoints, self.settings.keep_checkpoints, store.storage)
        self._next_checkpoint_step = next_interval_step(record.steps, self.settings.checkpoint_interval)
        return record

    def restore(self, store: CheckpointStore, *, reset_global_step: bool) -> list[str]:
        """Loads the latest readable checkpoint of ``store`` (``--resume``; ``reset_global_step`` for
        ``--initialize-from``, which leaves :attr:`extra_modules` as they are). The weights change, so the version goes up
        by one; an on-policy buffer is emptied. Returns the load warnings. A replay buffer saved beside the checkpoint is loaded on ``--resume`` only."""
        buffers = {} if reset_global_step else self.algorithm.saved_buffers()
        modules = self.modules()
        if reset_global_step:  # another run's league (snapshots, counters at its steps) does not carry over
            modules = {name: module for name, module in modules.items() if name not in self.extra_modules}
        warnings = store.restore(modules, reset_global_step=reset_global_step, buffers=buffers)
        self.algorithm.restored(self.step)
        self._version += 1
        self._next_summary_step = next_interval_step(self.step, self.settings.summary_freq)
        self._next_checkpoint_step = next_interval_step(self.step, self.settings.checkpoint_interval)
        return warnings
