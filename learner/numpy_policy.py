"""``NumpyPolicy``: what an EnvActor acts with when its behavior's actor is plain (vector observations, no memory,
no goal signals), acting in numpy on the weights the learner publishes.

It meets the actors' ``Policy`` protocol as :class:`~rayagents.learner.policy.InferencePolicy` does, with the same
actions and extras (the joint log probabilities and the entropies), and it imports no torch: an EnvActor that acts
with it never loads torch, which saves each EnvActor about a second of start-up and 180 MB of memory. Which
weights are which it reads from the first version it loads (:func:`~rayagents.learner.numpy_actor.layout_from_state`);
every later version must have the same names and shapes.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from rayagents.configs.network import NetworkSettings
from rayagents.learner.acting import ENTROPY, VersionedActing
from rayagents.learner.numpy_actor import NumpyActor, NumpyLayout, layout_from_state
from rayagents.protocol.trajectories import LOG_PROBS, ActionTaken
from rayagents.protocol.types import (
    ActionTuple,
    AgentId,
    BehaviorName,
    BehaviorSpec,
    DecisionSteps,
    DimensionProperty,
    ObservationType,
)


def acts_in_numpy(behavior_spec: BehaviorSpec, network_settings: NetworkSettings) -> bool:
    """Whether the behavior's actor is plain, and so acts in numpy: no memory, and only vector observations
    (rank 1, not goal signals, not variable-length). Every actor this says yes to is one the torch actor builds
    without images, attention, memory or a goal hypernetwork (checked in the tests)."""
    return network_settings.memory is None and all(
        len(spec.shape) == 1
        and spec.observation_type == ObservationType.DEFAULT
        and not any(p & DimensionProperty.VARIABLE_SIZE for p in spec.dimension_property)
        for spec in behavior_spec.observation_specs
    )


class NumpyPolicy(VersionedActing):
    """Acts for one behavior in numpy with weights that arrive as numbered versions.

    Arguments:
        behavior: the fully qualified behavior name (``"Name?team=0"``) it acts for.
        behavior_spec: the behavior's observations and actions (:func:`acts_in_numpy` must say yes to it).
        squash: the actor's Gaussian is SAC's tanh-squashed one rather than PPO's clipped one.
        deterministic: take the mean / the argmax rather than a sample (``network_settings.deterministic``).
    """

    def __init__(self, behavior: BehaviorName, behavior_spec: BehaviorSpec, squash: bool, deterministic: bool) -> None:
        super().__init__(behavior, behavior_spec)
        self.squash = squash
        self.deterministic = deterministic
        self.layout: NumpyLayout | None = None
        """Where the weights are in a published version; read from the first one loaded."""
        self._actor: NumpyActor | None = None
        self._rng: np.random.Generator | None = None
        """Drawn fresh in the process that acts (see :meth:`__getstate__`)."""

    def __getstate__(self) -> dict[str, object]:
        """The policy without its random generator: each EnvActor the driver sends a copy to draws its own."""
        state = dict(self.__dict__)
        state["_rng"] = None
        return state

    def load_weights(self, version: int, state: Mapping[str, np.ndarray]) -> None:
        """Loads weights ``version`` (an actor ``state_dict`` as numpy arrays); ValueError if they do not fit this
        behavior, and then the weights loaded before stay."""
        self._check_version(version)
        layout = self.layout
        if layout is None:
            layout = layout_from_state(state, len(self.behavior_spec.observation_specs), self.squash)
        actor = NumpyActor.from_state(layout, state)
        self._check_sizes(actor)
        self.layout, self._actor, self._version = layout, actor, version

    def _check_sizes(self, actor: NumpyActor) -> None:
        """ValueError unless ``actor`` reads this behavior's observations and gives its actions."""
        action_spec = self.behavior_spec.action_spec
        observed = sum(spec.shape[0] for spec in self.behavior_spec.observation_specs)
        sizes = (
            actor.layers[0][0].shape[0],
            0 if actor.mu is None else actor.mu[1].shape[0],
            tuple(layer[1].shape[0] for layer in actor.branches),
        )
        expected = (observed, action_spec.continuous_size, tuple(action_spec.discrete_branches))
        if sizes != expected:
            raise ValueError(
                f"the policy weights do not fit behavior {self.behavior!r}: they read {sizes[0]} observation values "
                f"and give {sizes[1]} continuous actions and branches {sizes[2]}, the behavior has {expected[0]}, "
                f"{expected[1]} and {expected[2]}; the learner and the EnvActor must build the network from the "
                "same behavior spec and network_settings"
            )

    def forget(self, agent_ids: Sequence[AgentId] | None = None) -> None:
        """Nothing to forget: a plain actor has no memory."""

    def act(self, behavior: BehaviorName, decision_steps: DecisionSteps) -> ActionTaken:
        """The actions of every agent of ``decision_steps``, row for row, with what the trainer keeps of them."""
        allowed = self._allowed(behavior, decision_steps)
        assert self._actor is not None  # a version is loaded
        if self._rng is None:
            self._rng = np.random.default_rng()
        sample = self._actor.act(decision_steps.obs, allowed, self.deterministic, self._rng)
        return ActionTaken(
            env_actions=ActionTuple(continuous=sample.env_continuous, discrete=sample.discrete),
            continuous=sample.continuous,
            discrete=sample.discrete,
            policy_version=self._version,
            extras={LOG_PROBS: sample.log_prob, ENTROPY: sample.entropy},
        )
