"""NumpyActor: the plain actors act in numpy as the torch actor does (same means, argmaxes, log probabilities and
entropies; samples from the same distributions, masks kept), other actors are left to torch, and every copy of a
policy draws its own random numbers."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from rayagents.configs.network import MemorySettings, NetworkSettings
from rayagents.learner.networks import PPO_ACTOR, SAC_ACTOR, Actor, ActorKind
from rayagents.learner.numpy_actor import NumpyActor
from rayagents.learner.policy import InferencePolicy
from rayagents.protocol.types import (
    ActionSpec,
    BehaviorSpec,
    DecisionSteps,
    DimensionProperty,
    ObservationSpec,
    ObservationType,
)

VECTORS = (
    ObservationSpec((5,), (DimensionProperty.NONE,), ObservationType.DEFAULT, "a"),
    ObservationSpec((3,), (DimensionProperty.NONE,), ObservationType.DEFAULT, "b"),
)
CASES = {
    "ppo continuous, normalized": (ActionSpec(3, ()), PPO_ACTOR, True),
    "ppo discrete": (ActionSpec(0, (4, 2)), PPO_ACTOR, False),
    "ppo hybrid, normalized": (ActionSpec(2, (3,)), PPO_ACTOR, True),
    "sac continuous": (ActionSpec(2, ()), SAC_ACTOR, False),
    "sac hybrid, normalized": (ActionSpec(2, (3,)), SAC_ACTOR, True),
}


def actor_for(action_spec: ActionSpec, kind: ActorKind, normalize: bool, seed: int = 0) -> Actor:
    """An actor with random weights, its normalizer moved off its start and a state-independent log sigma that is
    not zero."""
    torch.manual_seed(seed)
    actor = Actor(VECTORS, action_spec, NetworkSettings(hidden_units=32, num_layers=2, normalize=normalize), kind)
    rng = np.random.default_rng(seed)
    actor.update_normalization([torch.as_tensor(rng.normal(2.0, 3.0, size=(50, s.shape[0]))) for s in VECTORS])
    continuous = actor.action_heads.continuous
    if continuous is not None and continuous.log_sigma_layer is None:
        with torch.no_grad():
            continuous.log_sigma.copy_(torch.linspace(-1.0, 0.5, action_spec.continuous_size).unsqueeze(0))
    return actor.eval()


def observations(n: int, rng: np.random.Generator) -> list[np.ndarray]:
    return [rng.normal(1.0, 3.0, size=(n, s.shape[0])).astype(np.float32) for s in VECTORS]


def allowed_mask(action_spec: ActionSpec, n: int) -> np.ndarray | None:
    """Every agent may not take action 0 of the first branch; None without branches."""
    if not action_spec.discrete_branches:
        return None
    allowed = np.ones((n, sum(action_spec.discrete_branches)), dtype=np.float32)
    allowed[:, 0] = 0.0
    return allowed


def torch_mask(allowed: np.ndarray | None) -> torch.Tensor | None:
    return None if allowed is None else torch.as_tensor(allowed)


def both_actors(case: str) -> tuple[Actor, NumpyActor]:
    """The torch actor of ``case`` and its numpy copy."""
    action_spec, kind, normalize = CASES[case]
    actor = actor_for(action_spec, kind, normalize)
    fast = NumpyActor.of(actor)
    assert fast is not None, "a plain actor must have a numpy copy"
    return actor, fast


@pytest.mark.parametrize("case", list(CASES))
def test_deterministic_actions_are_the_torch_actors(case: str) -> None:
    action_spec, kind, _ = CASES[case]
    actor, fast = both_actors(case)
    obs = observations(16, np.random.default_rng(1))
    allowed = allowed_mask(action_spec, 16)
    mine = fast.act(obs, allowed, deterministic=True, rng=np.random.default_rng(2))
    theirs = actor.act([torch.as_tensor(o) for o in obs], torch_mask(allowed), deterministic=True)
    np.testing.assert_allclose(mine.continuous, theirs.continuous.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(mine.discrete, theirs.discrete.numpy())
    np.testing.assert_allclose(mine.log_prob, theirs.log_prob.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(mine.entropy, theirs.entropy.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(
        mine.env_continuous, theirs.env_actions().continuous, rtol=1e-5, atol=1e-6, err_msg="the player's actions"
    )
    if allowed is not None:
        assert (mine.discrete[:, 0] != 0).all()


@pytest.mark.parametrize("case", list(CASES))
def test_sampled_actions_carry_the_torch_actors_log_probabilities(case: str) -> None:
    action_spec, kind, _ = CASES[case]
    actor, fast = both_actors(case)
    n = 64
    obs = observations(n, np.random.default_rng(3))
    allowed = allowed_mask(action_spec, n)
    sample = fast.act(obs, allowed, deterministic=False, rng=np.random.default_rng(4))
    assert sample.continuous.dtype == np.float32 and sample.continuous.shape == (n, action_spec.continuous_size)
    assert sample.discrete.dtype == np.int32 and sample.discrete.shape == (n, len(action_spec.discrete_branches))
    assert sample.log_prob.dtype == np.float32 and sample.entropy.dtype == np.float32
    full = np.ones((n, sum(action_spec.discrete_branches)), dtype=np.float32) if allowed is None else allowed
    with torch.no_grad():
        log_prob, entropy = actor.evaluate(
            [torch.as_tensor(o) for o in obs],
            torch.as_tensor(full),
            torch.as_tensor(sample.continuous),
            torch.as_tensor(sample.discrete, dtype=torch.int64),
        )
    # SAC's log density goes through atanh of the squashed sample: a little float32 error near ±1.
    tolerance = 2e-3 if kind.tanh_squash else 1e-4
    np.testing.assert_allclose(sample.log_prob, log_prob.numpy(), rtol=tolerance, atol=tolerance)
    np.testing.assert_allclose(sample.entropy, entropy.numpy(), rtol=1e-5, atol=1e-5)
    if kind.tanh_squash:
        np.testing.assert_array_equal(sample.env_continuous, sample.continuous)
    else:
        np.testing.assert_allclose(sample.env_continuous, np.clip(sample.continuous, -3, 3) / 3, rtol=1e-6)


def test_samples_follow_the_actors_distributions_and_masks() -> None:
    """20,000 agents on one observation: each allowed action is drawn as often as its probability says, a masked one
    never; the Gaussian's standardized samples have mean 0 and standard deviation 1."""
    action_spec = ActionSpec(2, (4,))
    actor = actor_for(action_spec, PPO_ACTOR, normalize=True)
    fast = NumpyActor.of(actor)
    assert fast is not None
    n = 20_000
    one = observations(1, np.random.default_rng(5))
    obs = [np.repeat(o, n, axis=0) for o in one]
    allowed = np.ones((n, 4), dtype=np.float32)
    allowed[:, 2] = 0.0
    sample = fast.act(obs, allowed, deterministic=False, rng=np.random.default_rng(6))
    with torch.no_grad():
        encoding = actor.network_body([torch.as_tensor(o) for o in one])
        mean, log_std = actor.action_heads.continuous(encoding)  # type: ignore[misc]
        (log_probs,) = actor.action_heads.discrete(encoding, torch.as_tensor(allowed[:1]))  # type: ignore[misc]
    expected = np.exp(log_probs.numpy()[0])
    counts = np.bincount(sample.discrete[:, 0], minlength=4) / n
    assert counts[2] == 0.0, "a masked action was drawn"
    np.testing.assert_allclose(counts, expected, atol=0.015)
    standardized = (sample.continuous - mean.numpy()) / np.exp(log_std.numpy())
    np.testing.assert_allclose(standardized.mean(axis=0), 0.0, atol=0.03)
    np.testing.assert_allclose(standardized.std(axis=0), 1.0, atol=0.03)


def test_actors_that_are_not_plain_are_left_to_torch() -> None:
    memory = NetworkSettings(hidden_units=16, memory=MemorySettings(sequence_length=4, memory_size=8))
    assert NumpyActor.of(Actor(VECTORS, ActionSpec(2, ()), memory)) is None
    image = ObservationSpec(
        (3, 20, 20),
        (DimensionProperty.TRANSLATIONAL_EQUIVARIANCE, DimensionProperty.TRANSLATIONAL_EQUIVARIANCE, DimensionProperty.NONE),
        ObservationType.DEFAULT,
        "camera",
    )
    assert NumpyActor.of(Actor((image,), ActionSpec(2, ()), NetworkSettings(hidden_units=16))) is None
    assert NumpyActor.of(Actor(VECTORS, ActionSpec(2, ()), NetworkSettings(hidden_units=16))) is not None


def test_each_copy_of_a_policy_draws_its_own_random_numbers() -> None:
    """The driver pickles one InferencePolicy to every EnvActor: the copies must not share a random stream."""
    spec = BehaviorSpec(VECTORS, ActionSpec(2, (3,)))
    policy = InferencePolicy("Plain?team=0", spec, NetworkSettings(hidden_units=16))
    policy.load_weights(0, {k: v.numpy() for k, v in policy.actor.state_dict().items()})
    n = 8
    steps = DecisionSteps(
        obs=observations(n, np.random.default_rng(7)),
        reward=np.zeros(n, dtype=np.float32),
        agent_id=np.arange(n, dtype=np.int32),
        action_mask=[np.zeros((n, 3), dtype=bool)],
        group_id=np.zeros(n, dtype=np.int32),
        group_reward=np.zeros(n, dtype=np.float32),
    )
    policy.act("Plain?team=0", steps)
    shipped = pickle.dumps(policy)
    first, second = pickle.loads(shipped), pickle.loads(shipped)
    a, b = first.act("Plain?team=0", steps), second.act("Plain?team=0", steps)
    assert not np.allclose(a.continuous, b.continuous)
