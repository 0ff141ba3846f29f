"""The trainer's gRPC server: the end of ``UnityToExternalProto.Exchange`` that a player connects to.

The roles are the reverse of what one might expect: the trainer is the gRPC *server* and the player (a Unity
build, the Unity Editor or the simulation host) is the *client*. Every ``Exchange`` request from the player
carries its state; the trainer's answer to that pending request carries the trainer's input (actions, a reset,
or status 400 to say goodbye). So ``exchange(input)`` means: answer the pending request with ``input``, then
wait for the player's next request.

The gRPC handler thread and the caller hand requests and answers over with plain threading primitives: a
``queue.SimpleQueue`` of pending requests one way, a per-request lock the other way. The hot path is one
queue put/get and one lock release/acquire per exchange.
"""

from __future__ import annotations

import errno
import queue
import socket
import threading
import time
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Any, Callable

import grpc

from rayagents.protocol.communicator_objects.header_pb2 import HeaderProto
from rayagents.protocol.communicator_objects.unity_message_pb2 import UnityMessageProto
from rayagents.protocol.communicator_objects.unity_output_pb2 import UnityOutputProto
from rayagents.protocol.communicator_objects.unity_to_external_pb2_grpc import (
    UnityToExternalProtoServicer,
    add_UnityToExternalProtoServicer_to_server,
)
from rayagents.protocol.exceptions import (
    UnityCommunicationException,
    UnityCommunicatorStoppedException,
    UnityTimeOutException,
    UnityWorkerInUseException,
)

STATUS_OK = 200
"""``HeaderProto.status`` of every ordinary message."""

STATUS_SHUTDOWN = 400
"""``HeaderProto.status`` that says goodbye: the trainer sends it on close, the player when it quits."""

_HANDLER_SLICE_S = 0.5
"""How often a handler thread that waits for the caller's answer checks that its call and the server live."""

_DISCONNECT_GRACE_S = 2.0
"""After the player's call was cancelled, how long to wait for its process to be seen exiting."""

_GOODBYE_WAIT_S = 1.0
"""On close after an answer whose next request was not read: how long to wait for that request, to say goodbye."""

PLAYER_CHECK_INTERVAL_S = 0.25
"""The longest a wait for the player's next request goes before its process is checked again (a cheap poll)."""


@dataclass(frozen=True)
class WaitSettings:
    """How to wait for the player's next request."""

    timeout_wait: float = 60.0
    """Seconds to wait for the player's next request before raising UnityTimeOutException."""
    check_player: Callable[[], None] | None = None
    """Called every :attr:`check_interval_s` while waiting; raises when the player process is gone. None when no
    process is watched (the Unity Editor)."""
    log_path: str | None = None
    """The player's log file, named in the timeout error (None: the player keeps no log we know of)."""
    editor: bool = False
    """True when the peer is the Unity Editor (no process of ours): the timeout error says to press Play."""

    @property
    def check_interval_s(self) -> float:
        """How long one wait lasts before the player is checked again: ``timeout_wait / 10``, at most
        :data:`PLAYER_CHECK_INTERVAL_S`, so that a player that crashed is noticed within a fraction of a second."""
        return max(min(self.timeout_wait / 10.0, PLAYER_CHECK_INTERVAL_S), 0.001)


_WorkItem = tuple["Future[Any]", Callable[..., Any], tuple[Any, ...], dict[str, Any]]
"""A queued call: the future of its result, the function and its arguments."""


class _DaemonThreadPool(Executor):
    """Runs the gRPC handlers on daemon threads, started as needed up to ``max_workers``.

    A handler blocks until the trainer answers its request. If the program ends without closing the server,
    ``ThreadPoolExecutor``'s threads would be joined at exit, before ``atexit`` could close anything, and the
    program would hang; daemon threads let it end (and its ``atexit`` handlers say goodbye to the player).
    """

    def __init__(self, max_workers: int, name: str) -> None:
        self._max_workers = max_workers
        self._name = name
        self._work: "queue.SimpleQueue[_WorkItem | None]" = queue.SimpleQueue()
        # One token per idle thread (a C queue: cheaper than a Semaphore on every call).
        self._idle: "queue.SimpleQueue[None]" = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> "Future[Any]":
        """Queues ``fn(*args, **kwargs)``; starts a thread when none is idle and the pool is not full."""
        future: "Future[Any]" = Future()
        self._work.put((future, fn, args, kwargs))
        try:
            self._idle.get_nowait()
        except queue.Empty:
            with self._lock:
                if len(self._threads) < self._max_workers:
                    thread = threading.Thread(
                        target=self._worker, name=f"{self._name}-{len(self._threads)}", daemon=True
                    )
                    self._threads.append(thread)
                    thread.start()
        return future

    def _worker(self) -> None:
        while True:
            item = self._work.get()
            if item is None:
                return
            future, fn, args, kwargs = item
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args, **kwargs))
                except BaseException as error:  # handed to the future, as ThreadPoolExecutor does
                    future.set_exception(error)
            del item, future, fn, args, kwargs
            self._idle.put(None)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Lets every thread end once the work queued before it is done."""
        with self._lock:
            for _ in self._threads:
                self._work.put(None)
            threads = list(self._threads)
        if wait:
            for thread in threads:
                if thread is not threading.current_thread():
                    thread.join()


class _Pending:
    """One player request waiting for the trainer's answer."""

    __slots__ = ("request", "response", "answered")

    def __init__(self, request: UnityMessageProto | None) -> None:
        self.request = request
        """The player's message; None is the marker of a call that the player abandoned (its channel dropped)."""
        self.response: UnityMessageProto | None = None
        """The trainer's answer, set before ``answered`` is released."""
        self.answered = threading.Lock()
        """Held until the answer is set; the handler thread waits on it."""
        self.answered.acquire()


class _Servicer(UnityToExternalProtoServicer):
    """Puts every request on the server's queue and blocks its gRPC thread until the caller answers it."""

    def __init__(self, requests: "queue.SimpleQueue[_Pending]", stopped: threading.Event) -> None:
        self._requests = requests
        self._stopped = stopped

    def Exchange(self, request: UnityMessageProto, context: grpc.ServicerContext) -> UnityMessageProto:  # noqa: N802
        """Hands ``request`` to the caller and returns the caller's answer."""
        pending = _Pending(request)
        self._requests.put(pending)
        while not pending.answered.acquire(timeout=_HANDLER_SLICE_S):
            if self._stopped.is_set():
                return _shutdown_message()
            if not context.is_active():
                # The player dropped the call (it died or closed its channel): tell a waiting caller.
                self._requests.put(_Pending(None))
                return _shutdown_message()
        assert pending.response is not None
        return pending.response


def _shutdown_message() -> UnityMessageProto:
    return UnityMessageProto(header=HeaderProto(status=STATUS_SHUTDOWN))


def input_message() -> UnityMessageProto:
    """An empty message with status 200: fill its ``unity_input`` in place and pass it to ``exchange``."""
    message = UnityMessageProto()
    message.header.status = STATUS_OK
    return message


def _check_port_free(host: str, port: int) -> None:
    """Raises UnityWorkerInUseException when ``host:port`` is taken (a plain bind, as ML-Agents checks)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise UnityWorkerInUseException(port) from None
            raise UnityCommunicationException(
                f"Cannot listen for the player on {host}:{port}: {error}. Check the host address."
            ) from None


class TrainerServer:
    """A gRPC server for ``UnityToExternalProto`` that one player connects to.

    It listens on ``host`` (loopback by default: the player runs on the same machine) and on ``port``, or on a
    port the OS picks when ``port`` is 0; ``.port`` is the port it got. A given port that is busy raises
    UnityWorkerInUseException.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._requests: "queue.SimpleQueue[_Pending]" = queue.SimpleQueue()
        self._stopped = threading.Event()
        self._pending: _Pending | None = None
        self._unread = False  # send() answered the player, and receive() has not read its next request yet
        self._closed = False
        self._player_quit = False
        if port != 0:
            _check_port_free(host, port)
        self._pool = _DaemonThreadPool(max_workers=4, name="rayagents-trainer-server")
        self._server = grpc.server(
            self._pool,
            options=[
                ("grpc.so_reuseport", 0),
                ("grpc.max_receive_message_length", -1),
                ("grpc.max_send_message_length", -1),
            ],
        )
        add_UnityToExternalProtoServicer_to_server(_Servicer(self._requests, self._stopped), self._server)
        address = f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"
        try:
            bound = self._server.add_insecure_port(address)
        except RuntimeError:
            bound = 0
        if bound == 0:
            self._server.stop(None)
            self._pool.shutdown(wait=False)
            if port != 0:
                raise UnityWorkerInUseException(port)
            raise UnityCommunicationException(
                f"Cannot listen for the player on {host} (no free port): check the host address."
            )
        self._port = bound
        self._server.start()

    @property
    def port(self) -> int:
        """The port the server listens on (pass it to the player as ``--mlagents-port``)."""
        return self._port

    @property
    def host(self) -> str:
        """The address the server listens on."""
        return self._host

    def initialize(self, message: UnityMessageProto, *, wait: WaitSettings) -> UnityOutputProto:
        """Runs the handshake and returns the player's first output (its ``rl_initialization_output``).

        Waits for the player's first request, answers it with ``message`` (status 200 and the trainer's
        ``rl_initialization_input``), then waits for the player's second request and keeps it pending: the
        first ``exchange`` (the first reset) answers it.
        """
        first = self._next_request(wait)
        self._respond(message)
        self._next_request(wait)
        return first.unity_output

    def exchange(self, message: UnityMessageProto, *, wait: WaitSettings) -> UnityOutputProto:
        """Answers the pending request with ``message`` and returns the output of the player's next request.

        ``message`` is sent as it is (build it with ``input_message``): no copy is made on the way.
        """
        self.send(message)
        return self.receive(wait)

    def send(self, message: UnityMessageProto) -> None:
        """Answers the pending request with ``message``: the first half of :meth:`exchange`. The player computes its
        next step while the caller works; :meth:`receive` then reads it."""
        if self._player_quit:
            raise UnityCommunicatorStoppedException(
                f"Communicator has exited: the player on port {self._port} closed the connection earlier."
            )
        self._respond(message)
        self._unread = True

    @property
    def awaiting_request(self) -> bool:
        """Whether :meth:`send` answered the player and :meth:`receive` has not read its next request yet."""
        return self._unread

    def receive(self, wait: WaitSettings) -> UnityOutputProto:
        """The output of the player's next request (after :meth:`send`): the second half of :meth:`exchange`."""
        self._unread = False
        return self._next_request(wait).unity_output

    def close(self) -> None:
        """Answers the pending request with status 400 (the player quits) and stops the server. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._pending is None and self._unread and not self._player_quit:
            # A step was sent and its answer not read (a caller cut short): take the player's request to answer it.
            try:
                pending = self._requests.get(timeout=_GOODBYE_WAIT_S)
                if pending.request is not None:
                    self._pending = pending
            except queue.Empty:
                pass
        if self._pending is not None:
            self._respond(_shutdown_message())
        # A short grace lets the goodbye reach the player before the remaining calls are cancelled.
        self._stopped.set()
        self._server.stop(grace=1.0).wait(2.0)
        self._pool.shutdown(wait=False)

    # -- the hot path ---------------------------------------------------------------------------------------

    def _respond(self, response: UnityMessageProto) -> None:
        pending = self._pending
        if pending is None:
            if self._closed:
                raise UnityCommunicatorStoppedException(
                    f"The connection to the player on port {self._port} is closed."
                )
            raise UnityCommunicationException(
                f"No request from the player on port {self._port} is waiting for an answer: the handshake has "
                "not run, or the connection was closed."
            )
        self._pending = None
        pending.response = response
        pending.answered.release()

    def _next_request(self, wait: WaitSettings) -> UnityMessageProto:
        """Waits for the player's next request; raises when it quits, its process exits, or time runs out."""
        if self._closed:
            raise UnityCommunicatorStoppedException(f"The connection to the player on port {self._port} is closed.")
        try:
            pending = self._requests.get(timeout=wait.check_interval_s)
        except queue.Empty:
            pending = self._wait_slowly(wait)
        if pending.request is None:
            self._on_disconnect(wait)
        self._pending = pending
        request = pending.request
        assert request is not None
        if request.header.status != STATUS_OK:
            self._player_quit = True
            raise UnityCommunicatorStoppedException(
                f"Communicator has exited: the player on port {self._port} closed the connection "
                f"(status {request.header.status}{': ' + request.header.message if request.header.message else ''})."
            )
        return request

    def _wait_slowly(self, wait: WaitSettings) -> _Pending:
        slice_s = wait.check_interval_s
        deadline = time.monotonic() + wait.timeout_wait - slice_s
        while True:
            if wait.check_player is not None:
                wait.check_player()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise UnityTimeOutException(self._timeout_text(wait))
            try:
                return self._requests.get(timeout=min(slice_s, remaining))
            except queue.Empty:
                continue

    def _on_disconnect(self, wait: WaitSettings) -> None:
        """The player abandoned its call: report its exit if its process is seen ending, else a dropped link."""
        if wait.check_player is not None:
            deadline = time.monotonic() + _DISCONNECT_GRACE_S
            while time.monotonic() < deadline:
                wait.check_player()
                time.sleep(0.05)
        raise UnityCommunicationException(
            f"The player on port {self._port} dropped its connection without saying goodbye"
            f"{self._log_hint(wait)}."
        )

    def _timeout_text(self, wait: WaitSettings) -> str:
        if wait.editor:
            return (
                f"The Unity Editor did not connect or answer on port {self._port} within {wait.timeout_wait:g} s. "
                "Press Play in the Editor after starting training (and keep the Editor in the foreground), or "
                "raise --timeout-wait."
            )
        return (
            f"The Unity environment took too long to respond: the player on port {self._port} sent nothing "
            f"for {wait.timeout_wait:g} s{self._log_hint(wait)}. If it runs on a machine without a display, "
            "launch it headless (--no-graphics) or use a server build; if it is merely slow to start or to "
            "step, raise --timeout-wait. Also check that its agents' Behavior Type is Default and that the "
            "ML-Agents versions are compatible."
        )

    @staticmethod
    def _log_hint(wait: WaitSettings) -> str:
        if wait.log_path is None:
            return " (it keeps no log: give a log folder to keep one)"
        return f" (see its log: {wait.log_path})"
