"""The areas of a PettingZoo scene: one copy of the game each, Parallel (every agent decides every step) or AEC
(only the agent to move decides). ``rayagents.sims.adapters.pettingzoo`` makes them; its docstring says what
the trainer sees.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Iterable, Mapping

import numpy as np

from rayagents.protocol.side_channels.stats import StatsAggregationMethod
from rayagents.sims.adapters.pettingzoo_spaces import MASK_KEY, disabled_mask, legal_action
from rayagents.sims.scene import AgentAction, AgentReport, Area, AreaContext

if TYPE_CHECKING:
    from rayagents.sims.adapters.pettingzoo import GamePlan

logger = logging.getLogger(__name__)


class _GameArea(Area):
    """What both kinds of area share: the environment, seeding, reports, masks, rewards and groups."""

    def __init__(self, plan: "GamePlan", context: AreaContext) -> None:
        self._plan = plan
        self._context = context
        self._env: Any = plan.game.make_env()
        self._rng = np.random.default_rng(context.seed)
        self._seeded = False
        self._length = 0
        self._disabled: dict[str, np.ndarray | None] = {}
        self._pending_group: dict[str, float] = {}
        self._warned_illegal = False
        prefix = plan.game.stat_prefix or plan.game.name
        self._length_stat = f"{prefix}/Episode Length"

    def close(self) -> None:
        """Close the game."""
        self._env.close()

    def _reset_env(self) -> Any:
        """Reset the game, seeded with the area's seed the first time; returns what ``reset`` returns."""
        self._length = 0
        self._disabled = {}
        self._pending_group = {}
        if self._seeded:
            return self._env.reset()
        self._seeded = True
        return self._env.reset(seed=self._context.seed)

    def _end_episode(self) -> None:
        """Record the finished episode's statistics."""
        self._context.stats.add(self._length_stat, float(self._length), StatsAggregationMethod.AVERAGE)

    def _share(self, step_rewards: Mapping[str, float], live: Iterable[str]) -> dict[str, float]:
        """Add each group's shared part of one game step's rewards to its live agents' pending group rewards.

        Returns the shared part per agent of ``step_rewards`` (0 without cooperation).
        """
        cooperation = self._plan.game.cooperation
        if cooperation is None:
            return {}
        members: dict[int, dict[str, float]] = {}
        for agent in live:
            group = self._plan.agents[agent].group_index
            members.setdefault(group, {})[agent] = float(step_rewards.get(agent, 0.0))
        shared: dict[str, float] = {}
        for rewards in members.values():
            part = float(cooperation.shared_reward(self._env, rewards))
            for agent in rewards:
                shared[agent] = part
                self._pending_group[agent] = self._pending_group.get(agent, 0.0) + part
        return shared

    def _report(
        self,
        agent: str,
        raw: Any,
        reward: float,
        info: Mapping[str, Any] | None,
        *,
        done: bool = False,
        truncated: bool = False,
    ) -> AgentReport:
        """The report of ``agent`` from its raw observation; its reward excludes the group's share, which goes
        out as the group reward (both since its previous report)."""
        plan = self._plan.agents[agent]
        legal = plan.observations.legal_mask(raw)
        if legal is None and info and MASK_KEY in info:
            legal = np.asarray(info[MASK_KEY]).reshape(-1) != 0
        disabled = None if legal is None or done else disabled_mask(legal, plan.behavior.action_spec, agent)
        self._disabled[agent] = disabled
        group_reward = self._pending_group.pop(agent, 0.0)
        return AgentReport(
            agent=agent,
            behavior=plan.behavior.qualified_name,
            observations=plan.observations.observations(raw),
            reward=float(reward) - group_reward,
            done=done,
            max_step_reached=bool(done and truncated),
            action_mask=disabled,
            group_id=self._plan.group_id(self._context.index, agent),
            group_reward=group_reward,
        )

    def _game_action(self, agent: str, action: AgentAction | None) -> Any:
        """The game's action for ``agent``: the trainer's (a masked choice replaced by a legal one), or zeros."""
        plan = self._plan.agents[agent]
        spec = plan.behavior.action_spec
        if action is None:
            action = AgentAction(
                np.zeros(spec.continuous_size, np.float32), np.zeros(spec.discrete_size, np.int32)
            )
        action, replaced = legal_action(action, self._disabled.get(agent), spec, self._rng)
        if replaced and not self._warned_illegal:
            self._warned_illegal = True
            logger.warning(
                "Scene '%s', area %d: the trainer chose a disabled action for agent '%s' (behavior '%s'); a random "
                "enabled action was played instead. Further replacements in this area are not logged.",
                self._plan.game.name,
                self._context.index,
                agent,
                plan.behavior.qualified_name,
            )
        return plan.actions.to_env(action)


class ParallelArea(_GameArea):
    """A Parallel game: every live agent requests a decision every game step."""

    def __init__(self, plan: "GamePlan", context: AreaContext) -> None:
        super().__init__(plan, context)
        self._observations: dict[str, Any] = {}

    def reset(self) -> list[AgentReport]:
        """Start a new game; every agent requests its first decision."""
        observations, infos = self._reset_env()
        self._observations = dict(observations)
        return [
            self._report(agent, observations[agent], 0.0, (infos or {}).get(agent))
            for agent in self._env.agents
            if agent in observations
        ]

    def step(self, actions: Mapping[str, AgentAction]) -> list[AgentReport]:
        """One game step with every live agent's action; their reports, and on the game's end the next start."""
        acting = list(self._env.agents)
        game_actions = {agent: self._game_action(agent, actions.get(agent)) for agent in acting}
        observations, rewards, terminations, truncations, infos = self._env.step(game_actions)
        self._length += 1
        self._observations.update(observations)
        self._share(rewards, acting)
        reports: list[AgentReport] = []
        for agent in acting:
            terminated = bool(terminations.get(agent, False))
            truncated = bool(truncations.get(agent, False))
            reports.append(
                self._report(
                    agent,
                    self._observations[agent],
                    float(rewards.get(agent, 0.0)),
                    infos.get(agent),
                    done=terminated or truncated,
                    truncated=truncated and not terminated,
                )
            )
        for agent in self._env.agents:
            if agent not in game_actions and agent in observations:  # an agent that joined during the game
                reports.append(self._report(agent, observations[agent], 0.0, infos.get(agent)))
        if not self._env.agents:
            self._end_episode()
            reports += self.reset()
        return reports


class AECArea(_GameArea):
    """An AEC (turn-based) game: one academy step is one move, and only the agent to move requests a decision."""

    MAX_RESETS_WITHOUT_MOVE = 10
    """How many times in a row a reset may leave no agent to move before the area gives up."""

    def __init__(self, plan: "GamePlan", context: AreaContext) -> None:
        super().__init__(plan, context)
        self._to_move: str | None = None

    def reset(self) -> list[AgentReport]:
        """Start a new game; the first agent to move requests a decision."""
        self._reset_env()
        return self._next_reports([])

    def step(self, actions: Mapping[str, AgentAction]) -> list[AgentReport]:
        """The agent to move makes its move; then the final reports of agents whose episode ended, and the next
        decision request (after a reset when the game is over)."""
        agent = self._to_move
        if agent is None:
            return self.reset()
        self._env.step(self._game_action(agent, actions.get(agent)))
        self._length += 1
        self._share(self._env.rewards, self._env.agents)
        return self._next_reports([])

    def _next_reports(self, reports: list[AgentReport]) -> list[AgentReport]:
        """Report every agent whose episode ended (and step it out), reset when none is left, then report the
        agent to move."""
        resets = 0
        while True:
            if not self._env.agents:
                self._end_episode()
                resets += 1
                if resets > self.MAX_RESETS_WITHOUT_MOVE:
                    raise RuntimeError(
                        f"Scene '{self._plan.game.name}': the game has no agent to move after "
                        f"{self.MAX_RESETS_WITHOUT_MOVE} resets in a row; check the environment's reset()"
                    )
                self._reset_env()
                continue
            agent = self._env.agent_selection
            raw, reward, terminated, truncated, info = self._env.last()
            if terminated or truncated:
                reports.append(
                    self._report(agent, raw, reward, info, done=True, truncated=bool(truncated and not terminated))
                )
                self._env.step(None)
                continue
            reports.append(self._report(agent, raw, reward, info))
            self._to_move = agent
            return reports
