"""``UnityMultiAgentEnv``: a Unity player (or a scene of the simulation host) as an RLlib multi-agent environment.

RLlib's current API stack builds it from ``env_config`` (see :class:`UnitySettings`) in each EnvRunner, once per
``num_envs_per_env_runner``: every instance launches its own player on a free port, and the player dies with it
(the player is a child process that the kernel kills when its parent dies).

- **Agent ids** keep the behavior, its team and the Unity agent: ``CartPole?team=0_17``
  (:func:`agent_id`, :func:`parse_agent_id`). All of a player's behaviors and areas act in one environment.
- **Episodes**: ``reset()`` resets the player, so every RLlib episode starts from a fresh start of every area.
  An agent whose Unity episode ends is reported ``terminated`` (``truncated`` where Unity interrupted it at its
  max step) with its last observation and reward; the RLlib episode ends once every agent has ended, or after
  ``episode_horizon`` steps (truncated). Agents that ended early are played with zero actions until then and
  are not reported: no step they take counts.
- **Rewards** are the agent's reward plus its group's reward since its last decision.
- **A player that fails** (crash, hang past ``timeout_wait``) is restarted under mlagents-learn's restart
  limits; the episode it was playing ends truncated at the failure, and the next ``reset()`` plays on the new
  player. When the limits are spent the error names the player's log.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np
from gymnasium import spaces
from ray.rllib.env.multi_agent_env import MultiAgentEnv

from rayagents.actors.builds import is_build_archive, local_build
from rayagents.actors.environment import UnityEnvironment
from rayagents.actors.parameters import engine_configuration_channel
from rayagents.actors.restarts import RestartBudget
from rayagents.configs import EngineSettings
from rayagents.protocol.exceptions import UnityException
from rayagents.protocol.side_channels.stats import StatsSideChannel
from rayagents.protocol.types import BehaviorName, DecisionSteps, TerminalSteps
from rayagents.rllib.settings import UnitySettings
from rayagents.rllib.spaces import BehaviorSpaces

logger = logging.getLogger(__name__)

ALL = "__all__"
"""RLlib's key for the whole episode in ``terminateds`` and ``truncateds``."""


def agent_id(behavior: BehaviorName, agent: int) -> str:
    """RLlib's id of Unity agent ``agent`` of ``behavior`` (a fully qualified ``Name?team=N``)."""
    return f"{behavior}_{agent}"


def parse_agent_id(rllib_id: str) -> tuple[BehaviorName, int]:
    """The behavior (``Name?team=N``) and Unity agent of an id made by :func:`agent_id`."""
    behavior, _, agent = rllib_id.rpartition("_")
    if not behavior or not agent.lstrip("-").isdigit():
        raise ValueError(f"{rllib_id!r} is not a Unity agent id: they read BEHAVIOR?team=N_AGENT")
    return behavior, int(agent)


def behavior_name(rllib_id: str) -> str:
    """The behavior's name without its team (``CartPole`` for ``CartPole?team=0_17``): one policy per behavior."""
    return parse_agent_id(rllib_id)[0].partition("?")[0]


class UnityMultiAgentEnv(MultiAgentEnv):
    """A Unity player's behaviors and areas as one RLlib multi-agent environment (see the module's docstring).

    Arguments:
        config: RLlib's ``env_config`` (an ``EnvContext``, whose ``worker_index`` offsets the player's seed and
            begins its log's name), read by :meth:`UnitySettings.from_env_config`.
    """

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.settings = UnitySettings.from_env_config(dict(config or {}))
        """What the env_config said."""
        self._worker_id = int(getattr(config, "worker_index", 0))
        # RLlib gives every environment of one EnvRunner the same context: a token keeps their logs apart.
        self._log_name = f"{self._worker_id}-{secrets.token_hex(3)}"
        self._budget = RestartBudget(
            self.settings.max_lifetime_restarts,
            self.settings.restarts_rate_limit_n,
            self.settings.restarts_rate_limit_period_s,
        )
        self._file_name = self.settings.file_name
        if self._file_name is not None and is_build_archive(self._file_name):
            self._file_name = local_build(self._file_name)
        self._env: UnityEnvironment | None = None
        self._behaviors: dict[BehaviorName, BehaviorSpaces] = {}
        self._ended: set[str] = set()
        self._last: dict[str, Any] = {}  # every agent of the episode so far: its latest observation
        self._steps = 0
        self._stats = StatsSideChannel()
        self.observation_spaces = {}
        self.action_spaces = {}
        self.possible_agents = []
        self._launch().reset()
        self._add_behaviors()
        if not self._behaviors:
            raise RuntimeError(
                f"the player {self.settings.file_name or '(Unity Editor)'} sent no behavior after a reset: it has "
                "no agent with a Behavior Parameters component"
            )
        self.agents = list(self.possible_agents)

    # ---- the player ----------------------------------------------------------------------------------------------
    def _launch(self) -> UnityEnvironment:
        s = self.settings
        log: tuple[str, ...] = ()
        if s.log_folder is not None:
            Path(s.log_folder).mkdir(parents=True, exist_ok=True)
            log = ("-logFile", str(Path(s.log_folder) / f"Player-{self._log_name}.log"))
        self._env = UnityEnvironment(
            self._file_name,
            worker_id=0 if self._file_name is None else self._worker_id,
            seed=s.seed + self._worker_id,
            num_areas=s.num_areas,
            no_graphics=s.no_graphics,
            timeout_wait=s.timeout_wait,
            side_channels=[engine_configuration_channel(EngineSettings(time_scale=s.time_scale)), self._stats],
            additional_args=log,
            port=s.port,
        )
        return self._env

    def _player(self) -> UnityEnvironment:
        return self._launch() if self._env is None else self._env

    @property
    def behaviors(self) -> Mapping[BehaviorName, BehaviorSpaces]:
        """The behaviors seen so far (fully qualified names) with their spaces."""
        return MappingProxyType(self._behaviors)

    def _player_failed(self, error: UnityException) -> None:
        """Closes the failed player and starts a new one, if the restart limits allow."""
        log = self._env.log_path if self._env is not None else None
        if self._env is not None:
            self._env.close()
            self._env = None
        where = f"; its log is {log}" if log else ""
        refusal = self._budget.refusal()
        if refusal is not None:
            raise RuntimeError(
                f"the Unity player {self.settings.file_name} failed ({error}) and is not restarted again: "
                f"{refusal}{where}. Read the log for the player's own error."
            ) from error
        self._budget.take()
        logger.warning("the Unity player %s failed and is restarted: %s%s", self.settings.file_name, error, where)
        self._launch()

    def _add_behaviors(self) -> None:
        """Declares the behaviors and the agents of this step that are new (an agent's spaces are its
        behavior's). Behaviors appear with their first deciding agent: a second team's may come a step later."""
        env = self._player()
        for name, spec in env.behavior_specs.items():
            if name not in self._behaviors:
                masked = self.settings.action_masks and bool(spec.action_spec.discrete_branches)
                self._behaviors[name] = BehaviorSpaces(spec, masked)
        for name, behavior in self._behaviors.items():
            decisions, _ = env.get_steps(name)
            for agent in decisions.agent_id:
                rllib_id = agent_id(name, int(agent))
                if rllib_id not in self.observation_spaces:
                    self.observation_spaces[rllib_id] = behavior.observation_space
                    self.action_spaces[rllib_id] = behavior.action_space
                    self.possible_agents.append(rllib_id)

    # ---- RLlib's API ---------------------------------------------------------------------------------------------
    def get_observation_space(self, agent_id: str) -> spaces.Space:
        """The observation space of ``agent_id``: its behavior's (agents may appear after the first reset)."""
        return self._behavior(agent_id).observation_space

    def get_action_space(self, agent_id: str) -> spaces.Space:
        """The action space of ``agent_id``: its behavior's."""
        return self._behavior(agent_id).action_space

    def _behavior(self, rllib_id: str) -> BehaviorSpaces:
        name = parse_agent_id(rllib_id)[0]
        if name not in self._behaviors:
            raise KeyError(f"{rllib_id}: the player has shown no behavior {name} (it has {sorted(self._behaviors)})")
        return self._behaviors[name]

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Resets the player (every area starts over) and returns the observations of the agents that decide.

        ``seed`` is ignored: a Unity player takes its seed once, at launch (``env_config["seed"]``).
        """
        self._ended.clear()
        self._last.clear()
        self._steps = 0
        while True:
            try:
                self._player().reset()
                break
            except UnityException as error:
                self._player_failed(error)
        observations, _, _, _ = self._observe(include_terminal=False)
        self.agents = list(observations)
        return observations, {}

    def step(
        self, action_dict: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, float], dict[str, bool], dict[str, bool], dict[str, Any]]:
        """Sends the actions of the agents that decided (zeros for the others) and returns the next step."""
        env = self._player()
        grouped: dict[BehaviorName, dict[int, Any]] = {}
        for rllib_id, action in action_dict.items():
            name, agent = parse_agent_id(rllib_id)
            grouped.setdefault(name, {})[agent] = action
        for name, behavior in self._behaviors.items():
            decisions, _ = env.get_steps(name)
            if len(decisions) == 0:
                continue
            chosen = grouped.get(name, {})
            env.set_actions(name, behavior.actions([chosen.get(int(agent)) for agent in decisions.agent_id]))
        try:
            env.step()
        except UnityException as error:
            logger.warning("the episode ends truncated at a player failure: %s", error)
            self._player_failed(error)
            return self._cut_short()
        self._steps += 1
        observations, rewards, terminateds, truncateds = self._observe(include_terminal=True)
        everyone_ended = self._last.keys() <= self._ended
        horizon = self._steps >= self.settings.episode_horizon and not everyone_ended
        if horizon:
            truncateds.update({a: True for a in observations if not terminateds.get(a)})
        terminateds[ALL] = everyone_ended and any(terminateds.values())
        truncateds[ALL] = horizon or (everyone_ended and not terminateds[ALL])
        self.agents = [a for a in observations if not (terminateds.get(a) or truncateds.get(a))]
        return observations, rewards, terminateds, truncateds, {}

    def _cut_short(
        self,
    ) -> tuple[dict[str, Any], dict[str, float], dict[str, bool], dict[str, bool], dict[str, Any]]:
        """The episode's end at a player failure: every agent still in it is truncated at its last observation."""
        open_agents = sorted(self._last.keys() - self._ended)
        observations = {a: self._last[a] for a in open_agents}
        truncateds = {a: True for a in open_agents}
        truncateds[ALL] = True
        return observations, {a: 0.0 for a in open_agents}, {ALL: False}, truncateds, {}

    def _observe(
        self, include_terminal: bool
    ) -> tuple[dict[str, Any], dict[str, float], dict[str, bool], dict[str, bool]]:
        """This step's observations, rewards and ends of the agents still in the episode (new behaviors and
        agents declared, each agent's latest observation kept)."""
        self._add_behaviors()
        self._stats.get_and_reset_stats()  # the player's custom statistics are for mlagents-learn's TensorBoard
        env = self._player()
        observations: dict[str, Any] = {}
        rewards: dict[str, float] = {}
        terminateds: dict[str, bool] = {}
        truncateds: dict[str, bool] = {}
        for name, behavior in self._behaviors.items():
            decisions, terminals = env.get_steps(name)
            if include_terminal:
                self._read_terminals(name, behavior, terminals, observations, rewards, terminateds, truncateds)
            self._read_decisions(name, behavior, decisions, observations, rewards)
        self._last.update(observations)
        return observations, rewards, terminateds, truncateds

    def _read_terminals(
        self,
        name: BehaviorName,
        behavior: BehaviorSpaces,
        terminals: TerminalSteps,
        observations: dict[str, Any],
        rewards: dict[str, float],
        terminateds: dict[str, bool],
        truncateds: dict[str, bool],
    ) -> None:
        for index, agent in enumerate(terminals.agent_id):
            rllib_id = agent_id(name, int(agent))
            if rllib_id in self._ended:
                continue
            self._ended.add(rllib_id)
            observations[rllib_id] = behavior.observation(terminals.obs, index, None)
            rewards[rllib_id] = float(terminals.reward[index] + terminals.group_reward[index])
            if bool(terminals.interrupted[index]):
                truncateds[rllib_id] = True
            else:
                terminateds[rllib_id] = True

    def _read_decisions(
        self,
        name: BehaviorName,
        behavior: BehaviorSpaces,
        decisions: DecisionSteps,
        observations: dict[str, Any],
        rewards: dict[str, float],
    ) -> None:
        for index, agent in enumerate(decisions.agent_id):
            rllib_id = agent_id(name, int(agent))
            if rllib_id in self._ended:
                continue
            observations[rllib_id] = behavior.observation(decisions.obs, index, decisions.action_mask)
            rewards[rllib_id] = float(decisions.reward[index] + decisions.group_reward[index])

    def close(self) -> None:
        """Stops the player."""
        if self._env is not None:
            self._env.close()
            self._env = None
