"""The acting policies, InferencePolicy (torch) and NumpyPolicy (what the registry builds for a plain actor):
the trainer's weights in; actions with masks, raw samples, clipping, and the extras PPO keeps (log probabilities,
entropies) out. Each behaviour is checked on both."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from rayagents.configs.hyperparameters import PPOSettings
from rayagents.configs.network import NetworkSettings
from rayagents.configs.trainer import TrainerSettings
from rayagents.learner.acting import ENTROPY, allowed_from_disabled
from rayagents.learner.numpy_policy import NumpyPolicy
from rayagents.learner.policy import InferencePolicy
from rayagents.learner.ppo import PPO
from rayagents.learner.registry import trainer_entry
from rayagents.learner.trainer import Trainer
from rayagents.protocol.trajectories import LOG_PROBS, Trajectory
from rayagents.protocol.types import (
    ActionSpec,
    BehaviorSpec,
    DecisionSteps,
    DimensionProperty,
    ObservationSpec,
    ObservationType,
)

BEHAVIOR = "Hybrid?team=0"
SPEC = BehaviorSpec(
    (
        ObservationSpec((4,), (DimensionProperty.NONE,), ObservationType.DEFAULT, "a"),
        ObservationSpec((2,), (DimensionProperty.NONE,), ObservationType.DEFAULT, "b"),
    ),
    ActionSpec(2, (3, 2)),
)
NETWORK = NetworkSettings(hidden_units=16, normalize=True)
KINDS = ("torch", "numpy")
"""The two acting policies: InferencePolicy, and the NumpyPolicy the registry gives EnvActors for a plain actor."""


def build(kind: str, network: NetworkSettings = NETWORK) -> InferencePolicy | NumpyPolicy:
    """An acting policy of ``kind`` for the test's behavior, without weights."""
    if kind == "torch":
        return InferencePolicy(BEHAVIOR, SPEC, network)
    policy = trainer_entry("ppo").make_policy(BEHAVIOR, SPEC, TrainerSettings(network_settings=network))
    assert isinstance(policy, NumpyPolicy)
    return policy


def decision_steps(n: int, rng: np.random.Generator, disabled: list[np.ndarray] | None = None) -> DecisionSteps:
    """A batch of ``n`` agents with random observations; ``disabled`` per branch (True = disabled)."""
    return DecisionSteps(
        obs=[rng.normal(size=(n, 4)).astype(np.float32) * 3, rng.normal(size=(n, 2)).astype(np.float32)],
        reward=np.zeros(n, dtype=np.float32),
        agent_id=np.arange(n, dtype=np.int32),
        action_mask=disabled if disabled is not None else [np.zeros((n, 3), bool), np.zeros((n, 2), bool)],
        group_id=np.zeros(n, dtype=np.int32),
        group_reward=np.zeros(n, dtype=np.float32),
    )


def trained_trainer() -> Trainer:
    """A trainer after one update (its normalizer and weights moved away from the initialization)."""
    torch.manual_seed(0)
    settings = TrainerSettings(hyperparameters=PPOSettings(batch_size=16, buffer_size=16), network_settings=NETWORK)
    trainer = Trainer(BEHAVIOR, SPEC, settings, seed=0)
    rng = np.random.default_rng(0)
    trainer.ingest(
        [Trajectory(
            obs=(rng.normal(2.0, 3.0, size=(20, 4)).astype(np.float32), rng.normal(size=(20, 2)).astype(np.float32)),
            next_obs=(np.zeros(4, np.float32), np.zeros(2, np.float32)),
            continuous_actions=rng.normal(size=(20, 2)).astype(np.float32),
            discrete_actions=np.stack([rng.integers(0, 3, 20), rng.integers(0, 2, 20)], axis=1),
            rewards=rng.normal(size=20).astype(np.float32),
            done=True,
            interrupted=False,
            versions=np.zeros(20, dtype=np.int32),
            extras={LOG_PROBS: np.full(20, -3.0, dtype=np.float32)},
            behavior=BEHAVIOR,
        )]
    )
    assert trainer.maybe_update()
    return trainer


def loaded_policy(trainer: Trainer, kind: str) -> InferencePolicy | NumpyPolicy:
    """A policy of ``kind`` with the trainer's current weights, both shipped as Ray would (pickled)."""
    policy = pickle.loads(pickle.dumps(build(kind)))
    weights = pickle.loads(pickle.dumps(trainer.weights_snapshot()))
    policy.load_weights(weights.version, weights.state)
    return policy


@pytest.mark.parametrize("kind", KINDS)
def test_actions_match_the_trainers_actor_and_carry_the_version(kind: str) -> None:
    trainer = trained_trainer()
    policy = loaded_policy(trainer, kind)
    assert policy.version == trainer.version == 1
    steps = decision_steps(64, np.random.default_rng(1))
    torch.manual_seed(2)
    taken = policy.act(BEHAVIOR, steps)
    assert taken.policy_version == 1 and taken.n_agents == 64
    assert taken.continuous.dtype == np.float32 and taken.continuous.shape == (64, 2)
    assert taken.discrete.dtype == np.int32 and taken.discrete.shape == (64, 2)
    assert set(taken.extras) == {LOG_PROBS, ENTROPY}
    assert all(v.dtype == np.float32 and v.shape == (64,) for v in taken.extras.values())
    # The log probabilities and entropies are those of the trainer's actor for the same raw actions.
    assert isinstance(trainer.algorithm, PPO)
    with torch.no_grad():
        log_probs, entropies = trainer.algorithm.actor.evaluate(
            [torch.as_tensor(o) for o in steps.obs],
            torch.as_tensor(allowed_from_disabled(steps.action_mask, 64, 5)),
            torch.as_tensor(taken.continuous),
            torch.as_tensor(taken.discrete, dtype=torch.int64),
        )
    np.testing.assert_allclose(taken.extras[LOG_PROBS], log_probs.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(taken.extras[ENTROPY], entropies.numpy(), rtol=1e-5, atol=1e-5)
    # The player gets clamp(x, -3, 3) / 3 of the raw samples, and the discrete choices unchanged.
    np.testing.assert_allclose(taken.env_actions.continuous, np.clip(taken.continuous, -3, 3) / 3, rtol=1e-6)
    np.testing.assert_array_equal(taken.env_actions.discrete, taken.discrete)


@pytest.mark.parametrize("kind", KINDS)
def test_masked_actions_are_never_chosen(kind: str) -> None:
    policy = loaded_policy(trained_trainer(), kind)
    n = 200
    rng = np.random.default_rng(3)
    first = np.zeros((n, 3), dtype=bool)
    first[: n // 2, 0] = True  # the first half may not choose 0
    first[n // 2 :, 1:] = True  # the second half must choose 0
    second = np.zeros((n, 2), dtype=bool)
    second[:, 1] = True
    taken = policy.act(BEHAVIOR, decision_steps(n, rng, [first, second]))
    assert (taken.discrete[: n // 2, 0] != 0).all() and (taken.discrete[n // 2 :, 0] == 0).all()
    assert (taken.discrete[:, 1] == 0).all()


@pytest.mark.parametrize("kind", KINDS)
def test_deterministic_network_settings_act_with_the_mean_and_the_argmax(kind: str) -> None:
    """``network_settings.deterministic``: the continuous actions are the Gaussian's mean and the discrete ones the
    most likely allowed action of each branch, as computed from the trainer's own actor, whatever the random state;
    the same weights without ``deterministic`` sample around them."""
    trainer = trained_trainer()
    weights = trainer.weights_snapshot()
    settings = NetworkSettings(hidden_units=16, normalize=True, deterministic=True)
    deterministic = build(kind, settings)
    deterministic.load_weights(weights.version, weights.state)
    n = 32
    disabled = [np.zeros((n, 3), bool), np.zeros((n, 2), bool)]
    disabled[0][: n // 2, 0] = True  # half the agents may not choose 0 on the first branch
    steps = decision_steps(n, np.random.default_rng(4), disabled)
    # The expected actions, from the trainer's actor: the mean of the Gaussian head, the argmax of the masked logits.
    assert isinstance(trainer.algorithm, PPO)
    actor = trainer.algorithm.actor
    with torch.no_grad():
        encoding = actor.network_body([torch.as_tensor(o) for o in steps.obs])
        mean, _ = actor.action_heads.continuous(encoding)
        allowed = torch.as_tensor(allowed_from_disabled(steps.action_mask, n, 5), dtype=torch.float32)
        log_probs = actor.action_heads.discrete(encoding, allowed)
    expected_discrete = np.stack([branch.argmax(dim=1).numpy() for branch in log_probs], axis=1)
    for seed in (2, 3):
        torch.manual_seed(seed)
        taken = deterministic.act(BEHAVIOR, steps)
        np.testing.assert_allclose(taken.continuous, mean.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(taken.discrete, expected_discrete)
    assert (taken.discrete[: n // 2, 0] != 0).all(), "a deterministic action broke its mask"
    # Sampling with the same weights differs from the mean: the check above can tell the two modes apart.
    torch.manual_seed(2)
    sampled = loaded_policy(trainer, kind).act(BEHAVIOR, steps)
    assert not np.allclose(sampled.continuous, mean.numpy(), atol=1e-3)


def test_torch_inference_runs_on_one_thread_and_leaves_the_process_setting_alone() -> None:
    """An actor that acts in torch does so on one thread."""
    policy = InferencePolicy(BEHAVIOR, SPEC, NETWORK)
    policy.load_weights(0, {k: v.numpy() for k, v in policy.actor.state_dict().items()})
    seen: list[int] = []
    policy.actor.network_body.register_forward_pre_hook(lambda module, inputs: seen.append(torch.get_num_threads()))
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        policy.act(BEHAVIOR, decision_steps(4, np.random.default_rng(5)))
        assert seen == [1]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("kind", KINDS)
def test_a_policy_refuses_to_act_without_weights_or_for_another_behavior(kind: str) -> None:
    policy = build(kind)
    with pytest.raises(RuntimeError, match="load_weights"):
        policy.act(BEHAVIOR, decision_steps(2, np.random.default_rng(6)))
    policy.load_weights(0, trained_trainer().weights_snapshot().state)
    with pytest.raises(ValueError, match="Other"):
        policy.act("Other?team=0", decision_steps(2, np.random.default_rng(6)))


@pytest.mark.parametrize("kind", KINDS)
def test_weights_of_another_network_are_refused_and_leave_the_policy_unchanged(kind: str) -> None:
    trainer = trained_trainer()
    settings = NetworkSettings(hidden_units=16, normalize=True, deterministic=True)
    policy = build(kind, settings)
    policy.load_weights(1, trainer.weights_snapshot().state)
    steps = decision_steps(8, np.random.default_rng(7))
    before = policy.act(BEHAVIOR, steps)
    bigger = InferencePolicy(BEHAVIOR, SPEC, NetworkSettings(hidden_units=32, normalize=True))
    state = {k: v.numpy() for k, v in bigger.actor.state_dict().items()}
    with pytest.raises(ValueError, match="network_settings"):
        policy.load_weights(5, state)
    assert policy.version == 1
    after = policy.act(BEHAVIOR, steps)  # deterministic: the same weights act the same
    np.testing.assert_array_equal(after.continuous, before.continuous)
    np.testing.assert_array_equal(after.extras[LOG_PROBS], before.extras[LOG_PROBS])
