"""POCA on hand-built group trajectories: the group critic's attention, bootstrapping at early exits and group ends,
the rewards it trains on, its update and statistics, its checkpoint entries and its export."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch

from rayagents.configs import ConfigError
from rayagents.configs.hyperparameters import POCASettings
from rayagents.configs.network import MemorySettings, NetworkSettings
from rayagents.configs.reward_signals import RewardSignalSettings, RewardSignalType
from rayagents.configs.trainer import TrainerSettings
from rayagents.learner.memory import MEMORY
from rayagents.learner.poca import (
    BASELINE_MEMORY,
    GROUPMATE_PRESENT,
    POCA,
    baseline_estimates_key,
    group_batch,
    groupmate_obs_key,
)
from rayagents.learner.play_rules import poca_play_rules
from rayagents.learner.poca_networks import GroupCritic
from rayagents.learner.policy import ENTROPY
from rayagents.learner.registry import TRAINERS
from rayagents.learner.trajectory import CRITIC_MEMORY, returns_key, value_estimates_key
from rayagents.protocol.trajectories import LOG_PROBS, GroupmateSteps, Trajectory
from rayagents.protocol.types import ActionSpec, BehaviorSpec, DimensionProperty, ObservationSpec, ObservationType
from rayagents.configs.hyperparameters import trainer_types as configured_types
from rayagents.learner.registry import trainer_types as trained_types

OBS = 5
SPEC = BehaviorSpec(
    observation_specs=(ObservationSpec((OBS,), (DimensionProperty.NONE,), ObservationType.DEFAULT, "VectorSensor"),),
    action_spec=ActionSpec.create_hybrid(1, (3,)),
)


def settings(gamma: float = 0.9, lambd: float = 0.95, **network: object) -> TrainerSettings:
    """POCA settings for a small network."""
    return TrainerSettings(
        trainer_type="poca",
        hyperparameters=POCASettings(batch_size=16, buffer_size=32, lambd=lambd, num_epoch=2),
        network_settings=NetworkSettings(hidden_units=16, num_layers=1, **network),  # type: ignore[arg-type]
        reward_signals={RewardSignalType.EXTRINSIC: RewardSignalSettings(gamma=gamma, strength=1.0)},
    )


def groupmates(steps: int, slots: int, rng: np.random.Generator, present: np.ndarray | None = None) -> GroupmateSteps:
    """Random groupmates, all present and not done unless ``present`` says otherwise."""
    shown = np.ones((steps, slots), dtype=bool) if present is None else present
    return GroupmateSteps(
        obs=(rng.normal(size=(steps, slots, OBS)).astype(np.float32) * shown[..., None],),
        continuous_actions=rng.normal(size=(steps, slots, 1)).astype(np.float32),
        discrete_actions=rng.integers(0, 3, size=(steps, slots, 1)).astype(np.int32),
        present=shown,
        dones=np.zeros((steps, slots), dtype=bool),
        rewards=rng.normal(size=steps).astype(np.float32),
        next_obs=(rng.normal(size=(slots, OBS)).astype(np.float32),),
        next_present=np.ones(slots, dtype=bool),
    )


def trajectory(
    steps: int,
    rng: np.random.Generator,
    mates: GroupmateSteps | None,
    done: bool = False,
    interrupted: bool = False,
    group_reward: float = 0.5,
) -> Trajectory:
    """A trajectory of an agent of group 1 with random observations, actions and rewards."""
    return Trajectory(
        obs=(rng.normal(size=(steps, OBS)).astype(np.float32),),
        next_obs=(rng.normal(size=OBS).astype(np.float32),),
        continuous_actions=rng.normal(size=(steps, 1)).astype(np.float32),
        discrete_actions=rng.integers(0, 3, size=(steps, 1)).astype(np.int32),
        rewards=rng.normal(size=steps).astype(np.float32),
        done=done,
        interrupted=interrupted,
        versions=np.zeros(steps, dtype=np.int32),
        extras={LOG_PROBS: np.full(steps, -1.0, dtype=np.float32), ENTROPY: np.ones(steps, dtype=np.float32)},
        group_id=1,
        group_rewards=np.full(steps, group_reward, dtype=np.float32),
        agent_id="agent_0-0",
        groupmates=mates,
    )


def critic() -> GroupCritic:
    torch.manual_seed(0)
    return GroupCritic(SPEC.observation_specs, SPEC.action_spec, NetworkSettings(hidden_units=16, num_layers=2), ["e"])


def test_the_critic_ignores_absent_groupmates_and_their_order() -> None:
    net = critic()
    own = [torch.randn(4, OBS)]
    mates = torch.randn(4, 3, OBS)
    actions = torch.randn(4, 3, 4)
    present = torch.tensor([[1.0, 1.0, 0.0]] * 4)
    values = net.values(own, [mates], present)["e"]
    baselines = net.baselines(own, [mates], actions, present)["e"]
    scrambled, scrambled_actions = mates.clone(), actions.clone()
    scrambled[:, 2] = 100.0  # the absent slot's contents do not matter
    scrambled_actions[:, 2] = -7.0
    assert torch.allclose(net.values(own, [scrambled], present)["e"], values, atol=1e-5)
    assert torch.allclose(net.baselines(own, [scrambled], scrambled_actions, present)["e"], baselines, atol=1e-5)
    order = [1, 0, 2]  # nor does the order of the groupmates
    swapped = net.values(own, [mates[:, order]], present[:, order])["e"]
    assert torch.allclose(swapped, values, atol=1e-5)
    swapped = net.baselines(own, [mates[:, order]], actions[:, order], present[:, order])["e"]
    assert torch.allclose(swapped, baselines, atol=1e-5)
    fewer = net.values(own, [mates[:, :2]], present[:, :2])["e"]  # nor the number of padding slots
    assert torch.allclose(fewer, values, atol=1e-5)
    present_mate = mates.clone()
    present_mate[:, 0] += 1.0  # a present groupmate does matter
    assert not torch.allclose(net.values(own, [present_mate], present)["e"], values, atol=1e-4)
    other_action = actions.clone()
    other_action[:, 0] += 1.0  # and so does its action, to the baseline only
    assert not torch.allclose(net.baselines(own, [mates], other_action, present)["e"], baselines, atol=1e-4)


def test_the_critic_counts_agents_and_sees_a_lone_agent() -> None:
    net = critic()
    own = [torch.randn(2, OBS)]
    assert net.values(own, [torch.zeros(2, 0, OBS)], torch.zeros(2, 0))["e"].shape == (2,)
    assert float(net.max_agents) == 1.0
    net.values(own, [torch.randn(2, 2, OBS)], torch.ones(2, 2))
    assert float(net.max_agents) == 3.0
    assert "max_agents" in net.state_dict()


def test_hidden_units_must_split_over_the_attention_heads() -> None:
    with pytest.raises(ConfigError, match="hidden_units is 30"):
        GroupCritic(SPEC.observation_specs, SPEC.action_spec, NetworkSettings(hidden_units=30), ["e"])


def test_group_batch_pads_slots_and_says_where_the_whole_group_ended() -> None:
    rng = np.random.default_rng(0)
    early = groupmates(3, 2, rng)  # the agent leaves while its two groupmates play on
    together = groupmates(2, 1, rng)
    together = GroupmateSteps(**{**together.__dict__, "dones": np.array([[False], [True]])})
    together_agent = trajectory(2, rng, together, done=True)
    batch = group_batch(
        [
            trajectory(3, rng, early, done=True),
            together_agent,
            trajectory(2, rng, together, done=True, interrupted=True),
            trajectory(4, rng, None, done=True),
        ],
        SPEC.observation_specs,
        SPEC.action_spec,
    )
    assert batch.obs[0].shape == (11, 2, OBS) and batch.actions.shape == (11, 2, 4)
    assert batch.present.tolist()[3:5] == [[1.0, 0.0], [1.0, 0.0]] and batch.present[7:].sum() == 0
    assert np.allclose(batch.actions[0, :, 0], early.continuous_actions[0, :, 0])
    assert np.allclose(batch.actions[0, :, 1:].sum(axis=1), 1.0)  # one-hot branch
    assert batch.next_obs[0].shape == (4, 2, OBS) and batch.next_present.tolist()[1] == [1.0, 0.0]
    # the agent that left early: the value after it is its groupmates', the first of them standing first
    assert np.array_equal(batch.next_self[0][0], early.next_obs[0][0]) and batch.next_present.tolist()[0] == [0.0, 1.0]
    assert np.array_equal(batch.next_self[0][1], together_agent.next_obs[0])  # the others bootstrap from themselves
    # bootstrapped from the group it left / the whole group ended / cut off / alone and done
    assert batch.group_ended.tolist() == [False, True, False, True]


def test_ingest_rewards_the_group_and_bootstraps_an_early_exit_from_the_group_value() -> None:
    rng = np.random.default_rng(1)
    poca = POCA(SPEC, settings(gamma=0.9, lambd=1.0), seed=0)
    mates = groupmates(3, 2, rng)
    left_early = trajectory(3, rng, mates, done=True)
    ingested = poca.ingest([left_early], [np.ones(3, dtype=bool)])
    expected = left_early.rewards + 0.5 + mates.rewards  # own + group + groupmates' rewards
    assert np.allclose(ingested.signal_rewards["extrinsic"], expected, atol=1e-6)
    data = poca.buffer.arrays()
    values = data[value_estimates_key("extrinsic")]
    left_behind = poca.critic.values(  # V of the two groupmates it left: one stands first, the other beside it
        [torch.as_tensor(mates.next_obs[0][:1])],
        [torch.as_tensor(mates.next_obs[0][None])],
        torch.tensor([[0.0, 1.0]]),
    )["extrinsic"].item()
    # lambda = 1: the last return is the last reward plus gamma times the group's value after the agent left
    assert data[returns_key("extrinsic")][2] == pytest.approx(expected[2] + 0.9 * left_behind, abs=1e-5)
    assert np.allclose(data["advantages"], data[returns_key("extrinsic")] - data[baseline_estimates_key("extrinsic")])
    assert data[groupmate_obs_key(0)].shape == (3, 2, OBS) and data[GROUPMATE_PRESENT].shape == (3, 2)
    assert set(ingested.stats) >= {"Policy/Extrinsic Value Estimate", "Policy/Extrinsic Baseline Estimate"}
    assert ingested.stats["Policy/Extrinsic Value Estimate"] == pytest.approx(float(values.mean()), abs=1e-6)

    ended = GroupmateSteps(**{**mates.__dict__, "dones": np.ones((3, 2), dtype=bool)})
    poca.restored(0)
    rewards = poca.ingest([trajectory(3, rng, ended, done=True)], [np.ones(3, dtype=bool)]).signal_rewards
    data = poca.buffer.arrays()
    # the whole group ended: no bootstrap
    assert data[returns_key("extrinsic")][2] == pytest.approx(rewards["extrinsic"][2], abs=1e-5)


def test_updates_train_on_groups_of_varying_size_and_report_poca_statistics() -> None:
    rng = np.random.default_rng(2)
    poca = POCA(SPEC, settings(), seed=0)
    first = [trajectory(8, rng, groupmates(8, 2, rng)) for _ in range(3)]
    second = [trajectory(8, rng, groupmates(8, 3, rng)) for _ in range(2)] + [trajectory(6, rng, None)]
    poca.ingest(first, [np.ones(8, dtype=bool)] * 3)
    poca.ingest(second, [np.ones(len(t), dtype=bool) for t in second])
    assert poca.ready_for_update(0)
    before = [p.detach().clone() for p in poca.critic.parameters()]
    stats = poca.update(0)
    assert {"Losses/Policy Loss", "Losses/Value Loss", "Losses/Baseline Loss"} <= set(stats)
    assert all(np.isfinite(v) for v in stats.values())
    assert any(not torch.equal(b, a) for b, a in zip(before, poca.critic.parameters()))
    assert poca.buffered_steps == 0
    assert set(poca.modules()) >= {"Policy", "Optimizer:adam", "Optimizer:critic"}


def test_the_policy_exports_as_each_agents_onnx(tmp_path: Path) -> None:
    poca = POCA(SPEC, settings(), seed=0)
    path = poca.export(tmp_path / "Team.onnx")
    session = onnxruntime.InferenceSession(str(path))
    names = {o.name for o in session.get_outputs()}
    assert {"continuous_actions", "discrete_actions", "version_number", "memory_size"} <= names
    inputs = {i.name for i in session.get_inputs()}
    assert "obs_0" in inputs and not any("group" in name for name in inputs)


def test_registry_and_play_rules() -> None:
    entry = TRAINERS["poca"]
    assert isinstance(entry.make_algorithm(SPEC, settings(), torch.device("cpu"), 0), POCA)
    rules = poca_play_rules(settings())
    assert rules.groupmates and not rules.whole_sequences and rules.max_policy_lag is not None


def test_with_memory_the_critic_carries_value_and_baseline_memories_and_trains_on_sequences() -> None:
    rng = np.random.default_rng(3)
    memory = MemorySettings(memory_size=8, sequence_length=4)
    poca = POCA(SPEC, settings(memory=memory), seed=0)
    assert poca_play_rules(settings(memory=memory)).whole_sequences
    assert poca.critic.memory is not None and poca.critic.memory_size == 8

    def recurrent(steps: int, agent: str, done: bool = False) -> Trajectory:
        t = trajectory(steps, rng, groupmates(steps, 2, rng), done=done)
        extras = {**t.extras, MEMORY: rng.normal(size=(steps, 8)).astype(np.float32)}
        return dataclasses.replace(t, extras=extras, agent_id=agent)

    first = [recurrent(6, "agent_0-0"), recurrent(5, "agent_0-1", done=True)]
    poca.ingest(first, [np.ones(len(t), dtype=bool) for t in first])
    # the value and baseline memories of the agent that plays on are carried, the finished agent's forgotten
    assert len(poca._critic_memories) == 1 and len(poca._baseline_memories) == 1
    carried = poca._baseline_memories.start("agent_0-0").copy()
    assert np.abs(carried).sum() > 0
    data = poca.buffer.arrays()
    assert data[BASELINE_MEMORY].shape == data[CRITIC_MEMORY].shape == (16, 8)  # 2 + 2 sequences of 4 rows
    assert data["masks"].sum() == 11
    assert np.allclose(data[CRITIC_MEMORY][:4], 0.0)  # every sequence of a first trajectory starts from zeros...
    assert not np.allclose(data[CRITIC_MEMORY][4:8], 0.0)  # ...but its second sequence from what the first left
    second = [recurrent(6, "agent_0-0"), recurrent(6, "agent_0-2"), recurrent(6, "agent_0-3"), recurrent(6, "a")]
    poca.ingest(second, [np.ones(6, dtype=bool)] * 4)
    data = poca.buffer.arrays()
    assert np.allclose(data[BASELINE_MEMORY][16], carried)  # the next trajectory starts where the last one ended
    assert poca.ready_for_update(0)
    stats = poca.update(0)
    assert np.isfinite(stats["Losses/Baseline Loss"]) and np.isfinite(stats["Losses/Value Loss"])
    poca.restored(0)
    assert len(poca._baseline_memories) == 0 and len(poca._critic_memories) == 0


def test_every_trainer_type_the_configuration_accepts_has_a_registry_entry() -> None:
    # Nothing the configuration accepts is refused at start: each trainer_type it knows is trained.
    assert set(configured_types()) == set(trained_types()) == {"ppo", "sac", "poca"}
