"""What the simulation host puts on the wire for a scene's behaviors: sensor order, PNG fallback, brain parameters."""

from __future__ import annotations

import numpy as np
import pytest

from rayagents.protocol.agent_batch import agent_info_list_proto
from rayagents.protocol.communicator_objects.capabilities_pb2 import UnityRLCapabilitiesProto
from rayagents.protocol.observations import observation_spec_from_proto, observations_to_array
from rayagents.protocol.types import ActionSpec, ObservationType
from rayagents.sims.messages import (
    ObservationEncoder,
    brain_parameters,
    missing_capability_problems,
    player_capabilities,
)
from rayagents.sims.scene import BehaviorDef, SensorKind, SensorSpec, sensor_order

PNG, NONE = 1, 0


def behavior_with_sensors() -> BehaviorDef:
    """A behavior whose sensors are declared out of Unity's order: a gray camera, a vector and a goal."""
    return BehaviorDef(
        name="Seeker",
        sensors=(
            SensorSpec("vector", (3,)),
            SensorSpec("Camera", (1, 8, 6), kind=SensorKind.PNG),
            SensorSpec("Goal", (2,), observation_type=ObservationType.GOAL_SIGNAL),
        ),
        action_spec=ActionSpec.create_discrete((3, 2)),
    )


def test_sensor_order_is_unity_invariant_culture_order() -> None:
    """Case-insensitive first, lower case before upper case on a tie (string.Compare, invariant culture)."""
    sensors = [SensorSpec(name, (1,)) for name in ("b", "A", "a", "C", "B2")]
    assert [sensors[i].name for i in sensor_order(sensors)] == ["a", "A", "b", "B2", "C"]


def test_observations_sorted_by_name_and_images_as_png() -> None:
    """Observations go sorted by sensor name; a 1-channel image goes as PNG that decodes back to it."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(1, 8, 6)).astype(np.float32) / 255.0
    observations = (np.array([1.0, 2.0, 3.0], np.float32), image, np.array([4.0, 5.0], np.float32))
    encoder = ObservationEncoder(behavior_with_sensors(), player_capabilities())
    infos = agent_info_list_proto([7], encoder.encode_batch([observations]))
    protos = infos.value[0].observations
    assert [p.name for p in protos] == ["Camera", "Goal", "vector"]
    assert [p.compression_type for p in protos] == [PNG, NONE, NONE]
    assert protos[1].observation_type == ObservationType.GOAL_SIGNAL.value
    spec = observation_spec_from_proto(protos[0])
    np.testing.assert_allclose(observations_to_array([protos[0]], spec, behavior="Seeker")[0], image, atol=1e-6)
    assert list(protos[2].float_data.data) == [1.0, 2.0, 3.0] and list(protos[2].dimension_properties) == [1]


def test_image_falls_back_to_floats_without_channel_mapping() -> None:
    """A trainer without compressedChannelMapping gets a 1-channel image uncompressed, as Unity falls back."""
    trainer = player_capabilities()
    trainer.compressedChannelMapping = False
    image = np.full((1, 8, 6), 0.5, np.float32)
    encoder = ObservationEncoder(behavior_with_sensors(), trainer)
    batches = encoder.encode_batch([(np.zeros(3, np.float32), image, np.zeros(2, np.float32))])
    camera = agent_info_list_proto([0], batches).value[0].observations[0]
    assert camera.compression_type == NONE
    assert list(camera.shape) == [1, 8, 6] and list(camera.dimension_properties) == [1, 2, 2]
    with pytest.raises(ValueError, match="Camera"):
        encoder.encode_batch([(np.zeros(3, np.float32), np.zeros((1, 4, 4), np.float32), np.zeros(2, np.float32))])


def test_brain_parameters_and_capabilities() -> None:
    """Brain parameters name the qualified behavior; deprecated fields only for a trainer without hybrid actions."""
    behavior = behavior_with_sensors()
    modern = brain_parameters(behavior, player_capabilities())
    assert modern.brain_name == "Seeker?team=0" and list(modern.action_spec.discrete_branch_sizes) == [3, 2]
    assert list(modern.vector_action_size_deprecated) == []
    legacy = brain_parameters(behavior, UnityRLCapabilitiesProto(baseRLCapabilities=True))
    assert list(legacy.vector_action_size_deprecated) == [3, 2] and legacy.vector_action_space_type_deprecated == 0

    hybrid = BehaviorDef("Walker", (SensorSpec("v", (2,)),), ActionSpec.create_hybrid(2, (3,)), team=1)
    assert missing_capability_problems([hybrid], player_capabilities()) == []
    problems = missing_capability_problems([hybrid], UnityRLCapabilitiesProto(baseRLCapabilities=True))
    assert len(problems) == 1 and "Walker?team=1" in problems[0] and "hybrid" in problems[0]
