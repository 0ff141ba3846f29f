"""Gymnasium spaces as ML-Agents sensors and actions.

Observations (``observation_adapter``):

- ``Box`` image (rank 3, ``uint8`` in [0, 255], channels last with 1, 3 or 4 channels) → one PNG sensor
  ``(C, H, W)`` with values in [0, 1], as a Unity camera sensor sends it.
- any other ``Box`` → one float sensor, flattened to ``(size,)`` (a rank-2 or rank-3 float observation would
  mean a buffer or an image to the trainer); rank 0 → ``(1,)``. ``MultiBinary`` → floats.
- ``Discrete`` → a one-hot float sensor; ``MultiDiscrete`` → concatenated one-hots.
- ``Dict`` → one sensor per key, named by the key; ``Tuple`` → one sensor per element, named by its index;
  nested parts are named by their path (``"outer/inner"``). The trainer receives them sorted by name.

A single unnamed part is named as Unity names its sensors: ``VectorSensor`` for floats, ``CameraSensor`` for an
image.

Actions (``action_adapter``): ``Discrete`` → one branch; ``MultiDiscrete`` → one branch per entry;
``MultiBinary`` → one branch of 2 per entry; ``Box`` → continuous actions, clipped to [-1, 1] and mapped onto the
box where both bounds are finite (unbounded entries pass through); ``Tuple``/``Dict`` of those → hybrid
actions: the continuous actions of every ``Box`` part concatenated in order, then the branches of every discrete
part in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from gymnasium import spaces

from rayagents.protocol.types import ActionSpec
from rayagents.sims.scene import AgentAction, SensorKind, SensorSpec

IMAGE_CHANNELS = (1, 3, 4)
"""The channel counts (last axis) of a ``uint8`` rank-3 Box that is sent as an image."""
VECTOR_SENSOR = "VectorSensor"
"""The name of a single unnamed float sensor (Unity's default vector sensor name)."""
CAMERA_SENSOR = "CameraSensor"
"""The name of a single unnamed image sensor (Unity's default camera sensor name)."""
GRID_SENSOR = "GridSensor"
"""The name of a single unnamed board sent as a grid (Unity's default grid sensor name)."""

Reader = Callable[[Any], np.ndarray]
"""Raw observation (the whole of it) → one sensor's ``float32`` observation."""


@dataclass(frozen=True)
class ObservationPart:
    """One sensor and how to read its observation out of the raw observation."""

    sensor: SensorSpec
    """The sensor."""
    read: Reader = field(repr=False)
    """Raw observation → ``float32`` array of ``sensor.shape``."""


@dataclass(frozen=True)
class ObservationAdapter:
    """How a Gymnasium observation becomes the observations of a behavior's sensors."""

    parts: tuple[ObservationPart, ...]
    """The sensors, in ``BehaviorDef.sensors`` order (the order of the space; the academy sorts by name)."""

    @property
    def sensors(self) -> tuple[SensorSpec, ...]:
        """The behavior's sensors."""
        return tuple(part.sensor for part in self.parts)

    def observations(self, raw: Any) -> tuple[np.ndarray, ...]:
        """The sensors' observations of ``raw``, in ``sensors`` order."""
        return tuple(part.read(raw) for part in self.parts)


def observation_adapter(space: spaces.Space, where: str, grids: bool = False) -> ObservationAdapter:
    """The adapter of the observation ``space``; ValueError naming ``where`` (the env) for a space it can't send.

    With ``grids``, a rank-3 Box that is not an image (a board: rows, columns, one channel per kind of piece) is
    sent as a grid sensor, floats of shape ``(C, H, W)``, as Unity's grid and Match-3 sensors send a board;
    otherwise it is flattened into a vector."""
    named = []
    for part in _parts(space, (), where, grids):
        sensor = part.sensor
        if not sensor.name:
            if sensor.kind == SensorKind.PNG:
                default = CAMERA_SENSOR
            else:
                default = GRID_SENSOR if len(sensor.shape) == 3 else VECTOR_SENSOR
            sensor = SensorSpec(default, sensor.shape, kind=sensor.kind)
        named.append(ObservationPart(sensor, part.read))
    names = [part.sensor.name for part in named]
    if len(set(names)) != len(names):
        raise ValueError(f"{where}: the observation space {space!r} gives two sensors the same name ({names})")
    return ObservationAdapter(tuple(named))


def is_image(space: spaces.Space) -> bool:
    """True for a ``uint8`` HWC Box in [0, 255] with 1, 3 or 4 channels: sent as an image, not flattened."""
    return (
        isinstance(space, spaces.Box)
        and len(space.shape) == 3
        and space.dtype == np.uint8
        and space.shape[2] in IMAGE_CHANNELS
        and bool(np.all(space.low == 0))
        and bool(np.all(space.high == 255))
    )


def image_to_chw(raw: Any) -> np.ndarray:
    """A ``uint8`` HWC image as ``float32`` CHW in [0, 1]."""
    return np.ascontiguousarray(np.moveaxis(np.asarray(raw, np.float32) * (1.0 / 255.0), -1, 0))


def board_to_chw(raw: Any) -> np.ndarray:
    """A board ``(H, W, C)`` as ``float32`` ``(C, H, W)``, values as they are."""
    return np.ascontiguousarray(np.moveaxis(np.asarray(raw, np.float32), -1, 0))


def _under(key: Any, read: Reader) -> Reader:
    """``read`` applied to ``raw[key]``."""
    return lambda raw: read(raw[key])


def _parts(space: spaces.Space, path: tuple[str, ...], where: str, grids: bool = False) -> list[ObservationPart]:
    """The sensors of ``space`` (found at ``path`` inside the observation), named by path ("" at the root); rank-3
    boxes as grids with ``grids``."""
    name = "/".join(path)
    if isinstance(space, spaces.Dict):
        found: list[ObservationPart] = []
        for key, sub in space.spaces.items():
            inner = _parts(sub, path + (str(key),), where, grids)
            found += [ObservationPart(p.sensor, _under(key, p.read)) for p in inner]
        return found
    if isinstance(space, spaces.Tuple):
        found = []
        for index, sub in enumerate(space.spaces):
            inner = _parts(sub, path + (str(index),), where, grids)
            found += [ObservationPart(p.sensor, _under(index, p.read)) for p in inner]
        return found
    if is_image(space):
        height, width, channels = space.shape
        return [ObservationPart(SensorSpec(name, (channels, height, width), kind=SensorKind.PNG), image_to_chw)]
    if grids and isinstance(space, spaces.Box) and len(space.shape) == 3:
        height, width, channels = space.shape
        return [ObservationPart(SensorSpec(name, (channels, height, width)), board_to_chw)]
    if isinstance(space, (spaces.Box, spaces.MultiBinary)):
        size = int(np.prod(space.shape)) if space.shape else 1
        return [ObservationPart(SensorSpec(name, (size,)), lambda raw: np.asarray(raw, np.float32).reshape(size))]
    if isinstance(space, spaces.Discrete):
        n, start = int(space.n), int(space.start)
        return [ObservationPart(SensorSpec(name, (n,)), lambda raw: one_hot(np.asarray([int(raw) - start]), (n,)))]
    if isinstance(space, spaces.MultiDiscrete):
        nvec = tuple(int(v) for v in np.asarray(space.nvec).reshape(-1))
        starts = np.asarray(space.start).reshape(-1)
        return [
            ObservationPart(
                SensorSpec(name, (sum(nvec),)), lambda raw: one_hot(np.asarray(raw).reshape(-1) - starts, nvec)
            )
        ]
    raise ValueError(
        f"{where}: the observation space {space!r}{' at ' + name if name else ''} can't be sent as a sensor; use Box, "
        "Discrete, MultiDiscrete, MultiBinary, or a Dict/Tuple of them (wrap the environment to convert it)"
    )


def one_hot(values: np.ndarray, sizes: tuple[int, ...]) -> np.ndarray:
    """Concatenated one-hot codes of ``values`` (one per entry of ``sizes``); an out-of-range value is all zeros."""
    out = np.zeros(sum(sizes), np.float32)
    offset = 0
    for value, size in zip(values, sizes):
        if 0 <= value < size:
            out[offset + int(value)] = 1.0
        offset += size
    return out


@dataclass(frozen=True)
class ActionAdapter:
    """How the trainer's action for one agent becomes the action its Gymnasium environment takes."""

    spec: ActionSpec
    """The behavior's action spec."""
    to_env: Callable[[AgentAction], Any] = field(repr=False)
    """The trainer's action → the environment's action."""


@dataclass(frozen=True)
class _ActionPart:
    """One part of an action space, reading its slice of the trainer's continuous and discrete actions."""

    continuous_size: int
    """How many continuous actions the part takes."""
    branches: tuple[int, ...]
    """The part's discrete branches."""
    build: Callable[[np.ndarray, np.ndarray], Any] = field(repr=False)
    """(the part's continuous slice, the part's discrete slice) → the part's environment action."""


def action_adapter(space: spaces.Space, where: str) -> ActionAdapter:
    """The adapter of the action ``space``; ValueError naming ``where`` (the env) for a space it can't take."""
    part = _action_part(space, where)
    spec = ActionSpec(part.continuous_size, part.branches)
    build = part.build

    def to_env(action: AgentAction) -> Any:
        return build(np.asarray(action.continuous).reshape(-1), np.asarray(action.discrete).reshape(-1))

    return ActionAdapter(spec, to_env)


def _action_part(space: spaces.Space, where: str) -> _ActionPart:
    """The part of the action ``space``; composite spaces concatenate their children's slices."""
    if isinstance(space, spaces.Discrete):
        start = int(space.start)
        return _ActionPart(0, (int(space.n),), lambda c, d: int(d[0]) + start)
    if isinstance(space, spaces.MultiDiscrete):
        nvec = np.asarray(space.nvec)
        starts = np.asarray(space.start)
        return _ActionPart(
            0,
            tuple(int(v) for v in nvec.reshape(-1)),
            lambda c, d: (d.reshape(nvec.shape) + starts).astype(space.dtype),
        )
    if isinstance(space, spaces.MultiBinary):
        shape = tuple(int(v) for v in np.atleast_1d(space.n))
        return _ActionPart(0, (2,) * int(np.prod(shape)), lambda c, d: d.reshape(shape).astype(space.dtype))
    if isinstance(space, spaces.Box):
        return _ActionPart(int(np.prod(space.shape)) if space.shape else 1, (), box_action(space))
    if isinstance(space, (spaces.Tuple, spaces.Dict)):
        keys = list(space.spaces) if isinstance(space, spaces.Dict) else list(range(len(space.spaces)))
        children = [_action_part(space.spaces[key], where) for key in keys]
        continuous_offsets = np.cumsum([0] + [child.continuous_size for child in children])
        discrete_offsets = np.cumsum([0] + [len(child.branches) for child in children])

        def build(c: np.ndarray, d: np.ndarray) -> Any:
            values = [
                child.build(
                    c[continuous_offsets[i] : continuous_offsets[i + 1]],
                    d[discrete_offsets[i] : discrete_offsets[i + 1]],
                )
                for i, child in enumerate(children)
            ]
            return dict(zip(keys, values)) if isinstance(space, spaces.Dict) else tuple(values)

        return _ActionPart(
            int(continuous_offsets[-1]), tuple(b for child in children for b in child.branches), build
        )
    raise ValueError(
        f"{where}: the action space {space!r} can't be taken from an ML-Agents trainer; use Discrete, MultiDiscrete, "
        "MultiBinary, Box, or a Tuple/Dict of them (wrap the environment to convert it)"
    )


def box_action(space: spaces.Box) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Clip to [-1, 1] and map onto the box where both bounds are finite; unbounded entries pass through as sent."""
    low = np.asarray(space.low, np.float64).reshape(-1)
    high = np.asarray(space.high, np.float64).reshape(-1)
    bounded = np.isfinite(low) & np.isfinite(high)
    safe_low = np.where(bounded, low, 0.0)
    half_span = np.where(bounded, high - low, 0.0) * 0.5
    integer = np.issubdtype(space.dtype, np.integer)

    def to_env(continuous: np.ndarray, discrete: np.ndarray) -> np.ndarray:
        values = np.asarray(continuous, np.float64)
        scaled = safe_low + (np.clip(values, -1.0, 1.0) + 1.0) * half_span
        mapped = np.clip(np.where(bounded, scaled, values), low, high)
        if integer:
            mapped = np.rint(mapped)
        return mapped.reshape(space.shape).astype(space.dtype)

    return to_env
