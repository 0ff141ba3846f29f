"""Reward signals (curiosity, RND, GAIL) and behavioral cloning on hand-made batches; their place in PPO, SAC,
the trainer's statistics and checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rayagents.configs.hyperparameters import PPOSettings, SACSettings
from rayagents.configs.network import NetworkSettings
from rayagents.configs.reward_signals import (
    CuriositySettings,
    GAILSettings,
    RewardSignalSettings,
    RewardSignalType,
    RNDSettings,
)
from rayagents.configs.trainer import BehavioralCloningSettings, TrainerSettings
from rayagents.learner.behavioral_cloning import PRETRAINING_LOSS, BehavioralCloning
from rayagents.learner.checkpoints import CheckpointStore
from rayagents.learner.curiosity import CuriosityReward
from rayagents.learner.expert_data import ExpertData
from rayagents.learner.gail import GAILReward
from rayagents.learner.networks import Actor
from rayagents.learner.ppo import PPO
from rayagents.learner.results_storage import ResultsStorage
from rayagents.learner.reward_providers import RewardBatch, flatten_actions
from rayagents.learner.rnd import RNDReward
from rayagents.learner.sac import SAC
from rayagents.learner.trainer import Trainer
from rayagents.learner.trajectory import ADVANTAGES
from rayagents.protocol.agents import agent_info_proto
from rayagents.protocol.demonstration_writer import DemonstrationWriter, demonstration_brain_parameters
from rayagents.protocol.demonstrations import Demonstration
from rayagents.protocol.observations import float_observation_proto
from rayagents.protocol.trajectories import LOG_PROBS, Trajectory
from rayagents.protocol.types import ActionSpec, BehaviorSpec, DimensionProperty, ObservationSpec, ObservationType

CPU = torch.device("cpu")
ACTION_SPECS = {
    "continuous": ActionSpec(2, ()),
    "discrete": ActionSpec(0, (3, 2)),
    "hybrid": ActionSpec(1, (3,)),
}
SMALL = NetworkSettings(hidden_units=32, num_layers=2)


def vector(size: int) -> ObservationSpec:
    return ObservationSpec((size,), (DimensionProperty.NONE,), ObservationType.DEFAULT, f"obs{size}")


def spec_of(action_spec: ActionSpec, size: int = 4) -> BehaviorSpec:
    return BehaviorSpec((vector(size),), action_spec)


def actions(spec: ActionSpec, n: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    continuous = torch.as_tensor(rng.uniform(-1, 1, size=(n, spec.continuous_size)), dtype=torch.float32)
    discrete = torch.as_tensor(
        np.stack([rng.integers(0, b, size=n) for b in spec.discrete_branches], axis=1)
        if spec.discrete_branches
        else np.zeros((n, 0)),
        dtype=torch.int64,
    )
    return continuous, discrete


def batch(
    obs: torch.Tensor, continuous: torch.Tensor, discrete: torch.Tensor, next_obs: torch.Tensor | None = None
) -> RewardBatch:
    n = obs.shape[0]
    return RewardBatch(
        observations=[obs],
        next_observations=[obs if next_obs is None else next_obs],
        continuous_actions=continuous,
        discrete_actions=discrete,
        environment_rewards=torch.zeros(n),
        dones=torch.zeros(n),
    )


def demonstration(spec: BehaviorSpec, obs: np.ndarray, continuous: np.ndarray, discrete: np.ndarray) -> Demonstration:
    n = obs.shape[0]
    dones = np.zeros(n, dtype=bool)
    dones[-1] = True
    return Demonstration(
        behavior_name="Expert",
        behavior_spec=spec,
        observations=[obs.astype(np.float32)],
        continuous_actions=continuous.astype(np.float32),
        discrete_actions=discrete.astype(np.int64),
        action_masks=np.zeros((n, sum(spec.action_spec.discrete_branches)), dtype=bool),
        rewards=np.zeros(n, dtype=np.float32),
        dones=dones,
        number_episodes=1,
        sources=("expert.demo",),
    )


# ---- the actions as the signals see them -------------------------------------------------------------------------


def test_actions_flatten_to_the_continuous_ones_then_a_one_hot_per_branch() -> None:
    spec = ActionSpec(2, (3, 2))
    flat = flatten_actions(
        batch(torch.zeros(2, 4), torch.tensor([[0.5, -0.5], [1.0, 0.0]]), torch.tensor([[2, 0], [0, 1]])), spec
    )
    np.testing.assert_array_equal(flat.numpy(), [[0.5, -0.5, 0, 0, 1, 1, 0], [1.0, 0.0, 1, 0, 0, 0, 1]])


# ---- curiosity ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(ACTION_SPECS))
def test_curiosity_rewards_nothing_before_it_learns_then_its_forward_error_which_learning_shrinks(kind: str) -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    spec = spec_of(ACTION_SPECS[kind])
    curiosity = CuriosityReward(spec, CuriositySettings(strength=0.5, network_settings=SMALL), CPU)
    obs = torch.as_tensor(rng.normal(size=(256, 4)), dtype=torch.float32)
    continuous, discrete = actions(spec.action_spec, 256, rng)
    step = torch.cat([continuous.sum(1, keepdim=True), discrete.float().sum(1, keepdim=True)], 1).sum(1, keepdim=True)
    transitions = batch(obs, continuous, discrete, next_obs=obs + 0.5 * step)  # the next state follows the action
    assert torch.equal(curiosity.evaluate(transitions), torch.zeros(256))  # ML-Agents: 0 until the first update
    first = curiosity.update(transitions)
    assert set(first) == {"Losses/Curiosity Forward Loss", "Losses/Curiosity Inverse Loss"}
    rewards = curiosity.evaluate(transitions)
    assert rewards.shape == (256,) and bool((rewards >= 0).all())
    assert float(rewards.max()) <= 1.0 / 0.5 + 1e-6  # capped at 1 / strength
    for _ in range(150):
        last = curiosity.update(transitions)
    assert last["Losses/Curiosity Forward Loss"] < 0.5 * first["Losses/Curiosity Forward Loss"]
    assert last["Losses/Curiosity Inverse Loss"] < first["Losses/Curiosity Inverse Loss"]
    novel = batch(obs, continuous, discrete, next_obs=obs - 3.0 * step)  # a transition it never saw
    assert float(curiosity.evaluate(novel).mean()) > float(curiosity.evaluate(transitions).mean())


# ---- RND ---------------------------------------------------------------------------------------------------------


def test_rnd_rewards_rarely_seen_observations_more_than_familiar_ones() -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    spec = spec_of(ACTION_SPECS["discrete"])
    rnd = RNDReward(spec, RNDSettings(learning_rate=1e-3, network_settings=SMALL), CPU)
    continuous, discrete = actions(spec.action_spec, 256, rng)
    familiar = batch(torch.as_tensor(rng.normal(-2.0, 0.3, size=(256, 4)), dtype=torch.float32), continuous, discrete)
    novel = batch(torch.as_tensor(rng.normal(2.0, 0.3, size=(256, 4)), dtype=torch.float32), continuous, discrete)
    before = rnd.evaluate(familiar)
    assert before.shape == (256,) and bool((before >= 0).all())
    losses = [rnd.update(familiar)["Losses/RND Loss"] for _ in range(200)]
    assert losses[-1] < 0.2 * losses[0]
    assert float(rnd.evaluate(novel).mean()) > 3.0 * float(rnd.evaluate(familiar).mean())
    assert not any(p.requires_grad for p in rnd.target.parameters())  # the target stays random


# ---- GAIL --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("use_actions", "use_vail"), [(False, False), (True, False), (False, True)], ids=["obs", "actions", "vail"]
)
def test_the_gail_discriminator_learns_to_tell_expert_from_agent(use_actions: bool, use_vail: bool) -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(2)
    spec = spec_of(ACTION_SPECS["hybrid"])
    n = 256
    continuous, discrete = actions(spec.action_spec, n, rng)
    if use_actions:  # the same states: only the actions tell them apart
        states = rng.normal(size=(n, 4))
        expert_obs, agent_obs = states, states
        expert_discrete, agent_discrete = np.zeros((n, 1)), np.full((n, 1), 2)
    else:
        expert_obs, agent_obs = rng.normal(2.0, 0.5, size=(n, 4)), rng.normal(-2.0, 0.5, size=(n, 4))
        expert_discrete = agent_discrete = discrete.numpy()
    expert = ExpertData(demonstration(spec, expert_obs, continuous.numpy(), expert_discrete), CPU)
    settings = GAILSettings(
        demo_path="expert.demo", use_actions=use_actions, use_vail=use_vail, network_settings=SMALL, learning_rate=1e-3
    )
    gail = GAILReward(spec, settings, expert, CPU)
    agent = batch(
        torch.as_tensor(agent_obs, dtype=torch.float32), continuous, torch.as_tensor(agent_discrete, dtype=torch.int64)
    )
    expert_batch = expert.rows(torch.arange(n))
    for _ in range(200):
        stats = gail.update(agent)
    expected = {
        "Policy/GAIL Policy Estimate",
        "Policy/GAIL Expert Estimate",
        "Losses/GAIL Loss",
        "Policy/GAIL Grad Mag Loss",
    }
    if use_vail:
        expected |= {"Losses/GAIL KL Loss", "Policy/GAIL Beta"}
    assert set(stats) == expected
    assert stats["Policy/GAIL Expert Estimate"] > 0.6 and stats["Policy/GAIL Policy Estimate"] < 0.4
    agent_reward, expert_reward = gail.evaluate(agent), gail.evaluate(expert_batch)
    assert agent_reward.shape == (n,) and bool((agent_reward >= 0).all())  # -log(1 - D) >= 0
    assert float(expert_reward.mean()) > 3.0 * float(agent_reward.mean())


# ---- behavioral cloning ------------------------------------------------------------------------------------------


def test_behavioral_cloning_pretraining_makes_the_policy_take_the_experts_actions() -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(3)
    spec = spec_of(ACTION_SPECS["hybrid"])
    obs = rng.normal(size=(512, 4)).astype(np.float32)
    expert_discrete = (obs[:, :1] > 0).astype(np.int64) * 2  # branch of 3: action 2 where obs0 > 0, else 0
    expert_continuous = np.tanh(obs[:, 1:2])
    expert = ExpertData(demonstration(spec, obs, expert_continuous, expert_discrete), CPU)
    actor = Actor(spec.observation_specs, spec.action_spec, SMALL)
    cloning = BehavioralCloning(actor, BehavioralCloningSettings(demo_path="expert.demo"), expert, 3e-4, 64, 3)
    tensors = [torch.as_tensor(obs)]
    before = actor.act(tensors, deterministic=True)
    stats = cloning.pretrain()
    assert set(stats) == {PRETRAINING_LOSS}
    after = actor.act(tensors, deterministic=True)
    accuracy = float((after.discrete.numpy() == expert_discrete).mean())
    assert accuracy > 0.95 > float((before.discrete.numpy() == expert_discrete).mean())
    error = float(np.mean((after.continuous.numpy() - expert_continuous) ** 2))
    assert error < 0.05


def test_the_cloning_learning_rate_decays_over_steps_and_stops_the_updates_when_gone() -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(4)
    spec = spec_of(ACTION_SPECS["discrete"])
    obs = rng.normal(size=(300, 4))
    expert = ExpertData(demonstration(spec, obs, np.zeros((300, 0)), np.zeros((300, 2))), CPU)
    actor = Actor(spec.observation_specs, spec.action_spec, SMALL)
    settings = BehavioralCloningSettings(demo_path="x.demo", steps=1000, strength=0.5, samples_per_update=128)
    cloning = BehavioralCloning(actor, settings, expert, 1e-3, 64, 2)
    assert cloning.update(0)[PRETRAINING_LOSS] > 0
    assert cloning.optimizer.param_groups[0]["lr"] == pytest.approx(5e-4)
    cloning.update(500)
    assert cloning.optimizer.param_groups[0]["lr"] == pytest.approx(2.5e-4, rel=1e-3)
    weights = {k: v.clone() for k, v in actor.state_dict().items()}
    assert cloning.update(1000) == {PRETRAINING_LOSS: 0.0}
    assert all(torch.equal(weights[k], v) for k, v in actor.state_dict().items())  # nothing moved


# ---- in PPO, SAC and the trainer ---------------------------------------------------------------------------------


def write_demo(path: Path, spec: BehaviorSpec, steps: int, rng: np.random.Generator) -> Path:
    """A demo of one episode of ``steps`` random observations and discrete actions, written as Unity writes it."""
    brain = demonstration_brain_parameters("Expert", spec.action_spec)
    with path.open("wb") as stream, DemonstrationWriter(stream, "Expert", brain) as writer:
        for t in range(steps + 1):  # the decisions, then the episode's final info
            info = agent_info_proto(
                0, [float_observation_proto(rng.normal(size=(4,)), "obs4")], reward=1.0, done=t == steps
            )
            writer.record(info, discrete=rng.integers(0, 3, size=len(spec.action_spec.discrete_branches)))
    return path


def every_signal(demo: Path) -> dict[RewardSignalType, RewardSignalSettings]:
    return {
        RewardSignalType.EXTRINSIC: RewardSignalSettings(),
        RewardSignalType.CURIOSITY: CuriositySettings(strength=0.1, network_settings=SMALL),
        RewardSignalType.RND: RNDSettings(strength=0.1, network_settings=SMALL),
        RewardSignalType.GAIL: GAILSettings(strength=0.5, demo_path=str(demo), network_settings=SMALL),
    }


def trajectory(spec: BehaviorSpec, length: int, rng: np.random.Generator, done: bool, agent: str = "a") -> Trajectory:
    return Trajectory(
        obs=(rng.normal(size=(length, 4)).astype(np.float32),),
        next_obs=(rng.normal(size=(4,)).astype(np.float32),),
        continuous_actions=np.zeros((length, 0), dtype=np.float32),
        discrete_actions=rng.integers(0, 3, size=(length, 1)),
        rewards=np.ones(length, dtype=np.float32),
        done=done,
        interrupted=False,
        versions=np.zeros(length, dtype=np.int32),
        extras={LOG_PROBS: np.full(length, -1.1, dtype=np.float32)},
        agent_id=agent,
    )


def ppo_settings(demo: Path) -> TrainerSettings:
    return TrainerSettings(
        hyperparameters=PPOSettings(batch_size=32, buffer_size=64, num_epoch=2),
        network_settings=SMALL,
        reward_signals=every_signal(demo),
        behavioral_cloning=BehavioralCloningSettings(demo_path=str(demo), steps=10_000),
        summary_freq=1000,
    )


def test_ppo_rewards_with_every_signal_updates_them_on_its_minibatches_and_clones(tmp_path: Path) -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(5)
    spec = spec_of(ActionSpec(0, (3,)))
    demo = write_demo(tmp_path / "Expert.demo", spec, 100, rng)
    ppo = PPO(spec, ppo_settings(demo), seed=0)
    assert ppo.reward_signals.names == ("extrinsic", "curiosity", "rnd", "gail")
    ingested = ppo.ingest([trajectory(spec, 40, rng, done=True), trajectory(spec, 40, rng, done=False)], [
        np.ones(40, dtype=bool),
        np.ones(40, dtype=bool),
    ])
    assert set(ingested.signal_rewards) == {"extrinsic", "curiosity", "rnd", "gail"}
    assert all(r.shape == (80,) for r in ingested.signal_rewards.values())
    np.testing.assert_array_equal(ingested.signal_rewards["extrinsic"], np.ones(80))
    np.testing.assert_array_equal(ingested.signal_rewards["curiosity"], np.zeros(80))  # not updated yet
    assert float(ingested.signal_rewards["rnd"].min()) > 0 and float(ingested.signal_rewards["gail"].min()) > 0
    for name in ("Extrinsic", "Curiosity", "Rnd", "Gail"):
        assert f"Policy/{name} Value Estimate" in ingested.stats
    assert np.isfinite(ppo.buffer.arrays()[ADVANTAGES]).all()
    stats = ppo.update(100)
    for name in (
        "Losses/Curiosity Forward Loss",
        "Losses/Curiosity Inverse Loss",
        "Losses/RND Loss",
        "Losses/GAIL Loss",
        "Policy/GAIL Expert Estimate",
        "Policy/GAIL Policy Estimate",
        PRETRAINING_LOSS,
    ):
        assert np.isfinite(stats[name]), name
    later = ppo.ingest([trajectory(spec, 10, rng, done=False)], [np.ones(10, dtype=bool)])
    assert float(later.signal_rewards["curiosity"].max()) > 0  # it rewards once it has learned


def test_curiosity_returns_go_on_past_an_episodes_end_and_the_extrinsic_ones_stop(tmp_path: Path) -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(6)
    spec = spec_of(ActionSpec(0, (3,)))
    signals = {
        RewardSignalType.EXTRINSIC: RewardSignalSettings(gamma=0.9),
        RewardSignalType.CURIOSITY: CuriositySettings(gamma=0.9, network_settings=SMALL),
    }
    settings = TrainerSettings(hyperparameters=PPOSettings(lambd=1.0), network_settings=SMALL, reward_signals=signals)
    ppo = PPO(spec, settings)
    ended = trajectory(spec, 1, rng, done=True)
    ppo.ingest([ended], [np.ones(1, dtype=bool)])
    columns = ppo.buffer.arrays()
    with torch.no_grad():
        after = ppo.critic([torch.as_tensor(ended.next_obs[0])[None]])
    # one step: return = reward + gamma * V(next) for curiosity (reward 0 before learning), reward alone for extrinsic
    assert columns["extrinsic_returns"][0] == pytest.approx(1.0)
    assert columns["curiosity_returns"][0] == pytest.approx(0.9 * float(after["curiosity"]), rel=1e-5)


def test_sac_rewards_minibatches_with_every_signal_and_paces_their_updates(tmp_path: Path) -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(7)
    spec = spec_of(ActionSpec(0, (3,)))
    demo = write_demo(tmp_path / "Expert.demo", spec, 100, rng)
    settings = TrainerSettings(
        trainer_type="sac",
        hyperparameters=SACSettings(batch_size=16, buffer_size=1000, steps_per_update=2, reward_signal_steps_per_update=4),
        network_settings=SMALL,
        reward_signals=every_signal(demo),
        behavioral_cloning=BehavioralCloningSettings(demo_path=str(demo), batch_size=32, samples_per_update=64),
    )
    sac = SAC(spec, settings, seed=0)
    ingested = sac.ingest([trajectory(spec, 41, rng, done=True)], [np.ones(41, dtype=bool)])
    assert set(ingested.signal_rewards) == {"extrinsic", "curiosity", "rnd", "gail"}
    stats = sac.update(41)
    assert sac.update_steps - 1 == 20  # one gradient step per 2 steps
    assert sac.reward_signal_update_steps - 1 == 10  # one signal update per 4 steps
    for name in ("Losses/Curiosity Forward Loss", "Losses/RND Loss", "Losses/GAIL Loss", PRETRAINING_LOSS):
        assert np.isfinite(stats[name]), name


def test_the_trainer_reports_each_signals_episode_reward_under_mlagents_names(tmp_path: Path) -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(8)
    spec = spec_of(ActionSpec(0, (3,)))
    demo = write_demo(tmp_path / "Expert.demo", spec, 100, rng)
    trainer = Trainer("Brain?team=0", spec, ppo_settings(demo), seed=0)
    trainer.pretrain()
    trainer.ingest([trajectory(spec, 10, rng, done=False, agent="a"), trajectory(spec, 5, rng, done=True, agent="b")])
    trainer.ingest([trajectory(spec, 6, rng, done=True, agent="a")])
    summary = trainer.summary(1000)
    assert summary["Policy/Extrinsic Reward"] == pytest.approx((5.0 + 16.0) / 2)  # per episode: b's 5, a's 16
    for name in ("Curiosity", "Rnd", "Gail"):
        assert f"Policy/{name} Reward" in summary
    assert summary["Policy/Gail Reward"] > 0
    assert PRETRAINING_LOSS in summary  # the pretraining's loss, in the first summary


def test_a_checkpoint_keeps_every_signals_networks_and_optimizers_and_resume_restores_them(tmp_path: Path) -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(9)
    spec = spec_of(ActionSpec(0, (3,)))
    demo = write_demo(tmp_path / "Expert.demo", spec, 100, rng)
    results = tmp_path / "results"
    source = Trainer("Brain?team=0", spec, ppo_settings(demo), seed=0)
    for _ in range(3):
        source.ingest([trajectory(spec, 40, rng, done=True)])
        source.maybe_update()
    assert source.version > 0
    source.save_checkpoint(CheckpointStore(ResultsStorage(str(results)), str(results), "Brain"))
    saved = torch.load(results / "checkpoint.pt", weights_only=True)
    for entry in (
        "Module:Curiosity",
        "Optimizer:Curiosity",
        "Module:RND-pred",
        "Module:RND-target",
        "Optimizer:RND",
        "Module:GAIL",
        "Optimizer:GAIL",
        "Optimizer:bc_optimizer",
    ):
        assert entry in saved, entry
    resumed = Trainer("Brain?team=0", spec, ppo_settings(demo), seed=1)
    warnings = resumed.restore(
        CheckpointStore(ResultsStorage(str(results)), str(results), "Brain"), reset_global_step=False
    )
    assert warnings == []
    for name, module in source.modules().items():
        restored = resumed.modules()[name].state_dict()
        original = module.state_dict()
        if isinstance(module, torch.optim.Optimizer):
            assert original["state"].keys() == restored["state"].keys(), name
            for key, state in original["state"].items():
                assert all(torch.equal(state[k], restored["state"][key][k]) for k in state), name
        else:
            assert all(torch.equal(original[k], restored[k]) for k in original), name
    batch_rows = trajectory(spec, 12, rng, done=False)
    np.testing.assert_allclose(
        resumed.algorithm.ingest([batch_rows], [np.ones(12, dtype=bool)]).signal_rewards["curiosity"],
        source.algorithm.ingest([batch_rows], [np.ones(12, dtype=bool)]).signal_rewards["curiosity"],
        rtol=1e-5,
    )
