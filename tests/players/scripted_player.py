#!/usr/bin/env python3
"""A scripted test player: speaks the Unity end of the wire (on ``UnityClient``) and misbehaves on request.

It takes a Unity player's arguments (``--mlagents-port P``, ``-logFile PATH``, ``-batchmode``, ``-nographics``)
plus ``--mode MODE``; everything it prints goes to its stdout (the launcher sends that to the player log).

Modes that never talk:
  exit_at_once      print a line and exit 3 at once
  never_connect     sleep forever without connecting
Modes that talk (one behavior "Ball?team=0", two agents, 3 continuous observations, 2 continuous actions and a
discrete branch of 3; each observation echoes the action the agent got last: [step, continuous[0], discrete[0]]):
  normal            serve until the trainer says goodbye, then exit 0
  ignore_close      after the handshake ignore everything, SIGTERM included, and sleep forever
  late_behavior     behavior "Late?team=0" (one agent, 1 observation, 1 continuous action) joins at step 3;
                    at step 4 no "Ball" agent reports (the trainer must then send no "Ball" actions)
  terminal_and_deciding   at step 2 agent 1 ends its episode and requests its next decision in the same step
  quit_after_steps  after 3 steps send status 400 (the player quits) and exit 0
  crash_mid_run     after 2 steps die of SIGSEGV
  version_mismatch  report communication version 2.0.0 (package 4.0.0); on status 400 exit 0
  old_capabilities  report baseRLCapabilities false (otherwise as normal)
  unknown_side_channel    every step also carries a message on a side channel nobody registered
"""

from __future__ import annotations

import argparse
import os
import signal
import struct
import sys
import time
import uuid

import numpy as np

from rayagents.protocol.actions import actions_from_protos
from rayagents.protocol.agents import agent_info_proto, brain_parameters_proto
from rayagents.protocol.communicator_objects.command_pb2 import RESET
from rayagents.protocol.communicator_objects.unity_message_pb2 import UnityMessageProto
from rayagents.protocol.observations import float_observation_proto
from rayagents.protocol.types import ActionSpec
from rayagents.protocol.versions import API_VERSION, UNITY_PACKAGE_VERSION
from rayagents.sims.client import UnityClient

BALL = "Ball?team=0"
BALL_SPEC = ActionSpec(2, (3,))
LATE = "Late?team=0"
LATE_SPEC = ActionSpec(1, ())
UNKNOWN_CHANNEL = uuid.UUID("0badc0de-0000-4000-8000-000000000001")


def log(text: str) -> None:
    print(f"scripted player (pid {os.getpid()}): {text}", flush=True)


def message(status: int = 200) -> UnityMessageProto:
    out = UnityMessageProto()
    out.header.status = status
    return out


def handshake(client: UnityClient, mode: str) -> UnityMessageProto:
    first = message()
    init = first.unity_output.rl_initialization_output
    init.name = "AcademySingleton"
    init.communication_version = "2.0.0" if mode == "version_mismatch" else API_VERSION
    init.package_version = "4.0.0" if mode == "version_mismatch" else UNITY_PACKAGE_VERSION
    init.capabilities.baseRLCapabilities = mode != "old_capabilities"
    for flag in ("concatenatedPngObservations", "compressedChannelMapping", "hybridActions",
                 "trainingAnalytics", "variableLengthObservation", "multiAgentGroups"):
        setattr(init.capabilities, flag, True)
    reply = client.exchange(first)
    if reply.header.status != 200:
        log(f"the trainer said goodbye in the handshake (status {reply.header.status})")
        sys.exit(0)
    log(f"handshake: seed {reply.unity_input.rl_initialization_input.seed}")
    return client.exchange(message())


def serve(client: UnityClient, mode: str) -> None:
    reply = handshake(client, mode)
    if mode == "ignore_close":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        log("ignoring the trainer from now on")
        while True:
            time.sleep(1)
    step = 0
    last = {0: (0.0, 0), 1: (0.0, 0)}
    late_sent = ball_sent = False
    while True:
        if reply.header.status != 200:
            log(f"the trainer said goodbye (status {reply.header.status}); quitting")
            sys.exit(0)
        rl_input = reply.unity_input.rl_input
        if rl_input.command == RESET:
            step = 0
        else:
            step += 1
            for behavior, actions_list in rl_input.agent_actions.items():
                if len(actions_list.value) == 0:
                    log(f"received an empty action list for {behavior}: behaviors without agents must be skipped")
                    sys.exit(5)
            if BALL in rl_input.agent_actions:
                actions = actions_from_protos(rl_input.agent_actions[BALL].value, BALL_SPEC)
                for row, agent in enumerate((0, 1)):
                    last[agent] = (float(actions.continuous[row, 0]), int(actions.discrete[row, 0]))
        if mode == "quit_after_steps" and step == 3:
            log("quitting (status 400)")
            client.exchange(message(400), timeout=2.0)
            sys.exit(0)
        if mode == "crash_mid_run" and step == 2:
            log("crashing")
            os.kill(os.getpid(), signal.SIGSEGV)
        out = message()
        rl_output = out.unity_output.rl_output
        ball_agents = () if mode == "late_behavior" and step == 4 else (0, 1)
        infos = rl_output.agentInfos[BALL].value if ball_agents else []
        for agent in ball_agents:
            obs = np.array([step, last[agent][0], last[agent][1]], dtype=np.float32)
            if mode == "terminal_and_deciding" and step == 2 and agent == 1:
                infos.append(agent_info_proto(agent, [float_observation_proto(obs, "echo")], reward=1.0, done=True))
                obs = np.array([0, 0, 0], dtype=np.float32)
            infos.append(agent_info_proto(agent, [float_observation_proto(obs, "echo")], reward=0.5))
        if not ball_sent:
            out.unity_output.rl_initialization_output.brain_parameters.append(brain_parameters_proto(BALL, BALL_SPEC))
            ball_sent = True
        if mode == "late_behavior" and step >= 3:
            late = rl_output.agentInfos[LATE].value
            late.append(agent_info_proto(7, [float_observation_proto(np.array([step], np.float32), "late")]))
            if not late_sent:
                brains = out.unity_output.rl_initialization_output.brain_parameters
                brains.append(brain_parameters_proto(LATE, LATE_SPEC))
                late_sent = True
        if mode == "unknown_side_channel":
            payload = b"who listens?"
            rl_output.side_channel = UNKNOWN_CHANNEL.bytes_le + struct.pack("<i", len(payload)) + payload
        reply = client.exchange(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", required=True)
    parser.add_argument("--mlagents-port", type=int, default=None)
    options, _ = parser.parse_known_args()
    log(f"mode {options.mode}, port {options.mlagents_port}")
    if options.mode == "exit_at_once":
        log("cannot start: this player fails on purpose")
        sys.exit(3)
    if options.mode == "never_connect":
        while True:
            time.sleep(1)
    serve(UnityClient(options.mlagents_port), options.mode)


if __name__ == "__main__":
    main()
