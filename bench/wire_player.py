"""A bench player: the Unity end of the wire answering every step with the same prepared observations.

A Unity build spends its time in C#; what a trainer pays for is the wire and the trainer end. This player
builds its reply once (``--agents`` agents with ``--floats`` floats each, or ``--png`` 3×H×W images) and sends
it for every STEP, so the measured rate is the trainer end's and the transport's, not a simulator's.

Run by ``bench/wire.py`` as a player executable: ``python bench/wire_player.py --mlagents-port P ...``.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from rayagents.protocol.agent_batch import FloatObservations, agent_info_list_proto
from rayagents.protocol.agents import agent_info_proto, brain_parameters_proto
from rayagents.protocol.communicator_objects.command_pb2 import RESET, STEP
from rayagents.protocol.communicator_objects.unity_message_pb2 import UnityMessageProto
from rayagents.protocol.observations import png_observation_proto
from rayagents.protocol.types import ActionSpec
from rayagents.protocol.versions import API_VERSION, UNITY_PACKAGE_VERSION
from rayagents.sims.client import TrainerGoneError, UnityClient
from rayagents.sims.messages import player_capabilities

BEHAVIOR = "Bench?team=0"


def _step_message(args: argparse.Namespace, with_brain: bool) -> UnityMessageProto:
    message = UnityMessageProto()
    message.header.status = 200
    agent_ids = np.arange(args.agents, dtype=np.int32)
    if args.png:
        rng = np.random.default_rng(0)
        infos = message.unity_output.rl_output.agentInfos[BEHAVIOR]
        for agent in agent_ids:
            image = rng.random((3, args.png, args.png), dtype=np.float32)
            infos.value.append(agent_info_proto(int(agent), [png_observation_proto(image, "Camera")]))
    else:
        values = np.linspace(-1.0, 1.0, args.agents * args.floats, dtype=np.float32).reshape(args.agents, -1)
        batch = agent_info_list_proto(agent_ids, [FloatObservations("VectorSensor", values)])
        message.unity_output.rl_output.agentInfos[BEHAVIOR].CopyFrom(batch)
    if with_brain:
        message.unity_output.rl_initialization_output.brain_parameters.append(
            brain_parameters_proto(BEHAVIOR, ActionSpec.create_discrete((3,)))
        )
    return message


def _echo(args: argparse.Namespace) -> int:
    """Sends the steady step message back to back and prints the exchanges/s: gRPC alone, no protocol logic."""
    client = UnityClient(args.mlagents_port)
    message = _step_message(args, with_brain=False)
    try:
        for _ in range(200):
            client.exchange(message)
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < args.echo_seconds:
            for _ in range(100):
                client.exchange(message)
            count += 100
        print(f"{count / (time.perf_counter() - start):.1f}")
    finally:
        client.close()
    return 0


def main() -> int:
    """Handshakes, then answers every RESET and STEP with the prepared observations until the trainer closes."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mlagents-port", type=int, required=True)
    parser.add_argument("--agents", type=int, default=1)
    parser.add_argument("--floats", type=int, default=8)
    parser.add_argument("--png", type=int, default=0, help="side of 3-channel PNG observations (0 = floats)")
    parser.add_argument(
        "--echo-seconds",
        type=float,
        default=0.0,
        help="transport baseline: skip the protocol, send the step message for this long, print exchanges/s",
    )
    args, _unity_args = parser.parse_known_args()
    if args.echo_seconds:
        return _echo(args)

    client = UnityClient(args.mlagents_port)
    hello = UnityMessageProto()
    hello.header.status = 200
    init = hello.unity_output.rl_initialization_output
    init.name = "AcademySingleton"
    init.communication_version = API_VERSION
    init.package_version = UNITY_PACKAGE_VERSION
    init.capabilities.CopyFrom(player_capabilities())
    first = _step_message(args, with_brain=True)
    steady = _step_message(args, with_brain=False)
    try:
        client.exchange(hello)
        reply = client.exchange(UnityMessageProto(header={"status": 200}))
        sent_brain = False
        while reply.header.status == 200:
            command = reply.unity_input.rl_input.command
            if command not in (RESET, STEP):
                break
            reply = client.exchange(steady if sent_brain else first)
            sent_brain = True
    except TrainerGoneError:
        return 1
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
