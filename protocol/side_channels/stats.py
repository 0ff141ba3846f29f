"""The stats channel (Unity → trainer only): ``Academy.Instance.StatsRecorder.Add(key, value, method)``.

Payload: string key, float32 value, int32 aggregation method.
"""

from __future__ import annotations

import enum
import uuid

from rayagents.protocol.exceptions import UnitySideChannelException
from rayagents.protocol.side_channels.framing import IncomingMessage, OutgoingMessage, SideChannel

STATS_CHANNEL_ID = uuid.UUID("a1d8f7b7-cec8-50f9-b78b-d3e165a78520")
"""The id of the stats channel: uuid5(NAMESPACE_URL, "com.unity.ml-agents/StatsSideChannel")."""


class StatsAggregationMethod(enum.IntEnum):
    """How the trainer aggregates the values of one key over a summary period."""

    AVERAGE = 0
    """The mean of the values."""
    MOST_RECENT = 1
    """The last value."""
    SUM = 2
    """The sum of the values."""
    HISTOGRAM = 3
    """A histogram of the values."""


EnvironmentStats = dict[str, list[tuple[float, StatsAggregationMethod]]]
"""Received statistics: for each key, its ``(value, method)`` pairs in order of arrival."""


class StatsSideChannel(SideChannel):
    """The trainer end: collects the statistics the player records."""

    def __init__(self) -> None:
        super().__init__(STATS_CHANNEL_ID)
        self._stats: EnvironmentStats = {}

    def on_message_received(self, msg: IncomingMessage) -> None:
        """Record one ``(value, method)`` pair; an unknown method raises UnitySideChannelException."""
        key = msg.read_string()
        value = msg.read_float32()
        method_id = msg.read_int32()
        try:
            method = StatsAggregationMethod(method_id)
        except ValueError as error:
            known = ", ".join(f"{m.name}={m.value}" for m in StatsAggregationMethod)
            raise UnitySideChannelException(
                f"The player sent statistic '{key}' = {value} with unknown aggregation method {method_id} "
                f"(known: {known}). Check that the player's ML-Agents package is compatible with this trainer."
            ) from error
        self._stats.setdefault(key, []).append((value, method))

    def get_and_reset_stats(self) -> EnvironmentStats:
        """The statistics received since the last call; the store is emptied."""
        stats, self._stats = self._stats, {}
        return stats


class StatsRecorder(SideChannel):
    """The Unity end: ``add`` queues one statistic for the trainer. The trainer never sends on this channel."""

    def __init__(self) -> None:
        super().__init__(STATS_CHANNEL_ID)

    def add(self, key: str, value: float, method: StatsAggregationMethod = StatsAggregationMethod.AVERAGE) -> None:
        """Queue ``value`` for ``key``, to be aggregated with ``method``."""
        msg = OutgoingMessage()
        msg.write_string(key)
        msg.write_float32(value)
        msg.write_int32(StatsAggregationMethod(method))
        self.queue_message_to_send(msg)

    def on_message_received(self, msg: IncomingMessage) -> None:
        """Raise: the trainer must not send on the stats channel."""
        raise UnitySideChannelException(
            f"The trainer sent a message on the stats channel ({STATS_CHANNEL_ID}), which only goes from the "
            "player to the trainer. Check that no custom side channel of the trainer uses this id."
        )
