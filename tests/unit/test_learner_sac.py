"""SAC: trajectories into the replay buffer, ML-Agents' steps-per-update rule, the losses and one gradient step of
every network (soft target update included), masks, two small in-process learning checks (no simulator), the
replay buffer beside the checkpoint on resume, the squashed ONNX export and the squashed acting policy."""

from __future__ import annotations

import dataclasses
import math
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from rayagents.configs.hyperparameters import SACSettings, ScheduleType
from rayagents.configs.network import NetworkSettings
from rayagents.configs.reward_signals import RewardSignalSettings, RewardSignalType
from rayagents.configs.trainer import TrainerSettings
from rayagents.learner.acting import ENTROPY, allowed_from_disabled
from rayagents.learner.checkpoint_format import POLICY
from rayagents.learner.checkpoints import REPLAY_BUFFER, CheckpointStore
from rayagents.learner.export import ONNX_OPSET, export_policy_model, output_names
from rayagents.learner.networks import PPO_ACTOR, SAC_ACTOR, Actor
from rayagents.learner.numpy_policy import NumpyPolicy
from rayagents.learner.policy import InferencePolicy
from rayagents.learner.registry import trainer_entry
from rayagents.learner.replay_buffer import ReplayBufferTooLarge
from rayagents.learner.results_storage import ResultsStorage
from rayagents.learner.sac import DONES, GRADIENT_STEPS_PER_VERSION, REWARDS, SAC, next_obs_key
from rayagents.learner.trainer import Trainer
from rayagents.learner.trajectory import ACTION_MASKS, CONTINUOUS_ACTIONS, DISCRETE_ACTIONS, obs_key
from rayagents.protocol.trajectories import Trajectory
from rayagents.protocol.types import (
    ActionSpec,
    BehaviorSpec,
    DecisionSteps,
    DimensionProperty,
    ObservationSpec,
    ObservationType,
)

BEHAVIOR = "Soft?team=0"
ACTION_SPECS = {
    "continuous": ActionSpec(2, ()),
    "discrete": ActionSpec(0, (3, 2)),
    "hybrid": ActionSpec(2, (3, 2)),
}
EXPECTED_UPDATE_STATS = {
    "Losses/Policy Loss",
    "Losses/Value Loss",
    "Losses/Q1 Loss",
    "Losses/Q2 Loss",
    "Policy/Continuous Entropy Coeff",
    "Policy/Discrete Entropy Coeff",
    "Policy/Learning Rate",
    "Policy/Updates per Step",
}


def vector(name: str, size: int) -> ObservationSpec:
    """A vector observation spec."""
    return ObservationSpec((size,), (DimensionProperty.NONE,), ObservationType.DEFAULT, name)


def spec_of(action_spec: ActionSpec) -> BehaviorSpec:
    """Two vector sensors (4 and 2 wide) and ``action_spec``."""
    return BehaviorSpec((vector("a", 4), vector("b", 2)), action_spec)


def sac_settings(
    hidden_units: int = 16,
    gamma: float = 0.9,
    strength: float = 1.0,
    normalize: bool = False,
    max_steps: int = 1_000_000,
    keep_checkpoints: int = 5,
    **hyperparameters: object,
) -> TrainerSettings:
    """SAC settings (``trainer_type: sac``) for a small network."""
    return TrainerSettings(
        trainer_type="sac",
        hyperparameters=SACSettings(**hyperparameters),  # type: ignore[arg-type]
        network_settings=NetworkSettings(hidden_units=hidden_units, num_layers=2, normalize=normalize),
        reward_signals={RewardSignalType.EXTRINSIC: RewardSignalSettings(gamma=gamma, strength=strength)},
        max_steps=max_steps,
        keep_checkpoints=keep_checkpoints,
    )


def random_trajectory(
    spec: BehaviorSpec,
    length: int,
    rng: np.random.Generator,
    done: bool = False,
    interrupted: bool = False,
    version: int = 0,
    masked: bool = False,
    entropy: float | None = 1.25,
) -> Trajectory:
    """A trajectory of random observations, squashed continuous actions and allowed discrete actions; with
    ``masked`` some actions of each branch but the first are disabled (the wire's True = disabled)."""
    action = spec.action_spec
    branches = action.discrete_branches
    total = sum(branches)
    starts = np.cumsum((0, *branches[:-1])).astype(int)
    disabled = None
    if masked and total:
        disabled = rng.random((length, total)) < 0.4
        disabled[:, starts] = False
    if branches:
        discrete = np.stack([rng.integers(0, b, size=length) for b in branches], axis=1).astype(np.int64)
        if disabled is not None:
            for branch, start in enumerate(starts):
                taken_disabled = disabled[np.arange(length), start + discrete[:, branch]]
                discrete[taken_disabled, branch] = 0
    else:
        discrete = np.zeros((length, 0), dtype=np.int64)
    return Trajectory(
        obs=tuple(rng.normal(size=(length, *s.shape)).astype(np.float32) for s in spec.observation_specs),
        next_obs=tuple(rng.normal(size=s.shape).astype(np.float32) for s in spec.observation_specs),
        continuous_actions=rng.uniform(-1.0, 1.0, size=(length, action.continuous_size)).astype(np.float32),
        discrete_actions=discrete,
        rewards=rng.normal(size=length).astype(np.float32),
        done=done,
        interrupted=interrupted,
        versions=np.full(length, version, dtype=np.int32),
        extras={} if entropy is None else {ENTROPY: np.full(length, entropy, dtype=np.float32)},
        action_mask=disabled,
        behavior=BEHAVIOR,
    )


def all_trainable(trajectories: list[Trajectory]) -> list[np.ndarray]:
    """Every experience may be trained on."""
    return [np.ones(len(t), dtype=bool) for t in trajectories]


def filled_sac(kind: str, rng: np.random.Generator, experiences: int = 64, **hyperparameters: object) -> SAC:
    """A seeded SAC of ``ACTION_SPECS[kind]`` holding ``experiences`` random experiences (masked, some ending)."""
    torch.manual_seed(0)
    spec = spec_of(ACTION_SPECS[kind])
    sac = SAC(spec, sac_settings(**hyperparameters), seed=0)
    trajectories = [random_trajectory(spec, 8, rng, done=i % 2 == 0, masked=True) for i in range(experiences // 8)]
    sac.ingest(trajectories, all_trainable(trajectories))
    return sac


def gradient_steps(sac: SAC) -> int:
    """Adam steps the actor's optimizer made: the gradient steps, counted apart from SAC's own counter."""
    parameter = next(sac.actor.parameters())
    state = sac.policy_optimizer.state.get(parameter, {})
    return int(state["step"]) if "step" in state else 0


def mlagents_gradient_steps(step: int, buffer_init_steps: int, steps_per_update: float) -> int:
    """ML-Agents' ``OffPolicyTrainer._update_policy`` loop, from ``update_steps = 1``: how many steps it makes."""
    update_steps = 1
    while (step - buffer_init_steps) / update_steps > steps_per_update:
        update_steps += 1
    return update_steps - 1


def parameters(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Copies of a module's parameters, by name."""
    return {name: p.detach().clone() for name, p in module.named_parameters()}


def store(folder: Path) -> CheckpointStore:
    """The checkpoints of Soft in ``folder``."""
    return CheckpointStore(ResultsStorage(str(folder)), str(folder), "Soft")


# ---- 1. trajectories into the replay buffer ----------------------------------------------------------------------


def test_ingest_stores_the_next_observations_and_done_only_where_an_episode_truly_ended() -> None:
    torch.manual_seed(0)
    spec = spec_of(ACTION_SPECS["hybrid"])
    sac = SAC(spec, sac_settings())
    rng = np.random.default_rng(0)
    ended = random_trajectory(spec, 4, rng, done=True, masked=True, entropy=1.0)
    interrupted = random_trajectory(spec, 3, rng, done=True, interrupted=True, entropy=2.0)
    cut = random_trajectory(spec, 2, rng, done=False, entropy=4.0)
    trajectories = [ended, interrupted, cut]
    stats = sac.ingest(trajectories, all_trainable(trajectories)).stats
    assert sac.buffered_steps == 9
    held = sac.buffer.state_dict()
    for k in range(2):
        np.testing.assert_array_equal(held[obs_key(k)].numpy(), np.concatenate([t.obs[k] for t in trajectories]))
        after = np.concatenate([np.concatenate([t.obs[k][1:], t.next_obs[k][None]]) for t in trajectories])
        np.testing.assert_array_equal(held[next_obs_key(k)].numpy(), after)
    np.testing.assert_array_equal(held[DONES].numpy(), [0, 0, 0, 1, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(held[REWARDS].numpy(), np.concatenate([t.rewards for t in trajectories]))
    np.testing.assert_array_equal(
        held[CONTINUOUS_ACTIONS].numpy(), np.concatenate([t.continuous_actions for t in trajectories])
    )
    np.testing.assert_array_equal(
        held[DISCRETE_ACTIONS].numpy(), np.concatenate([t.discrete_actions for t in trajectories])
    )
    assert ended.action_mask is not None and ended.action_mask.any()
    allowed = np.concatenate([1.0 - ended.action_mask.astype(np.float32), np.ones((5, 5), np.float32)])
    np.testing.assert_array_equal(held[ACTION_MASKS].numpy(), allowed)  # 1 = allowed, the wire's mask flipped

    obs = [torch.as_tensor(np.concatenate([t.obs[k] for t in trajectories])) for k in range(2)]
    with torch.no_grad():
        mean_value = float(sac.value_network(obs)["extrinsic"].mean())
    assert set(stats) == {"Policy/Extrinsic Value", "Policy/Entropy"}
    assert stats["Policy/Extrinsic Value"] == pytest.approx(mean_value, rel=1e-5, abs=1e-6)
    assert stats["Policy/Entropy"] == pytest.approx((4 * 1.0 + 3 * 2.0 + 2 * 4.0) / 9)


def test_experiences_not_trainable_are_not_stored_and_the_kept_ones_keep_their_own_next_observation() -> None:
    torch.manual_seed(0)
    spec = spec_of(ACTION_SPECS["continuous"])
    sac = SAC(spec, sac_settings())
    rng = np.random.default_rng(1)
    trajectory = random_trajectory(spec, 4, rng, done=True, entropy=None)
    stats = sac.ingest([trajectory], [np.array([True, False, True, False])]).stats
    assert sac.buffered_steps == 2
    held = sac.buffer.state_dict()
    np.testing.assert_array_equal(held[obs_key(0)].numpy(), trajectory.obs[0][[0, 2]])
    np.testing.assert_array_equal(held[next_obs_key(0)].numpy(), trajectory.obs[0][[1, 3]])
    np.testing.assert_array_equal(held[REWARDS].numpy(), trajectory.rewards[[0, 2]])
    np.testing.assert_array_equal(held[DONES].numpy(), [0, 0])  # the ending experience was not kept
    assert set(stats) == {"Policy/Extrinsic Value"}  # no entropies were kept by the acting policy
    none_kept = sac.ingest([trajectory], [np.zeros(4, dtype=bool)]).stats
    assert sac.buffered_steps == 2 and "Policy/Extrinsic Value" in none_kept
    assert sac.ingest([], []).stats == {}


def test_the_critics_normalize_observations_as_the_actor_does() -> None:
    torch.manual_seed(0)
    spec = spec_of(ACTION_SPECS["hybrid"])
    sac = SAC(spec, sac_settings(normalize=True))
    rng = np.random.default_rng(2)
    trajectory = dataclasses.replace(
        random_trajectory(spec, 20, rng),
        obs=(
            rng.normal(5.0, 3.0, size=(20, 4)).astype(np.float32),
            rng.normal(-2.0, 0.5, size=(20, 2)).astype(np.float32),
        ),
    )
    sac.ingest([trajectory], all_trainable([trajectory]))
    actor_state = sac.actor.network_body.observation_encoder.state_dict()
    assert actor_state["processors.0.normalizer.mean"][0].item() > 1.0  # the actor's normalizer moved
    for body in (
        sac.q_network.q1_network.network_body,
        sac.q_network.q2_network.network_body,
        sac.value_network.network_body,
        sac.target_network.network_body,
    ):
        state = body.observation_encoder.state_dict()
        for key, value in actor_state.items():
            assert torch.equal(state[key], value), key


def test_sac_comes_from_the_registry_and_trains_on_experiences_of_any_past_version() -> None:
    torch.manual_seed(0)
    spec = spec_of(ACTION_SPECS["hybrid"])
    trainer = Trainer(BEHAVIOR, spec, sac_settings(batch_size=8, steps_per_update=1.0), seed=0)
    assert isinstance(trainer.algorithm, SAC) and trainer.rules.max_policy_lag is None
    rng = np.random.default_rng(3)
    for _ in range(3):
        trainer.ingest([random_trajectory(spec, 10, rng, version=trainer.version)])
        assert trainer.maybe_update() and not trainer.maybe_update()  # 9 or 10 due steps: one version each
    assert trainer.version == 3
    trainer.ingest([random_trajectory(spec, 6, rng, version=0)])  # acted by weights three versions old
    assert trainer.buffered_steps == 36 and trainer.dropped_steps == 0
    trainer.ingest([random_trajectory(spec, 5, rng, version=4)])  # weights this trainer never made
    assert trainer.buffered_steps == 36 and trainer.dropped_steps == 5 and trainer.step == 41


def test_a_replay_buffer_no_node_can_hold_is_refused_when_the_trainer_is_made() -> None:
    spec = spec_of(ACTION_SPECS["continuous"])
    with pytest.raises(ReplayBufferTooLarge, match=r"buffer_size 1000000000000 .*set buffer_size to at most \d+"):
        Trainer(BEHAVIOR, spec, sac_settings(buffer_size=10**12))


# ---- 2. the steps-per-update rule ------------------------------------------------------------------------------------


def test_gradient_steps_follow_mlagents_steps_per_update_rule_as_steps_arrive() -> None:
    torch.manual_seed(0)
    spec = spec_of(ACTION_SPECS["hybrid"])
    init, ratio = 20, 2.0
    trainer = Trainer(
        BEHAVIOR, spec, sac_settings(batch_size=8, buffer_init_steps=init, steps_per_update=ratio), seed=0
    )
    sac = trainer.algorithm
    assert isinstance(sac, SAC)
    rng = np.random.default_rng(4)
    per_call: list[int] = []
    for length in (7, 9, 3, 13, 30, 5, 61, 1, 1, 170):
        trainer.ingest([random_trajectory(spec, length, rng, done=True, version=trainer.version)])
        while True:
            before = gradient_steps(sac)
            if not trainer.maybe_update():
                break
            per_call.append(gradient_steps(sac) - before)
        assert gradient_steps(sac) == (mlagents_gradient_steps(trainer.step, init, ratio) if trainer.step > init else 0)
        assert not trainer.update_due
    assert trainer.step == 300 and gradient_steps(sac) == 139  # (300 - 20) / u > 2 for u = 1 ... 139
    assert sac.update_steps == 140
    assert trainer.version == len(per_call) and all(0 < made <= GRADIENT_STEPS_PER_VERSION for made in per_call)
    assert per_call[-3:] == [32, 32, 21]  # the last 170 steps made 139 - 54 due: at most 32 per version
    summary = trainer.summary(trainer.step)
    assert "Policy/Updates per Step" in summary and 0.0 < summary["Policy/Updates per Step"] <= 1 / ratio


def test_nothing_is_due_before_buffer_init_steps_or_a_minibatch_is_held() -> None:
    torch.manual_seed(0)
    spec = spec_of(ACTION_SPECS["continuous"])
    rng = np.random.default_rng(5)
    waiting = SAC(spec, sac_settings(batch_size=4, buffer_init_steps=30, steps_per_update=1.0), seed=0)
    waiting.ingest([random_trajectory(spec, 29, rng)], [np.ones(29, dtype=bool)])
    assert not waiting.ready_for_update(29) and waiting.ready_for_update(32)
    with pytest.raises(ValueError, match="no gradient step is due"):
        waiting.update(29)
    assert gradient_steps(waiting) == 0

    small = SAC(spec, sac_settings(batch_size=32, buffer_init_steps=0, steps_per_update=2.0), seed=0)
    small.ingest([random_trajectory(spec, 10, rng)], [np.ones(10, dtype=bool)])
    assert not small.ready_for_update(10)  # (10 - 0) / 1 > 2, but 10 experiences are no minibatch of 32
    small.ingest([random_trajectory(spec, 30, rng)], [np.ones(30, dtype=bool)])
    assert small.ready_for_update(40)
    stats = small.update(40)
    assert gradient_steps(small) == mlagents_gradient_steps(40, 0, 2.0) == 19 and not small.ready_for_update(40)
    assert stats["Policy/Updates per Step"] == pytest.approx(19 / 40)


def test_one_update_makes_at_most_gradient_steps_per_version() -> None:
    sac = filled_sac("continuous", np.random.default_rng(6), experiences=40, batch_size=8, steps_per_update=0.5)
    made = []
    while sac.ready_for_update(40):
        before = gradient_steps(sac)
        sac.update(40)
        made.append(gradient_steps(sac) - before)
    assert made == [32, 32, 15]  # 40 / u > 0.5 for u = 1 ... 79
    assert sac.update_steps == 80


# ---- 3. losses and one gradient step ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(ACTION_SPECS))
def test_one_gradient_step_moves_every_network_and_the_target_by_tau(kind: str) -> None:
    sac = filled_sac(
        kind,
        np.random.default_rng(7),
        batch_size=16,
        tau=0.1,
        init_entcoef=0.5,
        learning_rate=1e-3,
        learning_rate_schedule=ScheduleType.LINEAR,
        max_steps=1000,
    )
    spec = ACTION_SPECS[kind]
    actor, q1, q2 = parameters(sac.actor), parameters(sac.q_network.q1_network), parameters(sac.q_network.q2_network)
    value, target = parameters(sac.value_network), parameters(sac.target_network)
    coefficients = parameters(sac.log_ent_coef)
    assert all(torch.equal(target[name], value[name]) for name in value)  # the target starts as a copy

    stats = sac.update(step=2)  # (2 - 0) / 1 > 1 but (2 - 0) / 2 is not: exactly one gradient step
    assert gradient_steps(sac) == 1 and sac.update_steps == 2

    assert set(stats) == EXPECTED_UPDATE_STATS
    assert all(math.isfinite(v) for v in stats.values()), stats
    assert stats["Policy/Learning Rate"] == pytest.approx(1e-3 * (1 - 2 / 1000), rel=1e-6)
    assert sac.policy_optimizer.param_groups[0]["lr"] == stats["Policy/Learning Rate"]
    assert stats["Policy/Updates per Step"] == pytest.approx(1 / 2)
    # A fresh policy is far more random than the target entropies: the coefficients start going down.
    with torch.no_grad():
        continuous_coefficient = float(sac.log_ent_coef.continuous.exp())
        discrete_coefficients = sac.log_ent_coef.discrete.exp()
    if spec.continuous_size:
        assert stats["Policy/Continuous Entropy Coeff"] == pytest.approx(continuous_coefficient)
        assert continuous_coefficient < 0.5
    else:
        assert stats["Policy/Continuous Entropy Coeff"] == pytest.approx(0.5)  # nothing trains it
    if spec.discrete_size:
        assert stats["Policy/Discrete Entropy Coeff"] == pytest.approx(float(discrete_coefficients.mean()))
        assert bool(torch.all(discrete_coefficients < 0.5))
    else:
        assert stats["Policy/Discrete Entropy Coeff"] == 0.0

    for before, module in ((actor, sac.actor), (q1, sac.q_network.q1_network), (q2, sac.q_network.q2_network)):
        for name, after in parameters(module).items():
            assert not torch.equal(after, before[name]), name
    value_after = parameters(sac.value_network)
    for name, after in value_after.items():
        assert not torch.equal(after, value[name]), name
    continuous_moved = not torch.equal(sac.log_ent_coef.continuous.detach(), coefficients["continuous"])
    assert continuous_moved == (spec.continuous_size > 0)  # only the continuous part's entropy trains it
    if spec.discrete_size:
        assert not torch.equal(sac.log_ent_coef.discrete.detach(), coefficients["discrete"])
    for name, after in parameters(sac.target_network).items():
        expected = target[name] + 0.1 * (value_after[name] - target[name])
        torch.testing.assert_close(after, expected, rtol=1e-6, atol=1e-7)
        assert not torch.equal(after, value_after[name]), name


@pytest.mark.parametrize("kind", ["continuous", "discrete"])
def test_q_losses_regress_on_the_scaled_reward_plus_the_discounted_target_value_unless_done(kind: str) -> None:
    sac = filled_sac(kind, np.random.default_rng(8), experiences=96, gamma=0.8, strength=2.0)
    batch = sac.buffer.sample(96, torch.Generator().manual_seed(1))
    assert 0 < float(batch[DONES].sum()) < 96
    losses = sac.losses(batch)
    obs = [batch[obs_key(k)] for k in range(2)]
    with torch.no_grad():
        after = sac.target_network([batch[next_obs_key(k)] for k in range(2)])["extrinsic"]
        backup = 2.0 * batch[REWARDS] + 0.8 * (1.0 - batch[DONES]) * after
        for q_network, loss in ((sac.q_network.q1_network, losses.q1_loss), (sac.q_network.q2_network, losses.q2_loss)):
            q = q_network(obs, batch[CONTINUOUS_ACTIONS])["extrinsic"]
            if kind == "discrete":  # branches (3, 2): the Q of each branch's action taken, averaged over branches
                taken = batch[DISCRETE_ACTIONS]
                q = (q[:, :3].gather(1, taken[:, :1]).squeeze(1) + q[:, 3:].gather(1, taken[:, 1:]).squeeze(1)) / 2
            else:
                q = q.squeeze(1)
            assert loss.item() == pytest.approx(float(0.5 * ((backup - q) ** 2).mean()), rel=1e-5)
    assert all(t.requires_grad for t in (losses.policy_loss, losses.value_loss, losses.q1_loss, losses.entropy_loss))


@pytest.mark.parametrize("kind", ["discrete", "hybrid"])
def test_masked_discrete_actions_get_no_probability_and_the_losses_stay_finite(kind: str) -> None:
    sac = filled_sac(kind, np.random.default_rng(9), experiences=64, batch_size=32)
    assert float(sac.buffer.state_dict()[ACTION_MASKS].min()) == 0.0  # the buffer holds masked experiences
    for _ in range(3):
        stats = sac.update(step=sac.update_steps + 1)
        assert all(math.isfinite(v) for v in stats.values()), stats
    rng = np.random.default_rng(10)
    n = 2000
    obs = [torch.as_tensor(rng.normal(size=(n, size)).astype(np.float32)) for size in (4, 2)]
    disabled = rng.random((n, 5)) < 0.5
    disabled[:, [0, 3]] = False
    disabled[:, 1] = True  # the second action of the first branch is always masked
    allowed = torch.as_tensor(allowed_from_disabled(disabled, n, 5))
    with torch.no_grad():
        _, _, branch_log_probs = sac.actor.reparameterized(obs, allowed)
    probabilities = torch.cat([lp.exp() for lp in branch_log_probs], dim=1)
    assert torch.all(probabilities[torch.as_tensor(disabled)] == 0.0)
    torch.testing.assert_close(probabilities[:, :3].sum(1), torch.ones(n))
    chosen = sac.actor.act(obs, allowed, deterministic=False).discrete.numpy()
    for branch, start in enumerate((0, 3)):
        assert not disabled[np.arange(n), start + chosen[:, branch]].any()
    assert set(np.unique(chosen[:, 0])) == {0, 2}  # a sample: both allowed actions of the first branch show up


def test_the_squashed_gaussian_is_reparameterized_with_its_log_density_corrected_for_tanh() -> None:
    torch.manual_seed(0)
    spec = spec_of(ActionSpec(2, (3,)))
    actor = Actor(spec.observation_specs, spec.action_spec, NetworkSettings(hidden_units=16), SAC_ACTOR)
    n = 64
    obs = [torch.randn(n, 4) * 2, torch.randn(n, 2)]
    heads = actor.action_heads
    assert heads.tanh_squash and heads.continuous is not None and heads.continuous.log_sigma_layer is not None
    with torch.no_grad():
        mean, log_std = heads.continuous(actor.network_body(obs))
    assert log_std.shape == (n, 2) and not torch.allclose(log_std, log_std[:1].expand(n, 2))  # depends on the state
    torch.manual_seed(5)
    sample, log_prob, (branch,) = actor.reparameterized(obs, None)
    torch.manual_seed(5)
    unsquashed = mean + log_std.exp() * torch.randn(n, 2)
    torch.testing.assert_close(sample.detach(), torch.tanh(unsquashed))
    gaussian = torch.distributions.Normal(mean, log_std.exp()).log_prob(unsquashed).sum(dim=1)
    correction = torch.log(1.0 - torch.tanh(unsquashed) ** 2 + 1e-6).sum(dim=1)
    torch.testing.assert_close(log_prob.detach(), gaussian - correction, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(branch.exp().sum(dim=1).detach(), torch.ones(n))
    (sample.sum() + log_prob.sum()).backward()  # the sample carries gradients back to the mean and sigma layers
    assert heads.continuous.mu.weight.grad is not None and heads.continuous.mu.weight.grad.abs().sum() > 0
    assert heads.continuous.log_sigma_layer.weight.grad is not None
    assert heads.continuous.log_sigma_layer.weight.grad.abs().sum() > 0


def test_the_squashed_actor_evaluates_its_own_samples_at_the_log_probability_it_drew_them_with() -> None:
    torch.manual_seed(1)
    spec = spec_of(ActionSpec(2, (3, 2)))
    actor = Actor(spec.observation_specs, spec.action_spec, NetworkSettings(hidden_units=16), SAC_ACTOR)
    obs = [torch.randn(256, 4), torch.randn(256, 2)]
    sample = actor.act(obs, deterministic=False)
    assert sample.squashed and float(sample.continuous.abs().max()) < 1.0
    inside = sample.continuous.abs().amax(dim=1) < 0.999  # atanh is exact enough away from the edges
    assert int(inside.sum()) > 200
    with torch.no_grad():
        log_prob, entropy = actor.evaluate(obs, None, sample.continuous, sample.discrete)
    torch.testing.assert_close(log_prob[inside], sample.log_prob[inside], rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(entropy, sample.entropy)


# ---- 4. it learns ------------------------------------------------------------------------------------------------


Reward = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
"""A bandit's reward: (sign per agent, continuous actions, discrete actions) → reward per agent."""


def bandit_trainer(action_spec: ActionSpec) -> Trainer:
    """A seeded SAC trainer of a one-step task: observation (sign, 1), one decision, episode over."""
    torch.manual_seed(0)
    spec = BehaviorSpec((vector("sign", 2),), action_spec)
    settings = sac_settings(
        hidden_units=32,
        batch_size=64,
        buffer_size=2000,
        steps_per_update=2.0,
        init_entcoef=0.1,
        learning_rate=3e-3,
        learning_rate_schedule=ScheduleType.CONSTANT,
        tau=0.05,
    )
    return Trainer(BEHAVIOR, spec, settings, seed=0)


def play_bandit(trainer: Trainer, rounds: int, reward: Reward) -> None:
    """``rounds`` times: 32 agents act once each with the trainer's actor (sampling), get ``reward(sign, sample)``,
    their one-step episodes go in, and every due update is made."""
    sac = trainer.algorithm
    assert isinstance(sac, SAC)
    rng = np.random.default_rng(0)
    for _ in range(rounds):
        sign = rng.choice([-1.0, 1.0], size=32).astype(np.float32)
        obs = np.stack([sign, np.ones(32, np.float32)], axis=1)
        sample = sac.actor.act([torch.as_tensor(obs)], deterministic=False)
        continuous, discrete = sample.continuous.numpy(), sample.discrete.numpy()
        rewards = reward(sign, continuous, discrete)
        trainer.ingest(
            [
                Trajectory(
                    obs=(obs[i : i + 1],),
                    next_obs=(obs[i],),
                    continuous_actions=continuous[i : i + 1],
                    discrete_actions=discrete[i : i + 1],
                    rewards=rewards[i : i + 1].astype(np.float32),
                    done=True,
                    interrupted=False,
                    versions=np.full(1, trainer.version, dtype=np.int32),
                    behavior=BEHAVIOR,
                )
                for i in range(32)
            ]
        )
        while trainer.maybe_update():
            pass


SIGNS = torch.tensor([[1.0, 1.0], [-1.0, 1.0]])


def test_sac_learns_a_state_dependent_continuous_target() -> None:
    trainer = bandit_trainer(ActionSpec(1, ()))
    play_bandit(trainer, 24, lambda sign, continuous, discrete: -((continuous[:, 0] - 0.5 * sign) ** 2))
    sac = trainer.algorithm
    assert isinstance(sac, SAC)
    with torch.no_grad():
        heads = sac.actor.action_heads
        assert heads.continuous is not None
        mean, _ = heads.continuous(sac.actor.network_body([SIGNS]))
        chosen = sac.actor.act([SIGNS], deterministic=True).continuous
    torch.testing.assert_close(chosen, torch.tanh(mean))  # the squashed mean is what the player gets
    assert chosen[0, 0].item() == pytest.approx(0.5, abs=0.1)
    assert chosen[1, 0].item() == pytest.approx(-0.5, abs=0.1)


def test_sac_learns_which_discrete_action_pays_in_each_state() -> None:
    trainer = bandit_trainer(ActionSpec(0, (3,)))
    play_bandit(trainer, 12, lambda sign, continuous, discrete: (discrete[:, 0] == np.where(sign > 0, 2, 0)) * 1.0)
    sac = trainer.algorithm
    assert isinstance(sac, SAC)
    with torch.no_grad():
        _, _, (log_probs,) = sac.actor.reparameterized([SIGNS], None)
    probabilities = log_probs.exp()
    assert probabilities.argmax(dim=1).tolist() == [2, 0]
    assert probabilities[0, 2].item() > 0.9 and probabilities[1, 0].item() > 0.9


# ---- 5. checkpoints and the saved replay buffer ----------------------------------------------------------------------


def checkpointing_trainer(save_replay_buffer: bool, seed: int = 0) -> Trainer:
    """A seeded hybrid SAC trainer of Soft with a small replay buffer."""
    torch.manual_seed(seed)
    settings = sac_settings(
        batch_size=8,
        buffer_size=50,
        buffer_init_steps=10,
        steps_per_update=3.0,
        save_replay_buffer=save_replay_buffer,
        normalize=True,
        keep_checkpoints=1,
    )
    return Trainer(BEHAVIOR, spec_of(ACTION_SPECS["hybrid"]), settings, seed=0)


def train(trainer: Trainer, lengths: tuple[int, ...], seed: int = 0) -> None:
    """Ingests a trajectory of each length, each followed by every due update."""
    rng = np.random.default_rng(seed)
    for length in lengths:
        trainer.ingest([random_trajectory(trainer.behavior_spec, length, rng, done=True, version=trainer.version)])
        while trainer.maybe_update():
            pass


def sac_of(trainer: Trainer) -> SAC:
    """The trainer's SAC."""
    assert isinstance(trainer.algorithm, SAC)
    return trainer.algorithm


def test_save_replay_buffer_writes_it_beside_the_checkpoint_and_resume_restores_it_exactly(tmp_path: Path) -> None:
    source = checkpointing_trainer(save_replay_buffer=True)
    train(source, (13, 13, 13))
    source.save_checkpoint(store(tmp_path))
    train(source, (13, 13, 18), seed=1)  # 83 steps: the ring of 50 wrapped around
    source.save_checkpoint(store(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "Soft-83.onnx",
        "Soft-83.pt",
        "checkpoint.pt",
        REPLAY_BUFFER,  # one copy, overwritten, never rotated away
    ]
    saved = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert set(saved) == {
        POLICY,
        "global_step",
        "Optimizer:q_network",
        "Optimizer:value_network",
        "Optimizer:target_network",
        "Optimizer:policy_optimizer",
        "Optimizer:value_optimizer",
        "Optimizer:entropy_optimizer",
        "Optimizer:log_ent_coef",
    }
    in_ring = sac_of(source).buffer.state_dict()
    on_disk = torch.load(tmp_path / REPLAY_BUFFER, weights_only=True)
    assert set(on_disk) == {"replay_buffer"} and set(on_disk["replay_buffer"]) == set(in_ring)
    assert all(torch.equal(on_disk["replay_buffer"][name], in_ring[name]) for name in in_ring)
    held = sac_of(source).buffer.oldest_first()

    resumed = checkpointing_trainer(save_replay_buffer=True, seed=1)
    assert resumed.restore(store(tmp_path), reset_global_step=False) == []
    assert resumed.step == source.step == 83 and resumed.version == 1
    assert resumed.buffered_steps == source.buffered_steps == 50
    restored = sac_of(resumed).buffer.oldest_first()
    assert all(torch.equal(restored[name], held[name]) for name in held)
    for name, tensor in sac_of(source).target_network.state_dict().items():
        assert torch.equal(sac_of(resumed).target_network.state_dict()[name], tensor), name
    assert torch.equal(sac_of(resumed).log_ent_coef.discrete, sac_of(source).log_ent_coef.discrete)
    expected = source.weights_snapshot().state
    assert all(np.array_equal(resumed.weights_snapshot().state[k], expected[k]) for k in expected)

    # The gradient steps are re-counted for the step: no burst of "due" updates right after the resume.
    assert sac_of(resumed).update_steps >= sac_of(source).update_steps - 1
    before = gradient_steps(sac_of(resumed))
    while resumed.maybe_update():
        pass
    assert gradient_steps(sac_of(resumed)) - before <= 1
    # ... and the next steps make as many gradient steps as in the run that was not interrupted.
    before_source, before_resumed = gradient_steps(sac_of(source)), gradient_steps(sac_of(resumed))
    train(source, (30,), seed=2)
    train(resumed, (30,), seed=2)
    assert abs(
        (gradient_steps(sac_of(resumed)) - before_resumed) - (gradient_steps(sac_of(source)) - before_source)
    ) <= 1


def test_without_save_replay_buffer_no_buffer_is_written_or_asked_for_on_resume(tmp_path: Path) -> None:
    source = checkpointing_trainer(save_replay_buffer=False)
    train(source, (13, 13))
    assert source.buffered_steps == 26
    source.save_checkpoint(store(tmp_path))
    assert not (tmp_path / REPLAY_BUFFER).exists()
    resumed = checkpointing_trainer(save_replay_buffer=False, seed=1)
    assert resumed.restore(store(tmp_path), reset_global_step=False) == []
    assert resumed.step == 26 and resumed.buffered_steps == 0 and not resumed.update_due


def test_a_missing_or_unreadable_replay_buffer_warns_and_the_buffer_starts_empty(tmp_path: Path) -> None:
    source = checkpointing_trainer(save_replay_buffer=False)
    train(source, (13, 13))
    source.save_checkpoint(store(tmp_path))
    resumed = checkpointing_trainer(save_replay_buffer=True, seed=1)
    warnings = resumed.restore(store(tmp_path), reset_global_step=False)
    assert len(warnings) == 1
    assert f"{tmp_path / REPLAY_BUFFER} does not exist" in warnings[0] and "starts empty" in warnings[0]
    assert resumed.step == 26 and resumed.buffered_steps == 0

    (tmp_path / REPLAY_BUFFER).write_bytes(b"PK\x03\x04 not a replay buffer")
    damaged = checkpointing_trainer(save_replay_buffer=True, seed=2)
    warnings = damaged.restore(store(tmp_path), reset_global_step=False)
    assert len(warnings) == 1
    assert f"checkpoint {tmp_path / REPLAY_BUFFER} cannot be read" in warnings[0]
    assert "the replay buffer starts empty" in warnings[0]
    assert damaged.step == 26 and damaged.buffered_steps == 0


def test_initialize_from_takes_the_weights_but_not_the_replay_buffer(tmp_path: Path) -> None:
    source = checkpointing_trainer(save_replay_buffer=True)
    train(source, (13, 13, 13))
    source.save_checkpoint(store(tmp_path))
    assert (tmp_path / REPLAY_BUFFER).exists()
    initialized = checkpointing_trainer(save_replay_buffer=True, seed=1)
    assert initialized.restore(store(tmp_path), reset_global_step=True) == []
    assert initialized.step == 0 and initialized.buffered_steps == 0
    assert sac_of(initialized).update_steps == 1
    expected = source.weights_snapshot().state
    assert all(np.array_equal(initialized.weights_snapshot().state[k], expected[k]) for k in expected)


# ---- 6. the exported model and the acting policy -----------------------------------------------------------------


def confident_sac(kind: str) -> SAC:
    """A normalized SAC whose normalizer moved and whose means reach well beyond ±1 (so tanh visibly squashes)."""
    torch.manual_seed(0)
    sac = SAC(spec_of(ACTION_SPECS[kind]), sac_settings(hidden_units=32, normalize=True))
    sac.actor.update_normalization([torch.randn(100, 4) * 4 + 3, torch.randn(100, 2) - 2])
    heads = sac.actor.action_heads
    with torch.no_grad():
        if heads.continuous is not None:
            heads.continuous.mu.weight.mul_(15.0)
        if heads.discrete is not None:
            for layer in heads.discrete.branches:
                layer.weight.mul_(10.0)
    return sac


@pytest.mark.parametrize("kind", sorted(ACTION_SPECS))
def test_sac_onnx_export_gives_the_squashed_mean_and_the_argmax_of_torch(tmp_path: Path, kind: str) -> None:
    sac = confident_sac(kind)
    spec = ACTION_SPECS[kind]
    path = export_policy_model(sac.actor, tmp_path / "Soft.onnx")
    model = onnx.load(path)
    opsets = {entry.domain: entry.version for entry in model.opset_import}
    assert opsets.get("", opsets.get("ai.onnx")) == ONNX_OPSET == 9
    assert [o.name for o in model.graph.output] == output_names(sac.actor)

    rng = np.random.default_rng(11)
    n = 256
    obs = [rng.normal(3.0, 4.0, size=(n, 4)).astype(np.float32), rng.normal(-2.0, 1.0, size=(n, 2)).astype(np.float32)]
    inputs = {f"obs_{i}": o for i, o in enumerate(obs)}
    total = sum(spec.discrete_branches)
    allowed = np.ones((n, total), dtype=np.float32)
    if total:
        disabled = rng.random((n, total)) < 0.3
        disabled[:, [0, 3]] = False
        allowed = allowed_from_disabled(disabled, n, total)
        inputs["action_masks"] = allowed
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    results = dict(zip(names, session.run(None, inputs)))
    with torch.no_grad():
        encoding = sac.actor.network_body([torch.as_tensor(o) for o in obs])
        heads = sac.actor.action_heads
        if heads.continuous is not None:
            mean, _ = heads.continuous(encoding)
            squashed = torch.tanh(mean).numpy()
            deterministic = results["deterministic_continuous_actions"]
            np.testing.assert_allclose(deterministic, squashed, rtol=1e-4, atol=1e-5)
            assert np.abs(mean.numpy()).max() > 3.0  # beyond where PPO's clipping would cut
            assert np.abs(deterministic).max() <= 1.0 and np.abs(results["continuous_actions"]).max() <= 1.0
            assert results["continuous_actions"].shape == (n, spec.continuous_size)
            assert not np.allclose(results["continuous_actions"], deterministic, atol=1e-3)  # a sample
        if heads.discrete is not None:
            log_probs = heads.discrete(encoding, torch.as_tensor(allowed))
            argmax = torch.cat([lp.argmax(dim=1, keepdim=True) for lp in log_probs], dim=1).numpy()
            np.testing.assert_array_equal(results["deterministic_discrete_actions"], argmax)
            for branch, start in enumerate((0, 3)):
                sampled = results["discrete_actions"][:, branch]
                assert allowed[np.arange(n), start + sampled].all()


def decision_steps(n: int, rng: np.random.Generator) -> DecisionSteps:
    """A batch of ``n`` agents of the hybrid spec with random observations, every action allowed."""
    return DecisionSteps(
        obs=[rng.normal(3.0, 4.0, size=(n, 4)).astype(np.float32), rng.normal(size=(n, 2)).astype(np.float32)],
        reward=np.zeros(n, dtype=np.float32),
        agent_id=np.arange(n, dtype=np.int32),
        action_mask=[np.zeros((n, 3), bool), np.zeros((n, 2), bool)],
        group_id=np.zeros(n, dtype=np.int32),
        group_reward=np.zeros(n, dtype=np.float32),
    )


def test_the_sac_acting_policy_sends_the_squashed_actions_as_they_are() -> None:
    sac = confident_sac("hybrid")
    spec = spec_of(ACTION_SPECS["hybrid"])
    settings = sac_settings(hidden_units=32, normalize=True)
    policy = trainer_entry("sac").make_policy(BEHAVIOR, spec, settings)
    assert isinstance(policy, NumpyPolicy) and policy.squash  # a plain actor: it acts in numpy
    weights = pickle.loads(pickle.dumps(sac.policy_state()))
    policy.load_weights(3, weights)
    rng = np.random.default_rng(12)
    steps = decision_steps(64, rng)
    taken = policy.act(BEHAVIOR, steps)
    np.testing.assert_array_equal(taken.env_actions.continuous, taken.continuous)  # not clipped, not divided by 3
    assert np.abs(taken.continuous).max() <= 1.0 and np.abs(taken.continuous).max() > 0.9
    assert taken.policy_version == 3 and np.all(np.isfinite(taken.extras[ENTROPY]))

    mean_settings = dataclasses.replace(settings.network_settings, deterministic=True)
    with torch.no_grad():
        heads = sac.actor.action_heads
        assert heads.continuous is not None
        mean, _ = heads.continuous(sac.actor.network_body([torch.as_tensor(o) for o in steps.obs]))
    mean_sac = dataclasses.replace(settings, network_settings=mean_settings)
    in_numpy = trainer_entry("sac").make_policy(BEHAVIOR, spec, mean_sac)
    for deterministic in (InferencePolicy(BEHAVIOR, spec, mean_settings, SAC_ACTOR), in_numpy):
        deterministic.load_weights(3, weights)
        acted = deterministic.act(BEHAVIOR, steps)
        np.testing.assert_allclose(acted.env_actions.continuous, torch.tanh(mean).numpy(), rtol=1e-5, atol=1e-6)

    with pytest.raises(ValueError, match="do not fit"):  # SAC's weights need SAC's actor (its state-dependent sigma)
        InferencePolicy(BEHAVIOR, spec, settings.network_settings, PPO_ACTOR).load_weights(0, weights)

