"""The .pt checkpoint: ML-Agents' entry names, atomic writes, weights-only loads, lenient restore."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rayagents.configs.hyperparameters import PPOSettings
from rayagents.configs.network import NetworkSettings
from rayagents.configs.trainer import TrainerSettings
from rayagents.learner.checkpoint import GlobalSteps, load_checkpoint, save_checkpoint
from rayagents.learner.ppo import PPOOptimizer
from rayagents.learner.trajectory import Trajectory, UpdateBuffer
from rayagents.protocol.types import ActionSpec, BehaviorSpec, DimensionProperty, ObservationSpec, ObservationType

SPEC = BehaviorSpec(
    (ObservationSpec((3,), (DimensionProperty.NONE,), ObservationType.DEFAULT, "a"),), ActionSpec(1, (2,))
)


def optimizer(hidden_units: int = 16, shared_critic: bool = False) -> PPOOptimizer:
    """A small PPO optimizer with a normalizer."""
    return PPOOptimizer(
        SPEC,
        TrainerSettings(
            hyperparameters=PPOSettings(batch_size=8, buffer_size=8, shared_critic=shared_critic),
            network_settings=NetworkSettings(hidden_units=hidden_units, normalize=True),
        ),
    )


def trained(ppo: PPOOptimizer) -> PPOOptimizer:
    """``ppo`` after one update on random data (so the optimizer has state and the normalizer moved)."""
    rng = np.random.default_rng(0)
    buffer = UpdateBuffer()
    trajectory = Trajectory(
        obs=(rng.normal(2.0, 3.0, size=(16, 3)).astype(np.float32),),
        next_obs=(np.zeros(3, dtype=np.float32),),
        continuous_actions=rng.normal(size=(16, 1)).astype(np.float32),
        discrete_actions=rng.integers(0, 2, size=(16, 1)),
        log_probs=np.full(16, -1.0, dtype=np.float32),
        rewards=np.ones(16, dtype=np.float32),
        done=True,
        interrupted=False,
    )
    buffer.append(ppo.process_trajectory(trajectory)[0])
    ppo.global_step.increment(16)
    ppo.update(buffer)
    return ppo


def test_checkpoint_has_mlagents_entries_and_loads_weights_only(tmp_path: Path) -> None:
    torch.manual_seed(0)
    source = trained(optimizer())
    path = save_checkpoint(tmp_path / "Behavior" / "Behavior-16.pt", source.get_modules())
    assert [p.name for p in path.parent.iterdir()] == ["Behavior-16.pt"]  # no temporary file left behind
    saved = torch.load(path, weights_only=True)
    assert set(saved) == {"Policy", "global_step", "Optimizer:value_optimizer", "Optimizer:critic"}
    assert saved["global_step"]["_GlobalSteps__global_step"].dtype == torch.int64
    assert int(saved["global_step"]["_GlobalSteps__global_step"]) == 16

    restored = optimizer()
    assert load_checkpoint(path, restored.get_modules()) == []
    assert restored.global_step.current_step == 16
    for key, value in source.actor.state_dict().items():
        torch.testing.assert_close(restored.actor.state_dict()[key], value)
    for key, value in source.critic.state_dict().items():
        torch.testing.assert_close(restored.critic.state_dict()[key], value)
    assert restored.optimizer.state_dict()["state"].keys() == source.optimizer.state_dict()["state"].keys()

    fresh = optimizer()
    load_checkpoint(path, fresh.get_modules(), reset_global_step=True)
    assert fresh.global_step.current_step == 0
    torch.testing.assert_close(fresh.actor.state_dict(), source.actor.state_dict())


def test_overwriting_a_checkpoint_replaces_it(tmp_path: Path) -> None:
    ppo = optimizer()
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, ppo.get_modules())
    ppo.global_step.increment(5)
    save_checkpoint(path, ppo.get_modules())
    steps = GlobalSteps()
    load_checkpoint(path, {"global_step": steps})
    assert steps.current_step == 5


def test_mismatched_or_missing_modules_keep_their_initialization_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    torch.manual_seed(0)
    path = save_checkpoint(tmp_path / "small.pt", trained(optimizer(hidden_units=16)).get_modules())
    bigger = optimizer(hidden_units=32)
    initial = {k: v.clone() for k, v in bigger.actor.state_dict().items()}
    modules = {**bigger.get_modules(), "Module:Curiosity": torch.nn.Linear(2, 2)}
    warnings = load_checkpoint(path, modules)
    assert any("'Policy'" in w and "does not fit" in w for w in warnings)
    assert any("'Optimizer:value_optimizer'" in w for w in warnings)
    assert any("'Module:Curiosity'" in w and "no " in w for w in warnings)
    assert bigger.global_step.current_step == 16
    torch.testing.assert_close(bigger.actor.state_dict(), initial)
    assert "does not fit" in caplog.text


def test_a_missing_checkpoint_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nothing.pt"):
        load_checkpoint(tmp_path / "nothing.pt", optimizer().get_modules())


def test_shared_critic_checkpoint_round_trips(tmp_path: Path) -> None:
    torch.manual_seed(0)
    source = trained(optimizer(shared_critic=True))
    assert source.critic.network_body is source.actor.network_body
    path = save_checkpoint(tmp_path / "shared.pt", source.get_modules())
    restored = optimizer(shared_critic=True)
    assert load_checkpoint(path, restored.get_modules()) == []
    torch.testing.assert_close(restored.critic.state_dict(), source.critic.state_dict())
