"""PPO: GAE and bootstrapping, the update, schedules, and a small in-process learning check (no simulator)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from rayagents.configs.hyperparameters import PPOSettings, ScheduleType
from rayagents.configs.network import NetworkSettings
from rayagents.configs.reward_signals import RewardSignalSettings, RewardSignalType
from rayagents.configs.trainer import TrainerSettings
from rayagents.learner.acting import ENTROPY
from rayagents.learner.ppo import PPO, batched_gae, gae
from rayagents.learner.schedules import DecayedValue
from rayagents.learner.trajectory import (
    ACTION_MASKS,
    ADVANTAGES,
    CURRENT_LOG_PROBS,
    LOG_PROBS,
    returns_key,
    value_estimates_key,
)
from rayagents.protocol.trajectories import LOG_PROBS as LOG_PROBS_EXTRA
from rayagents.protocol.trajectories import Trajectory
from rayagents.protocol.types import ActionSpec, BehaviorSpec, DimensionProperty, ObservationSpec, ObservationType


def vector(name: str, size: int) -> ObservationSpec:
    """A vector observation spec."""
    return ObservationSpec((size,), (DimensionProperty.NONE,), ObservationType.DEFAULT, name)


def trainer_settings(
    hidden_units: int = 32,
    gamma: float = 0.99,
    strength: float = 1.0,
    max_steps: int = 500000,
    **hyperparameters: object,
) -> TrainerSettings:
    """PPO settings for a small network."""
    return TrainerSettings(
        hyperparameters=PPOSettings(**hyperparameters),  # type: ignore[arg-type]
        network_settings=NetworkSettings(hidden_units=hidden_units, num_layers=2),
        reward_signals={RewardSignalType.EXTRINSIC: RewardSignalSettings(gamma=gamma, strength=strength)},
        max_steps=max_steps,
    )


def random_trajectory(
    spec: BehaviorSpec, length: int, done: bool, interrupted: bool, rng: np.random.Generator
) -> Trajectory:
    """A trajectory of random observations and actions."""
    action_spec = spec.action_spec
    return Trajectory(
        obs=tuple(rng.normal(size=(length, *s.shape)).astype(np.float32) for s in spec.observation_specs),
        next_obs=tuple(rng.normal(size=s.shape).astype(np.float32) for s in spec.observation_specs),
        continuous_actions=rng.normal(size=(length, action_spec.continuous_size)).astype(np.float32),
        discrete_actions=np.stack(
            [rng.integers(0, b, size=length) for b in action_spec.discrete_branches] or [np.zeros(length)], axis=1
        )[:, : action_spec.discrete_size].astype(np.int64),
        rewards=rng.normal(size=length).astype(np.float32),
        done=done,
        interrupted=interrupted,
        versions=np.zeros(length, dtype=np.int32),
        extras={LOG_PROBS_EXTRA: np.full(length, -1.5, dtype=np.float32)},
    )


def all_trainable(trajectories: list[Trajectory]) -> list[np.ndarray]:
    """Every experience may be trained on."""
    return [np.ones(len(t), dtype=bool) for t in trajectories]


# ---- GAE ---------------------------------------------------------------------------------------------------------


def test_gae_matches_a_hand_computed_example() -> None:
    rewards = np.array([1.0, 0.0, 2.0], dtype=np.float32)
    values = np.array([0.5, 0.4, 0.3], dtype=np.float32)
    # gamma 0.9, lambd 0.8 → gamma*lambd = 0.72; deltas = r_t + 0.9 V_{t+1} - V_t.
    # Bootstrapped with V_next = 1.0: deltas 0.86, -0.13, 2.6 → advantages 2.11424, 1.742, 2.6.
    np.testing.assert_allclose(gae(rewards, values, 1.0, 0.9, 0.8), [2.11424, 1.742, 2.6], rtol=1e-5)
    # Terminal (V_next = 0): last delta 1.7 → advantages 1.64768, 1.094, 1.7.
    np.testing.assert_allclose(gae(rewards, values, 0.0, 0.9, 0.8), [1.64768, 1.094, 1.7], rtol=1e-5)


def test_batched_gae_equals_one_trajectory_at_a_time() -> None:
    rng = np.random.default_rng(3)
    lengths = np.array([3, 1, 7, 5])
    rewards, values = rng.normal(size=lengths.sum()), rng.normal(size=lengths.sum())
    after = rng.normal(size=4)
    batched = batched_gae(rewards, values, after, lengths, 0.97, 0.9)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    one_by_one = np.concatenate(
        [gae(rewards[s : s + n], values[s : s + n], float(v), 0.97, 0.9) for s, n, v in zip(starts, lengths, after)]
    )
    np.testing.assert_allclose(batched, one_by_one, rtol=1e-6)


@pytest.mark.parametrize(
    ("done", "interrupted", "bootstraps"),
    [(True, False, False), (True, True, True), (False, False, True)],
    ids=["terminal", "interrupted", "time-horizon-cut"],
)
def test_trajectory_bootstraps_unless_truly_done(done: bool, interrupted: bool, bootstraps: bool) -> None:
    torch.manual_seed(0)
    spec = BehaviorSpec((vector("a", 3),), ActionSpec(1, ()))
    ppo = PPO(spec, trainer_settings(gamma=0.9, strength=2.0, lambd=0.8))
    rng = np.random.default_rng(0)
    trajectory = random_trajectory(spec, 5, done, interrupted, rng)
    other = random_trajectory(spec, 3, False, False, rng)  # ingested together: its values must not leak in
    assert trajectory.bootstraps() == bootstraps
    stats = ppo.ingest([trajectory, other], all_trainable([trajectory, other])).stats
    columns = {name: column[:5] for name, column in ppo.buffer.arrays().items()}
    with torch.no_grad():
        values = ppo.critic([torch.as_tensor(trajectory.obs[0])])["extrinsic"].numpy()
        next_value = ppo.critic([torch.as_tensor(trajectory.next_obs[0])[None]])["extrinsic"].item()
        other_values = ppo.critic([torch.as_tensor(other.obs[0])])["extrinsic"].numpy()
    expected = gae(trajectory.rewards * 2.0, values, next_value if bootstraps else 0.0, 0.9, 0.8)
    np.testing.assert_allclose(columns[ADVANTAGES], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(columns[returns_key("extrinsic")], expected + values, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(columns[value_estimates_key("extrinsic")], values, rtol=1e-6)
    mean_value = float(np.concatenate([values, other_values]).mean())
    assert stats == {"Policy/Extrinsic Value Estimate": pytest.approx(mean_value, rel=1e-5)}


def test_only_trainable_experiences_reach_the_buffer_with_the_log_probs_that_acted() -> None:
    torch.manual_seed(0)
    spec = BehaviorSpec((vector("a", 3),), ActionSpec(0, (2,)))
    ppo = PPO(spec, trainer_settings())
    rng = np.random.default_rng(1)
    trajectory = dataclasses.replace(
        random_trajectory(spec, 4, True, False, rng),
        extras={LOG_PROBS_EXTRA: np.array([-1, -2, -3, -4], np.float32), ENTROPY: np.full(4, 0.5, np.float32)},
    )
    full = PPO(spec, trainer_settings())
    full.actor.load_state_dict(ppo.actor.state_dict())
    full.critic.load_state_dict(ppo.critic.state_dict())
    full.ingest([trajectory], all_trainable([trajectory]))
    stats = ppo.ingest([trajectory], [np.array([False, True, False, True])]).stats
    assert ppo.buffered_steps == 2 and stats["Policy/Entropy"] == pytest.approx(0.5)
    kept = ppo.buffer.arrays()
    everything = full.buffer.arrays()
    np.testing.assert_array_equal(kept[LOG_PROBS], [-2, -4])
    # The advantages of the kept experiences are those of the whole trajectory (the dropped ones still count).
    np.testing.assert_allclose(kept[ADVANTAGES], everything[ADVANTAGES][[1, 3]], rtol=1e-6)


# ---- the update --------------------------------------------------------------------------------------------------


def test_update_reduces_the_loss_on_a_fixed_batch_and_reports_mlagents_stats() -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    spec = BehaviorSpec((vector("a", 4), vector("b", 2)), ActionSpec(2, (3, 2)))
    constant = ScheduleType.CONSTANT
    settings = trainer_settings(
        batch_size=64,
        buffer_size=256,
        num_epoch=4,
        learning_rate=1e-3,
        learning_rate_schedule=constant,
        beta_schedule=constant,
        epsilon_schedule=constant,
    )
    ppo = PPO(spec, settings, seed=0)
    trajectories = [random_trajectory(spec, 16, True, False, rng) for _ in range(16)]
    ppo.ingest(trajectories, all_trainable(trajectories))
    assert ppo.buffered_steps == 256 and not ppo.ready_for_update(0)
    data = ppo.buffer.tensors(torch.device("cpu"))
    data[ADVANTAGES] = (data[ADVANTAGES] - data[ADVANTAGES].mean()) / (data[ADVANTAGES].std(correction=0) + 1e-10)
    with torch.no_grad():
        before = ppo.losses(data, 0.2, 5e-3).loss.item()
    stats = ppo.update(step=0)
    with torch.no_grad():
        after = ppo.losses(data, 0.2, 5e-3).loss.item()
    assert after < before - 0.05
    assert ppo.buffered_steps == 0
    assert set(stats) == {
        "Losses/Policy Loss",
        "Losses/Value Loss",
        "Policy/Learning Rate",
        "Policy/Epsilon",
        "Policy/Beta",
    }
    assert stats["Policy/Learning Rate"] == 1e-3 and stats["Policy/Epsilon"] == 0.2 and stats["Policy/Beta"] == 5e-3
    assert stats["Losses/Policy Loss"] >= 0.0 and stats["Losses/Value Loss"] > 0.0


# ---- schedules -----------------------------------------------------------------------------------------------------


def test_linear_schedules_decay_to_their_floors_and_constant_ones_stay() -> None:
    lr = DecayedValue(ScheduleType.LINEAR, 3e-4, 1e-10, 1000)
    assert lr.value(0) == pytest.approx(3e-4)
    assert lr.value(500) == pytest.approx((3e-4 - 1e-10) / 2 + 1e-10)
    assert lr.value(1000) == pytest.approx(1e-10) and lr.value(5000) == pytest.approx(1e-10)
    assert DecayedValue(ScheduleType.CONSTANT, 0.2, 0.1, 1000).value(999) == 0.2


def test_update_uses_the_scheduled_values_at_the_global_step() -> None:
    torch.manual_seed(0)
    spec = BehaviorSpec((vector("a", 2),), ActionSpec(0, (2,)))
    ppo = PPO(spec, trainer_settings(batch_size=8, buffer_size=8, max_steps=1000))
    trajectory = random_trajectory(spec, 16, True, False, np.random.default_rng(0))
    ppo.ingest([trajectory], all_trainable([trajectory]))
    stats = ppo.update(step=250)
    assert stats["Policy/Learning Rate"] == pytest.approx((3e-4 - 1e-10) * 0.75 + 1e-10)
    assert stats["Policy/Epsilon"] == pytest.approx((0.2 - 0.1) * 0.75 + 0.1)
    assert stats["Policy/Beta"] == pytest.approx((5e-3 - 1e-5) * 0.75 + 1e-5)
    assert ppo.optimizer.param_groups[0]["lr"] == pytest.approx(stats["Policy/Learning Rate"])


# ---- learning, in process ---------------------------------------------------------------------------------------

SEED = 0


def _train_bandit(ppo: PPO, play: "BanditRound", iterations: int, agents: int) -> None:
    """Plays ``iterations`` rounds of one-step episodes for ``agents`` agents, updating after each round."""
    step = 0
    for _ in range(iterations):
        obs, sample, rewards = play(agents)
        trajectories = [
            Trajectory(
                obs=(obs[i : i + 1],),
                next_obs=(obs[i],),
                continuous_actions=sample.continuous[i : i + 1].numpy(),
                discrete_actions=sample.discrete[i : i + 1].numpy(),
                rewards=rewards[i : i + 1],
                done=True,
                interrupted=False,
                versions=np.zeros(1, dtype=np.int32),
                extras={LOG_PROBS_EXTRA: sample.log_prob[i : i + 1].numpy()},
            )
            for i in range(agents)
        ]
        ppo.ingest(trajectories, all_trainable(trajectories))
        step += agents
        ppo.update(step)


class BanditRound:
    """One round of a contextual bandit: observations, the actor's actions, rewards."""

    def __init__(self, ppo: PPO, rng: np.random.Generator, continuous: bool) -> None:
        self.ppo = ppo
        self.rng = rng
        self.continuous = continuous

    def observations(self, agents: int) -> np.ndarray:
        if self.continuous:
            return self.rng.uniform(-1.0, 1.0, size=(agents, 2)).astype(np.float32)
        return np.eye(3, dtype=np.float32)[self.rng.integers(0, 3, size=agents)]

    def rewards(self, obs: np.ndarray, actions_continuous: np.ndarray, actions_discrete: np.ndarray) -> np.ndarray:
        if self.continuous:  # the player's action should be half the first observation
            return -np.abs(actions_continuous[:, 0] - 0.5 * obs[:, 0]).astype(np.float32)
        return (actions_discrete[:, 0] == obs.argmax(axis=1)).astype(np.float32)

    def __call__(self, agents: int, deterministic: bool = False) -> tuple[np.ndarray, object, np.ndarray]:
        obs = self.observations(agents)
        sample = self.ppo.actor.act([torch.as_tensor(obs)], deterministic=deterministic)
        actions = sample.env_actions()
        return obs, sample, self.rewards(obs, actions.continuous, actions.discrete)


@pytest.mark.parametrize("continuous", [False, True], ids=["discrete", "continuous"])
def test_ppo_learns_a_contextual_bandit(continuous: bool) -> None:
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    action_spec = ActionSpec(1, ()) if continuous else ActionSpec(0, (3,))
    spec = BehaviorSpec((vector("context", 2 if continuous else 3),), action_spec)
    settings = trainer_settings(batch_size=64, buffer_size=255, learning_rate=3e-3, max_steps=20000)
    ppo = PPO(spec, settings)
    play = BanditRound(ppo, rng, continuous)
    before = float(play(2000)[2].mean())
    _train_bandit(ppo, play, iterations=20 if continuous else 10, agents=256)
    after = float(play(2000)[2].mean())
    after_deterministic = float(play(2000, deterministic=True)[2].mean())
    print(f"bandit: {before:.3f} → {after:.3f} (deterministic {after_deterministic:.3f})")
    if continuous:
        assert before < -0.25 and after > before + 0.1 and after_deterministic > -0.05
    else:
        assert before < 0.45 and after > 0.85 and after_deterministic > 0.95


def test_the_policy_loss_is_mlagents_for_current_weights_and_importance_weighted_for_older_ones() -> None:
    torch.manual_seed(0)
    spec = BehaviorSpec((vector("a", 3),), ActionSpec(0, (3,)))
    ppo = PPO(spec, trainer_settings())
    rng = np.random.default_rng(2)
    trajectory = random_trajectory(spec, 6, True, False, rng)
    with torch.no_grad():
        acted, _ = ppo.actor.evaluate(
            [torch.as_tensor(trajectory.obs[0])], None, torch.zeros(6, 0), torch.as_tensor(trajectory.discrete_actions)
        )
    # Rows 0-1: acted by the current weights; rows 2-3: older weights that made the action less likely (weight
    # truncated at 1); rows 4-5: older weights that made it likelier (weight e^-1).
    behavior = acted.numpy() + np.array([0, 0, -1, -1, 1, 1], dtype=np.float32)
    trajectory = dataclasses.replace(trajectory, extras={LOG_PROBS_EXTRA: behavior})
    ppo.ingest([trajectory], all_trainable([trajectory]))
    data = ppo.buffer.tensors(torch.device("cpu"))
    np.testing.assert_allclose(data[CURRENT_LOG_PROBS].numpy(), acted.numpy(), rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        log_probs, _ = ppo.actor.evaluate([data["obs_0"]], data[ACTION_MASKS], data["continuous_actions"], data["discrete_actions"])
        ratio = torch.exp(log_probs - data[CURRENT_LOG_PROBS])
        per_row = torch.min(ratio * data[ADVANTAGES], torch.clamp(ratio, 0.8, 1.2) * data[ADVANTAGES])
        weights = torch.tensor([1, 1, 1, 1, np.exp(-1), np.exp(-1)], dtype=torch.float32)
        expected = -(weights * per_row).mean()
        loss = ppo.losses(data, 0.2, 0.0).policy_loss
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-6)
    # With every row acted by the current weights this is ML-Agents' loss: the ratio against what acted.
    on_policy = dict(data, **{LOG_PROBS: data[CURRENT_LOG_PROBS]})
    with torch.no_grad():
        mlagents_ratio = torch.exp(log_probs - on_policy[LOG_PROBS])
        mlagents = -torch.min(mlagents_ratio * data[ADVANTAGES], torch.clamp(mlagents_ratio, 0.8, 1.2) * data[ADVANTAGES]).mean()
        torch.testing.assert_close(ppo.losses(on_policy, 0.2, 0.0).policy_loss, mlagents)
