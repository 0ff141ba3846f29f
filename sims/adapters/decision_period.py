"""Decision periods: agents that decide every k-th academy step and repeat their last action in between.

``DecisionPeriodArea(area, k)`` wraps any area whose agents report a decision request at every academy step
(a Gymnasium environment, a PettingZoo parallel game) and sends the trainer only some of those requests, as
Unity's ``DecisionRequester`` with ``DecisionPeriod = k`` and ``TakeActionsBetweenDecisions`` does:

- at every ``k``-th academy step since the area's last reset (steps 0, k, 2k, ...), every requesting agent's
  request goes to the trainer, so the agents of all areas decide together (one exchange per ``k`` steps);
- the first request of an episode also always goes (after a reset, or right after the agent's previous episode
  ended: the agent is then reported twice in one step, done and deciding); that first action lasts until the
  next ``k``-th step, so the agent is back in step with the others;
- the other requests are answered with the agent's last action and not reported;
- rewards (and group rewards) add up over the requests that were not reported and arrive with the next report;
- the end of an episode (``done``) is always reported at once, with the rewards gathered since the last report.

An agent that reports only on its turn (a turn-based game) is asked on its turns that fall on a ``k``-th step:
use a period of 1 for such games. An action mask travels with the reports that are sent; the masks of the
skipped requests are not checked against the repeated action.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Mapping

from rayagents.sims.scene import AgentAction, AgentReport, Area, AreaContext, Scene


class DecisionPeriodArea(Area):
    """``inner`` with its agents deciding every ``period``-th academy step and repeating their last action between."""

    def __init__(self, inner: Area, period: int) -> None:
        if period < 1:
            raise ValueError(f"the decision period must be 1 or more, got {period}")
        self._inner = inner
        self._period = period
        self._last_action: dict[str, AgentAction] = {}
        self._in_episode: set[str] = set()
        self._steps = 0
        self._reward: dict[str, float] = {}
        self._group_reward: dict[str, float] = {}
        self._inner_deciding: list[str] = []

    @property
    def period(self) -> int:
        """The number of academy steps per decision."""
        return self._period

    @property
    def inner(self) -> Area:
        """The wrapped area."""
        return self._inner

    def reset(self) -> list[AgentReport]:
        """Reset the inner area; every agent's first request goes to the trainer."""
        self._last_action.clear()
        self._in_episode.clear()
        self._steps = 0
        self._reward.clear()
        self._group_reward.clear()
        return self._filter(self._inner.reset())

    def step(self, actions: Mapping[str, AgentAction]) -> list[AgentReport]:
        """Step the inner area, giving each requesting agent the trainer's new action or its last one."""
        self._last_action.update(actions)
        self._steps += 1
        last = self._last_action
        inner_actions = {agent: last[agent] for agent in self._inner_deciding if agent in last}
        return self._filter(self._inner.step(inner_actions))

    def close(self) -> None:
        """Close the inner area."""
        self._inner.close()

    def _filter(self, reports: list[AgentReport]) -> list[AgentReport]:
        """The reports that go to the trainer: episode ends, first requests, and requests on a ``period``-th step."""
        sent: list[AgentReport] = []
        on_tick = self._steps % self._period == 0
        self._inner_deciding = []
        for report in reports:
            agent = report.agent
            reward = self._reward.pop(agent, 0.0) + report.reward
            group_reward = self._group_reward.pop(agent, 0.0) + report.group_reward
            if report.done:
                self._in_episode.discard(agent)
                self._last_action.pop(agent, None)
                sent.append(replace(report, reward=reward, group_reward=group_reward))
                continue
            self._inner_deciding.append(agent)
            if on_tick or agent not in self._in_episode:
                self._in_episode.add(agent)
                sent.append(replace(report, reward=reward, group_reward=group_reward))
            else:
                self._reward[agent] = reward
                self._group_reward[agent] = group_reward
        return sent


@dataclass(frozen=True)
class PeriodicAreaFactory:
    """Makes the areas of a scene wrapped in ``DecisionPeriodArea``."""

    make_inner: Callable[[AreaContext], Area] = field(repr=False)
    """Makes one area of the scene with its agents requesting a decision at every step."""
    period: int
    """The decision period."""

    def __call__(self, context: AreaContext) -> Area:
        """A new area of the scene, wrapped (``Scene.make_area``)."""
        return DecisionPeriodArea(self.make_inner(context), self.period)


def with_decision_period(scene: Scene, period: int) -> Scene:
    """``scene`` with its agents deciding every ``period``-th academy step (``scene`` itself when ``period`` is 1)."""
    if period < 1:
        raise ValueError(f"scene '{scene.name}': the decision period must be 1 or more, got {period}")
    if period == 1:
        return scene
    return replace(scene, make_area=PeriodicAreaFactory(scene.make_area, period))
