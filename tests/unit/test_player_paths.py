"""Finding a build's executable (ML-Agents' rules per platform), the player's command line, launch errors."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from rayagents.actors.player import (
    PlayerProcess,
    describe_exit,
    log_path_from_arguments,
    player_arguments,
    resolve_executable,
)
from rayagents.protocol.exceptions import UnityEnvironmentException


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


# -- resolve_executable -------------------------------------------------------------------------------------


def test_linux_build_is_found_with_or_without_its_suffix(tmp_path: Path) -> None:
    exe = touch(tmp_path / "builds" / "Game.x86_64")
    (tmp_path / "builds" / "Game_Data").mkdir()
    assert resolve_executable(str(tmp_path / "builds" / "Game"), "linux") == str(exe)
    assert resolve_executable(str(tmp_path / "builds" / "Game.x86_64"), "linux") == str(exe)
    assert resolve_executable(f"  {tmp_path / 'builds' / 'Game.x86_64'}  ", "linux") == str(exe)


def test_linux_prefers_x86_64_then_x86_then_the_plain_file(tmp_path: Path) -> None:
    touch(tmp_path / "Game")
    assert resolve_executable(str(tmp_path / "Game"), "linux") == str(tmp_path / "Game")
    touch(tmp_path / "Game.x86")
    assert resolve_executable(str(tmp_path / "Game"), "linux") == str(tmp_path / "Game.x86")
    touch(tmp_path / "Game.x86_64")
    assert resolve_executable(str(tmp_path / "Game.x86"), "linux") == str(tmp_path / "Game.x86_64")


def test_linux_build_folder_with_one_player_is_accepted(tmp_path: Path) -> None:
    exe = touch(tmp_path / "build" / "Walker.x86_64")
    assert resolve_executable(str(tmp_path / "build"), "linux") == str(exe)


def test_relative_path_is_resolved_against_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exe = touch(tmp_path / "env" / "Game.x86_64")
    monkeypatch.chdir(tmp_path)
    assert resolve_executable(os.path.join("env", "Game"), "linux") == str(exe)


def test_macos_app_bundle(tmp_path: Path) -> None:
    exe = touch(tmp_path / "Game.app" / "Contents" / "MacOS" / "Game")
    assert resolve_executable(str(tmp_path / "Game.app"), "darwin") == str(exe)
    assert resolve_executable(str(tmp_path / "Game"), "darwin") == str(exe)


def test_macos_bundle_whose_binary_has_another_name(tmp_path: Path) -> None:
    exe = touch(tmp_path / "Game.app" / "Contents" / "MacOS" / "Player")
    assert resolve_executable(str(tmp_path / "Game.app"), "darwin") == str(exe)


def test_windows_exe_and_folder_skipping_the_crash_handler(tmp_path: Path) -> None:
    exe = touch(tmp_path / "Game.exe")
    assert resolve_executable(str(tmp_path / "Game"), "win32") == str(exe)
    assert resolve_executable(str(tmp_path / "Game.exe"), "win32") == str(exe)
    folder = tmp_path / "Build"
    touch(folder / "UnityCrashHandler64.exe")
    inner = touch(folder / "Soccer.exe")
    assert resolve_executable(str(folder), "win32") == str(inner)


def test_windows_folder_with_only_the_crash_handler_is_an_error(tmp_path: Path) -> None:
    touch(tmp_path / "Build" / "UnityCrashHandler64.exe")
    with pytest.raises(UnityEnvironmentException, match="no Unity player executable"):
        resolve_executable(str(tmp_path / "Build"), "win32")


def test_missing_build_lists_every_path_tried(tmp_path: Path) -> None:
    with pytest.raises(UnityEnvironmentException) as error:
        resolve_executable(str(tmp_path / "Nothing.x86_64"), "linux")
    text = str(error.value)
    assert str(tmp_path / "Nothing.x86_64") in text
    assert str(tmp_path / "Nothing.x86") in text
    assert "Tried:" in text


# -- player_arguments ---------------------------------------------------------------------------------------


def test_arguments_headless_with_log_in_ml_agents_order(tmp_path: Path) -> None:
    args = player_arguments(5123, worker_id=3, no_graphics=True, log_folder=str(tmp_path), additional_args=["-x", "1"])
    assert args == [
        "-nographics",
        "-batchmode",
        "--mlagents-port",
        "5123",
        "-logFile",
        str(tmp_path / "Player-3.log"),
        "-x",
        "1",
    ]


def test_arguments_with_graphics_and_no_log_folder() -> None:
    assert player_arguments(6000, no_graphics=False) == ["--mlagents-port", "6000"]


def test_users_own_log_file_wins_in_any_case(tmp_path: Path) -> None:
    user = ["-LOGFILE", "/var/log/mine.log", "--speed", "2"]
    args = player_arguments(6001, log_folder=str(tmp_path), additional_args=user)
    assert args == ["-nographics", "-batchmode", "--mlagents-port", "6001", *user]
    assert all(not arg.endswith("Player-0.log") for arg in args)
    assert log_path_from_arguments(user) == "/var/log/mine.log"
    assert log_path_from_arguments(["-logFile", "-"]) is None


def test_describe_exit_names_signals() -> None:
    assert describe_exit(-9) == "return code -9 (SIGKILL)"
    assert describe_exit(-11) == "return code -11 (SIGSEGV)"
    assert describe_exit(3) == "return code 3"


# -- launch errors ------------------------------------------------------------------------------------------


def test_player_without_run_bit_says_chmod(tmp_path: Path) -> None:
    build = tmp_path / "build"
    exe = touch(build / "Game.x86_64")
    exe.chmod(0o644)
    with pytest.raises(UnityEnvironmentException) as error:
        PlayerProcess(str(exe), ["--mlagents-port", "1"])
    text = str(error.value)
    assert "permission denied" in text
    assert f"chmod -R 755 {build}" in text
    assert str(exe) in text


def test_player_that_is_not_an_executable_format(tmp_path: Path) -> None:
    exe = tmp_path / "Game.x86_64"
    exe.write_bytes(b"\x00\x01garbage")
    exe.chmod(0o755)
    with pytest.raises(UnityEnvironmentException, match="Couldn't launch the player"):
        PlayerProcess(str(exe), [])


def test_sim_shorthand_runs_the_simulation_host_with_this_interpreter() -> None:
    from rayagents.actors.player import player_command

    assert player_command("sim:CartPole") == (sys.executable, ["-m", "rayagents.sims", "--scene", "CartPole"])
    with pytest.raises(UnityEnvironmentException, match="names no scene"):
        player_command("sim:")
