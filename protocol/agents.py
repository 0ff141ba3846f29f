"""The Unity end of a step, used by the simulation host: what a player sends about its behaviors and agents,
and the actions it reads back (re-exported from :mod:`rayagents.protocol.actions`).

Observations are built with :func:`rayagents.protocol.observations.float_observation_proto` and
:func:`~rayagents.protocol.observations.png_observation_proto`; a player sends an agent's sensors sorted by
name, as Unity does.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from rayagents.protocol.actions import actions_from_protos
from rayagents.protocol.communicator_objects.agent_info_pb2 import AgentInfoProto
from rayagents.protocol.communicator_objects.brain_parameters_pb2 import ActionSpecProto, BrainParametersProto
from rayagents.protocol.communicator_objects.observation_pb2 import ObservationProto
from rayagents.protocol.communicator_objects.space_type_pb2 import continuous as SPACE_TYPE_CONTINUOUS
from rayagents.protocol.communicator_objects.space_type_pb2 import discrete as SPACE_TYPE_DISCRETE
from rayagents.protocol.types import ActionSpec

__all__ = ["actions_from_protos", "agent_info_proto", "brain_parameters_proto", "legacy_brain_parameters_proto"]


def brain_parameters_proto(behavior: str, action_spec: ActionSpec, *, is_training: bool = True) -> BrainParametersProto:
    """The parameters a player sends once for ``behavior`` (its fully qualified name), with its first agent infos."""
    return BrainParametersProto(
        brain_name=behavior,
        is_training=is_training,
        action_spec=ActionSpecProto(
            num_continuous_actions=action_spec.continuous_size,
            num_discrete_actions=action_spec.discrete_size,
            discrete_branch_sizes=action_spec.discrete_branches,
        ),
    )


def legacy_brain_parameters_proto(
    behavior: str, action_spec: ActionSpec, *, is_training: bool = True
) -> BrainParametersProto:
    """The parameters a player sends to a trainer without the hybrid-actions capability.

    As Unity does then, the deprecated ``vector_action_size_deprecated`` / ``vector_action_space_type_deprecated``
    are filled besides ``action_spec``; the actions must be continuous only or discrete only.
    """
    if action_spec.continuous_size > 0 and action_spec.discrete_size > 0:
        raise ValueError(
            f"behavior '{behavior}' has both continuous and discrete actions, which a trainer without the "
            "hybridActions capability cannot take; upgrade the trainer (communicator API 1.3 or later)."
        )
    brain = brain_parameters_proto(behavior, action_spec, is_training=is_training)
    if action_spec.continuous_size > 0:
        brain.vector_action_size_deprecated.append(action_spec.continuous_size)
        brain.vector_action_space_type_deprecated = SPACE_TYPE_CONTINUOUS
    else:
        brain.vector_action_size_deprecated.extend(action_spec.discrete_branches)
        brain.vector_action_space_type_deprecated = SPACE_TYPE_DISCRETE
    return brain


def agent_info_proto(
    agent_id: int,
    observations: Sequence[ObservationProto],
    *,
    reward: float = 0.0,
    done: bool = False,
    max_step_reached: bool = False,
    action_mask: np.ndarray | None = None,
    group_id: int = 0,
    group_reward: float = 0.0,
) -> AgentInfoProto:
    """One agent's info for this step: its observations (one per sensor, sorted by sensor name), the reward
    since its last decision, whether its episode ended (``done``) and was cut off (``max_step_reached``), its
    flat action mask over all discrete branches (True = the action is disabled) and its group.
    """
    info = AgentInfoProto(
        id=agent_id,
        reward=reward,
        done=done,
        max_step_reached=max_step_reached,
        group_id=group_id,
        group_reward=group_reward,
    )
    info.observations.extend(observations)
    if action_mask is not None:
        info.action_mask.extend(np.asarray(action_mask, dtype=bool).ravel().tolist())
    return info
