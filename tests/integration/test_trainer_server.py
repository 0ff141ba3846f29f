"""The trainer's gRPC server on its own: ports, the handshake order, goodbyes both ways, waiting and timeouts.

The player end is the sims ``UnityClient`` (real gRPC), in a thread of this process or in a process of its own.

The machine may be a few cores shared with other work, so a test bounds a wait by what happened (which error, how
often the player was polled) and by the timeout it replaces, never by a fraction of a second.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import threading
import time
from typing import Callable

import pytest

from rayagents.actors.communicator import PLAYER_CHECK_INTERVAL_S, TrainerServer, WaitSettings, input_message
from rayagents.protocol.communicator_objects.unity_message_pb2 import UnityMessageProto
from rayagents.protocol.exceptions import (
    UnityCommunicationException,
    UnityCommunicatorStoppedException,
    UnityEnvironmentException,
    UnityTimeOutException,
    UnityWorkerInUseException,
)
from rayagents.sims.client import UnityClient

PATIENT = WaitSettings(timeout_wait=60.0)
"""For an answer that comes: a long timeout_wait costs nothing when the player answers."""


def player_message(status: int = 200, name: str = "") -> UnityMessageProto:
    message = UnityMessageProto()
    message.header.status = status
    if name:
        message.unity_output.rl_initialization_output.name = name
    return message


def run_player(port: int, script: Callable[[UnityClient], None]) -> tuple[threading.Thread, list]:
    """Run ``script`` against the server in a thread; what it returns or raises lands in the list."""
    results: list = []

    def body() -> None:
        client = UnityClient(port)
        try:
            results.append(script(client))
        except Exception as error:
            results.append(error)
        finally:
            client.close()

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread, results


def test_port_zero_gets_a_free_port_and_a_busy_port_is_refused() -> None:
    first = TrainerServer()
    second = TrainerServer()
    try:
        assert first.port > 0 and second.port > 0 and first.port != second.port
        assert first.host == "127.0.0.1"
        with pytest.raises(UnityWorkerInUseException) as error:
            TrainerServer(port=first.port)
        assert str(first.port) in str(error.value)
    finally:
        first.close()
        second.close()


def test_a_port_held_by_another_program_is_refused() -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        with pytest.raises(UnityWorkerInUseException):
            TrainerServer(port=port)


def test_a_given_free_port_is_used() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = TrainerServer("127.0.0.1", port)
    try:
        assert server.port == port
    finally:
        server.close()


def test_handshake_exchange_and_close_answer_in_order() -> None:
    server = TrainerServer()
    answers: list[UnityMessageProto] = []

    def player(client: UnityClient) -> None:
        answers.append(client.exchange(player_message(name="AcademySingleton")))
        answers.append(client.exchange(player_message()))  # exchange #2, answered by the first reset
        answers.append(client.exchange(player_message(name="step 1")))  # answered by close: 400

    thread, results = run_player(server.port, player)
    init = input_message()
    init.unity_input.rl_initialization_input.seed = 42
    output = server.initialize(init, wait=PATIENT)
    assert output.rl_initialization_output.name == "AcademySingleton"
    reset = input_message()
    reset.unity_input.rl_input.side_channel = b"reset"
    output = server.exchange(reset, wait=PATIENT)
    assert output.rl_initialization_output.name == "step 1"
    server.close()
    thread.join(30)
    assert results == [None]
    assert [a.header.status for a in answers] == [200, 200, 400]
    assert answers[0].unity_input.rl_initialization_input.seed == 42
    assert answers[1].unity_input.rl_input.side_channel == b"reset"
    with pytest.raises(UnityCommunicatorStoppedException):
        server.exchange(input_message(), wait=PATIENT)
    server.close()  # idempotent


def test_a_player_goodbye_raises_communicator_stopped_and_close_answers_it() -> None:
    server = TrainerServer()
    answers: list[UnityMessageProto] = []

    def player(client: UnityClient) -> None:
        client.exchange(player_message())
        client.exchange(player_message())
        answers.append(client.exchange(player_message(status=400), timeout=30))

    thread, _ = run_player(server.port, player)
    server.initialize(input_message(), wait=PATIENT)
    with pytest.raises(UnityCommunicatorStoppedException, match="status 400"):
        server.exchange(input_message(), wait=PATIENT)
    server.close()
    thread.join(30)
    assert [a.header.status for a in answers] == [400]


def test_timeout_names_the_log_and_the_remedies_and_polls_the_player() -> None:
    server = TrainerServer()
    calls: list[float] = []
    timeout_wait = 1.0
    try:
        started = time.monotonic()
        wait = WaitSettings(
            timeout_wait=timeout_wait, check_player=lambda: calls.append(time.monotonic()), log_path="/x/Player-0.log"
        )
        with pytest.raises(UnityTimeOutException) as error:
            server.initialize(input_message(), wait=wait)
        elapsed = time.monotonic() - started
    finally:
        server.close()
    text = str(error.value)
    assert "/x/Player-0.log" in text and "--no-graphics" in text and "--timeout-wait" in text
    assert str(server.port) in text
    assert elapsed >= 0.9 * timeout_wait, "gave up before timeout_wait"
    # The player is polled during the wait, every timeout_wait / 10 (here less than the 0.25 s cap): repeatedly, but
    # not in a busy loop.
    slice_s = WaitSettings(timeout_wait=timeout_wait).check_interval_s
    assert slice_s == timeout_wait / 10
    assert len(calls) >= 2, calls
    assert len(calls) <= elapsed / slice_s + 2, (len(calls), elapsed)


def test_a_dead_player_found_by_the_liveness_check_ends_the_wait_early() -> None:
    server = TrainerServer()
    checks: list[float] = []

    def check() -> None:
        checks.append(time.monotonic())
        if len(checks) >= 2:
            raise UnityEnvironmentException("Environment shut down with return code 1.")

    timeout_wait = 60.0  # the default: the player is checked every PLAYER_CHECK_INTERVAL_S, not every 6 s
    try:
        started = time.monotonic()
        with pytest.raises(UnityEnvironmentException, match="return code 1"):
            server.initialize(input_message(), wait=WaitSettings(timeout_wait=timeout_wait, check_player=check))
        elapsed = time.monotonic() - started
    finally:
        server.close()
    # The second check found the player gone and ended the wait: the error is the player's, before the timeout.
    assert len(checks) == 2
    assert elapsed < 20 * PLAYER_CHECK_INTERVAL_S, f"the wait ended after {elapsed:.1f} s, not at the liveness check"


DROP_NOTICED_S = 3.0
"""How long after a player's process ends its pending call is known to be dropped (the handler checks every 0.5 s)."""


def test_a_player_that_drops_its_call_is_reported() -> None:
    server = TrainerServer()
    code = textwrap.dedent(
        f"""
        import os, threading
        from rayagents.sims.client import UnityClient
        from rayagents.protocol.communicator_objects.unity_message_pb2 import UnityMessageProto
        client = UnityClient({server.port})
        m = UnityMessageProto(); m.header.status = 200
        client.exchange(m); client.exchange(m)
        threading.Timer(0.3, lambda: os._exit(0)).start()
        client.exchange(m)
        """
    )
    player = subprocess.Popen([sys.executable, "-c", code])
    try:
        server.initialize(input_message(), wait=PATIENT)
        server.exchange(input_message(), wait=PATIENT)
        # The player now dies while its call waits for our answer; we answer late and wait for the next call.
        player.wait(30)
        # The server's handler of that call sees it dropped within half a second of the connection's end. An answer
        # given before that would go to the dead call, and the server would then wait for a next call that never
        # comes (until timeout_wait, or the liveness check of a real player's process); so answer well after it.
        time.sleep(DROP_NOTICED_S)
        started = time.monotonic()
        with pytest.raises(UnityCommunicationException, match="dropped its connection"):
            server.exchange(input_message(), wait=PATIENT)
        elapsed = time.monotonic() - started
        assert elapsed < PATIENT.timeout_wait / 2, f"the dropped call was found after {elapsed:.1f} s, not at once"
    finally:
        server.close()
        if player.poll() is None:
            player.kill()
        player.wait(5)


def test_an_unclosed_server_does_not_hang_interpreter_exit() -> None:
    code = textwrap.dedent(
        """
        import threading
        from rayagents.actors.communicator import PLAYER_CHECK_INTERVAL_S, TrainerServer, WaitSettings, input_message
        from rayagents.sims.client import UnityClient
        from rayagents.protocol.communicator_objects.unity_message_pb2 import UnityMessageProto
        server = TrainerServer()
        def player():
            client = UnityClient(server.port)
            m = UnityMessageProto(); m.header.status = 200
            client.exchange(m); client.exchange(m)
        threading.Thread(target=player, daemon=True).start()
        server.initialize(input_message(), wait=WaitSettings(timeout_wait=5))
        print("pending", flush=True)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)  # a hang fails
    assert done.returncode == 0, done.stderr
    assert "pending" in done.stdout


MIN_EXCHANGE_RATE = 20
"""Exchanges/s below which the test fails: about 1,000-1,500/s are measured on 2 cores, so only a wait per exchange
(a sleep, a poll) falls below it, not a busy machine."""


def test_exchange_rate_between_two_processes() -> None:
    """Small messages, the player in a process of its own: print the rate, and fail only if far too slow."""
    server = TrainerServer()
    code = textwrap.dedent(
        f"""
        from rayagents.sims.client import UnityClient
        from rayagents.protocol.communicator_objects.unity_message_pb2 import UnityMessageProto
        client = UnityClient({server.port})
        m = UnityMessageProto(); m.header.status = 200
        m.unity_output.rl_output.side_channel = b"x" * 100
        while client.exchange(m).header.status == 200:
            pass
        """
    )
    player = subprocess.Popen([sys.executable, "-c", code])
    try:
        wait = WaitSettings(timeout_wait=10.0, check_player=lambda: None)
        server.initialize(input_message(), wait=wait)
        message = input_message()
        message.unity_input.rl_input.side_channel = b"y" * 50
        for _ in range(100):
            server.exchange(message, wait=wait)
        n = 1000
        started = time.perf_counter()
        for _ in range(n):
            server.exchange(message, wait=wait)
        rate = n / (time.perf_counter() - started)
    finally:
        server.close()
    assert player.wait(30) == 0
    print(f"{rate:.0f} exchanges/s")
    assert rate > MIN_EXCHANGE_RATE
