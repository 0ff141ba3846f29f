"""``InferencePolicy``: what an EnvActor acts with, a CPU copy of one behavior's actor fed by weight versions.

It meets the actors' ``Policy`` protocol (``act(behavior, decision_steps) -> ActionTaken``) by its shape alone:
``learner/`` and ``actors/`` never import each other, and the driver hands the EnvActor an instance. The learner
publishes :class:`~rayagents.learner.weights.PolicyWeights` (numpy only); :meth:`InferencePolicy.load_weights`
copies a version in. Acting samples (or, with ``network_settings.deterministic``, takes the mean / the argmax)
under the agents' action masks and returns the raw samples with, as extras kept per step, the joint log
probabilities that PPO's ratio is taken against and the entropies behind ``Policy/Entropy``; the player's actions
are clipped as ML-Agents does (continuous ``clamp(x, -3, 3) / 3``; SAC's squashed ones as they are). It runs in
torch without gradients on one thread: a small network on one agent batch gains nothing from more, and an EnvActor
holds one CPU. The registry gives an EnvActor an ``InferencePolicy`` only for an actor that is not plain: a plain
actor (vector observations, no memory, no goal signals) gets a :class:`~rayagents.learner.numpy_policy.NumpyPolicy`,
which acts in numpy at a third of torch's cost for a few agents and spares the EnvActor torch altogether.

With ``network_settings.memory`` the policy keeps each agent's memory (zeros when it first acts), keeps the memory
each decision was made from as the extra :data:`~rayagents.learner.memory.MEMORY` (training starts each sequence
from it), and forgets an agent's memory when the EnvActor says its episode ended (:meth:`InferencePolicy.forget`;
all of them when the player restarts), as ML-Agents' policy does.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch

from rayagents.configs.network import NetworkSettings
from rayagents.learner.acting import ENTROPY, VersionedActing
from rayagents.learner.encoders import observation_tensor
from rayagents.learner.memory import MEMORY
from rayagents.learner.networks import PPO_ACTOR, Actor, ActorKind
from rayagents.learner.weights import load_actor_weights
from rayagents.protocol.trajectories import LOG_PROBS, ActionTaken
from rayagents.protocol.types import AgentId, BehaviorName, BehaviorSpec, DecisionSteps

INFERENCE_THREADS = 1
"""Torch intra-op threads while acting."""


class _TorchThreads:
    """Sets torch's intra-op thread count for a block and restores the previous count after it."""

    def __init__(self, threads: int) -> None:
        self._threads = threads
        self._previous = threads

    def __enter__(self) -> None:
        self._previous = torch.get_num_threads()
        if self._previous != self._threads:
            torch.set_num_threads(self._threads)

    def __exit__(self, *exc_info: object) -> None:
        if torch.get_num_threads() != self._previous:
            torch.set_num_threads(self._previous)


def _float32(values: torch.Tensor) -> np.ndarray:
    """A CPU tensor as a contiguous float32 array (a copy only when the type or the layout differs)."""
    return np.ascontiguousarray(values.numpy(), dtype=np.float32)


class InferencePolicy(VersionedActing):
    """Acts for one behavior in torch with a CPU actor whose weights arrive as numbered versions.

    Arguments:
        behavior: the fully qualified behavior name (``"Name?team=0"``) it acts for.
        behavior_spec: the behavior's observations and actions (the network is built from them).
        network_settings: the behavior's ``network_settings``, the same the learner's network is built from.
        kind: the actor's kind (PPO's clipped Gaussian, SAC's squashed one), the same as the learner's.
    """

    def __init__(
        self,
        behavior: BehaviorName,
        behavior_spec: BehaviorSpec,
        network_settings: NetworkSettings,
        kind: ActorKind = PPO_ACTOR,
    ) -> None:
        super().__init__(behavior, behavior_spec)
        self.actor = Actor(behavior_spec.observation_specs, behavior_spec.action_spec, network_settings, kind).eval()
        self._memories: dict[AgentId, np.ndarray] = {}

    def load_weights(self, version: int, state: Mapping[str, np.ndarray]) -> None:
        """Loads weights ``version`` (an actor ``state_dict`` as numpy arrays); ValueError if they do not fit."""
        self._check_version(version)
        load_actor_weights(self.actor, state)
        self._version = version

    def forget(self, agent_ids: Sequence[AgentId] | None = None) -> None:
        """Forgets the memories of agents whose episodes ended (every agent's with None: the player restarted), so
        that their next decisions start from zeros. Nothing to forget without memory."""
        if agent_ids is None:
            self._memories.clear()
            return
        for agent_id in agent_ids:
            self._memories.pop(agent_id, None)

    def _memories_of(self, agent_ids: Sequence[AgentId]) -> np.ndarray:
        """float32 ``(n, memory_size)``: each agent's memory, zeros for one not seen since its episode started."""
        zeros = np.zeros(self.actor.memory_size, dtype=np.float32)
        return np.stack([self._memories.get(agent_id, zeros) for agent_id in agent_ids])

    def act(self, behavior: BehaviorName, decision_steps: DecisionSteps) -> ActionTaken:
        """The actions of every agent of ``decision_steps``, row for row, with what the trainer keeps of them."""
        allowed_array = self._allowed(behavior, decision_steps)
        observations = [observation_tensor(o) for o in decision_steps.obs]
        allowed = None if allowed_array is None else torch.from_numpy(allowed_array)
        extras: dict[str, np.ndarray] = {}
        memories: torch.Tensor | None = None
        if self.actor.memory_size:
            agent_ids = decision_steps.agent_id.tolist()
            extras[MEMORY] = self._memories_of(agent_ids)
            memories = torch.from_numpy(extras[MEMORY])
        with _TorchThreads(INFERENCE_THREADS), torch.inference_mode():
            sample = self.actor.act(observations, allowed, memories=memories)
        if sample.memories is not None:
            for agent_id, memory in zip(agent_ids, sample.memories.numpy().astype(np.float32)):
                self._memories[agent_id] = memory
        extras[LOG_PROBS] = _float32(sample.log_prob)
        extras[ENTROPY] = _float32(sample.entropy)
        return ActionTaken(
            env_actions=sample.env_actions(),
            continuous=_float32(sample.continuous),
            discrete=sample.discrete.numpy().astype(np.int32),
            policy_version=self._version,
            extras=extras,
        )

