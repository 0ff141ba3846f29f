"""The .pt checkpoint: ML-Agents' entry names, atomic writes, weights-only loads, lenient restore."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rayagents.configs.hyperparameters import PPOSettings
from rayagents.configs.network import NetworkSettings
from rayagents.configs.trainer import TrainerSettings
from rayagents.learner.checkpoint_format import CheckpointError, GlobalSteps, load_checkpoint, save_checkpoint
from rayagents.learner.ppo import PPO
from rayagents.learner.trainer import Trainer
from rayagents.protocol.trajectories import LOG_PROBS, Trajectory
from rayagents.protocol.types import ActionSpec, BehaviorSpec, DimensionProperty, ObservationSpec, ObservationType

SPEC = BehaviorSpec(
    (ObservationSpec((3,), (DimensionProperty.NONE,), ObservationType.DEFAULT, "a"),), ActionSpec(1, (2,))
)


def optimizer(hidden_units: int = 16, shared_critic: bool = False) -> Trainer:
    """A small PPO trainer with a normalizer."""
    return Trainer(
        "Behavior",
        SPEC,
        TrainerSettings(
            hyperparameters=PPOSettings(batch_size=8, buffer_size=8, shared_critic=shared_critic),
            network_settings=NetworkSettings(hidden_units=hidden_units, normalize=True),
        ),
    )


def ppo(trainer: Trainer) -> PPO:
    """The trainer's PPO (its networks and optimizer)."""
    assert isinstance(trainer.algorithm, PPO)
    return trainer.algorithm


def trained(trainer: Trainer) -> Trainer:
    """``trainer`` after one update on random data (so the optimizer has state and the normalizer moved)."""
    rng = np.random.default_rng(0)
    trajectory = Trajectory(
        obs=(rng.normal(2.0, 3.0, size=(16, 3)).astype(np.float32),),
        next_obs=(np.zeros(3, dtype=np.float32),),
        continuous_actions=rng.normal(size=(16, 1)).astype(np.float32),
        discrete_actions=rng.integers(0, 2, size=(16, 1)),
        rewards=np.ones(16, dtype=np.float32),
        done=True,
        interrupted=False,
        versions=np.zeros(16, dtype=np.int32),
        extras={LOG_PROBS: np.full(16, -1.0, dtype=np.float32)},
    )
    trainer.ingest([trajectory])
    assert trainer.maybe_update()
    return trainer


def test_checkpoint_has_mlagents_entries_and_loads_weights_only(tmp_path: Path) -> None:
    torch.manual_seed(0)
    source = trained(optimizer())
    path = save_checkpoint(tmp_path / "Behavior" / "Behavior-16.pt", source.modules())
    assert [p.name for p in path.parent.iterdir()] == ["Behavior-16.pt"]  # no temporary file left behind
    saved = torch.load(path, weights_only=True)
    assert set(saved) == {"Policy", "global_step", "Optimizer:value_optimizer", "Optimizer:critic"}
    assert saved["global_step"]["_GlobalSteps__global_step"].dtype == torch.int64
    assert int(saved["global_step"]["_GlobalSteps__global_step"]) == 16

    restored = optimizer()
    assert load_checkpoint(path, restored.modules()) == []
    assert restored.global_step.current_step == 16
    for key, value in ppo(source).actor.state_dict().items():
        torch.testing.assert_close(ppo(restored).actor.state_dict()[key], value)
    for key, value in ppo(source).critic.state_dict().items():
        torch.testing.assert_close(ppo(restored).critic.state_dict()[key], value)
    assert ppo(restored).optimizer.state_dict()["state"].keys() == ppo(source).optimizer.state_dict()["state"].keys()

    fresh = optimizer()
    load_checkpoint(path, fresh.modules(), reset_global_step=True)
    assert fresh.global_step.current_step == 0
    torch.testing.assert_close(ppo(fresh).actor.state_dict(), ppo(source).actor.state_dict())


def test_overwriting_a_checkpoint_replaces_it(tmp_path: Path) -> None:
    ppo = optimizer()
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, ppo.modules())
    ppo.global_step.increment(5)
    save_checkpoint(path, ppo.modules())
    steps = GlobalSteps()
    load_checkpoint(path, {"global_step": steps})
    assert steps.current_step == 5


def test_mismatched_or_missing_modules_keep_their_initialization_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    torch.manual_seed(0)
    path = save_checkpoint(tmp_path / "small.pt", trained(optimizer(hidden_units=16)).modules())
    bigger = optimizer(hidden_units=32)
    initial = {k: v.clone() for k, v in ppo(bigger).actor.state_dict().items()}
    modules = {**bigger.modules(), "Module:Curiosity": torch.nn.Linear(2, 2)}
    warnings = load_checkpoint(path, modules)
    assert any("'Policy'" in w and "does not fit" in w for w in warnings)
    assert any("'Optimizer:value_optimizer'" in w for w in warnings)
    assert any("'Module:Curiosity'" in w and "no " in w for w in warnings)
    assert bigger.global_step.current_step == 16
    torch.testing.assert_close(ppo(bigger).actor.state_dict(), initial)
    assert "does not fit" in caplog.text


def test_a_missing_checkpoint_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nothing.pt"):
        load_checkpoint(tmp_path / "nothing.pt", optimizer().modules())


@pytest.mark.parametrize("content", [b"", b"not a zip", b"PK\x03\x04" + bytes(200)], ids=["empty", "text", "cut"])
def test_a_damaged_checkpoint_is_named_in_the_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=f"checkpoint {path} cannot be read .*damaged"):
        load_checkpoint(path, optimizer().modules())


def test_shared_critic_checkpoint_round_trips(tmp_path: Path) -> None:
    torch.manual_seed(0)
    source = trained(optimizer(shared_critic=True))
    assert ppo(source).critic.network_body is ppo(source).actor.network_body
    path = save_checkpoint(tmp_path / "shared.pt", source.modules())
    restored = optimizer(shared_critic=True)
    assert load_checkpoint(path, restored.modules()) == []
    torch.testing.assert_close(ppo(restored).critic.state_dict(), ppo(source).critic.state_dict())
