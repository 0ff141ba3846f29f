"""ONNX export (opset 9) of actors with visual encoders, entity attention and goal conditioning: onnxruntime's
deterministic actions equal torch's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch

from rayagents.configs.network import EncoderType, NetworkSettings
from rayagents.learner.distributions import clip_continuous
from rayagents.learner.encoders import observation_tensor
from rayagents.learner.export import export_policy_model
from rayagents.learner.networks import Actor
from rayagents.protocol.types import ActionSpec, DimensionProperty, ObservationSpec, ObservationType

ACTIONS = ActionSpec(2, (3, 2))
BATCH = 9


def vector(name: str, size: int, kind: ObservationType = ObservationType.DEFAULT) -> ObservationSpec:
    """A vector observation spec."""
    return ObservationSpec((size,), (DimensionProperty.NONE,), kind, name)


def camera(name: str, channels: int, height: int, width: int) -> ObservationSpec:
    """A visual observation spec, channels first."""
    properties = (
        DimensionProperty.NONE,
        DimensionProperty.TRANSLATIONAL_EQUIVARIANCE,
        DimensionProperty.TRANSLATIONAL_EQUIVARIANCE,
    )
    return ObservationSpec((channels, height, width), properties, ObservationType.DEFAULT, name)


def entities(name: str, max_entities: int, entity_size: int) -> ObservationSpec:
    """A buffer sensor's observation spec."""
    properties = (DimensionProperty.VARIABLE_SIZE, DimensionProperty.NONE)
    return ObservationSpec((max_entities, entity_size), properties, ObservationType.DEFAULT, name)


def random_observations(specs: tuple[ObservationSpec, ...], rng: np.random.Generator) -> list[np.ndarray]:
    """A batch of each sensor's observations: uint8 images, vectors, and entities of which some rows (and all of one
    agent's) are padding."""
    obs: list[np.ndarray] = []
    for spec in specs:
        if len(spec.shape) == 3:
            obs.append(rng.integers(0, 256, size=(BATCH, *spec.shape), dtype=np.uint8))
        elif len(spec.shape) == 2:
            values = rng.normal(size=(BATCH, *spec.shape)).astype(np.float32)
            values[rng.random((BATCH, spec.shape[0])) < 0.4] = 0.0
            values[0] = 0.0
            obs.append(values)
        else:
            obs.append(rng.normal(2.0, 3.0, size=(BATCH, *spec.shape)).astype(np.float32))
    return obs


CASES: dict[str, tuple[tuple[ObservationSpec, ...], NetworkSettings]] = {
    **{
        f"visual-{kind.value}": (
            (camera("Camera", 3, kind.min_resolution, kind.min_resolution), vector("Speed", 2)),
            NetworkSettings(vis_encode_type=kind, hidden_units=16, normalize=True),
        )
        for kind in EncoderType
    },
    "entities-with-fixed": (
        (vector("Self", 5), entities("Others", 6, 4), entities("Walls", 3, 2)),
        NetworkSettings(hidden_units=16, normalize=True),
    ),
    "entities-only": ((entities("Others", 5, 3),), NetworkSettings(hidden_units=16)),
    "goal-conditioned": (
        (vector("Position", 4), camera("Camera", 1, 20, 20), vector("Goal", 3, ObservationType.GOAL_SIGNAL)),
        NetworkSettings(hidden_units=16, num_layers=2),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_onnxruntime_deterministic_actions_equal_torch(tmp_path: Path, case: str) -> None:
    specs, settings = CASES[case]
    torch.manual_seed(0)
    actor = Actor(specs, ACTIONS, settings)
    rng = np.random.default_rng(0)
    if settings.normalize:
        actor.update_normalization([observation_tensor(o) for o in random_observations(specs, rng)])
    path = export_policy_model(actor, tmp_path / "Behavior.onnx")

    model = onnx.load(path)
    opsets = {entry.domain: entry.version for entry in model.opset_import}
    assert opsets.get("", opsets.get("ai.onnx")) == 9
    initializers = {i.name for i in model.graph.initializer}
    inputs = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
    expected = {f"obs_{i}": ["batch", *spec.shape] for i, spec in enumerate(specs)}
    expected["action_masks"] = ["batch", sum(ACTIONS.discrete_branches)]
    assert {k: v for k, v in inputs.items() if k not in initializers} == expected

    obs = random_observations(specs, rng)
    allowed = np.ones((BATCH, sum(ACTIONS.discrete_branches)), dtype=np.float32)
    allowed[::2, 0] = 0.0
    # Unity feeds images as floats in [0, 1]; the trainer keeps them as bytes.
    feeds = {f"obs_{i}": o.astype(np.float32) / 255.0 if o.dtype == np.uint8 else o for i, o in enumerate(obs)}
    feeds["action_masks"] = allowed
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    results = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))

    sample = actor.act([observation_tensor(o) for o in obs], torch.as_tensor(allowed), deterministic=True)
    np.testing.assert_allclose(
        results["deterministic_continuous_actions"], clip_continuous(sample.continuous).numpy(), rtol=1e-4, atol=1e-5
    )
    np.testing.assert_array_equal(results["deterministic_discrete_actions"], sample.discrete.numpy())
    assert results["continuous_actions"].shape == (BATCH, 2)
    assert (results["deterministic_discrete_actions"][::2, 0] != 0).all()  # the mask holds
    # The agents' observations differ, and so do their actions (the graph is not constant in its inputs).
    assert np.unique(results["deterministic_continuous_actions"].round(6), axis=0).shape[0] > 1
