"""SAC with recurrent memory (``network_settings.memory``), as ML-Agents' SAC trains it: the replay buffer holds and
draws whole padded sequences, each network starts a sequence from what ML-Agents starts it from (the actor: the
acting policy's stored memory; the Qs: zeros; the value network: its memory when the trajectory was taken in; the
target: the value network one step on), every loss is a mean over the real experiences, the reward signals see only
those, an update trains every LSTM, the replay buffer is saved and restored with its sequences, and a task that
needs memory is learned in process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from rayagents.configs.hyperparameters import SACSettings, ScheduleType
from rayagents.configs.network import MemorySettings, NetworkSettings
from rayagents.configs.reward_signals import RewardSignalSettings, RewardSignalType
from rayagents.configs.trainer import TrainerSettings
from rayagents.learner.checkpoints import REPLAY_BUFFER, CheckpointStore
from rayagents.learner.memory import MEMORY
from rayagents.learner.registry import play_rules, trainer_entry
from rayagents.learner.results_storage import ResultsStorage
from rayagents.learner.sac import SAC
from rayagents.learner.trainer import Trainer
from rayagents.learner.trajectory import (
    ACTION_MASKS,
    CRITIC_MEMORY,
    DONES,
    LOSS_MASKS,
    REWARDS,
    next_obs_key,
    obs_key,
)
from rayagents.learner.weights import actor_weights
from rayagents.protocol.trajectories import Trajectory
from rayagents.protocol.types import (
    ActionSpec,
    BehaviorSpec,
    DecisionSteps,
    DimensionProperty,
    ObservationSpec,
    ObservationType,
)

BEHAVIOR = "Recall?team=0"
LENGTH = 4
MEMORY_SIZE = 8
MEMORY_SETTINGS = MemorySettings(sequence_length=LENGTH, memory_size=MEMORY_SIZE)
ACTION_SPECS = {"continuous": ActionSpec(2, ()), "discrete": ActionSpec(0, (3, 2)), "hybrid": ActionSpec(1, (2,))}


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Small LSTMs on a busy machine run many times faster on one thread than on contended ones."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def spec_of(action_spec: ActionSpec, size: int = 3) -> BehaviorSpec:
    return BehaviorSpec(
        (ObservationSpec((size,), (DimensionProperty.NONE,), ObservationType.DEFAULT, "a"),), action_spec
    )


def settings_of(
    buffer_size: int = 40, batch_size: int = 8, hidden_units: int = 16, gamma: float = 0.9, **hyperparameters: object
) -> TrainerSettings:
    return TrainerSettings(
        trainer_type="sac",
        hyperparameters=SACSettings(buffer_size=buffer_size, batch_size=batch_size, **hyperparameters),  # type: ignore
        network_settings=NetworkSettings(hidden_units=hidden_units, num_layers=1, memory=MEMORY_SETTINGS),
        reward_signals={RewardSignalType.EXTRINSIC: RewardSignalSettings(gamma=gamma, strength=1.0)},
    )


def numbered(number: int, length: int, agent: str, done: bool, spec: BehaviorSpec, version: int = 0) -> Trajectory:
    """Trajectory ``number``: observation ``(number, step + 1, noise)`` at each step (padding reads 0, 0, 0), random
    actions and memories, reward ``number``."""
    rng = np.random.default_rng(number)
    obs = np.stack([np.full(length, number), np.arange(1, length + 1), rng.normal(size=length)], 1)
    action = spec.action_spec
    return Trajectory(
        obs=(obs.astype(np.float32),),
        next_obs=(np.array([number, 100, 0], dtype=np.float32),),
        continuous_actions=rng.uniform(-1, 1, size=(length, action.continuous_size)).astype(np.float32),
        discrete_actions=np.array([rng.integers(0, b, size=length) for b in action.discrete_branches]).T.reshape(
            length, len(action.discrete_branches)
        ),
        rewards=np.full(length, number, dtype=np.float32),
        done=done,
        interrupted=False,
        versions=np.full(length, version, dtype=np.int32),
        extras={MEMORY: rng.normal(size=(length, MEMORY_SIZE)).astype(np.float32)},
        behavior=BEHAVIOR,
        agent_id=agent,
    )


def stepped_memory(network: torch.nn.Module, obs: np.ndarray, steps: int) -> torch.Tensor:
    """The value network's memory after ``steps`` steps of ``obs`` from zeros, one step at a time."""
    state = torch.zeros(1, MEMORY_SIZE)
    for row in obs[:steps]:
        _, state = network.values([torch.as_tensor(row[None])], state, 1)
    return state[0]


def filled(kind: str = "hybrid", **settings: object) -> tuple[SAC, list[Trajectory]]:
    """A seeded SAC with memory holding three numbered trajectories (6, 3 and 5 steps; only the last step of the
    third may be trained on) and a fourth that may not be trained on at all."""
    torch.manual_seed(0)
    spec = spec_of(ACTION_SPECS[kind])
    sac = SAC(spec, settings_of(**settings), seed=0)  # type: ignore[arg-type]
    batch = [
        numbered(1, 6, "x", False, spec),
        numbered(2, 3, "y", True, spec),
        numbered(3, 5, "z", True, spec),
        numbered(4, 4, "w", True, spec),
    ]
    trainable = [np.ones(6, bool), np.ones(3, bool), np.array([False] * 4 + [True]), np.zeros(4, bool)]
    sac.ingest(batch, trainable)
    return sac, batch


# ---- the replay buffer of sequences -----------------------------------------------------------------------------


def test_sequences_are_stored_whole_padded_at_their_end_with_the_memories_at_their_first_step() -> None:
    sac, batch = filled()
    assert play_rules(settings_of()).whole_sequences and play_rules(settings_of()).max_policy_lag is None
    # x: 2 sequences; y: 1; z: its first sequence holds nothing to train on and is dropped; w: nothing at all
    assert sac.buffer.sequences == 4 and len(sac.buffer) == 16 and sac.buffered_steps == 10
    held = sac.buffer.oldest_first()
    assert held[LOSS_MASKS].tolist() == [1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0, 1, 0, 0, 0]
    assert held[obs_key(0)][:, 0].tolist() == [1, 1, 1, 1, 1, 1, 0, 0, 2, 2, 2, 0, 3, 0, 0, 0]
    assert held[obs_key(0)][:, 1].tolist() == [1, 2, 3, 4, 5, 6, 0, 0, 1, 2, 3, 0, 5, 0, 0, 0]
    assert held[next_obs_key(0)][5].tolist() == [1, 100, 0]  # the trajectory's next observation after its last step
    assert held[next_obs_key(0)][0].tolist() == batch[0].obs[0][1].tolist()
    assert held[DONES].tolist() == [0] * 8 + [0, 0, 1, 0] + [1, 0, 0, 0]
    assert torch.all(held[ACTION_MASKS][held[LOSS_MASKS] == 0] == 1)  # padding allows every action
    # the acting policy's memory at each sequence's first step
    x, y, z = (batch[i].extras[MEMORY] for i in range(3))
    np.testing.assert_array_equal(held[MEMORY].numpy(), np.stack([x[0], x[4], y[0], z[4]]))
    # the value network's memory there: zeros where an agent's episode starts, else where the network got to
    critic = held[CRITIC_MEMORY]
    assert critic.shape == (4, MEMORY_SIZE) and torch.all(critic[0] == 0) and torch.all(critic[2] == 0)
    with torch.no_grad():
        torch.testing.assert_close(critic[1], stepped_memory(sac.value_network, batch[0].obs[0], 4), atol=1e-5, rtol=0)
        torch.testing.assert_close(critic[3], stepped_memory(sac.value_network, batch[2].obs[0], 4), atol=1e-5, rtol=0)


def test_minibatches_are_whole_sequences_of_consecutive_experiences_of_one_trajectory() -> None:
    sac, _ = filled()
    held = sac.buffer.oldest_first()
    stored = {tuple(held[obs_key(0)][4 * s : 4 * s + 4].flatten().tolist()): s for s in range(4)}
    seen = set()
    for batch_size, sequences in ((8, 2), (9, 2), (3, 1), (16, 4)):  # batch_size / sequence_length, at least one
        drawn = sac.buffer.sample(batch_size, torch.Generator().manual_seed(batch_size))
        assert drawn[obs_key(0)].shape == (sequences * LENGTH, 3) and drawn[MEMORY].shape == (sequences, MEMORY_SIZE)
        assert drawn[LOSS_MASKS].shape == drawn[REWARDS].shape == (sequences * LENGTH,)
        for s in range(sequences):
            rows = slice(4 * s, 4 * s + 4)
            index = stored[tuple(drawn[obs_key(0)][rows].flatten().tolist())]  # one stored sequence, whole
            seen.add(index)
            for name, column in drawn.items():
                source = held[name][index] if name in (MEMORY, CRITIC_MEMORY) else held[name][4 * index : 4 * index + 4]
                assert torch.equal(column[s] if name in (MEMORY, CRITIC_MEMORY) else column[rows], source), name
            steps = drawn[obs_key(0)][rows, 1][drawn[LOSS_MASKS][rows] > 0]
            assert steps.tolist() == list(range(int(steps[0]), int(steps[0]) + len(steps)))  # consecutive
    assert seen == {0, 1, 2, 3}


def test_capacity_counts_rows_and_the_oldest_whole_sequences_go_first() -> None:
    torch.manual_seed(0)
    spec = spec_of(ACTION_SPECS["discrete"])
    sac = SAC(spec, settings_of(buffer_size=42), seed=0)  # 10 sequences of 4 (42 rows hold no 11th)
    assert sac.buffer.capacity == 40
    for number in range(1, 8):  # 7 trajectories of 6 steps: 14 sequences of which the 10 newest stay
        sac.ingest([numbered(number, 6, f"a{number}", True, spec)], [np.ones(6, bool)])
    held = sac.buffer.oldest_first()
    assert len(sac.buffer) == 40 and sac.buffered_steps == 30
    assert held[obs_key(0)][::4, 0].tolist() == [3, 3, 4, 4, 5, 5, 6, 6, 7, 7]
    assert held[obs_key(0)][::4, 1].tolist() == [1, 5] * 5


# ---- where each network starts a sequence, and the masked losses ------------------------------------------------


def test_each_network_starts_its_sequences_from_what_mlagents_starts_it_from() -> None:
    sac, _ = filled()
    batch = sac.buffer.sample(8, torch.Generator().manual_seed(0))
    calls: dict[str, list[tuple[torch.Tensor, int]]] = {}

    def record(name: str, module: torch.nn.Module) -> None:
        module.register_forward_pre_hook(
            lambda _, args: calls.setdefault(name, []).append((args[1].detach().clone(), args[2]))
        )

    networks = {
        "actor": sac.actor,
        "q1": sac.q_network.q1_network,
        "q2": sac.q_network.q2_network,
        "value": sac.value_network,
        "target": sac.target_network,
    }
    for name, network in networks.items():
        assert network.memory is not None, name
        record(name, network.memory)
    sac.losses(batch)
    # the policy: the acting policy's stored memory of each sequence's first step
    assert [length for _, length in calls["actor"]] == [LENGTH]
    assert torch.equal(calls["actor"][0][0], batch[MEMORY])
    # the Q networks (twice each: the policy's actions and the ones taken): zeros
    for name in ("q1", "q2"):
        assert len(calls[name]) == 2 and all(torch.all(m == 0) and n == LENGTH for m, n in calls[name])
    # the value network: the memory it had when the trajectory came in; then one step on from it for the target
    (value_memories, value_length), (first_memories, first_length) = calls["value"]
    assert value_length == LENGTH and torch.equal(value_memories, batch[CRITIC_MEMORY])
    assert first_length == 1 and torch.equal(first_memories, batch[CRITIC_MEMORY])
    with torch.no_grad():
        _, one_step = sac.value_network.values([batch[obs_key(0)][::LENGTH]], batch[CRITIC_MEMORY], 1)
    (target_memories, target_length), = calls["target"]
    assert target_length == LENGTH and torch.equal(target_memories, one_step)


@pytest.mark.parametrize("kind", sorted(ACTION_SPECS))
def test_losses_are_means_over_real_experiences_and_padding_changes_nothing(kind: str) -> None:
    sac, _ = filled(kind)
    batch = sac.buffer.oldest_first()
    padding = batch[LOSS_MASKS] == 0
    torch.manual_seed(1)
    losses = sac.losses(batch)
    garbage = {name: column.clone() for name, column in batch.items()}
    for name, column in garbage.items():
        if name not in (LOSS_MASKS, MEMORY, CRITIC_MEMORY, ACTION_MASKS) and column.dtype.is_floating_point:
            column[padding] = 1e3
    torch.manual_seed(1)
    changed = sac.losses(garbage)
    for name in ("policy_loss", "value_loss", "q1_loss", "q2_loss", "entropy_loss"):
        torch.testing.assert_close(getattr(changed, name), getattr(losses, name), msg=name)
    # ... and the padding carries real weight nowhere: making one real row garbage does change the loss
    garbage[REWARDS][0] = 1e3
    torch.manual_seed(1)
    assert not torch.allclose(sac.losses(garbage).q1_loss, losses.q1_loss)


def test_reward_signals_reward_and_learn_from_the_real_experiences_only(monkeypatch: pytest.MonkeyPatch) -> None:
    sac, _ = filled(buffer_init_steps=0)
    extrinsic = sac.reward_signals.providers["extrinsic"]
    seen: list[torch.Tensor] = []
    original = extrinsic.evaluate

    def evaluate(batch):  # type: ignore[no-untyped-def]
        seen.append(batch.environment_rewards.clone())
        return original(batch)

    monkeypatch.setattr(extrinsic, "evaluate", evaluate)
    batch = sac.buffer.oldest_first()
    rewards = sac._signal_rewards(batch)["extrinsic"]
    assert seen[-1].tolist() == [1.0] * 6 + [2.0] * 3 + [3.0]  # no padding row reached the signal
    assert rewards.tolist() == [1, 1, 1, 1, 1, 1, 0, 0, 2, 2, 2, 0, 3, 0, 0, 0]


# ---- an update trains every LSTM ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(ACTION_SPECS))
def test_an_update_with_memory_trains_every_lstm_and_stays_finite(kind: str) -> None:
    sac, _ = filled(kind, buffer_init_steps=0, steps_per_update=1.0)
    lstms = {
        "actor": sac.actor.memory,
        "q1": sac.q_network.q1_network.memory,
        "q2": sac.q_network.q2_network.memory,
        "value": sac.value_network.memory,
        "target": sac.target_network.memory,
    }
    before = {name: [p.detach().clone() for p in lstm.parameters()] for name, lstm in lstms.items()}
    stats = sac.update(10)
    assert stats and all(np.isfinite(value) for value in stats.values()), stats
    for name, lstm in lstms.items():
        after = list(lstm.parameters())
        assert all(torch.isfinite(p).all() for p in after), name
        assert any(not torch.equal(b, a) for b, a in zip(before[name], after)), f"{name}'s LSTM did not move"


def test_the_sac_acting_policy_keeps_the_memory_each_decision_was_made_from() -> None:
    spec = spec_of(ACTION_SPECS["hybrid"])
    settings = settings_of()
    torch.manual_seed(0)
    sac = SAC(spec, settings, seed=0)
    policy = trainer_entry("sac").make_policy(BEHAVIOR, spec, settings)
    policy.load_weights(0, actor_weights(sac.actor))
    steps = DecisionSteps(
        obs=[np.ones((2, 3), np.float32)],
        reward=np.zeros(2, np.float32),
        agent_id=np.array([1, 2], np.int32),
        action_mask=[np.zeros((2, 2), bool)],
        group_id=np.zeros(2, np.int32),
        group_reward=np.zeros(2, np.float32),
    )
    first, second = policy.act(BEHAVIOR, steps), policy.act(BEHAVIOR, steps)
    assert np.all(first.extras[MEMORY] == 0) and np.all(second.extras[MEMORY] != 0)
    assert np.all(np.abs(first.env_actions.continuous) <= 1)  # squashed


# ---- the saved replay buffer ----------------------------------------------------------------------------------------


def store(folder: Path) -> CheckpointStore:
    return CheckpointStore(ResultsStorage(str(folder)), str(folder), "Recall")


def recurrent_trainer(seed: int = 0, memory: bool = True) -> Trainer:
    torch.manual_seed(seed)
    settings = settings_of(buffer_size=48, buffer_init_steps=8, steps_per_update=3.0, save_replay_buffer=True)
    if not memory:
        network = NetworkSettings(hidden_units=16, num_layers=1)
        settings = TrainerSettings(
            trainer_type="sac",
            hyperparameters=settings.hyperparameters,
            network_settings=network,
            reward_signals=settings.reward_signals,
        )
    return Trainer(BEHAVIOR, spec_of(ACTION_SPECS["hybrid"]), settings, seed=0)


def play(trainer: Trainer, lengths: tuple[int, ...], first: int = 1) -> None:
    for number, length in enumerate(lengths, start=first):
        agent = f"a{number % 2}"
        trainer.ingest([numbered(number, length, agent, number % 3 == 0, trainer.behavior_spec, trainer.version)])
        while trainer.maybe_update():
            pass


def test_save_replay_buffer_keeps_the_sequences_and_resume_restores_them(tmp_path: Path) -> None:
    source = recurrent_trainer()
    play(source, (7, 5, 9, 6, 11, 3, 8))  # 49 steps, 15 sequences: the ring of 12 wrapped around
    source.save_checkpoint(store(tmp_path))
    assert (tmp_path / REPLAY_BUFFER).exists()
    saved = torch.load(tmp_path / REPLAY_BUFFER, weights_only=True)["replay_buffer"]
    assert {LOSS_MASKS, MEMORY, CRITIC_MEMORY} <= set(saved) and saved[obs_key(0)].shape[1:] == (LENGTH, 3)
    held = source.algorithm.buffer.oldest_first()  # type: ignore[attr-defined]

    resumed = recurrent_trainer(seed=1)
    assert resumed.restore(store(tmp_path), reset_global_step=False) == []
    assert resumed.buffered_steps == source.buffered_steps
    assert len(resumed.algorithm.buffer) == 48  # type: ignore[attr-defined]
    restored = resumed.algorithm.buffer.oldest_first()  # type: ignore[attr-defined]
    assert set(restored) == set(held) and all(torch.equal(restored[name], held[name]) for name in held)
    play(resumed, (6, 6), first=20)  # trains on from there
    assert resumed.algorithm.buffer.sequences == 12  # type: ignore[attr-defined]

    # a buffer saved without memory does not fit one with memory: a warning, and the buffer starts empty
    plain = recurrent_trainer(memory=False)
    play(plain, (7, 5))
    plain.save_checkpoint(store(tmp_path / "plain"))
    other = recurrent_trainer()
    warnings = other.restore(store(tmp_path / "plain"), reset_global_step=False)
    assert any("replay buffer starts empty" in w for w in warnings) and other.buffered_steps == 0


# ---- it learns a task that needs memory -----------------------------------------------------------------------------

EPISODE = 4
AGENTS = 32


def recall_rounds(trainer: Trainer, rounds: int, rng: np.random.Generator) -> list[float]:
    """``rounds`` times: 32 agents each play one episode of the recall task with the trainer's actor (sampling,
    each from a zero memory, carrying it step to step), the episodes go in, and every due update is made.

    The recall task: a cue (-1 or +1) shows at the first step only; at every step the reward is 1 for the discrete
    action that names the cue. A random policy scores 2 per episode, the best without memory 2.5, with memory 4.
    Returns the mean score of each round."""
    sac = trainer.algorithm
    assert isinstance(sac, SAC)
    scores = []
    for _ in range(rounds):
        cue = rng.choice([-1.0, 1.0], size=AGENTS).astype(np.float32)
        memories = torch.zeros(AGENTS, MEMORY_SIZE)
        obs, actions, kept = [], [], []
        for t in range(EPISODE):
            o = np.stack([cue * (t == 0), np.full(AGENTS, float(t == 0))], 1).astype(np.float32)
            kept.append(memories.numpy())
            sample = sac.actor.act([torch.as_tensor(o)], memories=memories)
            memories = sample.memories
            obs.append(o)
            actions.append(sample.discrete.numpy())
        obs_, act_ = np.stack(obs, 1), np.stack(actions, 1)  # (agents, steps, ...)
        rewards = (act_[:, :, 0] == (cue[:, None] > 0)).astype(np.float32)
        scores.append(float(rewards.sum(1).mean()))
        trainer.ingest(
            [
                Trajectory(
                    obs=(obs_[i],),
                    next_obs=(np.zeros(2, np.float32),),
                    continuous_actions=np.zeros((EPISODE, 0), np.float32),
                    discrete_actions=act_[i],
                    rewards=rewards[i],
                    done=True,
                    interrupted=False,
                    versions=np.full(EPISODE, trainer.version, dtype=np.int32),
                    extras={MEMORY: np.stack(kept, 1)[i]},
                    behavior=BEHAVIOR,
                    agent_id=f"agent-{i}",
                )
                for i in range(AGENTS)
            ]
        )
        while trainer.maybe_update():
            pass
    return scores


def test_sac_with_memory_learns_to_recall_a_cue_it_saw_once() -> None:
    torch.manual_seed(0)
    settings = settings_of(
        buffer_size=4000,
        batch_size=64,
        hidden_units=32,
        gamma=0.5,
        buffer_init_steps=0,
        steps_per_update=4.0,
        init_entcoef=0.1,
        learning_rate=3e-3,
        learning_rate_schedule=ScheduleType.CONSTANT,
        tau=0.05,
    )
    trainer = Trainer(BEHAVIOR, spec_of(ActionSpec(0, (2,)), size=2), settings, seed=0)
    scores = recall_rounds(trainer, 12, np.random.default_rng(0))
    assert np.mean(scores[:2]) < 2.6
    assert np.mean(scores[-5:]) > 3.3, scores  # beyond the best a memoryless policy can do (2.5)
