"""Launcher faults with real player processes: exits at once, never connects, ignores close, orphaned player.

The players are ``tests/players/scripted_player.py`` installed as ``<tmp>/Player.x86_64`` (its shebang set to
this interpreter), told what to do with ``--mode``. The machine may be a few cores shared with other work: a test
tells "noticed at once" from "waited for the timeout" with a long ``timeout_wait`` and a bound well below it, and
checks which error came, never a bound of a few seconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from processes import pid_alive
from rayagents.actors.environment import UnityEnvironment
from rayagents.actors.player import PlayerProcess
from rayagents.protocol.exceptions import UnityEnvironmentException, UnityTimeOutException

PLAYER_SOURCE = Path(__file__).resolve().parents[1] / "players" / "scripted_player.py"


def install_player(folder: Path) -> Path:
    """Copy the scripted player into ``folder`` as an executable Linux build (shebang = this interpreter)."""
    source = PLAYER_SOURCE.read_text().split("\n", 1)[1]
    exe = folder / "Player.x86_64"
    exe.write_text(f"#!{sys.executable}\n{source}")
    exe.chmod(0o755)
    return exe


def wait_gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return not pid_alive(pid)


def test_player_that_exits_at_once_shows_its_log(tmp_path: Path) -> None:
    exe = install_player(tmp_path)
    logs = tmp_path / "logs"
    timeout_wait = 20.0  # the liveness check runs every 2 s
    started = time.monotonic()
    with pytest.raises(UnityEnvironmentException) as error:
        UnityEnvironment(
            str(exe), timeout_wait=timeout_wait, log_folder=str(logs), additional_args=["--mode", "exit_at_once"]
        )
    elapsed = time.monotonic() - started
    text = str(error.value)
    assert "Environment shut down with return code 3" in text  # the exit, not a timeout
    assert "fails on purpose" in text  # the tail of the player's log
    assert str(logs / "Player-0.log") in text
    assert elapsed < timeout_wait / 2, f"the exit was noticed after {elapsed:.1f} s, as late as a timeout"


def test_player_that_never_connects_times_out_naming_its_log(tmp_path: Path) -> None:
    exe = install_player(tmp_path)
    logs = tmp_path / "logs"
    started = time.monotonic()
    with pytest.raises(UnityTimeOutException) as error:
        UnityEnvironment(
            str(exe), worker_id=2, timeout_wait=2, log_folder=str(logs), additional_args=["--mode", "never_connect"]
        )
    elapsed = time.monotonic() - started
    text = str(error.value)
    assert str(logs / "Player-2.log") in text
    assert "--no-graphics" in text and "--timeout-wait" in text
    assert elapsed >= 1.8, "gave up before timeout_wait"
    # The player was killed on the way out.
    log = (logs / "Player-2.log").read_text()
    pid = int(log.split("(pid ", 1)[1].split(")", 1)[0])
    assert wait_gone(pid, 30.0)


def test_player_that_ignores_close_is_killed_after_timeout_wait(tmp_path: Path) -> None:
    exe = install_player(tmp_path)
    env = UnityEnvironment(str(exe), timeout_wait=1.5, additional_args=["--mode", "ignore_close"])
    pid = env.pid
    assert pid is not None and pid_alive(pid)
    started = time.monotonic()
    env.close()
    elapsed = time.monotonic() - started
    assert not pid_alive(pid)
    assert elapsed >= 1.4, "killed before timeout_wait"
    env.close()  # closing twice is harmless


def test_close_lets_a_well_behaved_player_exit_by_itself(tmp_path: Path) -> None:
    exe = install_player(tmp_path)
    logs = tmp_path / "logs"
    timeout_wait = 60.0
    env = UnityEnvironment(
        str(exe), timeout_wait=timeout_wait, log_folder=str(logs), additional_args=["--mode", "normal"]
    )
    pid = env.pid
    env.reset()
    started = time.monotonic()
    env.close()
    elapsed = time.monotonic() - started
    assert elapsed < timeout_wait / 2, f"closing took {elapsed:.1f} s: the player was killed after timeout_wait"
    assert not pid_alive(pid)
    assert "said goodbye (status 400)" in (logs / "Player-0.log").read_text()


def test_no_player_is_left_when_its_parent_is_killed(tmp_path: Path) -> None:
    exe = install_player(tmp_path)
    parent_code = textwrap.dedent(
        f"""
        import sys, time
        from rayagents.actors.player import PlayerProcess
        player = PlayerProcess({str(exe)!r}, ["--mode", "never_connect"])
        print(player.pid, flush=True)
        time.sleep(120)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", parent_code], stdout=subprocess.PIPE, text=True)
    try:
        line = parent.stdout.readline() if parent.stdout else ""
        player_pid = int(line)
        assert pid_alive(player_pid)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(30)
        assert wait_gone(player_pid, 30.0), "the player outlived its SIGKILLed parent"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def test_player_process_close_kills_the_whole_process_group(tmp_path: Path) -> None:
    script = tmp_path / "forking.x86_64"
    script.write_text("#!/bin/sh\nsleep 60 &\necho child $!\nwait\n")
    script.chmod(0o755)
    log = tmp_path / "forking.log"
    player = PlayerProcess(str(script), [], log_path=str(log))
    deadline = time.monotonic() + 30
    while "child" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.02)
    child = int(log.read_text().split("child ", 1)[1].split()[0])
    assert pid_alive(child)
    assert player.close(timeout=0.2) == -signal.SIGKILL
    assert wait_gone(child, 30.0)
    assert player.returncode == -signal.SIGKILL
