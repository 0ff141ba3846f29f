"""The training analytics channel (trainer → Unity): its id, and a Unity end that ignores it.

ML-Agents' trainer sends serialized ``google.protobuf.Any`` messages (``TrainingEnvironmentInitialized``,
``TrainingBehaviorInitialized``) on this channel; a player that does not collect analytics drops them silently.
"""

from __future__ import annotations

import uuid

from rayagents.protocol.side_channels.framing import IncomingMessage, SideChannel

TRAINING_ANALYTICS_CHANNEL_ID = uuid.UUID("b664a4a9-d86f-5a5f-95cb-e8353a7e8356")
"""The id of the training analytics channel: uuid5(NAMESPACE_URL, "com.unity.ml-agents/TrainingAnalyticsSideChannel")."""


class TrainingAnalyticsReceiver(SideChannel):
    """The Unity end of a player without analytics: counts each message and drops it, without a warning."""

    def __init__(self) -> None:
        super().__init__(TRAINING_ANALYTICS_CHANNEL_ID)
        self._count = 0

    @property
    def messages_received(self) -> int:
        """How many analytics messages arrived (and were dropped)."""
        return self._count

    def on_message_received(self, msg: IncomingMessage) -> None:
        """Count the message and drop it."""
        self._count += 1
