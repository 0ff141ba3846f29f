"""The messages a Unity player sends, built from a scene's behaviors and its agents' reports.

Pure functions and a per-behavior observation encoder; the academy (``academy.py``) decides when to send what.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from rayagents.protocol.agents import brain_parameters_proto, legacy_brain_parameters_proto
from rayagents.protocol.communicator_objects.brain_parameters_pb2 import BrainParametersProto
from rayagents.protocol.communicator_objects.capabilities_pb2 import UnityRLCapabilitiesProto
from rayagents.protocol.communicator_objects.unity_message_pb2 import UnityMessageProto
from rayagents.protocol.agent_batch import FloatObservations, ListAgentInfoProto, SensorBatch, agent_info_list_proto
from rayagents.protocol.observations import png_observation_proto
from rayagents.protocol.types import DimensionProperty
from rayagents.protocol.versions import API_VERSION, UNITY_PACKAGE_VERSION
from rayagents.sims.scene import AgentReport, BehaviorDef, SensorKind, SensorSpec, sensor_order

STATUS_OK = 200
"""Header status of a message carrying data."""
STATUS_QUIT = 400
"""Header status that closes the connection (either end)."""

ACADEMY_NAME = "AcademySingleton"
"""The name a Unity player's academy reports in the handshake."""

_CAPABILITY_FIELDS = (
    "baseRLCapabilities",
    "concatenatedPngObservations",
    "compressedChannelMapping",
    "hybridActions",
    "trainingAnalytics",
    "variableLengthObservation",
    "multiAgentGroups",
)


def player_capabilities() -> UnityRLCapabilitiesProto:
    """The capabilities a com.unity.ml-agents 3.x player reports: all seven true."""
    return UnityRLCapabilitiesProto(**{name: True for name in _CAPABILITY_FIELDS})


def academy_parameters_message() -> UnityMessageProto:
    """Exchange #1 of the handshake: the academy's name, versions and capabilities; no brain parameters yet."""
    message = UnityMessageProto()
    message.header.status = STATUS_OK
    init = message.unity_output.rl_initialization_output
    init.name = ACADEMY_NAME
    init.communication_version = API_VERSION
    init.package_version = UNITY_PACKAGE_VERSION
    init.capabilities.CopyFrom(player_capabilities())
    return message


def header_message(status: int) -> UnityMessageProto:
    """A message with a header only: Exchange #2 of the handshake (200) or the player's goodbye (400)."""
    message = UnityMessageProto()
    message.header.status = status
    return message


def default_dimension_properties(sensor: SensorSpec) -> tuple[int, ...]:
    """The sensor's dimension properties, or those Unity's sensors send for its rank.

    Rank 1 (vector): (NONE,); rank 2 (buffer of entities): (VARIABLE_SIZE, NONE); rank 3 (image):
    (NONE, TRANSLATIONAL_EQUIVARIANCE, TRANSLATIONAL_EQUIVARIANCE); other ranks: none.
    """
    if sensor.dimension_properties is not None:
        return tuple(int(p) for p in sensor.dimension_properties)
    none = int(DimensionProperty.NONE)
    translational = int(DimensionProperty.TRANSLATIONAL_EQUIVARIANCE)
    by_rank = {
        1: (none,),
        2: (int(DimensionProperty.VARIABLE_SIZE), none),
        3: (none, translational, translational),
    }
    return by_rank.get(len(sensor.shape), ())


def missing_capability_problems(behaviors: Sequence[BehaviorDef], trainer: UnityRLCapabilitiesProto) -> list[str]:
    """Errors that stop a player whose scene needs a capability the trainer lacks (as Unity throws)."""
    problems: list[str] = []
    for behavior in behaviors:
        spec = behavior.action_spec
        if not trainer.hybridActions and spec.continuous_size > 0 and spec.discrete_size > 0:
            problems.append(
                f"behavior '{behavior.qualified_name}' has both continuous and discrete actions, but the trainer "
                "does not support hybrid actions: upgrade the trainer (communicator API 1.3.0 or later)."
            )
        for sensor in behavior.sensors:
            variable = any(int(p) & int(DimensionProperty.VARIABLE_SIZE) for p in default_dimension_properties(sensor))
            if variable and not trainer.variableLengthObservation:
                problems.append(
                    f"sensor '{sensor.name}' of behavior '{behavior.qualified_name}' has a variable length, but "
                    "the trainer does not support variable-length observations: upgrade the trainer "
                    "(communicator API 1.5.0 or later)."
                )
    return problems


def brain_parameters(behavior: BehaviorDef, trainer: UnityRLCapabilitiesProto) -> BrainParametersProto:
    """The behavior's brain parameters, with the deprecated action fields when the trainer lacks hybrid actions."""
    if trainer.hybridActions:
        return brain_parameters_proto(behavior.qualified_name, behavior.action_spec, is_training=True)
    return legacy_brain_parameters_proto(behavior.qualified_name, behavior.action_spec, is_training=True)


class ObservationEncoder:
    """Turns one behavior's observations (in ``BehaviorDef.sensors`` order) into protos sorted by sensor name.

    An image goes as PNG when the trainer can decode it: a 3-channel image always, other channel counts only
    when the trainer has both ``concatenatedPngObservations`` and ``compressedChannelMapping``; otherwise it
    goes uncompressed, as a Unity player falls back.
    """

    def __init__(self, behavior: BehaviorDef, trainer: UnityRLCapabilitiesProto) -> None:
        self._behavior = behavior
        self._order = sensor_order(behavior.sensors)
        mapping_ok = trainer.concatenatedPngObservations and trainer.compressedChannelMapping
        self._png = tuple(
            s.kind == SensorKind.PNG and (s.shape[0] == 3 or mapping_ok) for s in behavior.sensors
        )
        self._dims = tuple(default_dimension_properties(s) for s in behavior.sensors)

    def encode_batch(self, observations: Sequence[Sequence[np.ndarray]]) -> list[SensorBatch]:
        """Several agents' observations (one tuple per agent, in ``BehaviorDef.sensors`` order) as sensor batches
        sorted by sensor name, for ``agent_info_list_proto``: float arrays ``(n, *shape)``, or one PNG proto per
        agent."""
        sensors = self._behavior.sensors
        for agent_observations in observations:
            if len(agent_observations) != len(sensors):
                raise ValueError(
                    f"behavior '{self._behavior.qualified_name}' has {len(sensors)} sensors but an agent reported "
                    f"{len(agent_observations)} observations: report one per sensor, in BehaviorDef.sensors order"
                )
        batches: list[SensorBatch] = []
        for i in self._order:
            sensor = sensors[i]
            column = [agent_observations[i] for agent_observations in observations]
            for values in column:
                if values.shape != sensor.shape:
                    raise ValueError(
                        f"sensor '{sensor.name}' of behavior '{self._behavior.qualified_name}' declares shape "
                        f"{sensor.shape} but an agent reported an observation of shape {values.shape}"
                    )
            observation_type = sensor.observation_type.value
            if self._png[i]:
                batches.append(
                    [png_observation_proto(v, sensor.name, observation_type=observation_type) for v in column]
                )
            else:
                batches.append(
                    FloatObservations(
                        name=sensor.name,
                        values=np.stack(column) if column else np.zeros((0,) + sensor.shape, np.float32),
                        dimension_properties=self._dims[i],
                        observation_type=observation_type,
                    )
                )
        return batches


def agent_info_list(
    behavior: BehaviorDef, encoder: ObservationEncoder, agent_ids: Sequence[int], reports: Sequence[AgentReport]
) -> ListAgentInfoProto:
    """The agent infos a player sends for ``reports`` of one behavior (one per report, in order, agent ``i`` with
    wire id ``agent_ids[i]``): observations sorted by sensor name, rewards, flags, action masks, groups."""
    masks = None
    if any(report.action_mask is not None for report in reports):
        width = sum(behavior.action_spec.discrete_branches)
        masks = np.zeros((len(reports), width), dtype=bool)
        for row, report in enumerate(reports):
            if report.action_mask is None:
                continue
            mask = np.asarray(report.action_mask, dtype=bool).reshape(-1)
            if mask.shape[0] != width:
                raise ValueError(
                    f"agent '{report.agent}' of behavior '{behavior.qualified_name}' reported an action mask of "
                    f"{mask.shape[0]} values; it needs one per action of every discrete branch ({width})"
                )
            masks[row] = mask
    return agent_info_list_proto(
        list(agent_ids),
        encoder.encode_batch([report.observations for report in reports]),
        rewards=np.fromiter((r.reward for r in reports), np.float32, len(reports)),
        dones=np.fromiter((r.done for r in reports), bool, len(reports)),
        max_step_reached=np.fromiter((r.max_step_reached for r in reports), bool, len(reports)),
        action_masks=masks,
        group_ids=np.fromiter((r.group_id for r in reports), np.int64, len(reports)),
        group_rewards=np.fromiter((r.group_reward for r in reports), np.float32, len(reports)),
    )
