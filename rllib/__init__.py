"""RLlib on Unity players: a multi-agent environment for RLlib's current API stack over ``UnityEnvironment``.

``UnityMultiAgentEnv`` is the environment (built from RLlib's ``env_config``); ``behavior_policies`` reads a
build's behaviors and gives one policy per behavior, with the agent-to-policy mapping. Installed with the
``rllib`` extra (``pip install "rayagents[rllib]"``).
"""

from rayagents.rllib.env import UnityMultiAgentEnv, agent_id, behavior_name, parse_agent_id
from rayagents.rllib.policies import BehaviorPolicies, behavior_policies, policy_for_agent
from rayagents.rllib.settings import UnitySettings

__all__ = [
    "BehaviorPolicies",
    "UnityMultiAgentEnv",
    "UnitySettings",
    "agent_id",
    "behavior_name",
    "behavior_policies",
    "parse_agent_id",
    "policy_for_agent",
]
