"""The environment parameters channel (trainer → Unity only): fixed values and seeded samplers per key.

Payload: string key, int32 data type (FLOAT=0, SAMPLER=1), then for FLOAT a float32 value, for SAMPLER an
int32 seed, an int32 sampler type and the sampler's parameters (UNIFORM: float32 min, max; GAUSSIAN: float32
mean, st_dev; MULTIRANGEUNIFORM: float list [min0, max0, min1, max1, ...]).
"""

from __future__ import annotations

import enum
import logging
import random
import uuid
from typing import Callable, Sequence

from rayagents.protocol.exceptions import UnitySideChannelException
from rayagents.protocol.side_channels.framing import IncomingMessage, OutgoingMessage, SideChannel

logger = logging.getLogger(__name__)

ENVIRONMENT_PARAMETERS_CHANNEL_ID = uuid.UUID("534c891e-810f-11ea-a9d0-822485860400")
"""The id of the environment parameters channel."""


class EnvironmentDataTypes(enum.IntEnum):
    """What follows the key of an environment parameters message."""

    FLOAT = 0
    """A fixed float32 value."""
    SAMPLER = 1
    """A seeded sampler."""


class SamplerTypes(enum.IntEnum):
    """The sampler a SAMPLER message describes."""

    UNIFORM = 0
    """Uniform on [min, max]."""
    GAUSSIAN = 1
    """Normal with a mean and a standard deviation."""
    MULTIRANGEUNIFORM = 2
    """Uniform on a union of intervals, each weighted by its length."""


class EnvironmentParametersChannel(SideChannel):
    """The trainer end: queues parameter values and samplers for the player. Unity never sends on it."""

    def __init__(self) -> None:
        super().__init__(ENVIRONMENT_PARAMETERS_CHANNEL_ID)

    def on_message_received(self, msg: IncomingMessage) -> None:
        """Raise: Unity must not send on the environment parameters channel."""
        raise UnitySideChannelException(
            "The player sent a message on the environment parameters channel "
            f"({ENVIRONMENT_PARAMETERS_CHANNEL_ID}), which only goes from the trainer to the player. Check "
            "that no custom side channel of the player uses this id."
        )

    def set_float_parameter(self, key: str, value: float) -> None:
        """Queue a fixed value for ``key``."""
        msg = OutgoingMessage()
        msg.write_string(key)
        msg.write_int32(EnvironmentDataTypes.FLOAT)
        msg.write_float32(value)
        self.queue_message_to_send(msg)

    def set_uniform_sampler_parameters(self, key: str, min_value: float, max_value: float, seed: int) -> None:
        """Queue a uniform sampler on [``min_value``, ``max_value``] for ``key``."""
        msg = self._sampler_header(key, seed, SamplerTypes.UNIFORM)
        msg.write_float32(min_value)
        msg.write_float32(max_value)
        self.queue_message_to_send(msg)

    def set_gaussian_sampler_parameters(self, key: str, mean: float, st_dev: float, seed: int) -> None:
        """Queue a normal sampler with ``mean`` and ``st_dev`` for ``key``."""
        msg = self._sampler_header(key, seed, SamplerTypes.GAUSSIAN)
        msg.write_float32(mean)
        msg.write_float32(st_dev)
        self.queue_message_to_send(msg)

    def set_multirangeuniform_sampler_parameters(
        self, key: str, intervals: Sequence[tuple[float, float]], seed: int
    ) -> None:
        """Queue a sampler uniform on the union of ``intervals`` (``(min, max)`` pairs) for ``key``."""
        if len(intervals) == 0:
            raise UnitySideChannelException(
                f"The multirange uniform sampler of environment parameter '{key}' has no intervals: "
                "give at least one (min, max) pair."
            )
        flat: list[float] = []
        for interval in intervals:
            if len(interval) != 2:
                raise UnitySideChannelException(
                    f"An interval of the multirange uniform sampler of environment parameter '{key}' is "
                    f"{tuple(interval)!r}: each interval must be a (min, max) pair."
                )
            flat.extend((float(interval[0]), float(interval[1])))
        msg = self._sampler_header(key, seed, SamplerTypes.MULTIRANGEUNIFORM)
        msg.write_float32_list(flat)
        self.queue_message_to_send(msg)

    @staticmethod
    def _sampler_header(key: str, seed: int, sampler_type: SamplerTypes) -> OutgoingMessage:
        """A message holding the key, the SAMPLER data type, the seed and the sampler type."""
        msg = OutgoingMessage()
        msg.write_string(key)
        msg.write_int32(EnvironmentDataTypes.SAMPLER)
        msg.write_int32(seed)
        msg.write_int32(sampler_type)
        return msg


def uniform_sampler(min_value: float, max_value: float, seed: int) -> Callable[[], float]:
    """A function drawing from uniform [``min_value``, ``max_value``), seeded with ``seed``."""
    rng = random.Random(seed)
    return lambda: min_value + rng.random() * (max_value - min_value)


def gaussian_sampler(mean: float, st_dev: float, seed: int) -> Callable[[], float]:
    """A function drawing from a normal distribution, seeded with ``seed``."""
    rng = random.Random(seed)
    return lambda: rng.gauss(mean, st_dev)


def multirange_uniform_sampler(intervals: Sequence[tuple[float, float]], seed: int) -> Callable[[], float]:
    """A function drawing uniformly from the union of ``intervals``, each chosen in proportion to its length."""
    rng = random.Random(seed)
    bounds = [(float(low), float(high)) for low, high in intervals]
    total = sum(high - low for low, high in bounds)

    def draw() -> float:
        point = rng.random() * total
        for low, high in bounds:
            size = high - low
            if point <= size:
                return low + point
            point -= size
        low, high = bounds[-1]
        return high

    return draw


class EnvironmentParametersReceiver(SideChannel):
    """The Unity end (``Academy.Instance.EnvironmentParameters``): one value source per key.

    A FLOAT message fixes the key's value and fires its callback; a SAMPLER message replaces the key's source
    by a sampler that draws a new value at each ``get_with_default`` call. Malformed messages are logged as
    warnings and ignored, as Unity does.
    """

    def __init__(self) -> None:
        super().__init__(ENVIRONMENT_PARAMETERS_CHANNEL_ID)
        self._sources: dict[str, Callable[[], float]] = {}
        self._callbacks: dict[str, list[Callable[[float], None]]] = {}

    def get_with_default(self, key: str, default: float) -> float:
        """The key's value (a new sample for a sampler), or ``default`` when the trainer never sent the key."""
        source = self._sources.get(key)
        return default if source is None else source()

    def register_callback(self, key: str, fn: Callable[[float], None]) -> None:
        """Call ``fn(value)`` each time a FLOAT message for ``key`` arrives (not for samplers)."""
        self._callbacks.setdefault(key, []).append(fn)

    def keys(self) -> list[str]:
        """The keys the trainer has sent, in order of first arrival."""
        return list(self._sources)

    def on_message_received(self, msg: IncomingMessage) -> None:
        """Install the value or sampler of one key."""
        key = msg.read_string()
        data_type = msg.read_int32(default_value=-1)
        if data_type == EnvironmentDataTypes.FLOAT:
            value = msg.read_float32()
            self._sources[key] = lambda: value
            for fn in self._callbacks.get(key, []):
                fn(value)
        elif data_type == EnvironmentDataTypes.SAMPLER:
            seed = msg.read_int32()
            sampler_type = msg.read_int32(default_value=-1)
            sampler = self._read_sampler(key, sampler_type, seed, msg)
            if sampler is not None:
                self._sources[key] = sampler
        else:
            logger.warning(
                "Environment parameter '%s' arrived with unknown data type %d; ignored. Check that the "
                "trainer's ML-Agents version is compatible with this player.",
                key,
                data_type,
            )

    @staticmethod
    def _read_sampler(key: str, sampler_type: int, seed: int, msg: IncomingMessage) -> Callable[[], float] | None:
        """The sampler the rest of ``msg`` describes, or None (with a warning) when it is malformed."""
        if sampler_type == SamplerTypes.UNIFORM:
            min_value = msg.read_float32()
            max_value = msg.read_float32()
            return uniform_sampler(min_value, max_value, seed)
        if sampler_type == SamplerTypes.GAUSSIAN:
            mean = msg.read_float32()
            st_dev = msg.read_float32()
            return gaussian_sampler(mean, st_dev, seed)
        if sampler_type == SamplerTypes.MULTIRANGEUNIFORM:
            flat = msg.read_float32_list()
            if len(flat) == 0 or len(flat) % 2 != 0:
                logger.warning(
                    "Environment parameter '%s' arrived with a multirange uniform sampler of %d bounds; it "
                    "needs a non-empty list of (min, max) pairs. Ignored.",
                    key,
                    len(flat),
                )
                return None
            return multirange_uniform_sampler(list(zip(flat[0::2], flat[1::2])), seed)
        logger.warning(
            "Environment parameter '%s' arrived with unknown sampler type %d; ignored. Check that the trainer's "
            "ML-Agents version is compatible with this player.",
            key,
            sampler_type,
        )
        return None
