"""The engine configuration channel (trainer → Unity only): resolution, quality, time scale, frame rates.

Each setting travels as its own message: an int32 type id followed by the value(s).
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import uuid
from dataclasses import dataclass

from rayagents.protocol.exceptions import UnitySideChannelException
from rayagents.protocol.side_channels.framing import IncomingMessage, OutgoingMessage, SideChannel

logger = logging.getLogger(__name__)

ENGINE_CONFIGURATION_CHANNEL_ID = uuid.UUID("e951342c-4f7e-11ea-b238-784f4387d1f7")
"""The id of the engine configuration channel."""


class EngineConfigurationType(enum.IntEnum):
    """The int32 that opens each engine configuration message."""

    SCREEN_RESOLUTION = 0
    """int32 width, int32 height."""
    QUALITY_LEVEL = 1
    """int32 quality level."""
    TIME_SCALE = 2
    """float32 time scale."""
    TARGET_FRAME_RATE = 3
    """int32 target frame rate."""
    CAPTURE_FRAME_RATE = 4
    """int32 capture frame rate."""


@dataclass(frozen=True)
class EngineConfig:
    """Engine settings; a field that is None is not set (the trainer sends nothing for it)."""

    width: int | None = None
    """Screen width in pixels (set together with ``height``)."""
    height: int | None = None
    """Screen height in pixels (set together with ``width``)."""
    quality_level: int | None = None
    """The quality level (an index into the player's quality settings)."""
    time_scale: float | None = None
    """How fast simulated time runs relative to real time."""
    target_frame_rate: int | None = None
    """The frame rate the player aims for; -1 means as fast as possible."""
    capture_frame_rate: int | None = None
    """The fixed frame rate of simulated time (``Time.captureFramerate``); 0 means real time."""

    @staticmethod
    def default_config() -> "EngineConfig":
        """The ``mlagents_envs`` default: 80×80, quality 1, time scale 20, target frame rate -1, capture 60."""
        return EngineConfig(
            width=80,
            height=80,
            quality_level=1,
            time_scale=20.0,
            target_frame_rate=-1,
            capture_frame_rate=60,
        )


class EngineConfigurationChannel(SideChannel):
    """The trainer end: queues engine settings for the player. Unity never sends on this channel."""

    def __init__(self) -> None:
        super().__init__(ENGINE_CONFIGURATION_CHANNEL_ID)

    def on_message_received(self, msg: IncomingMessage) -> None:
        """Raise: Unity must not send on the engine configuration channel."""
        raise UnitySideChannelException(
            "The player sent a message on the engine configuration channel "
            f"({ENGINE_CONFIGURATION_CHANNEL_ID}), which only goes from the trainer to the player. Check that "
            "no custom side channel of the player uses this id."
        )

    def set_configuration_parameters(
        self,
        width: int | None = None,
        height: int | None = None,
        quality_level: int | None = None,
        time_scale: float | None = None,
        target_frame_rate: int | None = None,
        capture_frame_rate: int | None = None,
    ) -> None:
        """Queue one message per setting that is not None; ``width`` and ``height`` go together."""
        if (width is None) != (height is None):
            raise UnitySideChannelException(
                f"The screen resolution needs both a width and a height (got width={width}, height={height}): "
                "set both or neither."
            )
        if width is not None and height is not None:
            msg = OutgoingMessage()
            msg.write_int32(EngineConfigurationType.SCREEN_RESOLUTION)
            msg.write_int32(width)
            msg.write_int32(height)
            self.queue_message_to_send(msg)
        if quality_level is not None:
            self._queue_int(EngineConfigurationType.QUALITY_LEVEL, quality_level)
        if time_scale is not None:
            msg = OutgoingMessage()
            msg.write_int32(EngineConfigurationType.TIME_SCALE)
            msg.write_float32(time_scale)
            self.queue_message_to_send(msg)
        if target_frame_rate is not None:
            self._queue_int(EngineConfigurationType.TARGET_FRAME_RATE, target_frame_rate)
        if capture_frame_rate is not None:
            self._queue_int(EngineConfigurationType.CAPTURE_FRAME_RATE, capture_frame_rate)

    def set_configuration(self, config: EngineConfig) -> None:
        """Queue every setting of ``config`` that is not None."""
        self.set_configuration_parameters(
            width=config.width,
            height=config.height,
            quality_level=config.quality_level,
            time_scale=config.time_scale,
            target_frame_rate=config.target_frame_rate,
            capture_frame_rate=config.capture_frame_rate,
        )

    def _queue_int(self, kind: EngineConfigurationType, value: int) -> None:
        """Queue a message of type ``kind`` with one int32 value."""
        msg = OutgoingMessage()
        msg.write_int32(kind)
        msg.write_int32(value)
        self.queue_message_to_send(msg)


class EngineConfigurationReceiver(SideChannel):
    """The Unity end: applies each received setting to ``config``, as a Unity player does.

    The time scale is clamped to at least 1, as a player (not the Editor) does. An unknown type id is logged
    as a warning and ignored.
    """

    def __init__(self, initial: EngineConfig | None = None) -> None:
        super().__init__(ENGINE_CONFIGURATION_CHANNEL_ID)
        self._config = EngineConfig() if initial is None else initial

    @property
    def config(self) -> EngineConfig:
        """The settings received so far (fields never sent keep their initial value)."""
        return self._config

    def on_message_received(self, msg: IncomingMessage) -> None:
        """Apply one setting."""
        kind = msg.read_int32(default_value=-1)
        if kind == EngineConfigurationType.SCREEN_RESOLUTION:
            width = msg.read_int32()
            height = msg.read_int32()
            self._config = dataclasses.replace(self._config, width=width, height=height)
        elif kind == EngineConfigurationType.QUALITY_LEVEL:
            self._config = dataclasses.replace(self._config, quality_level=msg.read_int32())
        elif kind == EngineConfigurationType.TIME_SCALE:
            time_scale = max(1.0, msg.read_float32(default_value=1.0))
            self._config = dataclasses.replace(self._config, time_scale=time_scale)
        elif kind == EngineConfigurationType.TARGET_FRAME_RATE:
            self._config = dataclasses.replace(self._config, target_frame_rate=msg.read_int32())
        elif kind == EngineConfigurationType.CAPTURE_FRAME_RATE:
            self._config = dataclasses.replace(self._config, capture_frame_rate=msg.read_int32())
        else:
            logger.warning(
                "Unknown engine configuration type %d received from the trainer; ignored. Check that the "
                "trainer's ML-Agents version is compatible with this player.",
                kind,
            )
