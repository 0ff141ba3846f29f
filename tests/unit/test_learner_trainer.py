"""Trainer (with PPO from the registry): step counting, the policy-lag bound per experience, updates and versions,
summaries, checkpoints through the CheckpointStore (rotation, restore, a damaged checkpoint.pt)."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from rayagents.configs.hyperparameters import PPOSettings
from rayagents.configs.network import NetworkSettings
from rayagents.configs.reward_signals import RewardSignalSettings, RewardSignalType
from rayagents.configs.trainer import TrainerSettings
from rayagents.learner.checkpoint_format import POLICY, CheckpointError
from rayagents.learner.checkpoints import CheckpointStore
from rayagents.learner.policy import ENTROPY
from rayagents.learner.play_rules import PPO_MAX_POLICY_LAG, PPO_MAX_POLICY_LAG_THREADED
from rayagents.learner.ppo import PPO
from rayagents.learner.results_storage import ResultsStorage
from rayagents.learner.summaries import DROPPED_STEPS, POLICY_LAG
from rayagents.learner.trainer import Trainer
from rayagents.learner.weights import PolicyWeights
from rayagents.protocol.trajectories import LOG_PROBS, EpisodeStats, Trajectory
from rayagents.protocol.types import ActionSpec, BehaviorSpec, DimensionProperty, ObservationSpec, ObservationType

BEHAVIOR = "Walker?team=0"
SPEC = BehaviorSpec(
    (ObservationSpec((3,), (DimensionProperty.NONE,), ObservationType.DEFAULT, "body"),), ActionSpec(1, (2,))
)

MLAGENTS_SUMMARY = {
    "Environment/Cumulative Reward",
    "Environment/Episode Length",
    "Policy/Extrinsic Reward",
    "Policy/Extrinsic Value Estimate",
    "Policy/Entropy",
    "Losses/Policy Loss",
    "Losses/Value Loss",
    "Policy/Learning Rate",
    "Policy/Epsilon",
    "Policy/Beta",
}


def settings(
    buffer_size: int = 32,
    threaded: bool = False,
    summary_freq: int = 50,
    checkpoint_interval: int = 40,
    keep_checkpoints: int = 2,
    strength: float = 1.0,
) -> TrainerSettings:
    """Small PPO settings."""
    return TrainerSettings(
        hyperparameters=PPOSettings(batch_size=16, buffer_size=buffer_size, num_epoch=2),
        network_settings=NetworkSettings(hidden_units=16, normalize=True),
        reward_signals={RewardSignalType.EXTRINSIC: RewardSignalSettings(gamma=0.9, strength=strength)},
        threaded=threaded,
        summary_freq=summary_freq,
        checkpoint_interval=checkpoint_interval,
        keep_checkpoints=keep_checkpoints,
        max_steps=1000,
    )


def trainer(**kwargs: object) -> Trainer:
    """A seeded trainer of BEHAVIOR."""
    torch.manual_seed(0)
    return Trainer(BEHAVIOR, SPEC, settings(**kwargs), seed=0)  # type: ignore[arg-type]


def trajectory(
    length: int,
    version: int | list[int] = 0,
    done: bool = False,
    agent: str = "agent_0-0",
    reward: float = 1.0,
    seed: int = 0,
) -> Trajectory:
    """A trajectory of random observations and actions of SPEC, each reward ``reward``, acted by ``version`` (one
    for every step, or one per step)."""
    rng = np.random.default_rng(seed)
    versions = np.full(length, version) if isinstance(version, int) else np.array(version)
    return Trajectory(
        obs=(rng.normal(size=(length, 3)).astype(np.float32),),
        next_obs=(rng.normal(size=3).astype(np.float32),),
        continuous_actions=rng.normal(size=(length, 1)).astype(np.float32),
        discrete_actions=rng.integers(0, 2, size=(length, 1)),
        rewards=np.full(length, reward, dtype=np.float32),
        done=done,
        interrupted=False,
        versions=versions.astype(np.int32),
        extras={LOG_PROBS: np.full(length, -1.6, dtype=np.float32), ENTROPY: np.full(length, 1.5, dtype=np.float32)},
        action_mask=np.zeros((length, 2), dtype=bool),
        behavior=BEHAVIOR,
        agent_id=agent,
    )


def fill_and_update(ppo: Trainer, version: int | None = None) -> None:
    """Feeds trajectories (acted by the trainer's version, or ``version``) until an update happens."""
    seed = 100
    while not ppo.maybe_update():
        ppo.ingest([trajectory(10, ppo.version if version is None else version, seed=seed)])
        seed += 1


def store(folder: Path) -> CheckpointStore:
    """The checkpoints of Walker in ``folder``."""
    return CheckpointStore(ResultsStorage(str(folder)), str(folder), "Walker")


# ---- steps and the policy lag --------------------------------------------------------------------------------------


def test_step_counts_every_experience_received_and_the_buffer_only_the_accepted() -> None:
    ppo = trainer(buffer_size=1000)
    assert ppo.step == 0 and ppo.version == 0
    assert isinstance(ppo.algorithm, PPO)  # trainer_type ppo, from the registry
    ppo.ingest([trajectory(7), trajectory(5, done=True)])
    assert ppo.step == 12 and ppo.buffered_steps == 12 and ppo.dropped_steps == 0
    ppo.ingest([trajectory(4, version=3)])  # a version this trainer never made
    assert ppo.step == 16 and ppo.buffered_steps == 12 and ppo.dropped_steps == 4


def test_experiences_older_than_the_lag_bound_are_dropped_one_by_one() -> None:
    ppo = trainer()
    bound = PPO_MAX_POLICY_LAG
    assert ppo.rules.max_policy_lag == bound
    for _ in range(bound + 1):
        fill_and_update(ppo)
    now = ppo.version
    assert now == bound + 1 and ppo.buffered_steps == 0
    ppo.summary(ppo.step)
    before = ppo.step
    # One trajectory whose first steps were acted bound + 1 versions ago and its last ones by the current weights,
    # and one acted exactly bound versions ago.
    ppo.ingest([trajectory(6, version=[0, 0, 1, now, now, now]), trajectory(4, version=1)])
    assert ppo.step == before + 10
    assert ppo.dropped_steps == 2 and ppo.buffered_steps == 8
    summary = ppo.summary(ppo.step)
    assert summary[DROPPED_STEPS] == 2.0
    lags = [now, now, now - 1, 0, 0, 0] + [now - 1] * 4
    assert summary[POLICY_LAG] == pytest.approx(np.mean(lags))  # per experience
    assert ppo.summary(ppo.step)[DROPPED_STEPS] == 0.0  # a sum over the period, then reset


def test_threaded_trainer_accepts_an_older_policy() -> None:
    ppo = trainer(threaded=True)
    assert ppo.rules.max_policy_lag == PPO_MAX_POLICY_LAG_THREADED > PPO_MAX_POLICY_LAG
    for _ in range(PPO_MAX_POLICY_LAG_THREADED + 1):
        fill_and_update(ppo)
    ppo.ingest([trajectory(6, version=1), trajectory(8, version=0)])
    assert ppo.buffered_steps == 6 and ppo.dropped_steps == 8


def test_after_max_steps_experiences_are_dropped_and_the_step_stays() -> None:
    ppo = Trainer(BEHAVIOR, SPEC, dataclasses.replace(settings(buffer_size=1000), max_steps=20), seed=0)
    ppo.ingest([trajectory(25)])
    assert ppo.step == 25 and not ppo.should_still_train
    ppo.ingest([trajectory(5)])
    assert ppo.step == 25 and ppo.dropped_steps == 5 and not ppo.maybe_update()


def test_a_call_that_passes_max_steps_takes_in_trajectories_only_until_the_step_passes_it() -> None:
    # Much can arrive at once while an update runs: the step passes max_steps by one trajectory at most, so no
    # summary is written a period (or more) past max_steps.
    ppo = Trainer(BEHAVIOR, SPEC, dataclasses.replace(settings(buffer_size=1000), max_steps=20), seed=0)
    ppo.ingest([trajectory(15, seed=0), trajectory(10, seed=1), trajectory(30, seed=2), trajectory(5, seed=3)])
    assert ppo.step == 25 and ppo.dropped_steps == 35 and ppo.buffered_steps == 25
    assert ppo.summary_step == 50 and not ppo.should_summarize


def test_a_trajectory_of_another_behavior_is_refused() -> None:
    ppo = trainer()
    other = dataclasses.replace(trajectory(3), behavior="Crawler?team=0")
    with pytest.raises(ValueError, match="Crawler"):
        ppo.ingest([other])
    # The team suffix does not matter: the same behavior name on another team is the same trainer's.
    ppo.ingest([dataclasses.replace(trajectory(3), behavior="Walker?team=1")])
    assert ppo.buffered_steps == 3


# ---- updates and weights -------------------------------------------------------------------------------------------


def test_update_happens_once_the_buffer_exceeds_buffer_size_and_makes_a_new_version() -> None:
    ppo = trainer(buffer_size=32)
    first = ppo.weights_snapshot()
    ppo.ingest([trajectory(10, seed=seed) for seed in range(3)])
    assert ppo.buffered_steps == 30 and not ppo.maybe_update() and ppo.version == 0
    ppo.ingest([trajectory(2, seed=3)])
    assert ppo.buffered_steps == 32 and not ppo.maybe_update()  # ML-Agents: more than buffer_size
    ppo.ingest([trajectory(1, seed=4)])
    assert ppo.maybe_update() and ppo.version == 1 and ppo.buffered_steps == 0
    second = ppo.weights_snapshot()
    assert (first.version, second.version) == (0, 1)
    assert isinstance(ppo.algorithm, PPO)
    assert set(first.state) == set(second.state) == set(ppo.algorithm.actor.state_dict())
    assert all(isinstance(v, np.ndarray) for v in second.state.values())
    changed = [k for k in first.state if not np.array_equal(first.state[k], second.state[k])]
    assert any("action_heads" in k for k in changed) and any("normalizer" in k for k in changed)
    copy = pickle.loads(pickle.dumps(second))
    assert isinstance(copy, PolicyWeights) and copy.version == 1
    assert all(np.array_equal(copy.state[k], second.state[k]) for k in second.state)


def test_what_arrives_at_once_is_taken_in_an_update_at_a_time() -> None:
    # Ten trajectories of 10 arrive together (a learner slow beside its EnvActors): with buffer_size 32, an update
    # is due after each 40 experiences taken in, so 100 steps make two updates and leave 20 buffered, as if they had
    # arrived one by one; ingested together they would make one update of 100.
    ppo = trainer(buffer_size=32)
    ppo.receive([trajectory(10, seed=seed) for seed in range(10)])
    assert ppo.step == 0 and ppo.waiting_steps == 100 and ppo.behind
    taken: list[tuple[int, int]] = []
    updates = 0
    while ppo.behind:
        ppo.take_in()
        taken.append((ppo.step, ppo.buffered_steps))
        updates += ppo.maybe_update()
    assert taken == [(40, 40), (80, 40), (100, 20)]
    assert updates == ppo.version == 2 and ppo.waiting_steps == 0 and ppo.buffered_steps == 20
    # The second update's experiences were acted one version before it: trained on, within the bound.
    assert ppo.dropped_steps == 0


def test_past_max_steps_everything_waiting_is_taken_in_at_once_and_dropped() -> None:
    ppo = Trainer(BEHAVIOR, SPEC, dataclasses.replace(settings(buffer_size=32), max_steps=50), seed=0)
    ppo.receive([trajectory(10, seed=seed) for seed in range(10)])
    while ppo.behind:
        ppo.take_in()
        ppo.maybe_update()
    assert ppo.version == 1 and ppo.step == 60 and ppo.dropped_steps == 40 and ppo.waiting_steps == 0


# ---- summaries ------------------------------------------------------------------------------------------------------


def test_summary_has_the_mlagents_names_averaged_over_the_period() -> None:
    ppo = trainer(buffer_size=32, summary_freq=50, strength=0.5)
    assert ppo.summary_step == 50 and not ppo.should_summarize
    # Two episodes of agent 0 (rewards 1 per step, strength 0.5): 10 + 6 steps, then 4 steps.
    ppo.ingest([trajectory(10, agent="agent_0-0", seed=1), trajectory(6, agent="agent_0-0", done=True, seed=2)])
    ppo.ingest([trajectory(4, agent="agent_0-0", done=True, seed=3), trajectory(14, agent="agent_0-1", seed=4)])
    ppo.record_episodes(EpisodeStats(BEHAVIOR, np.array([16.0, 4.0], np.float32), np.array([15, 3])))
    ppo.record_episodes(EpisodeStats(BEHAVIOR, np.array([30.0], np.float32), np.array([29])))
    assert ppo.maybe_update()
    ppo.ingest([trajectory(16, agent="agent_0-2", seed=5)])
    assert ppo.step == 50 and ppo.should_summarize
    summary = ppo.summary(ppo.summary_step)
    assert set(summary) == MLAGENTS_SUMMARY | {DROPPED_STEPS, POLICY_LAG}
    assert summary["Environment/Cumulative Reward"] == pytest.approx(50.0 / 3)
    assert summary["Environment/Episode Length"] == pytest.approx(47.0 / 3)
    assert summary["Policy/Extrinsic Reward"] == pytest.approx((8.0 + 2.0) / 2)
    assert summary["Policy/Entropy"] == pytest.approx(1.5)  # the acting policy's, kept with each step
    assert summary["Policy/Epsilon"] == pytest.approx((0.2 - 0.1) * (1 - 34 / 1000) + 0.1)
    assert summary["Losses/Value Loss"] > 0.0
    assert not ppo.should_summarize and ppo.summary_step == 100


def test_a_new_period_holds_only_what_came_after_the_summary() -> None:
    ppo = trainer(buffer_size=1000, summary_freq=10)
    ppo.record_episodes(EpisodeStats(BEHAVIOR, np.array([5.0], np.float32), np.array([4])))
    ppo.ingest([trajectory(12)])
    assert ppo.should_summarize
    assert ppo.summary(ppo.summary_step)["Environment/Cumulative Reward"] == 5.0
    assert ppo.summary_step == 20
    ppo.ingest([trajectory(3, seed=1)])
    summary = ppo.summary(ppo.step)
    assert set(summary) == {"Policy/Extrinsic Value Estimate", "Policy/Entropy", DROPPED_STEPS, POLICY_LAG}


def test_a_step_that_passes_several_multiples_is_summarized_once_and_the_last_summary_is_at_max_steps() -> None:
    short = dataclasses.replace(settings(buffer_size=1000, summary_freq=10), max_steps=40)
    ppo = Trainer(BEHAVIOR, SPEC, short, seed=0)
    ppo.record_episodes(EpisodeStats(BEHAVIOR, np.array([5.0], np.float32), np.array([4])))
    ppo.ingest([trajectory(12), trajectory(15, seed=1)])  # 27: passes 10 and 20 at once
    assert ppo.should_summarize and ppo.summary_step == 10
    summary = ppo.summarize()
    assert summary.step == 10 and summary.cumulative_rewards == (5.0,)
    assert not ppo.should_summarize and ppo.summary_step == 30
    ppo.ingest([trajectory(16, seed=2)])  # 43: passes 30 and max_steps 40 at once; training ends
    assert not ppo.should_still_train and ppo.should_summarize and ppo.summary_step == 40
    assert ppo.summarize().step == 40 and not ppo.should_summarize


def test_episodes_of_another_behavior_are_refused() -> None:
    with pytest.raises(ValueError, match="Crawler"):
        trainer().record_episodes(EpisodeStats("Crawler?team=0", np.ones(1, np.float32), np.ones(1, np.int64)))


# ---- checkpoints ----------------------------------------------------------------------------------------------------


def test_checkpoints_are_written_every_interval_and_only_keep_checkpoints_stay(tmp_path: Path) -> None:
    ppo = trainer(buffer_size=1000, checkpoint_interval=40, keep_checkpoints=2)
    folder = tmp_path / "Walker"
    written = []
    seed = 0
    while len(written) < 3:
        ppo.ingest([trajectory(15, seed=seed)])
        seed += 1
        if ppo.should_checkpoint:
            written.append(ppo.save_checkpoint(store(folder)))
    assert [r.steps for r in written] == [45, 90, 120]
    files = sorted(p.name for p in folder.iterdir())
    assert files == ["Walker-120.onnx", "Walker-120.pt", "Walker-90.onnx", "Walker-90.pt", "checkpoint.pt"]
    assert [r.steps for r in ppo.checkpoints] == [90, 120]
    newest = ppo.checkpoints[-1]
    assert newest.file_path == str(folder / "Walker-120.onnx")
    assert newest.auxillary_file_paths == (str(folder / "Walker-120.pt"),)
    assert newest.reward is None  # no episode ended
    saved = torch.load(folder / "checkpoint.pt", weights_only=True)
    assert int(saved["global_step"]["_GlobalSteps__global_step"].item()) == 120
    assert set(saved) == {POLICY, "global_step", "Optimizer:value_optimizer", "Optimizer:critic"}


def test_keep_checkpoints_zero_keeps_every_checkpoint(tmp_path: Path) -> None:
    ppo = trainer(buffer_size=1000, checkpoint_interval=10, keep_checkpoints=0)
    for seed in range(4):
        ppo.ingest([trajectory(10, seed=seed)])
        ppo.record_episodes(EpisodeStats(BEHAVIOR, np.array([float(seed)], np.float32), np.array([1])))
        assert ppo.should_checkpoint
        ppo.save_checkpoint(store(tmp_path))
    assert len(list(tmp_path.glob("Walker-*.pt"))) == 4 and len(list(tmp_path.glob("Walker-*.onnx"))) == 4
    assert [r.reward for r in ppo.checkpoints] == [0.0, 0.5, 1.0, 1.5]  # the mean return since the last update


def test_restore_resumes_step_and_weights_and_publishes_a_new_version(tmp_path: Path) -> None:
    source = trainer()
    fill_and_update(source)
    source.save_checkpoint(store(tmp_path))
    torch.manual_seed(1)
    resumed = Trainer(BEHAVIOR, SPEC, settings(), seed=0)
    assert resumed.restore(store(tmp_path), reset_global_step=False) == []
    assert resumed.step == source.step and resumed.version == 1
    expected = source.weights_snapshot().state
    assert all(np.array_equal(resumed.weights_snapshot().state[k], expected[k]) for k in expected)
    initialized = Trainer(BEHAVIOR, SPEC, settings(), seed=0)
    initialized.restore(store(tmp_path), reset_global_step=True)
    assert initialized.step == 0


def test_a_damaged_checkpoint_pt_falls_back_to_the_newest_readable_one(tmp_path: Path) -> None:
    source = trainer(buffer_size=1000, checkpoint_interval=10, keep_checkpoints=0)
    for seed in range(3):
        source.ingest([trajectory(10, seed=seed)])
        source.save_checkpoint(store(tmp_path))
    (tmp_path / "checkpoint.pt").write_bytes(b"PK\x03\x04 not a checkpoint")
    (tmp_path / "Walker-30.pt").write_bytes((tmp_path / "Walker-30.pt").read_bytes()[:100])  # cut short
    resumed = Trainer(BEHAVIOR, SPEC, settings(), seed=0)
    warnings = resumed.restore(store(tmp_path), reset_global_step=False)
    assert resumed.step == 20
    assert len(warnings) == 1
    assert f"checkpoint {tmp_path / 'checkpoint.pt'} cannot be read" in warnings[0]
    assert f"checkpoint {tmp_path / 'Walker-30.pt'} cannot be read" in warnings[0]
    assert f"restored from {tmp_path / 'Walker-20.pt'} instead" in warnings[0]


def test_no_readable_checkpoint_is_an_error_naming_every_file(tmp_path: Path) -> None:
    (tmp_path / "checkpoint.pt").write_bytes(b"garbage")
    (tmp_path / "Walker-10.pt").write_bytes(b"garbage too")
    with pytest.raises(CheckpointError, match=r"checkpoint.pt cannot be read.*Walker-10.pt cannot be read.*new run"):
        trainer().restore(store(tmp_path), reset_global_step=False)
    with pytest.raises(FileNotFoundError, match="has no checkpoint in .* to resume from"):
        trainer().restore(store(tmp_path / "elsewhere"), reset_global_step=False)


def test_a_checkpoint_leaves_the_training_random_stream_alone(tmp_path: Path) -> None:
    ppo = trainer(buffer_size=1000)
    ppo.ingest([trajectory(10)])
    state = torch.get_rng_state()
    ppo.save_checkpoint(store(tmp_path))  # the ONNX export samples actions while tracing
    assert torch.equal(torch.get_rng_state(), state)
