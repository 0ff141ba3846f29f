"""``UnityEnvironment``: one Unity player (or the Editor) behind the ``mlagents_envs`` API.

It launches the player with ``--mlagents-port`` naming the port of its own gRPC server, runs the handshake, and
then turns ``reset()``/``step()`` into exchanges: the actions set since the last step travel as the answer to
the player's pending request, and the player's next request brings the new ``DecisionSteps``/``TerminalSteps``
of every behavior. Behaviors appear lazily: a behavior's spec arrives with the first step that has one of its
agents, at any step of the run.
"""

from __future__ import annotations

import atexit
import logging
from types import MappingProxyType
from typing import Mapping, Sequence

import numpy as np

from rayagents.actors.communicator import TrainerServer, WaitSettings, input_message
from rayagents.actors.player import (
    PlayerProcess,
    has_log_file_argument,
    log_path_from_arguments,
    player_arguments,
    player_log_path,
    player_command,
)
from rayagents.protocol.communicator_objects.capabilities_pb2 import UnityRLCapabilitiesProto
from rayagents.protocol.communicator_objects.command_pb2 import RESET, STEP
from rayagents.protocol.communicator_objects.unity_output_pb2 import UnityOutputProto
from rayagents.protocol.communicator_objects.unity_rl_output_pb2 import UnityRLOutputProto
from rayagents.protocol.exceptions import (
    UnityActionException,
    UnityEnvironmentException,
)
from rayagents.protocol.side_channels import SideChannel, SideChannelManager
from rayagents.protocol.actions import ActionEncoder
from rayagents.protocol.observations import VisualObservations, check_visual_observations
from rayagents.protocol.steps import StepDecoder, behavior_spec_from_proto, observation_dtypes
from rayagents.protocol.types import ActionTuple, AgentId, BehaviorName, BehaviorSpec, DecisionSteps, TerminalSteps
from rayagents.protocol.versions import API_VERSION, PACKAGE_VERSION, is_compatible

logger = logging.getLogger(__name__)

DEFAULT_EDITOR_PORT = 5004
"""The port the Unity Editor connects to when training in the Editor (no executable)."""


def _trainer_capabilities() -> UnityRLCapabilitiesProto:
    """Everything API 1.5.0 can do: the trainer accepts all of it."""
    return UnityRLCapabilitiesProto(
        baseRLCapabilities=True,
        concatenatedPngObservations=True,
        compressedChannelMapping=True,
        hybridActions=True,
        trainingAnalytics=True,
        variableLengthObservation=True,
        multiAgentGroups=True,
    )


def _validated(action: ActionTuple, spec: BehaviorSpec, n_agents: int, behavior: str) -> ActionTuple:
    """``action`` as float32/int32 arrays, after checking it has ``n_agents`` rows of the spec's sizes."""
    expected_continuous = (n_agents, spec.action_spec.continuous_size)
    expected_discrete = (n_agents, spec.action_spec.discrete_size)
    continuous = action.continuous
    discrete = action.discrete
    if continuous.shape == expected_continuous and discrete.shape == expected_discrete:
        if continuous.dtype == np.float32 and discrete.dtype == np.int32:
            return action  # the usual case: nothing to convert
    else:
        if spec.action_spec.continuous_size == 0 and continuous.size == 0:
            continuous = np.zeros(expected_continuous, dtype=np.float32)
        if spec.action_spec.discrete_size == 0 and discrete.size == 0:
            discrete = np.zeros(expected_discrete, dtype=np.int32)
        if continuous.shape != expected_continuous:
            raise UnityActionException(
                f"The behavior {behavior} needs continuous actions of shape {expected_continuous} "
                f"({n_agents} agents × {spec.action_spec.continuous_size} actions), but got {continuous.shape}."
            )
        if discrete.shape != expected_discrete:
            raise UnityActionException(
                f"The behavior {behavior} needs discrete actions of shape {expected_discrete} "
                f"({n_agents} agents × {spec.action_spec.discrete_size} branches), but got {discrete.shape}."
            )
    return ActionTuple(
        continuous=continuous.astype(np.float32, copy=False), discrete=discrete.astype(np.int32, copy=False)
    )


class UnityEnvironment:
    """One Unity player, or the Unity Editor, driven with the ``mlagents_envs`` API.

    Arguments:
        file_name: the build to launch (a path with or without its ``.x86_64``/``.app``/``.exe``, or ``sim:NAME``
            for scene NAME of the bundled simulation host); None means
            the Unity Editor: nothing is launched and the trainer listens on port 5004 unless ``port`` is given.
        worker_id: names the player's log (``Player-<worker_id>.log``); must be 0 for the Editor.
        seed: sent to the player in the handshake (Unity seeds its random generator with it).
        num_areas: how many training areas the player builds (``Academy.NumAreas``).
        no_graphics: launch headless (``-nographics -batchmode``).
        timeout_wait: seconds to wait for each message of the player before UnityTimeOutException; also how
            long ``close`` waits for it to exit before killing it.
        additional_args: more arguments for the player, after ours.
        side_channels: the side channels to route (each id once).
        log_folder: where the player writes ``Player-<worker_id>.log`` (its stdout and stderr too); None keeps
            no log unless ``additional_args`` name a ``-logFile``.
        host: the address the trainer listens on (loopback: the player runs on this machine).
        port: the trainer's port; None lets the OS pick a free one (5004 for the Editor). A busy port raises
            UnityWorkerInUseException.
        visual_observations: how PNG-compressed observations (camera and render-texture sensors) arrive in
            ``DecisionSteps``/``TerminalSteps``. ``"float32"`` (the default, as ``mlagents_envs``): scaled to
            [0, 1]. ``"uint8"``: the PNG's 8-bit values 0..255, same CHW shape, 4 times smaller, for a network
            that scales them itself; where the compressed channel mapping averages several channels into one
            (stacked grayscale), the average is rounded half up, so each value is ``round(255 * x)`` of the
            ``float32`` value ``x`` (an exact half rounds up). Observations sent as floats stay ``float32``;
            the ``behavior_specs`` are the same either way. A sensor's dtype is settled by its first
            observation and kept for the run, empty batches included.
    """

    API_VERSION = API_VERSION
    """The communicator API version the trainer speaks."""
    DEFAULT_EDITOR_PORT = DEFAULT_EDITOR_PORT
    """The port the Unity Editor connects to."""

    def __init__(
        self,
        file_name: str | None = None,
        *,
        worker_id: int = 0,
        seed: int = 0,
        num_areas: int = 1,
        no_graphics: bool = True,
        timeout_wait: float = 60,
        additional_args: Sequence[str] = (),
        side_channels: Sequence[SideChannel] = (),
        log_folder: str | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        visual_observations: VisualObservations = "float32",
    ) -> None:
        if file_name is None and port is None and worker_id != 0:
            raise UnityEnvironmentException(
                f"worker_id must be 0 when training in the Unity Editor (got {worker_id}): the Editor is a single "
                "environment. Give an executable to run several."
            )
        self._visual_observations = check_visual_observations(visual_observations)
        self._timeout_wait = float(timeout_wait)
        self._side_channel_manager = SideChannelManager(side_channels)
        self._env_specs: dict[BehaviorName, BehaviorSpec] = {}
        self._decoders: dict[BehaviorName, StepDecoder] = {}
        self._encoders: dict[BehaviorName, ActionEncoder] = {}
        self._env_state: dict[BehaviorName, tuple[DecisionSteps, TerminalSteps]] = {}
        self._env_actions: dict[BehaviorName, ActionTuple] = {}
        self._is_first_message = True
        self._loaded = False
        self._player: PlayerProcess | None = None
        self._log_path: str | None = None
        if port is None:
            port = DEFAULT_EDITOR_PORT if file_name is None else 0
        self._server = TrainerServer(host, port)
        try:
            if file_name is not None:
                self._player = self._launch(file_name, worker_id, no_graphics, log_folder, additional_args)
            self._wait = WaitSettings(
                timeout_wait=self._timeout_wait,
                check_player=self._player.check_alive if self._player is not None else None,
                log_path=self._log_path,
                editor=self._player is None,
            )
            self._loaded = True
            atexit.register(self.close)
            self._handshake(seed, num_areas)
        except BaseException:
            self._close(0.0)
            raise

    # -- launching and the handshake ---------------------------------------------------------------------

    def _launch(
        self,
        file_name: str,
        worker_id: int,
        no_graphics: bool,
        log_folder: str | None,
        additional_args: Sequence[str],
    ) -> PlayerProcess:
        executable, leading_args = player_command(file_name)
        args = player_arguments(
            self._server.port,
            worker_id=worker_id,
            no_graphics=no_graphics,
            log_folder=log_folder,
            additional_args=additional_args,
        )
        if has_log_file_argument(additional_args):
            self._log_path = log_path_from_arguments(additional_args)
        elif log_folder is not None:
            self._log_path = player_log_path(log_folder, worker_id)
        args = [*leading_args, *args]
        logger.debug("Launching %s %s", executable, " ".join(args))
        return PlayerProcess(executable, args, log_path=self._log_path)

    def _handshake(self, seed: int, num_areas: int) -> None:
        message = input_message()
        init = message.unity_input.rl_initialization_input
        init.seed = seed
        init.communication_version = API_VERSION
        init.package_version = PACKAGE_VERSION
        init.capabilities.CopyFrom(_trainer_capabilities())
        init.num_areas = num_areas
        output = self._server.initialize(message, wait=self._wait)
        if not output.HasField("rl_initialization_output"):
            raise UnityEnvironmentException(
                f"The player on port {self.port} sent no initialization message: it is not an ML-Agents "
                "environment, or one far older than communication API 1.0."
            )
        params = output.rl_initialization_output
        unity_version = params.communication_version
        try:
            compatible = is_compatible(unity_version, API_VERSION)
        except ValueError:
            compatible = False
        if not compatible:
            raise UnityEnvironmentException(
                "The communication API version is not compatible between Unity and Python: Python speaks API "
                f"{API_VERSION} (package {PACKAGE_VERSION}), the Unity environment API {unity_version or '?'} "
                f"(com.unity.ml-agents {params.package_version or '?'}). Use a com.unity.ml-agents release whose "
                f"communication API has major version {API_VERSION.split('.')[0]} (3.0.0 speaks {API_VERSION})."
            )
        logger.info(
            "Connected to Unity environment with package version %s and communication version %s",
            params.package_version,
            unity_version,
        )
        self._academy_capabilities = UnityRLCapabilitiesProto()
        self._academy_capabilities.CopyFrom(params.capabilities)
        if not self._academy_capabilities.baseRLCapabilities:
            logger.warning(
                "The Unity environment on port %s reports no baseRLCapabilities: it is older than the trainer "
                "expects, and training may fail. Upgrade com.unity.ml-agents to 3.0.0.",
                self.port,
            )
        self._update_behavior_specs(output)

    # -- the public API ----------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The port the trainer listens on (the player was given it with ``--mlagents-port``)."""
        return self._server.port

    @property
    def log_path(self) -> str | None:
        """The player's log file (None without a log folder, or in the Editor)."""
        return self._log_path

    @property
    def pid(self) -> int | None:
        """The player's process id (None in the Editor)."""
        return self._player.pid if self._player is not None else None

    @property
    def visual_observations(self) -> VisualObservations:
        """How PNG-compressed observations arrive: ``"float32"`` in [0, 1] or ``"uint8"`` 0..255."""
        return self._visual_observations

    @property
    def academy_capabilities(self) -> UnityRLCapabilitiesProto:
        """What the Unity side said it can do in the handshake."""
        return self._academy_capabilities

    @property
    def behavior_specs(self) -> Mapping[BehaviorName, BehaviorSpec]:
        """The behaviors seen so far, by fully qualified name (read-only; new ones appear after any step)."""
        return MappingProxyType(self._env_specs)

    def reset(self) -> None:
        """Resets the environment (sends RESET and the queued side-channel messages) and reads the new state."""
        self._assert_loaded()
        self.step_wait()  # the player's pending request, which RESET answers
        message = input_message()
        rl_input = message.unity_input.rl_input
        rl_input.command = RESET
        rl_input.side_channel = self._side_channel_manager.generate_side_channel_messages()
        output = self._server.exchange(message, wait=self._wait)
        self._update_behavior_specs(output)
        self._update_state(output.rl_output)
        self._is_first_message = False
        self._env_actions.clear()

    def step(self) -> None:
        """Sends the actions set since the last step (zeros for behaviors without any) and reads the new state.

        The first call after launch resets instead.
        """
        self.step_async()
        self.step_wait()

    def step_async(self) -> None:
        """The first half of :meth:`step`: sends the actions set since the last step (zeros for behaviors without
        any), and returns while the player computes its next step. :meth:`step_wait` reads the new state; until
        then ``get_steps`` still gives the state the actions answer, and actions cannot be set.

        The first call after launch resets instead (and :meth:`step_wait` has nothing left to read).
        """
        if self._is_first_message:
            self.reset()
            return
        self._assert_loaded()
        if self._server.awaiting_request:
            raise UnityEnvironmentException("step_async() was called twice without step_wait() in between")
        message = input_message()
        rl_input = message.unity_input.rl_input
        rl_input.command = STEP
        rl_input.side_channel = self._side_channel_manager.generate_side_channel_messages()
        for behavior, (decision_steps, _) in self._env_state.items():
            n_agents = len(decision_steps)
            if n_agents == 0:
                continue
            actions = self._env_actions.get(behavior)
            if actions is None:
                actions = self._env_specs[behavior].action_spec.empty_action(n_agents)
            self._encoders[behavior].write(actions, rl_input.agent_actions[behavior])
        self._server.send(message)
        self._env_actions.clear()

    def step_wait(self) -> None:
        """The second half of :meth:`step`: waits for the player's next step and reads the new state (nothing
        when no :meth:`step_async` is waiting for its answer)."""
        if not self._server.awaiting_request:
            return
        output = self._server.receive(self._wait)
        self._update_behavior_specs(output)
        self._update_state(output.rl_output)

    def get_steps(self, behavior_name: BehaviorName) -> tuple[DecisionSteps, TerminalSteps]:
        """The agents of ``behavior_name`` that request a decision, and those whose episode ended, this step."""
        self._assert_behavior_exists(behavior_name)
        state = self._env_state.get(behavior_name)
        if state is None:  # a spec that came before any step
            state = self._decoders[behavior_name].empty()
        return state

    def set_actions(self, behavior_name: BehaviorName, action: ActionTuple) -> None:
        """Sets the actions of every agent of ``behavior_name`` in this step's DecisionSteps, in their order.

        Shapes must be ``(n_agents, continuous_size)`` and ``(n_agents, discrete_branches)``, else
        UnityActionException.
        """
        self._assert_behavior_exists(behavior_name)
        self._assert_not_stepping()
        if behavior_name not in self._env_state:
            return
        n_agents = len(self._env_state[behavior_name][0])
        self._env_actions[behavior_name] = _validated(action, self._env_specs[behavior_name], n_agents, behavior_name)

    def set_action_for_agent(self, behavior_name: BehaviorName, agent_id: AgentId, action: ActionTuple) -> None:
        """Sets one agent's action (shapes ``(1, size)``); the others keep theirs (zeros unless set).

        Raises IndexError when the agent did not request a decision this step.
        """
        self._assert_behavior_exists(behavior_name)
        self._assert_not_stepping()
        if behavior_name not in self._env_state:
            return
        spec = self._env_specs[behavior_name]
        one = _validated(action, spec, 1, behavior_name)
        decision_steps = self._env_state[behavior_name][0]
        index = decision_steps.agent_id_to_index.get(int(agent_id))
        if index is None:
            raise IndexError(
                f"Agent {agent_id} of behavior {behavior_name} did not request a decision at the previous step: "
                f"the agents that did are {sorted(decision_steps.agent_id_to_index)}."
            )
        actions = self._env_actions.get(behavior_name)
        if actions is None:
            actions = spec.action_spec.empty_action(len(decision_steps))
        # Copies: the arrays may be the caller's own (from set_actions), which must not change under them.
        continuous = actions.continuous.copy()
        discrete = actions.discrete.copy()
        continuous[index, :] = one.continuous[0, :]
        discrete[index, :] = one.discrete[0, :]
        self._env_actions[behavior_name] = ActionTuple(continuous=continuous, discrete=discrete)

    def close(self) -> None:
        """Says goodbye (status 400), waits up to ``timeout_wait`` for the player to exit, then kills it.

        Idempotent.
        """
        self._close(self._timeout_wait)

    # -- internals ---------------------------------------------------------------------------------------

    def _close(self, timeout: float) -> None:
        self._loaded = False
        atexit.unregister(self.close)
        self._server.close()
        if self._player is not None:
            returncode = self._player.close(timeout)
            logger.debug("The player %s exited with %s", self._player.pid, returncode)

    def _assert_loaded(self) -> None:
        if not self._loaded:
            raise UnityEnvironmentException(
                f"No Unity environment is loaded on port {self.port}: it was closed, or it failed to start."
            )

    def _assert_not_stepping(self) -> None:
        if self._server.awaiting_request:
            raise UnityActionException(
                "Actions were set between step_async() and step_wait(): they would answer a step the player has not "
                "sent yet. Call step_wait() first."
            )

    def _assert_behavior_exists(self, behavior_name: str) -> None:
        if behavior_name not in self._env_specs:
            known = ", ".join(sorted(self._env_specs)) or "none yet"
            raise UnityActionException(
                f"The behavior {behavior_name!r} does not exist in the environment (behaviors seen: {known}). "
                "Use the fully qualified name, as in behavior_specs (\"Name?team=0\")."
            )

    def _update_behavior_specs(self, output: UnityOutputProto) -> None:
        if not output.HasField("rl_initialization_output"):  # most steps: no new brain
            return
        agent_infos = output.rl_output.agentInfos
        for brain in output.rl_initialization_output.brain_parameters:
            name = brain.brain_name
            if name in agent_infos and len(agent_infos[name].value) > 0:
                first = agent_infos[name].value[0]
                spec = behavior_spec_from_proto(brain, first)
                self._env_specs[name] = spec
                self._decoders[name] = StepDecoder(spec, name, observation_dtypes(first, self._visual_observations))
                self._encoders[name] = ActionEncoder(spec.action_spec.continuous_size, spec.action_spec.discrete_size)
                logger.info("Connected new brain: %s", name)

    def _update_state(self, output: UnityRLOutputProto) -> None:
        agent_infos = output.agentInfos
        for name, decoder in self._decoders.items():
            self._env_state[name] = decoder.decode(agent_infos[name].value if name in agent_infos else ())
        if output.side_channel:
            self._side_channel_manager.process_side_channel_message(output.side_channel)

    def __enter__(self) -> "UnityEnvironment":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
