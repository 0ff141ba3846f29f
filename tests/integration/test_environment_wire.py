"""UnityEnvironment over the real wire: against the simulation host's CartPole build, and against scripted players
(``tests/players/scripted_player.py``, on the sims ``UnityClient``) for what the host does not do.
"""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from bench.local_cluster import free_port
from processes import pid_alive
from rayagents.actors.environment import UnityEnvironment
from rayagents.protocol.exceptions import (
    UnityActionException,
    UnityCommunicatorStoppedException,
    UnityEnvironmentException,
    UnityTimeOutException,
)
from rayagents.protocol.side_channels import EngineConfigurationChannel
from rayagents.protocol.types import ActionTuple
from rayagents.sims.build import write_build

PLAYER_SOURCE = Path(__file__).resolve().parents[1] / "players" / "scripted_player.py"
CARTPOLE = "CartPole?team=0"
BALL = "Ball?team=0"
LATE = "Late?team=0"


def install_player(folder: Path) -> Path:
    """Copy the scripted player into ``folder`` as an executable Linux build (shebang = this interpreter)."""
    source = PLAYER_SOURCE.read_text().split("\n", 1)[1]
    exe = folder / "Player.x86_64"
    exe.write_text(f"#!{sys.executable}\n{source}")
    exe.chmod(0o755)
    return exe


def scripted(tmp_path: Path, mode: str, **kwargs: object) -> UnityEnvironment:
    exe = install_player(tmp_path)
    options: dict = {"timeout_wait": 20, "log_folder": str(tmp_path / "logs")}
    options.update(kwargs)
    return UnityEnvironment(str(exe), additional_args=["--mode", mode], **options)


# -- the simulation host ------------------------------------------------------------------------------------


def test_cartpole_handshake_reset_steps_and_close(tmp_path: Path) -> None:
    write_build("CartPole", tmp_path / "build")
    engine = EngineConfigurationChannel()
    engine.set_configuration_parameters(time_scale=20.0)
    env = UnityEnvironment(
        str(tmp_path / "build" / "CartPole"),  # the build without its suffix, as users pass it
        seed=3,
        num_areas=2,
        timeout_wait=10,
        side_channels=[engine],
        log_folder=str(tmp_path / "logs"),
    )
    try:
        assert env.port > 0
        assert env.academy_capabilities.baseRLCapabilities
        assert env.academy_capabilities.hybridActions
        assert dict(env.behavior_specs) == {}  # specs arrive with the first observations
        env.reset()
        spec = env.behavior_specs[CARTPOLE]
        assert spec.observation_specs[0].shape == (4,)
        assert spec.action_spec.discrete_branches == (2,)
        decisions, terminals = env.get_steps(CARTPOLE)
        assert len(decisions) == 2 and len(terminals) == 0
        assert decisions.obs[0].shape == (2, 4) and decisions.obs[0].dtype == np.float32
        rng = np.random.default_rng(0)
        ended = 0
        for _ in range(300):
            decisions, _ = env.get_steps(CARTPOLE)
            env.set_actions(CARTPOLE, spec.action_spec.random_action(len(decisions), rng))
            env.step()
            decisions, terminals = env.get_steps(CARTPOLE)
            ended += len(terminals)
            assert len(decisions) == 2  # every ended episode starts the next at once
        assert ended > 0, "300 random steps of CartPole ended no episode"
        assert np.all(terminals.reward <= 1.0)
    finally:
        pid = env.pid
        assert pid is not None
        env.close()
    assert not pid_alive(pid)
    log = (tmp_path / "logs" / "Player-0.log").read_text()
    assert "CartPole" in log


def test_step_without_actions_sends_zeros_and_first_step_resets(tmp_path: Path) -> None:
    write_build("CartPole", tmp_path)
    with UnityEnvironment(str(tmp_path / "CartPole.x86_64"), timeout_wait=10) as env:
        env.step()  # the first step is a reset
        assert CARTPOLE in env.behavior_specs
        for _ in range(5):
            env.step()  # no actions set: zeros
        decisions, _ = env.get_steps(CARTPOLE)
        assert len(decisions) == 1


def test_actions_of_the_wrong_shape_or_behavior_are_refused(tmp_path: Path) -> None:
    write_build("CartPole", tmp_path)
    with UnityEnvironment(str(tmp_path / "CartPole"), num_areas=2, timeout_wait=10) as env:
        env.reset()
        with pytest.raises(UnityActionException, match=r"\(2, 1\)"):
            env.set_actions(CARTPOLE, ActionTuple(discrete=np.zeros((3, 1), np.int32)))
        with pytest.raises(UnityActionException, match="continuous"):
            env.set_actions(CARTPOLE, ActionTuple(continuous=np.zeros((2, 1), np.float32)))
        with pytest.raises(UnityActionException, match="NoSuchBehavior"):
            env.get_steps("NoSuchBehavior?team=0")
        with pytest.raises(UnityActionException, match="NoSuchBehavior"):
            env.set_actions("NoSuchBehavior?team=0", ActionTuple(discrete=np.zeros((2, 1), np.int32)))
        with pytest.raises(IndexError, match="did not request a decision"):
            env.set_action_for_agent(CARTPOLE, 987654, ActionTuple(discrete=np.zeros((1, 1), np.int32)))
        env.step()  # the environment still works


# -- scripted players ---------------------------------------------------------------------------------------


def test_actions_reach_the_player_in_decision_order(tmp_path: Path) -> None:
    env = scripted(tmp_path, "normal")
    try:
        env.reset()
        spec = env.behavior_specs[BALL]
        assert spec.action_spec.continuous_size == 2 and spec.action_spec.discrete_branches == (3,)
        decisions, _ = env.get_steps(BALL)
        assert list(decisions.agent_id) == [0, 1]
        env.set_actions(
            BALL,
            ActionTuple(continuous=np.array([[0.25, 0.0], [-0.5, 0.0]], np.float32), discrete=np.array([[2], [1]])),
        )
        env.step()
        decisions, _ = env.get_steps(BALL)
        np.testing.assert_allclose(decisions.obs[0], [[1, 0.25, 2], [1, -0.5, 1]])
        env.set_action_for_agent(BALL, 1, ActionTuple(continuous=np.array([[0.75, 0.0]]), discrete=np.array([[2]])))
        env.step()
        decisions, _ = env.get_steps(BALL)
        np.testing.assert_allclose(decisions.obs[0], [[2, 0.0, 0], [2, 0.75, 2]])  # agent 0 got zeros
        mine = ActionTuple(continuous=np.full((2, 2), 0.125, np.float32), discrete=np.ones((2, 1), np.int32))
        env.set_actions(BALL, mine)
        env.set_action_for_agent(BALL, 0, ActionTuple(continuous=np.array([[-1.0, 0.0]]), discrete=np.array([[0]])))
        assert mine.continuous[0, 0] == np.float32(0.125)  # the caller's arrays are left alone
        env.step()
        decisions, _ = env.get_steps(BALL)
        np.testing.assert_allclose(decisions.obs[0], [[3, -1.0, 0], [3, 0.125, 1]])
    finally:
        env.close()


def test_a_step_in_two_halves_lets_the_caller_work_while_the_player_steps(tmp_path: Path) -> None:
    env = scripted(tmp_path, "normal")
    try:
        env.step_async()  # the first call resets, and step_wait has nothing left to read
        env.step_wait()
        decisions, _ = env.get_steps(BALL)
        np.testing.assert_allclose(decisions.obs[0], [[0, 0, 0], [0, 0, 0]])
        env.set_actions(
            BALL, ActionTuple(continuous=np.array([[0.5, 0.0], [-0.25, 0.0]], np.float32), discrete=np.array([[1], [2]]))
        )
        env.step_async()
        held, _ = env.get_steps(BALL)  # until step_wait, the state the actions answer
        np.testing.assert_allclose(held.obs[0], [[0, 0, 0], [0, 0, 0]])
        with pytest.raises(UnityActionException, match="step_wait"):
            env.set_actions(BALL, ActionTuple(continuous=np.zeros((2, 2), np.float32), discrete=np.zeros((2, 1))))
        with pytest.raises(UnityEnvironmentException, match="twice"):
            env.step_async()
        env.step_wait()
        decisions, _ = env.get_steps(BALL)
        np.testing.assert_allclose(decisions.obs[0], [[1, 0.5, 1], [1, -0.25, 2]])
        env.step_wait()  # nothing sent: nothing to read, the state stays
        np.testing.assert_allclose(env.get_steps(BALL)[0].obs[0], decisions.obs[0])
        env.step_async()
        env.reset()  # reads the pending step first, then resets
        np.testing.assert_allclose(env.get_steps(BALL)[0].obs[0], [[0, 0, 0], [0, 0, 0]])
        env.step()
        np.testing.assert_allclose(env.get_steps(BALL)[0].obs[0], [[1, 0, 0], [1, 0, 0]])
    finally:
        env.close()


def test_closing_between_the_halves_of_a_step_still_says_goodbye(tmp_path: Path) -> None:
    env = scripted(tmp_path, "normal")
    env.reset()
    env.step_async()
    pid = env.pid
    env.close()  # the player's next request is taken and answered with status 400
    assert pid is not None and not pid_alive(pid)
    assert "the trainer said goodbye (status 400)" in (tmp_path / "logs" / "Player-0.log").read_text()


def test_a_behavior_appearing_later(tmp_path: Path) -> None:
    env = scripted(tmp_path, "late_behavior")
    try:
        env.reset()
        for step in (1, 2):
            env.step()
            assert LATE not in env.behavior_specs
            with pytest.raises(UnityActionException):
                env.get_steps(LATE)
        env.step()
        assert set(env.behavior_specs) == {BALL, LATE}
        assert env.behavior_specs[LATE].action_spec.continuous_size == 1
        decisions, _ = env.get_steps(LATE)
        assert list(decisions.agent_id) == [7]
        np.testing.assert_allclose(decisions.obs[0], [[3.0]])
        env.set_actions(LATE, ActionTuple(continuous=np.ones((1, 1), np.float32)))
        env.step()  # step 4: no Ball agent reports
        assert len(env.get_steps(LATE)[0]) == 1
        assert len(env.get_steps(BALL)[0]) == 0 and len(env.get_steps(BALL)[1]) == 0
        env.set_actions(BALL, ActionTuple(continuous=np.zeros((0, 2)), discrete=np.zeros((0, 1))))
        env.step()  # the player quits if it gets an empty action list for Ball
        assert len(env.get_steps(BALL)[0]) == 2
        assert env.behavior_specs.keys() == {BALL, LATE}
    finally:
        env.close()


def test_an_agent_terminal_and_deciding_in_one_step(tmp_path: Path) -> None:
    env = scripted(tmp_path, "terminal_and_deciding")
    try:
        env.reset()
        env.step()
        env.step()
        decisions, terminals = env.get_steps(BALL)
        assert list(terminals.agent_id) == [1]
        assert terminals[1].reward == pytest.approx(1.0)
        assert not terminals[1].interrupted
        np.testing.assert_allclose(terminals.obs[0], [[2, 0, 0]])
        assert list(decisions.agent_id) == [0, 1]
        np.testing.assert_allclose(decisions[1].obs[0], [0, 0, 0])
        env.set_actions(BALL, env.behavior_specs[BALL].action_spec.empty_action(2))
        env.step()
        assert len(env.get_steps(BALL)[1]) == 0
    finally:
        env.close()


def test_the_player_quitting_stops_the_communicator(tmp_path: Path) -> None:
    env = scripted(tmp_path, "quit_after_steps")
    pid = env.pid
    try:
        env.reset()
        env.step()
        env.step()
        with pytest.raises(UnityCommunicatorStoppedException, match="status 400"):
            env.step()
        with pytest.raises(UnityCommunicatorStoppedException):
            env.step()
    finally:
        started = time.monotonic()
        env.close()
    assert time.monotonic() - started < 3.0
    assert pid is not None and not pid_alive(pid)


def test_a_player_crashing_mid_run_is_detected_within_timeout_wait(tmp_path: Path) -> None:
    env = scripted(tmp_path, "crash_mid_run", timeout_wait=6)
    try:
        env.reset()
        env.step()
        started = time.monotonic()
        with pytest.raises(UnityEnvironmentException) as error:
            env.step()
        elapsed = time.monotonic() - started
    finally:
        env.close()
    text = str(error.value)
    assert f"return code -{int(signal.SIGSEGV)} (SIGSEGV)" in text
    assert "crashing" in text  # the tail of its log
    assert elapsed < 6.0, f"the crash was noticed after {elapsed:.1f} s"


def test_a_version_mismatch_states_both_versions(tmp_path: Path) -> None:
    exe = install_player(tmp_path)
    logs = tmp_path / "logs"
    with pytest.raises(UnityEnvironmentException) as error:
        UnityEnvironment(str(exe), timeout_wait=5, log_folder=str(logs), additional_args=["--mode", "version_mismatch"])
    text = str(error.value)
    assert "not compatible" in text
    assert "1.5.0" in text and "2.0.0" in text and "4.0.0" in text
    log = (logs / "Player-0.log").read_text()
    pid = int(log.split("(pid ", 1)[1].split(")", 1)[0])
    deadline = time.monotonic() + 3
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_alive(pid)


def test_an_unknown_side_channel_warns_and_the_run_goes_on(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    env = scripted(tmp_path, "unknown_side_channel")
    try:
        with caplog.at_level(logging.WARNING):
            env.reset()
            for _ in range(3):
                env.step()
        decisions, _ = env.get_steps(BALL)
        np.testing.assert_allclose(decisions.obs[0][:, 0], [3, 3])
    finally:
        env.close()
    # The player sent on the unknown channel at every one of its 4 messages: one warning says it all.
    warnings = [r for r in caplog.records if "Unknown side channel" in r.getMessage()]
    assert len(warnings) == 1
    assert "0badc0de-0000-4000-8000-000000000001" in warnings[0].getMessage()


def test_a_player_without_base_capabilities_is_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        env = scripted(tmp_path, "old_capabilities")
    try:
        assert not env.academy_capabilities.baseRLCapabilities
        assert any("baseRLCapabilities" in r.getMessage() for r in caplog.records)
        env.reset()
        assert len(env.get_steps(BALL)[0]) == 2
    finally:
        env.close()


# -- the Unity Editor (nothing launched) ----------------------------------------------------------------------


def test_editor_mode_listens_and_launches_nothing(tmp_path: Path) -> None:
    exe = install_player(tmp_path)
    port = free_port()
    made: dict = {}

    def connect() -> None:
        try:
            made["env"] = UnityEnvironment(None, port=port, timeout_wait=10)
        except Exception as error:  # reported below
            made["error"] = error

    opener = threading.Thread(target=connect)
    opener.start()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.02)
    editor = subprocess.Popen([str(exe), "--mode", "normal", "--mlagents-port", str(port)], stdout=subprocess.DEVNULL)
    opener.join(15)
    assert "error" not in made, made.get("error")
    env: UnityEnvironment = made["env"]
    try:
        assert env.port == port and env.pid is None
        env.reset()
        assert len(env.get_steps(BALL)[0]) == 2
    finally:
        env.close()
    assert editor.wait(5) == 0


def test_editor_mode_timeout_says_press_play() -> None:
    with pytest.raises(UnityTimeOutException, match="Press Play"):
        UnityEnvironment(None, port=free_port(), timeout_wait=0.5)


def test_editor_mode_needs_worker_0() -> None:
    with pytest.raises(UnityEnvironmentException, match="worker_id must be 0"):
        UnityEnvironment(None, worker_id=1)


def test_an_unknown_visual_observations_value_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"visual_observations must be 'float32' .* or 'uint8' .*, not 'float16'"):
        UnityEnvironment(str(install_player(tmp_path)), visual_observations="float16")  # type: ignore[arg-type]
