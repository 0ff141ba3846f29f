"""One RLlib policy (RLModule) per behavior of a Unity build, and the mapping of agents to them.

:func:`behavior_policies` launches the build once, plays random actions for a few steps so that every behavior
shows itself (a second team's agents may decide only after the first's), closes it, and returns the
:class:`BehaviorPolicies`: an ``RLModuleSpec`` per behavior name (teams of a behavior share its policy) and
:func:`policy_for_agent`, RLlib's ``policy_mapping_fn``. ``BehaviorPolicies.apply(config)`` sets the
environment, the policies and the modules of an ``AlgorithmConfig`` in one call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from gymnasium import spaces
from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
from ray.rllib.core.rl_module.rl_module import RLModuleSpec

from rayagents.rllib.env import UnityMultiAgentEnv, behavior_name
from rayagents.rllib.spaces import BehaviorSpaces

DISCOVERY_STEPS = 200
"""The most random steps played to see every behavior of a build."""


def policy_for_agent(agent_id: str, episode: Any = None, **_: Any) -> str:
    """RLlib's ``policy_mapping_fn``: an agent (``Name?team=N_AGENT``) acts with its behavior's policy ``Name``."""
    return behavior_name(agent_id)


@dataclass(frozen=True)
class PolicySpaces:
    """The spaces of one behavior's policy."""

    observation_space: spaces.Space
    """What its agents observe (RLlib's action-masking layout when the behavior's actions are masked)."""
    action_space: spaces.Space
    """What its agents do."""
    masked: bool
    """Whether observations carry an ``action_mask`` (then the policy is RLlib's action-masking PPO module)."""


@dataclass(frozen=True)
class BehaviorPolicies:
    """RLlib's multi-agent setup for a Unity build: one policy per behavior name."""

    env_config: Mapping[str, Any]
    """The ``env_config`` the build was read with (also what :meth:`apply` gives the environment)."""
    policies: Mapping[str, PolicySpaces]
    """The policies by behavior name."""

    @property
    def names(self) -> set[str]:
        """The policy ids, for ``AlgorithmConfig.multi_agent(policies=...)``."""
        return set(self.policies)

    def module_spec(self) -> MultiRLModuleSpec:
        """The RLModule of each policy with its spaces; masked behaviors get RLlib's action-masking PPO module."""
        specs = {}
        for name, policy in sorted(self.policies.items()):
            module_class = None
            if policy.masked:
                from ray.rllib.examples.rl_modules.classes.action_masking_rlm import ActionMaskingTorchRLModule

                module_class = ActionMaskingTorchRLModule
            specs[name] = RLModuleSpec(
                module_class=module_class,
                observation_space=policy.observation_space,
                action_space=policy.action_space,
            )
        return MultiRLModuleSpec(rl_module_specs=specs)

    def apply(self, config: AlgorithmConfig) -> AlgorithmConfig:
        """``config`` training on the build: its environment, one policy per behavior and their modules."""
        return (
            config.environment(UnityMultiAgentEnv, env_config=dict(self.env_config))
            .multi_agent(policies=self.names, policy_mapping_fn=policy_for_agent)
            .rl_module(rl_module_spec=self.module_spec())
        )


def behavior_policies(env_config: Mapping[str, Any], discovery_steps: int = DISCOVERY_STEPS) -> BehaviorPolicies:
    """Launches the build of ``env_config`` once and returns one policy per behavior it shows in its first
    episode of random play, or in ``discovery_steps`` steps if that episode is longer (the player is closed
    before returning)."""
    env = UnityMultiAgentEnv(dict(env_config))
    try:
        observations, _ = env.reset()
        for _ in range(discovery_steps):
            actions = {a: env.get_action_space(a).sample() for a in observations if a in env.agents}
            observations, _, terminateds, truncateds, _ = env.step(actions)
            if terminateds["__all__"] or truncateds["__all__"]:
                break  # every agent of the build has played in the episode
        behaviors: dict[str, BehaviorSpaces] = {}
        for qualified, behavior in env.behaviors.items():
            behaviors.setdefault(qualified.partition("?")[0], behavior)
    finally:
        env.close()
    policies = {
        name: PolicySpaces(b.observation_space, b.action_space, b.masked) for name, b in sorted(behaviors.items())
    }
    return BehaviorPolicies(dict(env_config), policies)
