"""The academy: the player's side of the conversation with the trainer, over a scene's areas.

It does what a com.unity.ml-agents 3.x player does once it has a port: the two-message handshake, then a
loop in which each trainer input is handled (side-channel bytes first, then the command) and answered with
the agents' next reports. It returns the player's exit code: 0 when the trainer closes the connection (status
400) or sends QUIT, 1 when the trainer is gone, incompatible, or the scene fails.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

from rayagents.protocol.agent_batch import ListAgentInfoProto
from rayagents.protocol.agents import actions_from_protos
from rayagents.protocol.communicator_objects.brain_parameters_pb2 import BrainParametersProto
from rayagents.protocol.communicator_objects.command_pb2 import QUIT, RESET, STEP
from rayagents.protocol.communicator_objects.unity_message_pb2 import UnityMessageProto
from rayagents.protocol.communicator_objects.unity_rl_input_pb2 import UnityRLInputProto
from rayagents.protocol.side_channels.engine_configuration import EngineConfigurationReceiver
from rayagents.protocol.side_channels.environment_parameters import EnvironmentParametersReceiver
from rayagents.protocol.side_channels.framing import SideChannelManager
from rayagents.protocol.side_channels.stats import StatsRecorder
from rayagents.protocol.side_channels.training_analytics import TrainingAnalyticsReceiver
from rayagents.protocol.versions import API_VERSION, is_compatible
from rayagents.sims.client import ExchangeInterrupted, TrainerGoneError, UnityClient
from rayagents.sims.messages import (
    STATUS_OK,
    STATUS_QUIT,
    ObservationEncoder,
    academy_parameters_message,
    agent_info_list,
    brain_parameters,
    header_message,
    missing_capability_problems,
)
from rayagents.sims.scene import AgentAction, AgentReport, Area, AreaContext, Scene

logger = logging.getLogger(__name__)

EXIT_OK = 0
"""The trainer closed the connection (status 400), sent QUIT, or the player was asked to stop."""
EXIT_FAILURE = 1
"""The trainer is gone or incompatible, or the scene failed."""

GOODBYE_TIMEOUT_S = 2.0
"""How long the player waits for the trainer to acknowledge its status-400 goodbye before it exits anyway."""


class PlayerExit(Exception):
    """Ends the academy loop with an exit code, after the reason has been logged."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code
        """The player's exit code."""


@dataclass(frozen=True)
class PlayerChannels:
    """The side channels a Unity player registers, and their manager."""

    engine: EngineConfigurationReceiver
    """Engine settings from the trainer (time scale etc.; recorded, a simulator runs as fast as it can)."""
    parameters: EnvironmentParametersReceiver
    """Environment parameters from the trainer, read by the areas by name."""
    stats: StatsRecorder
    """Statistics the areas record for the trainer."""
    analytics: TrainingAnalyticsReceiver
    """Training analytics from the trainer (dropped)."""
    manager: SideChannelManager
    """Routes incoming bytes to the channels above and frames the outgoing ones."""

    @staticmethod
    def create() -> "PlayerChannels":
        """The channels a player registers at startup."""
        engine = EngineConfigurationReceiver()
        parameters = EnvironmentParametersReceiver()
        stats = StatsRecorder()
        analytics = TrainingAnalyticsReceiver()
        manager = SideChannelManager([engine, parameters, stats, analytics])
        return PlayerChannels(engine, parameters, stats, analytics, manager)


class Academy:
    """Runs a scene against the trainer at the other end of ``client``."""

    def __init__(self, scene: Scene, client: UnityClient, *, max_idle_steps: int = 100_000) -> None:
        self._scene = scene
        self._client = client
        self._max_idle_steps = max_idle_steps
        self._channels = PlayerChannels.create()
        self._areas: list[Area] = []
        self._encoders: dict[str, ObservationEncoder] = {}
        self._brains: dict[str, BrainParametersProto] = {}
        self._sent_brains: list[str] = []
        self._agent_ids: dict[tuple[int, str], int] = {}
        self._deciding: dict[str, list[tuple[int, str]]] = {}
        self._had_first_reset = False
        self._counts: Counter[str] = Counter()

    @property
    def channels(self) -> PlayerChannels:
        """The player's side channels."""
        return self._channels

    def request_stop(self) -> None:
        """Ask the player to stop, from another thread (not from a signal handler).

        The exchange in flight is cancelled (or the next one is not made); the player then says goodbye to the
        trainer on a fresh channel and ``run`` returns 0.
        """
        self._client.interrupt()

    def run(self) -> int:
        """Handshake, then serve the trainer until it closes; returns the exit code."""
        try:
            reply = self._handshake()
            while True:
                reply = self._exchange(self._handle(reply))
        except PlayerExit as done:
            return done.code
        except TrainerGoneError as error:
            logger.error("The trainer is gone; quitting. %s", error)
            return EXIT_FAILURE
        except (ExchangeInterrupted, KeyboardInterrupt):
            logger.info("Asked to stop; saying goodbye to the trainer (status %d) and quitting.", STATUS_QUIT)
            self._client.reconnect()  # the interrupted channel is closed (and a cancelled call leaves nothing)
            self._goodbye()
            return EXIT_OK
        except Exception:
            logger.exception("Scene '%s' failed; saying goodbye to the trainer and quitting.", self._scene.name)
            self._goodbye()
            return EXIT_FAILURE
        finally:
            self._close()

    def _handshake(self) -> UnityMessageProto:
        """Exchange #1 (academy parameters) and #2 (header only); returns the trainer's first input."""
        port = self._client.port
        try:
            reply = self._exchange(academy_parameters_message())
        except TrainerGoneError as error:
            logger.error("Couldn't connect to trainer on port %d. %s", port, error)
            raise PlayerExit(EXIT_FAILURE) from None
        self._check_status(reply)
        init = reply.unity_input.rl_initialization_input
        trainer_version = init.communication_version
        try:
            compatible = is_compatible(API_VERSION, trainer_version)
        except ValueError:
            compatible = False
        if not compatible:
            logger.error(
                "Communication protocol between the trainer (%r, package %r) and this player (%s) have "
                "different versions which make them incompatible. Use a trainer that speaks communicator API "
                "%s.x (for example mlagents 1.1.0 or rayagents).",
                trainer_version,
                init.package_version,
                API_VERSION,
                API_VERSION.split(".")[0],
            )
            self._goodbye()
            raise PlayerExit(EXIT_FAILURE)
        capabilities = init.capabilities
        if not capabilities.baseRLCapabilities:
            logger.warning(
                "The trainer does not report the base RL capabilities; it may be too old for this player."
            )
        if not capabilities.multiAgentGroups:
            logger.warning("The trainer does not support multi-agent groups: group rewards are ignored.")
        problems = missing_capability_problems(self._scene.behaviors, capabilities)
        for problem in problems:
            logger.error("Scene '%s': %s", self._scene.name, problem)
        if problems:
            self._goodbye()
            raise PlayerExit(EXIT_FAILURE)
        num_areas = max(1, init.num_areas)
        logger.info(
            "Connected to trainer on port %d: package %s, communication %s; seed %d, %d area(s) of scene '%s'.",
            port,
            init.package_version,
            trainer_version,
            init.seed,
            num_areas,
            self._scene.name,
        )
        for behavior in self._scene.behaviors:
            self._encoders[behavior.qualified_name] = ObservationEncoder(behavior, capabilities)
            self._brains[behavior.qualified_name] = brain_parameters(behavior, capabilities)
        for index in range(num_areas):
            context = AreaContext(
                index=index,
                num_areas=num_areas,
                seed=init.seed + index,
                parameters=self._channels.parameters,
                stats=self._channels.stats,
            )
            self._areas.append(self._scene.make_area(context))
        return self._exchange(header_message(STATUS_OK))

    def _exchange(self, message: UnityMessageProto) -> UnityMessageProto:
        """Send ``message`` and wait for the answer; ExchangeInterrupted once a stop has been requested."""
        return self._client.exchange(message)

    def _check_status(self, reply: UnityMessageProto) -> None:
        """Quit with 0 when the trainer's answer is not status 200 (it closed the connection)."""
        status = reply.header.status
        if status != STATUS_OK:
            logger.info("The trainer closed the connection (status %d); quitting.", status)
            raise PlayerExit(EXIT_OK)

    def _handle(self, reply: UnityMessageProto) -> UnityMessageProto:
        """Handle one trainer input (side channels, then the command) and return the player's next message."""
        self._check_status(reply)
        rl_input = reply.unity_input.rl_input
        self._channels.manager.process_side_channel_message(rl_input.side_channel)
        command = rl_input.command
        if command == QUIT:
            logger.info("The trainer sent QUIT; quitting.")
            raise PlayerExit(EXIT_OK)
        if command == RESET or not self._had_first_reset:
            # A player resets every area at its first academy step whatever the first command says.
            self._counts["resets"] += 1
            reports = self._reset()
        else:
            if command != STEP:
                logger.warning("Unknown command %d from the trainer; treated as STEP.", command)
            reports = self._step(rl_input)
        self._counts["exchanges"] += 1
        return self._output(reports)

    def _reset(self) -> list[list[AgentReport]]:
        """Reset every area (pending decisions are dropped) and collect the first decision requests."""
        self._had_first_reset = True
        self._deciding = {}
        return [area.reset() for area in self._areas]

    def _step(self, rl_input: UnityRLInputProto) -> list[list[AgentReport]]:
        """Apply the trainer's actions, then step every area until some agent reports."""
        per_area = self._actions_by_area(rl_input)
        self._deciding = {}
        for _ in range(self._max_idle_steps):
            self._counts["academy steps"] += 1
            reports = [area.step(per_area[i]) for i, area in enumerate(self._areas)]
            if any(reports):
                return reports
            per_area = [{} for _ in self._areas]
        raise RuntimeError(
            f"No agent of scene '{self._scene.name}' reported in {self._max_idle_steps} academy steps: every "
            "area must report its agents' decision requests (check the scene's decision period)."
        )

    def _actions_by_area(self, rl_input: UnityRLInputProto) -> list[dict[str, AgentAction]]:
        """The trainer's actions for the agents that requested decisions, grouped by area.

        The i-th action of a behavior goes to the i-th agent whose decision request was sent. A behavior the
        trainer sent no actions for gets zero actions; fewer actions than agents is an error.
        """
        per_area: list[dict[str, AgentAction]] = [{} for _ in self._areas]
        for behavior, agents in self._deciding.items():
            spec = self._scene.behavior(behavior).action_spec
            protos: Sequence = rl_input.agent_actions[behavior].value if behavior in rl_input.agent_actions else ()
            if len(protos) == 0:
                actions = spec.empty_action(len(agents))
            elif len(protos) < len(agents):
                raise ValueError(
                    f"The trainer sent {len(protos)} actions for behavior '{behavior}' but {len(agents)} agents "
                    "requested a decision: the trainer must send one action per agent of its DecisionSteps."
                )
            else:
                if len(protos) > len(agents):
                    logger.warning(
                        "The trainer sent %d actions for behavior '%s' but %d agents requested a decision; the "
                        "extra actions are ignored.",
                        len(protos),
                        behavior,
                        len(agents),
                    )
                actions = actions_from_protos(list(protos)[: len(agents)], spec)
            for row, (area, agent) in enumerate(agents):
                per_area[area][agent] = AgentAction(actions.continuous[row], actions.discrete[row])
        return per_area

    def _output(self, reports_by_area: Sequence[Sequence[AgentReport]]) -> UnityMessageProto:
        """The player's message: agent infos per behavior, brain parameters of new behaviors, side channels."""
        batches: dict[str, list[tuple[int, AgentReport]]] = {name: [] for name in self._sent_brains}
        deciding: dict[str, list[tuple[int, str]]] = {}
        for area, reports in enumerate(reports_by_area):
            for report in reports:
                key = (area, report.agent)
                agent_id = self._agent_ids.get(key)
                if agent_id is None:
                    agent_id = self._agent_ids[key] = len(self._agent_ids)
                batches.setdefault(report.behavior, []).append((agent_id, report))
                if not report.done:
                    deciding.setdefault(report.behavior, []).append(key)
        self._deciding = deciding
        message = UnityMessageProto()
        message.header.status = STATUS_OK
        rl_output = message.unity_output.rl_output
        for behavior, batch in batches.items():
            # Once a behavior has been sent, Unity keeps its key in every message, with an empty list when
            # none of its agents reported.
            infos = rl_output.agentInfos[behavior]
            if not batch:
                continue
            infos.CopyFrom(self._agent_infos(behavior, batch))
            if behavior not in self._sent_brains:
                self._sent_brains.append(behavior)
                message.unity_output.rl_initialization_output.brain_parameters.append(self._brains[behavior])
        rl_output.side_channel = self._channels.manager.generate_side_channel_messages()
        return message

    def _agent_infos(self, behavior: str, batch: Sequence[tuple[int, AgentReport]]) -> ListAgentInfoProto:
        """One behavior's agent infos, built in one go from its agents' reports (in report order)."""
        definition = self._scene.behavior(behavior)  # raises, naming the scene's behaviors
        agent_ids = [agent_id for agent_id, _ in batch]
        return agent_info_list(definition, self._encoders[behavior], agent_ids, [report for _, report in batch])

    def _goodbye(self) -> None:
        """Tell the trainer the player is quitting (status 400), waiting at most GOODBYE_TIMEOUT_S."""
        try:
            self._client.exchange(header_message(STATUS_QUIT), timeout=GOODBYE_TIMEOUT_S)
        except (TrainerGoneError, ExchangeInterrupted):
            pass  # the trainer is gone, or a second stop request cut the goodbye short

    def _close(self) -> None:
        """Close the areas and the connection, and log what was done."""
        for area in self._areas:
            try:
                area.close()
            except Exception:
                logger.exception("Closing an area of scene '%s' failed.", self._scene.name)
        self._client.close()
        logger.info(
            "Scene '%s' quit after %d exchanges, %d resets, %d academy steps with %d agents.",
            self._scene.name,
            self._counts["exchanges"],
            self._counts["resets"],
            self._counts["academy steps"],
            len(self._agent_ids),
        )

