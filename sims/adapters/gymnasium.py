"""Any registered Gymnasium environment as a scene with one agent per area.

``gymnasium_scene(name, GymnasiumEnv("Pendulum-v1"))`` makes a scene whose behavior (named after the scene
unless told otherwise) has the sensors and actions of the environment's spaces (``adapters/spaces.py``). Each
area runs its own environment, seeded with the area's seed at its first reset. Every academy step the agent
acts (the trainer's action, or its last one), and then:

- requests its next decision with the step's reward;
- or, when the environment says ``terminated``, reports ``done``; when it says ``truncated`` (a time limit),
  reports ``done`` with ``max_step_reached``; then resets the environment and requests its first decision of the
  next episode in the same step (reported twice, as Unity does).

At each episode start the trainer's environment parameters are applied to the environment by name
(``adapters/parameters.py``), with a new draw from each sampler. Each finished episode records
``<stat prefix>/Episode Return`` and ``<stat prefix>/Episode Length`` (environment steps), averaged, on the stats
channel. A decision period ``k > 1`` wraps the areas in ``DecisionPeriodArea``.

``scene_from_id("Hopper-v5?decision_period=2&max_episode_steps=500")`` builds the scene ``gym:<that text>``
from any registered id (``module:EnvId`` imports ``module`` first, which registers the id); the options after
``?`` are the decision period and keyword arguments of ``gymnasium.make``.
"""

from __future__ import annotations

import ast
import importlib
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import gymnasium
import numpy as np

from rayagents.protocol.side_channels.stats import StatsAggregationMethod
from rayagents.sims.adapters.decision_period import with_decision_period
from rayagents.sims.adapters.parameters import ParameterBinder
from rayagents.sims.adapters.spaces import ActionAdapter, ObservationAdapter, action_adapter, observation_adapter
from rayagents.sims.scene import AgentAction, AgentReport, Area, AreaContext, BehaviorDef, Scene
from rayagents.sims.scenes import UnknownSceneError


GYM_PREFIX = "gym:"
"""The prefix of scene names built from a Gymnasium id (``gym:CartPole-v1``)."""
DECISION_PERIOD_OPTION = "decision_period"
"""The option of a ``gym:`` name that sets the decision period; every other option goes to ``gymnasium.make``."""
AGENT = "agent"
"""The name of an area's one agent."""
EPISODE_RETURN = "Episode Return"
"""The statistic of a finished episode's summed reward (``<prefix>/Episode Return``)."""
EPISODE_LENGTH = "Episode Length"
"""The statistic of a finished episode's number of environment steps (``<prefix>/Episode Length``)."""


@dataclass(frozen=True)
class GymnasiumEnv:
    """How to make the environment of one area: ``gymnasium.make(env_id, **kwargs)``, then ``wrappers`` in order."""

    env_id: str
    """A registered id (``module:EnvId`` imports ``module`` first)."""
    kwargs: tuple[tuple[str, Any], ...] = ()
    """Keyword arguments of ``gymnasium.make`` (``max_episode_steps``, ``render_mode``, the env's own)."""
    wrappers: tuple[Callable[[gymnasium.Env], gymnasium.Env], ...] = field(default=(), repr=False)
    """Applied in order to the made environment."""

    def __call__(self) -> gymnasium.Env:
        """A new environment (the env checker off: the adapter checks the spaces itself)."""
        if _is_mujoco(self.env_id):
            route_mujoco_warnings()
        env = gymnasium.make(self.env_id, disable_env_checker=True, **dict(self.kwargs))
        for wrap in self.wrappers:
            env = wrap(env)
        return env


def _is_mujoco(env_id: str) -> bool:
    """True when ``env_id`` is one of Gymnasium's MuJoCo environments (``module:EnvId``: after importing ``module``)."""
    module, _, name = env_id.rpartition(":")
    if module:
        importlib.import_module(module)
    entry_point = gymnasium.spec(name).entry_point
    return isinstance(entry_point, str) and entry_point.startswith("gymnasium.envs.mujoco")


def route_mujoco_warnings() -> None:
    """Send MuJoCo's warnings to Python logging (logger ``mujoco``) rather than to stdout and a ``MUJOCO_LOG.TXT``
    in the working directory; a handler that someone else installed is left alone."""
    import mujoco

    if mujoco.get_mju_user_warning() is None:
        mujoco.set_mju_user_warning(_log_mujoco_warning)


def _log_mujoco_warning(text: str) -> None:
    """MuJoCo's warning handler: one log record."""
    logging.getLogger("mujoco").warning("%s", text.strip())


@dataclass(frozen=True)
class GymnasiumAreaSetup:
    """What every area of a Gymnasium scene shares."""

    make_env: GymnasiumEnv
    """Makes the area's environment."""
    behavior: BehaviorDef
    """The agent's behavior."""
    observations: ObservationAdapter
    """Raw observation → sensor observations."""
    actions: ActionAdapter
    """Trainer's action → environment action."""
    stat_prefix: str
    """The prefix of the episode statistics."""
    scene: str
    """The scene's name, for log lines."""

    def __call__(self, context: AreaContext) -> "GymnasiumArea":
        """A new area of the scene (``Scene.make_area``)."""
        return GymnasiumArea(context, self)


class GymnasiumArea(Area):
    """One Gymnasium environment with one agent."""

    def __init__(self, context: AreaContext, setup: GymnasiumAreaSetup) -> None:
        self._context = context
        self._setup = setup
        self._env = setup.make_env()
        self._parameters = ParameterBinder(self._env, f"scene '{setup.scene}'", log_ignored=context.index == 0)
        self._behavior = setup.behavior.qualified_name
        self._to_env = setup.actions.to_env
        self._observations = setup.observations.observations
        self._idle_action = self._to_env(
            AgentAction(
                np.zeros(setup.actions.spec.continuous_size, np.float32),
                np.zeros(setup.actions.spec.discrete_size, np.int32),
            )
        )
        self._last_action: Any = self._idle_action
        self._seeded = False
        self._return = 0.0
        self._length = 0

    @property
    def env(self) -> gymnasium.Env:
        """The area's environment."""
        return self._env

    def reset(self) -> list[AgentReport]:
        """Start a new episode; the agent requests its first decision."""
        return [self._begin_episode()]

    def step(self, actions: Mapping[str, AgentAction]) -> list[AgentReport]:
        """Act; report the next decision request, or the episode's end and the next one's first request."""
        action = actions.get(AGENT)
        if action is not None:
            self._last_action = self._to_env(action)
        raw, reward, terminated, truncated, _ = self._env.step(self._last_action)
        reward = float(reward)
        self._return += reward
        self._length += 1
        observations = self._observations(raw)
        if not (terminated or truncated):
            return [AgentReport(AGENT, self._behavior, observations, reward=reward)]
        stats, prefix = self._context.stats, self._setup.stat_prefix
        stats.add(f"{prefix}/{EPISODE_RETURN}", self._return, StatsAggregationMethod.AVERAGE)
        stats.add(f"{prefix}/{EPISODE_LENGTH}", float(self._length), StatsAggregationMethod.AVERAGE)
        final = AgentReport(
            AGENT,
            self._behavior,
            observations,
            reward=reward,
            done=True,
            max_step_reached=bool(truncated and not terminated),
        )
        return [final, self._begin_episode()]

    def close(self) -> None:
        """Close the environment."""
        self._env.close()

    def _begin_episode(self) -> AgentReport:
        """Apply the environment parameters, reset (seeded the first time) and return the first decision request."""
        self._parameters.apply(self._context.parameters)
        if self._seeded:
            raw, _ = self._env.reset()
        else:
            raw, _ = self._env.reset(seed=self._context.seed)
            self._seeded = True
        self._return = 0.0
        self._length = 0
        self._last_action = self._idle_action
        return AgentReport(AGENT, self._behavior, self._observations(raw))


def gymnasium_scene(
    name: str,
    make_env: GymnasiumEnv,
    *,
    description: str | None = None,
    behavior: str | None = None,
    decision_period: int = 1,
    stat_prefix: str | None = None,
) -> Scene:
    """The scene ``name`` of the environment ``make_env`` makes, with one agent per area.

    ``behavior`` (default ``name``) names the behavior and ``stat_prefix`` (default the behavior name) the
    statistics. One environment is made (and closed) here to read its spaces.
    """
    behavior_name = behavior or name
    where = f"scene '{name}' (Gymnasium '{make_env.env_id}')"
    probe = make_env()
    try:
        observations = observation_adapter(probe.observation_space, where)
        actions = action_adapter(probe.action_space, where)
        described = description or _describe(make_env.env_id, observations, actions)
    finally:
        probe.close()
    definition = BehaviorDef(name=behavior_name, sensors=observations.sensors, action_spec=actions.spec)
    setup = GymnasiumAreaSetup(
        make_env=make_env,
        behavior=definition,
        observations=observations,
        actions=actions,
        stat_prefix=stat_prefix or behavior_name,
        scene=name,
    )
    scene = Scene(name=name, description=described, behaviors=(definition,), make_area=setup)
    return with_decision_period(scene, decision_period)


def _describe(env_id: str, observations: ObservationAdapter, actions: ActionAdapter) -> str:
    """One line: the id, the sensors and the actions."""
    sensors = ", ".join(f"{s.name} {'x'.join(map(str, s.shape))}" for s in observations.sensors)
    spec = actions.spec
    parts = [f"{spec.continuous_size} continuous"] if spec.continuous_size else []
    parts += [f"discrete branches {list(spec.discrete_branches)}"] if spec.discrete_size else []
    return f"Gymnasium {env_id}: sensors {sensors}; actions {' + '.join(parts) or 'none'}."


def scene_from_id(spec: str) -> Scene:
    """The scene ``gym:<spec>``: ``spec`` is ``[module:]EnvId[?decision_period=K&key=value...]``.

    The behavior is named after the id without its module (``/`` becomes ``_``). Option values are Python
    literals (``true``/``false`` allowed) or else strings. Raises GymSceneError (an UnknownSceneError) saying
    why for a malformed option, an unknown id, a module that does not import, or spaces it can't adapt.
    """
    env_id, _, query = spec.partition("?")
    try:
        options = _parse_options(query, spec)
        period = options.pop(DECISION_PERIOD_OPTION, 1)
        if not isinstance(period, int) or isinstance(period, bool) or period < 1:
            raise ValueError(f"{DECISION_PERIOD_OPTION} must be a whole number of at least 1, got {period!r}")
        behavior = env_id.rpartition(":")[2].replace("/", "_")
        return gymnasium_scene(
            f"{GYM_PREFIX}{spec}",
            GymnasiumEnv(env_id, tuple(options.items())),
            behavior=behavior,
            decision_period=period,
        )
    except (gymnasium.error.Error, ImportError, ValueError, TypeError) as error:
        raise GymSceneError(f"{GYM_PREFIX}{spec}", f"{type(error).__name__}: {error}") from error


class GymSceneError(UnknownSceneError):
    """A ``gym:`` scene name that builds no scene: an unknown id, a bad option, spaces that can't be adapted."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(name)
        self.reason = reason
        """Why the scene could not be built."""

    def __str__(self) -> str:
        return (
            f"Scene '{self.name}' could not be built from Gymnasium: {self.reason}. Use "
            f"'{GYM_PREFIX}<registered env id>[?{DECISION_PERIOD_OPTION}=K&<gymnasium.make keyword>=<value>...]', "
            f"with 'module:EnvId' for an id that a module registers when imported."
        )


def _parse_options(query: str, spec: str) -> dict[str, Any]:
    """``key=value&key=value`` as a dict of literal values."""
    options: dict[str, Any] = {}
    for item in filter(None, query.split("&")):
        key, equals, text = item.partition("=")
        if not equals or not key.isidentifier():
            raise ValueError(f"option '{item}' is not key=value (e.g. {DECISION_PERIOD_OPTION}=4)")
        lowered = text.lower()
        if lowered in ("true", "false"):
            options[key] = lowered == "true"
            continue
        try:
            options[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            options[key] = text
    return options
