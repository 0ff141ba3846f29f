"""ONNX export for Unity inference (spec §6, §9): names, order, shapes, opset, and onnxruntime agreeing with torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from rayagents.configs.network import NetworkSettings
from rayagents.learner.acting import allowed_from_disabled
from rayagents.learner.distributions import clip_continuous
from rayagents.learner.export import export_policy_model
from rayagents.learner.networks import Actor
from rayagents.protocol.types import ActionSpec, DimensionProperty, ObservationSpec, ObservationType

OBSERVATIONS = (
    ObservationSpec((5,), (DimensionProperty.NONE,), ObservationType.DEFAULT, "A"),
    ObservationSpec((3,), (DimensionProperty.NONE,), ObservationType.DEFAULT, "B"),
)

ACTION_SPECS = {
    "discrete": ActionSpec(0, (3, 2, 4)),
    "continuous": ActionSpec(3, ()),
    "hybrid": ActionSpec(2, (4, 3)),
}


def exported(tmp_path: Path, action_spec: ActionSpec) -> tuple[Actor, Path]:
    """A normalized actor whose normalizer has moved, and its exported model."""
    torch.manual_seed(0)
    actor = Actor(OBSERVATIONS, action_spec, NetworkSettings(normalize=True, hidden_units=32))
    actor.update_normalization([torch.randn(100, 5) * 4 + 3, torch.randn(100, 3) - 2])
    return actor, export_policy_model(actor, tmp_path / "Behavior.onnx")


def shape_of(value: onnx.ValueInfoProto) -> list[int | str]:
    """A graph value's shape: ints for fixed dims, names for dynamic ones."""
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


def feeds(action_spec: ActionSpec, obs: list[np.ndarray], allowed: np.ndarray | None) -> dict[str, np.ndarray]:
    """The inputs of a run."""
    inputs = {f"obs_{i}": o for i, o in enumerate(obs)}
    if action_spec.discrete_size > 0:
        assert allowed is not None
        inputs["action_masks"] = allowed
    return inputs


@pytest.mark.parametrize("kind", sorted(ACTION_SPECS))
def test_exported_model_follows_the_unity_contract(tmp_path: Path, kind: str) -> None:
    action_spec = ACTION_SPECS[kind]
    _, path = exported(tmp_path, action_spec)
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    opsets = {entry.domain: entry.version for entry in model.opset_import}
    assert 7 <= opsets.get("", opsets.get("ai.onnx", 0)) <= 15

    initializers = {init.name for init in model.graph.initializer}
    inputs = {i.name: shape_of(i) for i in model.graph.input if i.name not in initializers}
    expected_inputs: dict[str, list[int | str]] = {"obs_0": ["batch", 5], "obs_1": ["batch", 3]}
    if action_spec.discrete_size:
        expected_inputs["action_masks"] = ["batch", sum(action_spec.discrete_branches)]
    assert inputs == expected_inputs

    c, b = action_spec.continuous_size, action_spec.discrete_size
    expected_outputs: list[tuple[str, list[int | str], int]] = [
        ("version_number", [1], onnx.TensorProto.FLOAT),
        ("memory_size", [1], onnx.TensorProto.FLOAT),
    ]
    if c:
        expected_outputs += [
            ("continuous_actions", ["batch", c], onnx.TensorProto.FLOAT),
            ("continuous_action_output_shape", [1], onnx.TensorProto.FLOAT),
            ("deterministic_continuous_actions", ["batch", c], onnx.TensorProto.FLOAT),
        ]
    if b:
        expected_outputs += [
            ("discrete_actions", ["batch", b], onnx.TensorProto.INT64),
            ("discrete_action_output_shape", [1, b], onnx.TensorProto.FLOAT),
            ("deterministic_discrete_actions", ["batch", b], onnx.TensorProto.INT64),
        ]
    outputs = [(o.name, shape_of(o), o.type.tensor_type.elem_type) for o in model.graph.output]
    assert outputs == expected_outputs

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    obs = [rng.normal(size=(7, 5)).astype(np.float32), rng.normal(size=(7, 3)).astype(np.float32)]
    allowed = np.ones((7, sum(action_spec.discrete_branches)), dtype=np.float32) if b else None
    results = dict(zip([o[0] for o in expected_outputs], session.run(None, feeds(action_spec, obs, allowed))))
    assert results["version_number"].tolist() == [3.0]
    assert results["memory_size"].tolist() == [0.0]
    if c:
        assert results["continuous_action_output_shape"].tolist() == [float(c)]
        assert results["continuous_actions"].shape == (7, c)
        assert np.abs(results["continuous_actions"]).max() <= 1.0
    if b:
        assert results["discrete_action_output_shape"].tolist() == [[float(x) for x in action_spec.discrete_branches]]
        assert results["discrete_actions"].shape == (7, b)


@pytest.mark.parametrize("kind", sorted(ACTION_SPECS))
def test_onnxruntime_deterministic_actions_equal_torch(tmp_path: Path, kind: str) -> None:
    action_spec = ACTION_SPECS[kind]
    actor, path = exported(tmp_path, action_spec)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    n = 256
    obs = [rng.normal(3.0, 4.0, size=(n, 5)).astype(np.float32), rng.normal(-2.0, 1.0, size=(n, 3)).astype(np.float32)]
    total = sum(action_spec.discrete_branches)
    allowed = None
    if action_spec.discrete_size:
        disabled = rng.random((n, total)) < 0.4
        starts = np.cumsum((0,) + action_spec.discrete_branches[:-1])
        disabled[:, starts] = False  # keep one action per branch
        allowed = allowed_from_disabled(disabled, n, total)
    names = [o.name for o in session.get_outputs()]
    results = dict(zip(names, session.run(None, feeds(action_spec, obs, allowed))))
    expected = actor.act(
        [torch.as_tensor(o) for o in obs], None if allowed is None else torch.as_tensor(allowed), deterministic=True
    )
    if action_spec.continuous_size:
        torch_actions = clip_continuous(expected.continuous).numpy()
        np.testing.assert_allclose(results["deterministic_continuous_actions"], torch_actions, rtol=1e-4, atol=1e-5)
    if action_spec.discrete_size:
        np.testing.assert_array_equal(results["deterministic_discrete_actions"], expected.discrete.numpy())


@pytest.mark.parametrize("kind", ["discrete", "hybrid"])
def test_onnxruntime_never_samples_a_masked_action(tmp_path: Path, kind: str) -> None:
    action_spec = ACTION_SPECS[kind]
    _, path = exported(tmp_path, action_spec)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(2)
    n = 3000
    total = sum(action_spec.discrete_branches)
    starts = np.cumsum((0,) + action_spec.discrete_branches[:-1])
    disabled = rng.random((n, total)) < 0.5
    disabled[:, starts] = False
    disabled[:, starts + 1] = True  # the second action of every branch is always masked
    obs = [rng.normal(size=(n, 5)).astype(np.float32), rng.normal(size=(n, 3)).astype(np.float32)]
    names = [o.name for o in session.get_outputs()]
    results = dict(zip(names, session.run(None, feeds(action_spec, obs, allowed_from_disabled(disabled, n, total)))))
    for key in ("discrete_actions", "deterministic_discrete_actions"):
        chosen = results[key]
        for branch, start in enumerate(starts):
            assert not disabled[np.arange(n), start + chosen[:, branch]].any(), (key, branch)
    # the sample is a sample: more than one allowed action shows up in the first branch
    assert len(np.unique(results["discrete_actions"][:, 0])) > 1


def test_export_refuses_an_opset_unity_cannot_import(tmp_path: Path) -> None:
    actor = Actor(OBSERVATIONS, ActionSpec(1, ()), NetworkSettings(hidden_units=8))
    with pytest.raises(ValueError, match="7 to 15"):
        export_policy_model(actor, tmp_path / "x.onnx", opset_version=18)
