"""The learner's networks: the running normalizer, action heads and masks, the critic, unsupported settings."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rayagents.configs.network import ConditioningType, EncoderType, MemorySettings, NetworkSettings
from rayagents.learner.acting import allowed_from_disabled
from rayagents.learner.distributions import clip_continuous
from rayagents.learner.networks import Actor, build_actor_critic
from rayagents.learner.normalizer import RunningNormalizer
from rayagents.protocol.types import ActionSpec, BehaviorSpec, DimensionProperty, ObservationSpec, ObservationType


def vector(name: str, size: int, kind: ObservationType = ObservationType.DEFAULT) -> ObservationSpec:
    """A vector observation spec."""
    return ObservationSpec((size,), (DimensionProperty.NONE,), kind, name)


def test_normalizer_matches_the_statistics_of_all_data_seen() -> None:
    rng = np.random.default_rng(0)
    data = rng.normal(loc=[3.0, -2.0], scale=[2.0, 0.5], size=(300, 2))
    normalizer = RunningNormalizer(2)
    for chunk in np.array_split(data, 7):
        normalizer.update(torch.as_tensor(chunk, dtype=torch.float32))
    # ML-Agents' start: one pseudo-observation of 0 with variance 1 (m2 = 1, count = 1).
    with_pseudo = np.concatenate([np.zeros((1, 2)), data.astype(np.float32)])
    mean = with_pseudo.mean(axis=0)
    m2 = 1.0 + ((with_pseudo - mean) ** 2).sum(axis=0)
    assert float(normalizer.count) == 301
    np.testing.assert_allclose(normalizer.mean.numpy(), mean, rtol=1e-6)
    np.testing.assert_allclose(normalizer.variance.numpy(), m2 / 301, rtol=1e-6)
    x = torch.tensor([[3.0, -2.0], [1e6, -1e6]])
    out = normalizer(x).numpy()
    np.testing.assert_allclose(out[0], (np.array([3.0, -2.0]) - mean) / np.sqrt(m2 / 301), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(out[1], [5.0, -5.0])


def test_normalizer_state_is_saved_and_restored_and_forward_does_not_update() -> None:
    normalizer = RunningNormalizer(3)
    normalizer.update(torch.randn(50, 3) * 4 + 2)
    x = torch.randn(4, 3)
    before = normalizer(x)
    assert set(normalizer.state_dict()) == {"count", "mean", "m2"}
    restored = RunningNormalizer(3)
    restored.load_state_dict(normalizer.state_dict())
    torch.testing.assert_close(restored(x), before)
    normalizer(x * 100)
    torch.testing.assert_close(normalizer(x), before)


def test_actor_normalizer_lives_in_the_policy_state_dict() -> None:
    actor = Actor((vector("a", 3),), ActionSpec(2, ()), NetworkSettings(normalize=True))
    assert any(key.endswith("normalizer.mean") for key in actor.state_dict())
    plain = Actor((vector("a", 3),), ActionSpec(2, ()), NetworkSettings(normalize=False))
    assert not any("normalizer" in key for key in plain.state_dict())


def test_masked_actions_are_never_sampled() -> None:
    torch.manual_seed(0)
    actor = Actor((vector("a", 4),), ActionSpec(0, (3, 4)), NetworkSettings(hidden_units=16))
    n = 4000
    rng = np.random.default_rng(1)
    disabled = rng.random((n, 7)) < 0.5
    disabled[:, 0] = False  # at least one action left in each branch
    disabled[:, 3] = False
    disabled[:, 5] = True  # action 2 of branch 1 is masked everywhere
    allowed = torch.as_tensor(allowed_from_disabled(disabled, n, 7))
    sample = actor.act([torch.randn(n, 4) * 3], allowed)
    chosen = sample.discrete.numpy()
    assert not disabled[np.arange(n), chosen[:, 0]].any()
    assert not disabled[np.arange(n), 3 + chosen[:, 1]].any()
    assert np.isfinite(sample.log_prob.numpy()).all()
    mode = actor.act([torch.randn(n, 4) * 3], allowed, deterministic=True).discrete.numpy()
    assert not disabled[np.arange(n), mode[:, 0]].any()
    assert not disabled[np.arange(n), 3 + mode[:, 1]].any()


def test_allowed_mask_from_decision_steps_layout() -> None:
    per_branch = [np.array([[True, False], [False, False]]), np.array([[False, False, True], [True, True, False]])]
    allowed = allowed_from_disabled(per_branch, 2, 5)
    np.testing.assert_array_equal(allowed, [[0, 1, 1, 1, 0], [1, 1, 0, 0, 1]])
    np.testing.assert_array_equal(allowed_from_disabled(None, 2, 5), np.ones((2, 5)))
    with pytest.raises(ValueError, match="action mask has shape"):
        allowed_from_disabled(np.zeros((2, 4), dtype=bool), 2, 5)


def test_hybrid_sample_evaluates_to_the_same_log_prob_and_env_actions_are_clipped() -> None:
    torch.manual_seed(0)
    actor = Actor((vector("a", 3), vector("b", 2)), ActionSpec(2, (3,)), NetworkSettings(hidden_units=8))
    obs = [torch.randn(64, 3), torch.randn(64, 2)]
    sample = actor.act(obs)
    log_prob, entropy = actor.evaluate(obs, None, sample.continuous, sample.discrete)
    torch.testing.assert_close(log_prob, sample.log_prob)
    torch.testing.assert_close(entropy, sample.entropy)
    actions = sample.env_actions()
    assert actions.continuous.shape == (64, 2) and actions.continuous.dtype == np.float32
    assert actions.discrete.shape == (64, 1) and actions.discrete.dtype == np.int32
    np.testing.assert_allclose(actions.continuous, clip_continuous(sample.continuous).numpy())
    assert np.abs(actions.continuous).max() <= 1.0
    big = torch.tensor([[7.5, -0.3]])
    np.testing.assert_allclose(clip_continuous(big).numpy(), [[1.0, -0.1]], rtol=1e-6)


def test_critic_has_a_value_head_per_reward_signal_and_shares_the_body_on_request() -> None:
    spec = BehaviorSpec((vector("a", 3),), ActionSpec(1, ()))
    actor, critic = build_actor_critic(spec, NetworkSettings(hidden_units=8), ("extrinsic", "curiosity"), False)
    values = critic([torch.randn(5, 3)])
    assert set(values) == {"extrinsic", "curiosity"} and values["extrinsic"].shape == (5,)
    assert critic.network_body is not actor.network_body
    shared_actor, shared_critic = build_actor_critic(spec, NetworkSettings(hidden_units=8), ("extrinsic",), True)
    assert shared_critic.network_body is shared_actor.network_body


@pytest.mark.parametrize("encoder", list(EncoderType))
def test_every_network_setting_of_the_spec_builds_and_acts(encoder: EncoderType) -> None:
    """Visual (each vis_encode_type), variable-length, goal-conditioned (hyper and none) observations with memory:
    nothing of network_settings is refused."""
    visual = ObservationSpec((3, 40, 60), (DimensionProperty.NONE,) * 3, ObservationType.DEFAULT, "Camera")
    entities = ObservationSpec(
        (5, 4), (DimensionProperty.VARIABLE_SIZE, DimensionProperty.NONE), ObservationType.DEFAULT, "Buffer"
    )
    goal = vector("goal", 2, ObservationType.GOAL_SIGNAL)
    specs = (visual, entities, vector("a", 3), goal)
    for conditioning in ConditioningType:
        settings = NetworkSettings(
            hidden_units=16,
            vis_encode_type=encoder,
            goal_conditioning_type=conditioning,
            memory=MemorySettings(sequence_length=2, memory_size=8),
        )
        actor = Actor(specs, ActionSpec(1, (2,)), settings)
        obs = [torch.randint(0, 255, (3, 3, 40, 60), dtype=torch.uint8), torch.randn(3, 5, 4), torch.randn(3, 3), torch.randn(3, 2)]
        sample = actor.act(obs, memories=torch.zeros(3, 8))
        assert sample.memories is not None and sample.memories.shape == (3, 8)
        assert torch.isfinite(sample.log_prob).all()
