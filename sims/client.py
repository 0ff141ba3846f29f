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


class ExchangeInterrupted(Exception):
    """The player was asked to stop (``UnityClient.interrupt``): the call in flight was cancelled, or none was made."""


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
    """A gRPC client channel to the trainer, as a Unity player opens one (insecure, no deadline).

    ``exchange`` is a plain blocking unary call (the fastest path gRPC has). To stop a player that waits for the
    trainer, another thread calls ``interrupt``: it closes the channel, which cancels the call in flight, and
    every later ``exchange`` raises ExchangeInterrupted until ``reconnect`` opens a fresh channel (for a goodbye).
    """

    def __init__(self, port: int, host: str = "localhost") -> None:
        self._host = host
        self._port = port
        self._lock = threading.Lock()
        self._interrupted = False
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

    @property
    def interrupted(self) -> bool:
        """True from ``interrupt`` until ``reconnect``."""
        return self._interrupted

    def exchange(self, message: UnityMessageProto, *, timeout: float | None = None) -> UnityMessageProto:
        """Send ``message`` and return the trainer's answer (a blocking call).

        ``timeout`` is None (no deadline, as Unity) except for a last goodbye that must not linger. Raises
        ExchangeInterrupted when ``interrupt`` was called before or during the call, and TrainerGoneError for
        any other gRPC failure (the trainer unreachable or gone, the call cancelled, the message too large).
        """
        if self._interrupted:
            raise self._stopped()
        try:
            return self._stub.Exchange(message, timeout=timeout)
        except grpc.RpcError as error:
            if self._interrupted:
                raise self._stopped() from None
            code = error.code() if isinstance(error, grpc.Call) else None
            details = error.details() if isinstance(error, grpc.Call) else str(error)
            raise TrainerGoneError(self._host, self._port, code, details or "no details") from None
        except ValueError:
            # gRPC refuses calls on a closed channel; only ``interrupt`` closes it while the client is in use.
            if self._interrupted:
                raise self._stopped() from None
            raise

    def interrupt(self) -> None:
        """Stop the client from another thread (not from a signal handler): the call in flight is cancelled.

        The channel is closed, which ends an active ``Exchange`` at once (the trainer sees it cancelled); the
        call in flight and every later ``exchange`` raise ExchangeInterrupted until ``reconnect``.
        """
        with self._lock:
            self._interrupted = True
            self._channel.close()

    def reconnect(self) -> None:
        """Open a fresh channel to the trainer (after ``interrupt``, to say goodbye); the old one is closed."""
        with self._lock:
            self._channel.close()
            self._channel = grpc.insecure_channel(f"{self._host}:{self._port}")
            self._stub = UnityToExternalProtoStub(self._channel)
            self._interrupted = False

    def _stopped(self) -> ExchangeInterrupted:
        """The error an interrupted exchange raises."""
        return ExchangeInterrupted(f"the exchange with the trainer on port {self._port} was stopped")

    def close(self) -> None:
        """Close the channel; calls in flight fail with CANCELLED."""
        with self._lock:
            self._channel.close()
