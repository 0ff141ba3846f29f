"""Wire throughput: exchanges/s and agent steps/s between a trainer and a player in two processes.

The trainer end is ``UnityEnvironment`` doing what a trainer does each step (``get_steps`` for the behavior,
``set_actions``, ``step``); the player is ``bench/wire_player.py``, which answers every step with prepared
observations; the PNG case twice, its images decoded to float32 in [0, 1] (the default) and kept as uint8
(``visual_observations="uint8"``). Also the decode time of one step of 1,024 agents × 128 floats, and of one
step of 8 agents × 84×84×3 PNG both ways (``steps_from_proto``).

    python -m bench.wire            # prints the figures
    python -m bench                 # every benchmark, and rewrites the README table
"""

from __future__ import annotations

import statistics
import stat
import subprocess
import sys
from concurrent import futures
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np

from bench.table import Row
from rayagents.actors.environment import UnityEnvironment
from rayagents.protocol.agent_batch import FloatObservations, agent_info_list_proto
from rayagents.protocol.agents import agent_info_proto
from rayagents.protocol.communicator_objects.command_pb2 import STEP
from rayagents.protocol.communicator_objects.unity_message_pb2 import UnityMessageProto
from rayagents.protocol.communicator_objects.unity_rl_output_pb2 import UnityRLOutputProto
from rayagents.protocol.communicator_objects.unity_to_external_pb2_grpc import (
    UnityToExternalProtoServicer,
    add_UnityToExternalProtoServicer_to_server,
)
from rayagents.protocol.observations import VisualObservations, observation_spec_from_proto, png_observation_proto
from rayagents.protocol.steps import action_list_proto, steps_from_proto
from rayagents.protocol.types import ActionSpec, BehaviorSpec, DimensionProperty, ObservationSpec, ObservationType

PLAYER_SCRIPT = Path(__file__).resolve().parent / "wire_player.py"
COMMAND = "python -m bench.wire"


@dataclass(frozen=True)
class WireCase:
    """One wire measurement: how many agents and what observations."""

    label: str
    """The README's name for the case."""
    agents: int
    """Agents in the player's one behavior."""
    floats: int
    """Floats per agent (ignored with ``png``)."""
    png: int
    """Side of 3×N×N PNG observations, 0 for floats."""
    visual_observations: VisualObservations = "float32"
    """How the trainer decodes the PNG observations (``UnityEnvironment``'s ``visual_observations``)."""


CASES = (
    WireCase("(a) 1 agent × 8 floats", 1, 8, 0),
    WireCase("(b) 32 agents × 64 floats", 32, 64, 0),
    WireCase("(c) 8 agents × 84×84×3 PNG", 8, 0, 84),
    WireCase("(d) 8 agents × 84×84×3 PNG kept uint8", 8, 0, 84, "uint8"),
)


def _player_executable(folder: Path) -> Path:
    """A player executable, as a build would be, that runs the bench player with this interpreter."""
    path = folder / "WireBench.x86_64"
    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{PLAYER_SCRIPT}" "$@"\n')
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def measure_exchanges(case: WireCase, seconds: float) -> float:
    """Exchanges per second for ``case``, over ``seconds`` after a short warm-up."""
    with tempfile.TemporaryDirectory() as tmp:
        args = ["--agents", str(case.agents), "--floats", str(case.floats), "--png", str(case.png)]
        env = UnityEnvironment(
            str(_player_executable(Path(tmp))),
            additional_args=args,
            timeout_wait=30,
            visual_observations=case.visual_observations,
        )
        try:
            env.reset()
            (behavior,) = env.behavior_specs
            action = env.behavior_specs[behavior].action_spec.empty_action(case.agents)

            def run(n: int) -> None:
                for _ in range(n):
                    decisions, _terminals = env.get_steps(behavior)
                    env.set_actions(behavior, action)
                    env.step()
                    assert len(decisions) == case.agents

            run(200)
            count, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds:
                run(100)
                count += 100
            return count / (time.perf_counter() - start)
        finally:
            env.close()


def _echo_reply(case: WireCase) -> UnityMessageProto:
    """What a trainer answers each step: one discrete action per agent."""
    reply = UnityMessageProto()
    reply.header.status = 200
    rl_input = reply.unity_input.rl_input
    rl_input.command = STEP
    rl_input.agent_actions["Bench?team=0"].CopyFrom(
        action_list_proto(ActionSpec.create_discrete((3,)).empty_action(case.agents))
    )
    return reply


class _EchoServicer(UnityToExternalProtoServicer):
    """Answers every Exchange at once with the same reply: the transport alone, no trainer logic."""

    def __init__(self, reply: UnityMessageProto) -> None:
        self._reply = reply

    def Exchange(self, request: UnityMessageProto, context: grpc.ServicerContext) -> UnityMessageProto:  # noqa: N802
        return self._reply


def measure_echo(case: WireCase, seconds: float) -> float:
    """Exchanges/s of plain gRPC between the same two kinds of process, with the same messages: the ceiling."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    add_UnityToExternalProtoServicer_to_server(_EchoServicer(_echo_reply(case)), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        args = ["--agents", str(case.agents), "--floats", str(case.floats), "--png", str(case.png)]
        out = subprocess.run(
            [sys.executable, str(PLAYER_SCRIPT), "--mlagents-port", str(port), "--echo-seconds", str(seconds), *args],
            check=True,
            capture_output=True,
            text=True,
            timeout=seconds + 60,
        )
        return float(out.stdout.strip().splitlines()[-1])
    finally:
        server.stop(None)


def measure_decode_ms(agents: int = 1024, floats: int = 128, repeats: int = 50) -> float:
    """Median milliseconds for ``steps_from_proto`` over one received step of ``agents`` × ``floats``."""
    values = np.random.default_rng(0).standard_normal((agents, floats), dtype=np.float32)
    batch = agent_info_list_proto(np.arange(agents, dtype=np.int32), [FloatObservations("VectorSensor", values)])
    output = UnityRLOutputProto()
    output.agentInfos["Bench?team=0"].CopyFrom(batch)
    received = UnityRLOutputProto.FromString(output.SerializeToString())  # as it arrives off the wire
    infos = received.agentInfos["Bench?team=0"].value
    spec = BehaviorSpec(
        (ObservationSpec((floats,), (DimensionProperty.NONE,), ObservationType.DEFAULT, "VectorSensor"),),
        ActionSpec.create_discrete((3,)),
    )
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        decisions, _ = steps_from_proto(infos, spec, "Bench?team=0")
        times.append(time.perf_counter() - start)
    assert decisions.obs[0].shape == (agents, floats)
    return statistics.median(times) * 1000.0


def measure_png_decode_ms(
    visual_observations: VisualObservations, agents: int = 8, side: int = 84, repeats: int = 200
) -> float:
    """Median milliseconds for ``steps_from_proto`` over one received step of ``agents`` × 3×``side``×``side`` PNG
    observations (random pixels, as the bench player sends), decoded as ``visual_observations`` says."""
    rng = np.random.default_rng(0)
    output = UnityRLOutputProto()
    infos = output.agentInfos["Bench?team=0"]
    for agent in range(agents):
        image = rng.random((3, side, side), dtype=np.float32)
        infos.value.append(agent_info_proto(agent, [png_observation_proto(image, "Camera")]))
    received = UnityRLOutputProto.FromString(output.SerializeToString()).agentInfos["Bench?team=0"].value
    spec = BehaviorSpec((observation_spec_from_proto(received[0].observations[0]),), ActionSpec.create_discrete((3,)))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        decisions, _ = steps_from_proto(received, spec, "Bench?team=0", visual_observations=visual_observations)
        times.append(time.perf_counter() - start)
    assert decisions.obs[0].shape == (agents, 3, side, side) and decisions.obs[0].dtype == np.dtype(visual_observations)
    return statistics.median(times) * 1000.0


def run(seconds: float = 4.0) -> list[Row]:
    """Every wire measurement, as README rows."""
    rows = []
    for case in CASES:
        rate = measure_exchanges(case, seconds)
        if case.visual_observations == "float32":  # the transport's ceiling is the same however the trainer decodes
            ceiling = measure_echo(case, seconds)
            rows.append(
                Row(
                    f"plain gRPC echo, same messages {case.label[4:]} (the transport's ceiling)",
                    f"{ceiling:,.0f} exchanges/s",
                    "—",
                    None,
                    COMMAND,
                )
            )
        steps = rate * case.agents
        if case.png:
            target, met = "—", None
        elif case.agents == 1:
            target, met = "≥ 2,000 exchanges/s", rate >= 2000
        else:
            target, met = "≥ 40,000 agent steps/s", steps >= 40000
        rows.append(Row(f"wire {case.label}", f"{rate:,.0f} exchanges/s = {steps:,.0f} agent steps/s", target, met, COMMAND))
    decode = measure_decode_ms()
    rows.append(Row("decode 1,024 agents × 128 floats (`steps_from_proto`)", f"{decode:.2f} ms", "≤ 5 ms", decode <= 5.0, COMMAND))
    for visual_observations in ("float32", "uint8"):
        decode = measure_png_decode_ms(visual_observations)
        label = f"decode 8 agents × 84×84×3 PNG to {visual_observations} (`steps_from_proto`)"
        rows.append(Row(label, f"{decode:.2f} ms", "—", None, COMMAND))
    return rows


if __name__ == "__main__":
    for row in run():
        print(f"{row.benchmark}: {row.value}  (target {row.target})")
