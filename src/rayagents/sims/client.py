"""The player's gRPC client: the Unity end of ``UnityToExternalProto.Exchange``.

As Unity's ``RpcCommunicator`` does, the player opens an insecure channel to ``localhost:PORT`` (the trainer is
the gRPC server) and makes unary ``Exchange`` calls with no deadline: each call sends the player's state and
returns the trainer's answer (the actions, a reset, or status 400).
"""

from __future__ import annotations

import threading

import grpc

from rayagents.protocol.communicator_objects.unity_message_pb2 import UnityMessageProto
from rayagents.protocol.communicator_objects.unity_to_external_pb2_grpc import UnityToExternalProtoStub
from rayagents.protocol.exceptions import UnityCommunicationException

STOP_POLL_S = 0.05
"""How often a waiting exchange checks its stop event."""


class ExchangeInterrupted(Exception):
    """The player was asked to stop while it waited for the trainer's answer; the call was cancelled."""


class TrainerGoneError(UnityCommunicationException):
    """An ``Exchange`` call failed: the trainer is unreachable, stopped, or refused the message."""

    def __init__(self, host: str, port: int, code: grpc.StatusCode | None, details: str) -> None:
        name = code.name if code is not None else "UNKNOWN"
        if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
            advice = (
                "The message is larger than the trainer accepts: use fewer training areas (--num-areas) or "
                "smaller observations."
            )
        else:
            advice = (
                "The trainer is gone or was never listening: check that the trainer is running and that "
                "--mlagents-port names the port it listens on."
            )
        super().__init__(f"Exchange with the trainer at {host}:{port} failed ({name}: {details}). {advice}")
        self.host = host
        """The host the player connected to."""
        self.port = port
        """The trainer's port."""
        self.code = code
        """The gRPC status code of the failed call (None when gRPC gave none)."""


class UnityClient:
    """A gRPC client channel to the trainer, as a Unity player opens one (insecure, no deadline)."""

    def __init__(self, port: int, host: str = "localhost") -> None:
        self._host = host
        self._port = port
        self._channel = grpc.insecure_channel(f"{host}:{port}")
        self._stub = UnityToExternalProtoStub(self._channel)

    @property
    def port(self) -> int:
        """The trainer's port."""
        return self._port

    @property
    def host(self) -> str:
        """The trainer's host."""
        return self._host

    def exchange(
        self,
        message: UnityMessageProto,
        *,
        timeout: float | None = None,
        stop: threading.Event | None = None,
    ) -> UnityMessageProto:
        """Send ``message`` and return the trainer's answer.

        ``timeout`` is None (no deadline, as Unity) except for a last goodbye that must not linger. When
        ``stop`` is set while the answer is awaited, the call is cancelled and ExchangeInterrupted raised (a
        signal handler sets it: nothing is raised inside gRPC). Any gRPC failure (the trainer unreachable or
        gone, the call cancelled, the message too large) raises TrainerGoneError.
        """
        call = self._stub.Exchange.future(message, timeout=timeout)
        try:
            if stop is None:
                return call.result()
            while True:
                try:
                    return call.result(timeout=STOP_POLL_S)
                except grpc.FutureTimeoutError:
                    if stop.is_set():
                        raise ExchangeInterrupted(f"the exchange with the trainer on port {self._port} was stopped")
        except grpc.RpcError as error:
            code = error.code() if isinstance(error, grpc.Call) else None
            details = error.details() if isinstance(error, grpc.Call) else str(error)
            raise TrainerGoneError(self._host, self._port, code, details or "no details") from None
        except BaseException:
            call.cancel()
            raise

    def close(self) -> None:
        """Close the channel; calls in flight fail with CANCELLED."""
        self._channel.close()
