"""The simulation host as a player: real processes, real gRPC, against a minimal trainer end written here.

The trainer end is a gRPC server (the trainer is the server, the player the client) whose ``Exchange`` hands
each request to the test thread and returns the answer the test gives, as ML-Agents' RpcCommunicator does.
A local Gymnasium CartPole mirrors each area (seeded ``seed + area index``) so observations are checked exactly.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import time
from concurrent import futures
from pathlib import Path
from typing import Iterator, Sequence

import grpc
import gymnasium
import numpy as np
import pytest

from rayagents.protocol.communicator_objects.command_pb2 import QUIT, RESET, STEP
from rayagents.protocol.communicator_objects.unity_message_pb2 import UnityMessageProto
from rayagents.protocol.communicator_objects.unity_to_external_pb2_grpc import (
    add_UnityToExternalProtoServicer_to_server,
)
from rayagents.protocol.side_channels import (
    EngineConfigurationChannel,
    EnvironmentParametersChannel,
    SideChannelManager,
    StatsAggregationMethod,
    StatsSideChannel,
)

BEHAVIOR = "CartPole?team=0"
CAPABILITIES = (
    "baseRLCapabilities",
    "concatenatedPngObservations",
    "compressedChannelMapping",
    "hybridActions",
    "trainingAnalytics",
    "variableLengthObservation",
    "multiAgentGroups",
)
EXIT_WAIT_S = 15.0
"""How long a player may take to exit once it has been told to (it must not linger)."""


class FakeTrainer:
    """The trainer end of the wire: each request waits for the answer the test gives to the request it took last."""

    def __init__(self) -> None:
        self._requests: queue.Queue[tuple[UnityMessageProto, queue.Queue]] = queue.Queue()
        self._pending: queue.Queue | None = None
        self.abandoned = 0
        """How many calls the player cancelled before they were answered."""
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        add_UnityToExternalProtoServicer_to_server(self, self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()

    def Exchange(self, request: UnityMessageProto, context: grpc.ServicerContext) -> UnityMessageProto:  # noqa: N802
        """The servicer: hand the request to the test, answer with what the test gives."""
        slot: queue.Queue[UnityMessageProto] = queue.Queue(maxsize=1)
        self._requests.put((request, slot))
        while context.is_active():
            try:
                return slot.get(timeout=0.05)
            except queue.Empty:
                continue
        self.abandoned += 1
        return UnityMessageProto()

    def receive(self, timeout: float = 30.0) -> UnityMessageProto:
        """The player's next request (it becomes the one the next answer goes to)."""
        request, self._pending = self._requests.get(timeout=timeout)
        return request

    def answer(self, answer: UnityMessageProto) -> None:
        """Answer the request received last."""
        assert self._pending is not None, "no request to answer"
        self._pending.put(answer)
        self._pending = None

    def exchange(self, answer: UnityMessageProto, timeout: float = 30.0) -> UnityMessageProto:
        """Answer the pending request and return the player's next one."""
        self.answer(answer)
        return self.receive(timeout)

    def stop(self) -> None:
        """Stop the server at once: pending calls are cancelled."""
        self._server.stop(grace=None)


def initialization_input(seed: int, num_areas: int, version: str = "1.5.0") -> UnityMessageProto:
    """The trainer's answer to the handshake's first exchange."""
    message = UnityMessageProto()
    message.header.status = 200
    init = message.unity_input.rl_initialization_input
    init.seed = seed
    init.num_areas = num_areas
    init.communication_version = version
    init.package_version = "1.1.0"
    for name in CAPABILITIES:
        setattr(init.capabilities, name, True)
    return message


def rl_input(command: int, discrete: Sequence[int] = (), side_channel: bytes = b"") -> UnityMessageProto:
    """A RESET/STEP/QUIT input with one discrete action per deciding agent (branch 0)."""
    message = UnityMessageProto()
    message.header.status = 200
    rl = message.unity_input.rl_input
    rl.command = command
    rl.side_channel = side_channel
    if discrete:
        actions = rl.agent_actions[BEHAVIOR].value
        for action in discrete:
            proto = actions.add()
            proto.discrete_actions.append(int(action))
            proto.vector_actions_deprecated.append(float(action))
    return message


def status_message(status: int) -> UnityMessageProto:
    """A header-only message (400 closes the connection)."""
    message = UnityMessageProto()
    message.header.status = status
    return message


def player_command(port: int | None, log: Path | str, executable: Path | None = None) -> list[str]:
    """How a trainer launches a player: Unity's flags, one unknown Unity flag, the port and the log file."""
    command = [str(executable)] if executable else [sys.executable, "-m", "rayagents.sims", "--scene", "CartPole"]
    command += ["-nographics", "-batchmode", "-screen-quality", "Fastest"]
    if port is not None:
        command += ["--mlagents-port", str(port)]
    return command + ["-logFile", str(log)]


@pytest.fixture
def launch() -> Iterator:
    """Start player processes (each in its own session); any still running at the end is killed."""
    started: list[subprocess.Popen] = []

    def start(command: list[str]) -> subprocess.Popen:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, text=True
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def handshake(trainer: FakeTrainer, seed: int = 0, num_areas: int = 1) -> UnityMessageProto:
    """Exchanges #1 and #2 of the handshake; returns Exchange #2 (pending)."""
    trainer.receive()
    second = trainer.exchange(initialization_input(seed, num_areas))
    assert second.header.status == 200
    return second


def infos_of(message: UnityMessageProto) -> list:
    """The agent infos of the CartPole behavior in a player's message."""
    return list(message.unity_output.rl_output.agentInfos[BEHAVIOR].value)


def observation(info) -> np.ndarray:
    """An agent info's one float observation."""
    return np.asarray(info.observations[0].float_data.data, dtype=np.float32)


def balance(obs: np.ndarray) -> int:
    """A controller that keeps CartPole up for the 500 steps (checked offline over seeds)."""
    x, x_dot, theta, theta_dot = obs
    return int(theta + 0.5 * theta_dot + 0.05 * x + 0.1 * x_dot > 0)


def test_handshake_reset_steps_episodes_and_stats(tmp_path: Path, launch) -> None:
    """A full run with 3 areas, checked message by message against local Gymnasium mirrors of each area."""
    trainer = FakeTrainer()
    log = tmp_path / "logs" / "Player-0.log"
    player = launch(player_command(trainer.port, log))
    seed, num_areas = 11, 3

    first = trainer.receive()
    assert first.header.status == 200
    init = first.unity_output.rl_initialization_output
    assert (init.name, init.communication_version, init.package_version) == ("AcademySingleton", "1.5.0", "3.0.0")
    assert all(getattr(init.capabilities, name) for name in CAPABILITIES)
    assert len(init.brain_parameters) == 0 and not first.unity_output.HasField("rl_output")

    second = trainer.exchange(initialization_input(seed, num_areas))
    assert second.header.status == 200 and not second.HasField("unity_output")

    engine, parameters = EngineConfigurationChannel(), EnvironmentParametersChannel()
    engine.set_configuration_parameters(time_scale=20.0, target_frame_rate=-1)
    parameters.set_float_parameter("unused_by_cartpole", 1.5)
    stats = StatsSideChannel()
    trainer_channels = SideChannelManager([engine, parameters, stats])
    message = trainer.exchange(rl_input(RESET, side_channel=trainer_channels.generate_side_channel_messages()))

    brains = message.unity_output.rl_initialization_output.brain_parameters
    assert [b.brain_name for b in brains] == [BEHAVIOR]
    assert brains[0].is_training
    assert (brains[0].action_spec.num_continuous_actions, brains[0].action_spec.num_discrete_actions) == (0, 1)
    assert list(brains[0].action_spec.discrete_branch_sizes) == [2]
    infos = infos_of(message)
    assert len(infos) == num_areas
    ids = [info.id for info in infos]
    assert len(set(ids)) == num_areas
    sensor = infos[0].observations[0]
    assert (sensor.name, list(sensor.shape), sensor.compression_type) == ("VectorSensor", [4], 0)
    mirrors = [gymnasium.make("CartPole-v1") for _ in range(num_areas)]
    expected = [m.reset(seed=seed + i)[0] for i, m in enumerate(mirrors)]
    for info, obs in zip(infos, expected):
        np.testing.assert_array_equal(observation(info), obs)  # area i is seeded seed + i
        assert not info.done and info.reward == 0.0
    area_of = {agent_id: i for i, agent_id in enumerate(ids)}

    # Area 0 balances for the full 500 steps (cut off); areas 1 and 2 push one way and fall again and again.
    policies = [balance, lambda obs: 0, lambda obs: 1]
    lengths = [0] * num_areas
    finished: list[tuple[int, int, bool]] = []  # (area, length, truncated) per finished episode
    deciding = infos
    for _ in range(500):
        actions = [policies[area_of[info.id]](observation(info)) for info in deciding]
        message = trainer.exchange(rl_input(STEP, actions))
        assert not message.unity_output.HasField("rl_initialization_output")  # brain parameters went once
        trainer_channels.process_side_channel_message(message.unity_output.rl_output.side_channel)
        infos = infos_of(message)
        expected_infos = []
        for info, action in zip(deciding, actions):
            area = area_of[info.id]
            obs, reward, terminated, truncated, _ = mirrors[area].step(action)
            lengths[area] += 1
            if terminated or truncated:
                expected_infos.append((info.id, obs, 1.0, True, truncated and not terminated))
                finished.append((area, lengths[area], bool(truncated and not terminated)))
                lengths[area] = 0
                expected_infos.append((info.id, mirrors[area].reset()[0], 0.0, False, False))
            else:
                expected_infos.append((info.id, obs, 1.0, False, False))
        assert [(i.id, i.reward, i.done, i.max_step_reached) for i in infos] == [e[:1] + e[2:] for e in expected_infos]
        for info, (_, obs, *_) in zip(infos, expected_infos):
            np.testing.assert_allclose(observation(info), obs, rtol=1e-6)
        deciding = [info for info in infos if not info.done]
        assert sorted(info.id for info in deciding) == sorted(ids)  # ids are stable across episodes
        if any(area == 0 for area, _, _ in finished):
            break
    assert finished[-1] == (0, 500, True)  # the balanced cart was cut off at 500 steps: max_step_reached
    assert any(area == 1 for area, _, _ in finished) and any(area == 2 for area, _, _ in finished)
    assert all(not truncated for area, _, truncated in finished if area != 0)

    received = stats.get_and_reset_stats()
    assert sorted(value for value, _ in received["CartPole/Episode Length"]) == sorted(float(n) for _, n, _ in finished)
    assert {method for _, method in received["CartPole/Episode Length"]} == {StatsAggregationMethod.AVERAGE}

    # A later RESET drops the episodes in progress: every agent requests a decision, none is done.
    message = trainer.exchange(rl_input(RESET))
    assert not message.unity_output.HasField("rl_initialization_output")
    assert sorted((i.id, i.done) for i in infos_of(message)) == sorted((agent_id, False) for agent_id in ids)

    trainer.answer(status_message(400))
    assert player.wait(EXIT_WAIT_S) == 0
    text = log.read_text()
    assert "Connected to trainer on port" in text and "status 400" in text
    assert "-screen-quality Fastest" in text  # unknown Unity arguments are ignored, and said so
    trainer.stop()


def test_trainer_vanishing_ends_the_player(tmp_path: Path, launch) -> None:
    """The trainer's server stops while the player waits for an answer: the player exits non-zero, promptly."""
    trainer = FakeTrainer()
    log = tmp_path / "player.log"
    player = launch(player_command(trainer.port, log))
    handshake(trainer, num_areas=2)
    assert len(infos_of(trainer.exchange(rl_input(RESET)))) == 2
    trainer.stop()
    assert player.wait(EXIT_WAIT_S) != 0
    assert "The trainer is gone" in log.read_text()


def test_quit_command_and_sigterm_end_the_player(tmp_path: Path, launch) -> None:
    """QUIT ends the player with 0; SIGTERM makes it drop its waiting call, say goodbye (status 400) and exit 0."""
    trainer = FakeTrainer()
    player = launch(player_command(trainer.port, tmp_path / "quit.log"))
    handshake(trainer)
    trainer.exchange(rl_input(RESET))
    trainer.answer(rl_input(QUIT))
    assert player.wait(EXIT_WAIT_S) == 0

    player = launch(player_command(trainer.port, tmp_path / "term.log"))
    handshake(trainer)
    trainer.exchange(rl_input(RESET))
    player.send_signal(signal.SIGTERM)
    goodbye = trainer.receive(EXIT_WAIT_S)
    assert goodbye.header.status == 400 and not goodbye.HasField("unity_output")
    deadline = time.monotonic() + 5.0
    while trainer.abandoned == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert trainer.abandoned == 1  # the call that waited for actions was cancelled, not left hanging
    trainer.answer(status_message(400))
    assert player.wait(EXIT_WAIT_S) == 0
    trainer.stop()


def test_incompatible_trainer_version_fails(tmp_path: Path, launch) -> None:
    """A trainer of another communicator major version: the player says goodbye, logs why and exits 1."""
    trainer = FakeTrainer()
    log = tmp_path / "player.log"
    player = launch(player_command(trainer.port, log))
    trainer.receive()
    goodbye = trainer.exchange(initialization_input(0, 1, version="2.0.0"))
    assert goodbye.header.status == 400
    trainer.answer(status_message(400))
    assert player.wait(EXIT_WAIT_S) == 1
    assert "incompatible" in log.read_text()
    trainer.stop()


def test_without_a_trainer(tmp_path: Path, launch) -> None:
    """No port: log that there is no trainer and exit 0 (-logFile - logs to stdout). A closed port: exit 1."""
    player = launch(player_command(None, "-"))
    assert player.wait(EXIT_WAIT_S) == 0
    assert "No trainer port" in player.stdout.read()

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    log = tmp_path / "refused.log"
    player = launch(player_command(closed_port, log))
    assert player.wait(EXIT_WAIT_S) == 1
    assert f"Couldn't connect to trainer on port {closed_port}" in log.read_text()

    player = launch([sys.executable, "-m", "rayagents.sims", "--scene", "NoSuchScene", "-logFile", "-"])
    assert player.wait(EXIT_WAIT_S) == 2
    assert "Known scenes: CartPole" in player.stdout.read()


def test_build_folder_launched_by_path(tmp_path: Path, launch) -> None:
    """`rayagents-sim build CartPole DIR` writes DIR/CartPole.x86_64 and DIR/CartPole_Data/, which plays by path."""
    out_dir = tmp_path / "builds"
    built = subprocess.run(
        [sys.executable, "-m", "rayagents.sims", "build", "CartPole", str(out_dir)],
        capture_output=True,
        text=True,
        check=True,
    )
    executable = out_dir / "CartPole.x86_64"
    assert built.stdout.strip() == str(executable)
    assert os.access(executable, os.X_OK)
    description = json.loads((out_dir / "CartPole_Data" / "scene.json").read_text())
    assert description["scene"] == "CartPole" and description["behaviors"][0]["name"] == BEHAVIOR

    trainer = FakeTrainer()
    player = launch(player_command(trainer.port, tmp_path / "build.log", executable=executable))
    handshake(trainer, seed=5, num_areas=1)
    infos = infos_of(trainer.exchange(rl_input(RESET)))
    np.testing.assert_array_equal(observation(infos[0]), gymnasium.make("CartPole-v1").reset(seed=5)[0])
    trainer.answer(status_message(400))
    assert player.wait(EXIT_WAIT_S) == 0
    trainer.stop()


def test_python_end_drives_a_build(tmp_path: Path) -> None:
    """The trainer's UnityEnvironment launches a build by path: specs, batched areas, episodes, stats, close."""
    from rayagents.actors.environment import UnityEnvironment
    from rayagents.protocol.types import ActionTuple

    build = subprocess.run(
        [sys.executable, "-m", "rayagents.sims", "build", "CartPole", str(tmp_path / "builds")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert build.stdout.strip().endswith("CartPole.x86_64")
    stats = StatsSideChannel()
    env = UnityEnvironment(
        str(tmp_path / "builds" / "CartPole"), seed=2, num_areas=4, side_channels=[stats], log_folder=str(tmp_path)
    )
    try:
        env.reset()
        spec = env.behavior_specs[BEHAVIOR]
        assert [o.shape for o in spec.observation_specs] == [(4,)]
        assert spec.action_spec.discrete_branches == (2,) and spec.action_spec.continuous_size == 0
        decisions, _ = env.get_steps(BEHAVIOR)
        ids = sorted(decisions.agent_id.tolist())
        assert len(set(ids)) == 4
        ended = 0
        for _ in range(60):
            env.set_actions(BEHAVIOR, ActionTuple(discrete=np.zeros((len(decisions), 1), dtype=np.int32)))
            env.step()
            decisions, terminals = env.get_steps(BEHAVIOR)
            assert sorted(decisions.agent_id.tolist()) == ids
            assert not terminals.interrupted.any()
            ended += len(terminals)
        assert ended >= 4  # always pushing left topples every pole within 60 steps
        lengths = stats.get_and_reset_stats()["CartPole/Episode Length"]
        assert len(lengths) == ended
        pid, log_path = env.pid, env.log_path
    finally:
        env.close()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert log_path is not None and "status 400" in Path(log_path).read_text()
