"""NumpyActor: the plain actors act in numpy as the torch actor does (same means, argmaxes, log probabilities and
entropies; samples from the same distributions, masks kept), other actors are left to torch, every copy of a
policy draws its own random numbers, and a process that acts with a NumpyPolicy never loads torch."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rayagents.configs.network import MemorySettings, NetworkSettings
from rayagents.learner.networks import PPO_ACTOR, SAC_ACTOR, Actor, ActorKind
from rayagents.configs.trainer import TrainerSettings
from rayagents.learner.algorithm import ActingPolicy
from rayagents.learner.numpy_actor import NumpyActor
from rayagents.learner.numpy_layout import is_plain, numpy_actor_of
from rayagents.learner.numpy_policy import NumpyPolicy, acts_in_numpy
from rayagents.learner.policy import InferencePolicy
from rayagents.learner.registry import trainer_entry
from rayagents.learner.weights import actor_weights
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
    fast = numpy_actor_of(actor)
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
    fast = numpy_actor_of(actor)
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
    assert numpy_actor_of(Actor(VECTORS, ActionSpec(2, ()), memory)) is None
    image = ObservationSpec(
        (3, 20, 20),
        (DimensionProperty.TRANSLATIONAL_EQUIVARIANCE, DimensionProperty.TRANSLATIONAL_EQUIVARIANCE, DimensionProperty.NONE),
        ObservationType.DEFAULT,
        "camera",
    )
    assert numpy_actor_of(Actor((image,), ActionSpec(2, ()), NetworkSettings(hidden_units=16))) is None
    assert numpy_actor_of(Actor(VECTORS, ActionSpec(2, ()), NetworkSettings(hidden_units=16))) is not None
    # What the EnvActors are handed follows: torch for the others, numpy for the plain one.
    image_spec = BehaviorSpec((image,), ActionSpec(2, ()))
    assert isinstance(policy_for(image_spec, NetworkSettings(hidden_units=16)), InferencePolicy)
    vectors = BehaviorSpec(VECTORS, ActionSpec(2, ()))
    assert isinstance(policy_for(vectors, memory), InferencePolicy)
    plain = policy_for(BehaviorSpec(VECTORS, ActionSpec(2, ())), NetworkSettings(hidden_units=16))
    assert isinstance(plain, NumpyPolicy)


def policy_for(spec: BehaviorSpec, network: NetworkSettings, trainer_type: str = "ppo") -> ActingPolicy:
    """The policy the registry gives an EnvActor for a behavior of ``spec``."""
    return trainer_entry(trainer_type).make_policy("Plain?team=0", spec, TrainerSettings(network_settings=network))


def goal_and_entities() -> tuple[ObservationSpec, ObservationSpec]:
    """A goal signal and a variable-length (buffer sensor) observation."""
    goal = ObservationSpec((2,), (DimensionProperty.NONE,), ObservationType.GOAL_SIGNAL, "goal")
    entities = ObservationSpec(
        (4, 3), (DimensionProperty.VARIABLE_SIZE, DimensionProperty.NONE), ObservationType.DEFAULT, "entities"
    )
    return goal, entities


@pytest.mark.parametrize("case", list(CASES))
def test_a_behavior_acts_in_numpy_only_where_the_torch_actor_is_plain(case: str) -> None:
    """The registry decides without torch (from the spec and the settings) which actors act in numpy; every one it
    sends to numpy is plain in torch, and the ones with goal signals or entities stay in torch."""
    action_spec, kind, normalize = CASES[case]
    network = NetworkSettings(hidden_units=16, normalize=normalize)
    assert acts_in_numpy(BehaviorSpec(VECTORS, action_spec), network)
    assert is_plain(Actor(VECTORS, action_spec, network, kind))
    goal, entities = goal_and_entities()
    for observations in ((*VECTORS, goal), (*VECTORS, entities)):
        assert not acts_in_numpy(BehaviorSpec(observations, action_spec), network)
        policy = policy_for(BehaviorSpec(observations, action_spec), network, "sac" if kind == SAC_ACTOR else "ppo")
        assert isinstance(policy, InferencePolicy)


def test_weights_of_another_actor_are_refused_by_a_numpy_policy() -> None:
    spec = BehaviorSpec(VECTORS, ActionSpec(2, (3,)))
    policy = policy_for(spec, NetworkSettings(hidden_units=16))
    other = ActionSpec(2, (4,))  # another branch size
    with pytest.raises(ValueError, match="network_settings"):
        policy.load_weights(0, actor_weights(Actor(VECTORS, other, NetworkSettings(hidden_units=16))))
    memory = NetworkSettings(hidden_units=16, memory=MemorySettings(sequence_length=4, memory_size=8))
    with pytest.raises(ValueError, match="not those of a plain actor"):
        policy.load_weights(0, actor_weights(Actor(VECTORS, spec.action_spec, memory)))
    assert policy.version == -1
    policy.load_weights(1, actor_weights(Actor(VECTORS, spec.action_spec, NetworkSettings(hidden_units=16))))
    with pytest.raises(ValueError, match="network_settings"):  # later versions must keep the first one's shapes
        policy.load_weights(2, actor_weights(Actor(VECTORS, spec.action_spec, NetworkSettings(hidden_units=32))))
    assert policy.version == 1


def plain_steps(n: int) -> DecisionSteps:
    """``n`` agents of the plain behavior ``Plain`` (VECTORS, 2 continuous actions and a branch of 3)."""
    return DecisionSteps(
        obs=observations(n, np.random.default_rng(7)),
        reward=np.zeros(n, dtype=np.float32),
        agent_id=np.arange(n, dtype=np.int32),
        action_mask=[np.zeros((n, 3), dtype=bool)],
        group_id=np.zeros(n, dtype=np.int32),
        group_reward=np.zeros(n, dtype=np.float32),
    )


def plain_policy() -> tuple[NumpyPolicy, dict[str, np.ndarray]]:
    """The NumpyPolicy the driver hands out for ``Plain``, and weights for it (a fresh torch actor's)."""
    spec = BehaviorSpec(VECTORS, ActionSpec(2, (3,)))
    network = NetworkSettings(hidden_units=16, normalize=True)
    policy = policy_for(spec, network)
    assert isinstance(policy, NumpyPolicy)
    return policy, actor_weights(Actor(VECTORS, spec.action_spec, network))


def test_each_copy_of_a_policy_draws_its_own_random_numbers() -> None:
    """The driver pickles one policy to every EnvActor: the copies must not share a random stream."""
    policy, weights = plain_policy()
    policy.load_weights(0, weights)
    steps = plain_steps(8)
    policy.act("Plain?team=0", steps)
    shipped = pickle.dumps(policy)
    first, second = pickle.loads(shipped), pickle.loads(shipped)
    a, b = first.act("Plain?team=0", steps), second.act("Plain?team=0", steps)
    assert not np.allclose(a.continuous, b.continuous)


ACT_WITHOUT_TORCH = """
import pickle, sys
policy, weights, steps = pickle.loads(open(sys.argv[1], "rb").read())
policy.load_weights(3, weights)
taken = policy.act("Plain?team=0", steps)
assert taken.policy_version == 3 and taken.continuous.shape == (4, 2), taken
print("torch loaded:", "torch" in sys.modules)
"""


def test_a_process_that_acts_with_a_numpy_policy_never_loads_torch(tmp_path: Path) -> None:
    """What an EnvActor does with a plain behavior's policy (unpickle it, load a weights version, act) in a fresh
    interpreter: torch stays out of the process (each EnvActor saves its start-up and memory)."""
    policy, weights = plain_policy()
    shipped = tmp_path / "policy.pickle"
    shipped.write_bytes(pickle.dumps((policy, weights, plain_steps(4))))
    done = subprocess.run(
        [sys.executable, "-c", ACT_WITHOUT_TORCH, str(shipped)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "torch loaded: False", done.stdout + done.stderr


ENV_ACTOR_IMPORTS = """
import sys
import rayagents.actors.env_actor  # the EnvActor's own class
import rayagents.learner.learner_actor  # what Ray loads for the learner's handle an EnvActor is given
import rayagents.learner.registry  # the PolicyFactory the driver hands it
print("torch loaded:", "torch" in sys.modules)
"""


def test_the_modules_an_env_actor_loads_import_no_torch() -> None:
    """Ray imports, in an EnvActor's process, its class, the class of every actor handle it receives (the
    LearnerActor's) and the modules of what it unpickles (the registry's PolicyFactory): none of them loads torch."""
    done = subprocess.run([sys.executable, "-c", ENV_ACTOR_IMPORTS], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "torch loaded: False", done.stdout + done.stderr
