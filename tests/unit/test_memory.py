"""Recurrent memory: sequence padding and masking, the LSTM, memories kept per agent by the acting policy, the
recurrent critic run by sequence on the learner, PPO's sequence buffer, and the ONNX model's recurrent_in/out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime
import pytest
import torch

from rayagents.configs.hyperparameters import PPOSettings
from rayagents.configs.network import MemorySettings, NetworkSettings
from rayagents.configs.trainer import TrainerSettings
from rayagents.learner.export import export_policy_model
from rayagents.learner.memory import MEMORY, AgentMemories, LSTMMemory, pad_rows, sequence_layout, unpad_rows
from rayagents.learner.networks import Actor, build_actor_critic
from rayagents.learner.policy import InferencePolicy
from rayagents.learner.ppo import PPO
from rayagents.learner.sequence_values import values_by_sequence
from rayagents.learner.trajectory import CRITIC_MEMORY, LOSS_MASKS
from rayagents.learner.weights import actor_weights
from rayagents.protocol.trajectories import LOG_PROBS, Trajectory
from rayagents.protocol.types import (
    ActionSpec,
    BehaviorSpec,
    DecisionSteps,
    DimensionProperty,
    ObservationSpec,
    ObservationType,
)

BEHAVIOR = "Recurrent?team=0"
SPEC = BehaviorSpec(
    (ObservationSpec((3,), (DimensionProperty.NONE,), ObservationType.DEFAULT, "a"),), ActionSpec(1, (2,))
)
MEMORY_SETTINGS = MemorySettings(sequence_length=4, memory_size=8)
NETWORK = NetworkSettings(hidden_units=16, num_layers=1, memory=MEMORY_SETTINGS)


def test_sequence_layout_pads_each_trajectory_at_its_end() -> None:
    layout = sequence_layout(np.array([5, 3, 4]), 4)
    # trajectory 0: rows 0-4 of sequences 0-1 (3 padded rows), trajectory 1: rows 8-10, trajectory 2: rows 12-15
    assert layout.rows.tolist() == [0, 1, 2, 3, 4, 8, 9, 10, 12, 13, 14, 15]
    assert layout.mask.tolist() == [1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 0, 1, 1, 1, 1]
    assert layout.starts.tolist() == [0, 4, 5, 8]  # the experiences each of the 4 sequences starts with
    column = np.arange(12, dtype=np.float32) + 1
    padded = pad_rows(column, layout)
    assert padded.tolist() == [1, 2, 3, 4, 5, 0, 0, 0, 6, 7, 8, 0, 9, 10, 11, 12]
    assert unpad_rows(padded, layout).tolist() == column.tolist()


def test_lstm_sequences_equal_steps_and_packed_runs_stop_at_their_length() -> None:
    torch.manual_seed(0)
    memory = LSTMMemory(5, MEMORY_SETTINGS)
    inputs, start = torch.randn(2 * 4, 5), torch.randn(2, 8)
    whole, after = memory(inputs, start, 4)
    state, stepped = start, []
    for t in range(4):
        out, state = memory(inputs.reshape(2, 4, 5)[:, t], state, 1)
        stepped.append(out)
    assert torch.allclose(torch.stack(stepped, 1).reshape(8, 4), whole, atol=1e-6)
    assert torch.allclose(state, after, atol=1e-6)
    # a packed run of lengths 4 and 2 ends the second sequence's memory after its second step
    padded, final = memory.run_packed(inputs.reshape(2, 4, 5), torch.tensor([4, 2]), start)
    _, after_two = memory(inputs.reshape(2, 4, 5)[1:, :2].reshape(2, 5), start[1:], 2)
    assert torch.allclose(final[1], after_two[0], atol=1e-6)
    assert torch.allclose(final[0], after[0], atol=1e-6)
    assert torch.all(padded[1, 2:] == 0)


def steps_of(agent_ids: list[int], rng: np.random.Generator) -> DecisionSteps:
    n = len(agent_ids)
    return DecisionSteps(
        obs=[rng.normal(size=(n, 3)).astype(np.float32)],
        reward=np.zeros(n, dtype=np.float32),
        agent_id=np.array(agent_ids, dtype=np.int32),
        action_mask=[np.zeros((n, 2), bool)],
        group_id=np.zeros(n, dtype=np.int32),
        group_reward=np.zeros(n, dtype=np.float32),
    )


def test_policy_keeps_memories_per_agent_and_forgets_them_when_an_episode_ends() -> None:
    torch.manual_seed(0)
    policy = InferencePolicy(BEHAVIOR, SPEC, NETWORK)
    policy.load_weights(0, actor_weights(Actor(SPEC.observation_specs, SPEC.action_spec, NETWORK)))
    rng = np.random.default_rng(0)
    first = policy.act(BEHAVIOR, steps_of([7, 9], rng))
    assert np.all(first.extras[MEMORY] == 0)  # first decisions start from zeros
    second = policy.act(BEHAVIOR, steps_of([9, 7], rng))  # the agents in another order
    assert np.all(second.extras[MEMORY] != 0)
    # the memory each second decision was made from is what the torch actor produced for that agent's first one
    steps = steps_of([7, 9], np.random.default_rng(0))
    expected = policy.actor.act([torch.as_tensor(steps.obs[0])], memories=torch.zeros(2, 8)).memories.numpy()
    np.testing.assert_allclose(second.extras[MEMORY], expected[[1, 0]], atol=1e-6)
    policy.forget([9])
    third = policy.act(BEHAVIOR, steps_of([7, 9], rng))
    assert np.all(third.extras[MEMORY][1] == 0) and np.all(third.extras[MEMORY][0] != 0)
    policy.forget()  # the player restarted
    assert np.all(policy.act(BEHAVIOR, steps_of([7, 9], rng)).extras[MEMORY] == 0)


def trajectory(length: int, rng: np.random.Generator, agent: str, done: bool, memory_size: int = 8) -> Trajectory:
    return Trajectory(
        obs=(rng.normal(size=(length, 3)).astype(np.float32),),
        next_obs=(rng.normal(size=3).astype(np.float32),),
        continuous_actions=rng.normal(size=(length, 1)).astype(np.float32),
        discrete_actions=rng.integers(0, 2, size=(length, 1)).astype(np.int32),
        rewards=rng.normal(size=length).astype(np.float32),
        done=done,
        interrupted=False,
        versions=np.zeros(length, dtype=np.int32),
        extras={
            LOG_PROBS: np.full(length, -1.0, dtype=np.float32),
            MEMORY: rng.normal(size=(length, memory_size)).astype(np.float32),
        },
        agent_id=agent,
    )


def stepped_values(critic, obs: np.ndarray, next_obs: np.ndarray, start: torch.Tensor) -> tuple[np.ndarray, torch.Tensor, list[torch.Tensor]]:
    """The critic run one step at a time: values of obs then next_obs, the memory after obs, and each step's
    memory before it."""
    state, values, before = start[None], [], []
    for row in np.concatenate([obs, next_obs[None]]):
        before.append(state[0])
        value, new_state = critic.values([torch.as_tensor(row[None])], state, 1)
        values.append(value["extrinsic"].item())
        if len(before) <= len(obs):
            state = new_state
    return np.array(values), state[0], before


def test_recurrent_critic_runs_each_agent_on_from_its_last_trajectory() -> None:
    torch.manual_seed(0)
    _, critic = build_actor_critic(SPEC, NETWORK, ("extrinsic",), shared_critic=False)
    rng = np.random.default_rng(1)
    # agent x's two trajectories arrive in one batch; agent y's episode ends
    batch = [trajectory(6, rng, "x", False), trajectory(3, rng, "y", True), trajectory(5, rng, "x", False)]
    layout = sequence_layout(np.array([6, 3, 5]), 4)
    memories = AgentMemories(8)
    obs = [torch.as_tensor(np.concatenate([t.obs[0] for t in batch]))]
    next_obs = [torch.as_tensor(np.stack([t.next_obs[0] for t in batch]))]
    values, starts = values_by_sequence(critic, obs, next_obs, batch, memories, layout)

    x1, after_x1, before_x1 = stepped_values(critic, batch[0].obs[0], batch[0].next_obs[0], torch.zeros(8))
    y, _, before_y = stepped_values(critic, batch[1].obs[0], batch[1].next_obs[0], torch.zeros(8))
    x2, after_x2, before_x2 = stepped_values(critic, batch[2].obs[0], batch[2].next_obs[0], after_x1)
    np.testing.assert_allclose(values["extrinsic"][:14], np.concatenate([x1[:6], y[:3], x2[:5]]), atol=1e-5)
    np.testing.assert_allclose(values["extrinsic"][14:], [x1[6], y[3], x2[5]], atol=1e-5)
    expected_starts = [before_x1[0], before_x1[4], before_y[0], before_x2[0], before_x2[4]]
    np.testing.assert_allclose(starts, torch.stack(expected_starts).detach().numpy(), atol=1e-5)
    assert len(memories) == 1  # y's episode ended: forgotten
    np.testing.assert_allclose(memories.start("x"), after_x2.detach().numpy(), atol=1e-5)


def test_ppo_trains_on_padded_masked_sequences() -> None:
    torch.manual_seed(0)
    settings = TrainerSettings(
        hyperparameters=PPOSettings(batch_size=8, buffer_size=12, num_epoch=2), network_settings=NETWORK
    )
    ppo = PPO(SPEC, settings, seed=0)
    rng = np.random.default_rng(2)
    batch = [trajectory(6, rng, "x", False), trajectory(3, rng, "y", True), trajectory(5, rng, "z", True)]
    trainable = [np.ones(6, bool), np.ones(3, bool), np.array([False] * 4 + [True])]
    ppo.ingest(batch, trainable)
    assert ppo.buffered_steps == 10 and not ppo.ready_for_update(0)
    data = ppo.buffer.arrays()
    # x: 2 sequences, y: 1, z: its first sequence holds nothing to train on and is dropped; the second is kept
    assert data[LOSS_MASKS].tolist() == [1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 1, 0, 0, 0]
    np.testing.assert_array_equal(data[MEMORY][0], batch[0].extras[MEMORY][0])
    np.testing.assert_array_equal(data[MEMORY][12], batch[2].extras[MEMORY][4])
    assert np.all(data[CRITIC_MEMORY][:4] == 0) and np.all(data[CRITIC_MEMORY][4:8] == data[CRITIC_MEMORY][4])
    ppo.ingest([trajectory(4, rng, "y", False)], [np.ones(4, bool)])
    assert ppo.ready_for_update(0)
    before = {k: v.clone() for k, v in ppo.actor.state_dict().items()}
    stats = ppo.update(0)
    assert np.isfinite(stats["Losses/Policy Loss"]) and np.isfinite(stats["Losses/Value Loss"])
    assert any(not torch.equal(before[k], v) for k, v in ppo.actor.state_dict().items() if "memory" in k)
    assert ppo.buffered_steps == 0


def test_padding_does_not_change_the_loss() -> None:
    torch.manual_seed(0)
    settings = TrainerSettings(hyperparameters=PPOSettings(batch_size=8, buffer_size=100), network_settings=NETWORK)
    ppo = PPO(SPEC, settings, seed=0)
    ppo.ingest([trajectory(7, np.random.default_rng(3), "x", True)], [np.ones(7, bool)])
    data = {k: torch.as_tensor(v) for k, v in ppo.buffer.arrays().items()}
    losses = ppo.losses(data, 0.2, 0.01)
    for name in data:  # garbage in the padding row
        if name not in (LOSS_MASKS, MEMORY, CRITIC_MEMORY) and data[name].dtype.is_floating_point:
            data[name][7] = 1e3
    changed = ppo.losses(data, 0.2, 0.01)
    assert torch.allclose(losses.policy_loss, changed.policy_loss) and torch.allclose(losses.value_loss, changed.value_loss)


def test_onnx_model_steps_like_the_torch_policy(tmp_path: Path) -> None:
    torch.manual_seed(0)
    actor = Actor(SPEC.observation_specs, SPEC.action_spec, NetworkSettings(hidden_units=16, memory=MEMORY_SETTINGS))
    path = export_policy_model(actor, tmp_path / "Recurrent.onnx")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs = {i.name: i.shape for i in session.get_inputs()}
    assert list(inputs) == ["obs_0", "action_masks", "recurrent_in"] and inputs["recurrent_in"][1:] == [1, 8]
    outputs = [o.name for o in session.get_outputs()]
    assert outputs[-1] == "recurrent_out"
    rng = np.random.default_rng(4)
    memory = np.zeros((3, 1, 8), np.float32)
    torch_memory = torch.zeros(3, 8)
    for _ in range(5):
        obs = rng.normal(size=(3, 3)).astype(np.float32)
        size, continuous, discrete, memory = session.run(
            ["memory_size", "deterministic_continuous_actions", "deterministic_discrete_actions", "recurrent_out"],
            {"obs_0": obs, "action_masks": np.ones((3, 2), np.float32), "recurrent_in": memory},
        )
        sample = actor.act([torch.as_tensor(obs)], deterministic=True, memories=torch_memory)
        torch_memory = sample.memories
        assert size.tolist() == [8.0]
        np.testing.assert_allclose(continuous, np.clip(sample.continuous.numpy(), -3, 3) / 3, atol=1e-5)
        np.testing.assert_array_equal(discrete, sample.discrete.numpy())
        np.testing.assert_allclose(memory[:, 0], torch_memory.numpy(), atol=1e-5)
    assert np.abs(memory).max() > 0


def test_an_actor_with_memory_needs_memories() -> None:
    actor = Actor(SPEC.observation_specs, SPEC.action_spec, NETWORK)
    with pytest.raises(ValueError, match="memory of 8"):
        actor.act([torch.zeros(1, 3)])
