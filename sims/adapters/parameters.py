"""Environment parameters (the trainer's ``environment_parameters``) applied to a Gymnasium environment by name.

At each episode start, before the environment resets, every key the trainer sent is looked up on the
environment (``env.unwrapped``) and its value set there; a sampler draws a new value for each episode. A key
that names nothing is ignored, as a Unity scene ignores keys it never reads.

What a key can name:

- a number (or bool) attribute of ``env.unwrapped`` (CartPole ``length``, ``masspole``, ``masscart``,
  ``gravity``, ``force_mag``; Pendulum ``g``, ``m``, ``l``; MountainCar ``force``, ``gravity``, ``goal_position``;
  LunarLander ``gravity``, ``wind_power``, ``turbulence_power``, ``enable_wind`` (non-zero = true); MuJoCo
  reward weights such as ``_ctrl_cost_weight``). A bool becomes ``value != 0``; an int stays an int when the value is whole.
  Quantities the environment derives from them are brought up to date (CartPole's ``total_mass`` and
  ``polemass_length``; the Box2D world's gravity of LunarLander).
- for a MuJoCo environment, also (``MUJOCO_PARAMETERS``): ``gravity`` (m/s², downwards), ``timestep``
  (``model.opt.timestep``, s), ``density`` and ``viscosity`` of the medium, ``mass_scale`` (every body's mass
  times the value) and ``friction_scale`` (every geom's sliding friction times the value).
"""

from __future__ import annotations

import logging
import math
import numbers
from typing import Any, Callable

import numpy as np

from rayagents.protocol.side_channels.environment_parameters import EnvironmentParametersReceiver

logger = logging.getLogger(__name__)

MUJOCO_PARAMETERS = ("gravity", "timestep", "density", "viscosity", "mass_scale", "friction_scale")
"""The keys a MuJoCo environment takes beyond its attributes (see the module docstring)."""

Setter = Callable[[float], None]
"""Sets one parameter's value on the environment."""


class ParameterBinder:
    """Applies the trainer's environment parameters to one environment by name (one binder per area)."""

    def __init__(self, env: Any, where: str, *, log_ignored: bool = True) -> None:
        """``env``: the Gymnasium environment; ``where``: the scene, for log lines; ``log_ignored``: say once per
        key when a key names nothing in the environment (one area per scene is enough)."""
        self._target = env.unwrapped
        self._where = where
        self._log_ignored = log_ignored
        self._setters: dict[str, Setter | None] = {}
        self._mujoco = _MujocoModel.of(self._target)

    def apply(self, parameters: EnvironmentParametersReceiver) -> dict[str, float]:
        """Set every key the trainer sent that names something (samplers draw anew); returns what was set."""
        applied: dict[str, float] = {}
        for key in parameters.keys():
            setter = self.setter(key)
            if setter is None:
                continue
            value = float(parameters.get_with_default(key, math.nan))
            if math.isnan(value):
                continue
            setter(value)
            applied[key] = value
        if applied:
            self._refresh()
        return applied

    def setter(self, key: str) -> Setter | None:
        """How ``key`` is set on the environment, or None when it names nothing (logged once)."""
        if key in self._setters:
            return self._setters[key]
        setter = self._mujoco.setter(key) if self._mujoco is not None else None
        if setter is None:
            setter = _attribute_setter(self._target, key)
        if setter is None and self._log_ignored:
            logger.info(
                "Environment parameter '%s' names nothing in %s (%s has no number attribute of that name); "
                "ignored, as a Unity scene ignores keys it does not read.",
                key,
                self._where,
                type(self._target).__name__,
            )
        self._setters[key] = setter
        return setter

    def _refresh(self) -> None:
        """Bring quantities the environment derives from its parameters up to date."""
        target = self._target
        if all(hasattr(target, name) for name in ("masspole", "masscart", "length", "total_mass", "polemass_length")):
            target.total_mass = target.masspole + target.masscart
            target.polemass_length = target.masspole * target.length
        world = getattr(target, "world", None)
        if world is not None and hasattr(world, "gravity") and isinstance(getattr(target, "gravity", None), float):
            world.gravity = (0.0, target.gravity)
        if self._mujoco is not None:
            self._mujoco.refresh()


def _attribute_setter(target: Any, key: str) -> Setter | None:
    """A setter of the number or bool attribute ``key`` of ``target``; None when there is none."""
    if not key.isidentifier() or key.startswith("__"):
        return None
    current = getattr(target, key, None)
    if isinstance(current, (bool, np.bool_)):
        return lambda value: setattr(target, key, value != 0.0)
    if isinstance(current, numbers.Integral):
        return lambda value: setattr(target, key, int(value) if float(value).is_integer() else float(value))
    if isinstance(current, numbers.Real):
        return lambda value: setattr(target, key, float(value))
    return None


class _MujocoModel:
    """The MuJoCo model options and scales of ``MUJOCO_PARAMETERS``, relative to the model as loaded."""

    def __init__(self, target: Any) -> None:
        self._target = target
        self._model = target.model
        self._base_mass = np.array(self._model.body_mass, copy=True)
        self._base_friction = np.array(self._model.geom_friction[:, 0], copy=True)
        self._masses_changed = False

    @staticmethod
    def of(target: Any) -> "_MujocoModel | None":
        """The model of a Gymnasium MuJoCo environment (one with ``model.opt`` and ``data``), or None."""
        model = getattr(target, "model", None)
        if model is None or not hasattr(model, "opt") or not hasattr(target, "data"):
            return None
        return _MujocoModel(target)

    def setter(self, key: str) -> Setter | None:
        """The setter of a ``MUJOCO_PARAMETERS`` key, or None for other keys."""
        options = self._model.opt
        if key == "gravity":
            return lambda value: options.gravity.__setitem__(2, -value)
        if key in ("timestep", "density", "viscosity"):
            return lambda value: setattr(options, key, value)
        if key == "mass_scale":
            return self._scale_masses
        if key == "friction_scale":
            return lambda value: self._model.geom_friction.__setitem__((slice(None), 0), self._base_friction * value)
        return None

    def _scale_masses(self, value: float) -> None:
        """Every body's mass as loaded, times ``value``."""
        self._model.body_mass[:] = self._base_mass * value
        self._masses_changed = True

    def refresh(self) -> None:
        """Recompute the model's derived constants after a change of masses."""
        if self._masses_changed:
            import mujoco

            mujoco.mj_setConst(self._model, self._target.data)
            self._masses_changed = False
