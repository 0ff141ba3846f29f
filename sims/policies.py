"""Policies that act in a scene without a trainer: a scene's heuristic, or an exported ``.onnx`` model.

Both answer a batch of decision requests of one behavior with one action per request. The model runs as
Unity's inference runs it (spec §6): ``obs_0..obs_{N-1}`` are the sensors' observations sorted by sensor name
(float32, images as their [0, 1] values, not the PNG the wire would carry), ``action_masks`` is 1 for an allowed
action and 0 for a disabled one, ``recurrent_in`` carries each agent's memory (zeros at an episode's start), and
the actions are the model's deterministic outputs (``deterministic_continuous_actions``,
``deterministic_discrete_actions``), as with "Deterministic Inference" set on BehaviorParameters.
"""

from __future__ import annotations

from pathlib import Path
from typing import Hashable, Protocol, Sequence

import numpy as np

from rayagents.sims.scene import AgentAction, AgentReport, BehaviorDef, Heuristic, sensor_order

OBSERVATION_INPUT = "obs_{}"
MASK_INPUT = "action_masks"
MEMORY_INPUT = "recurrent_in"
MEMORY_OUTPUT = "recurrent_out"
CONTINUOUS_OUTPUTS = ("deterministic_continuous_actions", "continuous_actions")
"""The continuous action outputs, in the order they are looked for (the stochastic one only if a model lacks the
deterministic one)."""
DISCRETE_OUTPUTS = ("deterministic_discrete_actions", "discrete_actions")
"""The discrete action outputs, in the order they are looked for."""


class ModelError(ValueError):
    """An ``.onnx`` model cannot act for a behavior: the message names the model and what is wrong."""


class ScenePolicy(Protocol):
    """Acts for the agents of one behavior."""

    def act(self, agents: Sequence[Hashable], reports: Sequence[AgentReport]) -> list[AgentAction]:
        """One action per decision request; ``agents[i]`` identifies the agent of ``reports[i]``."""

    def end_episode(self, agent: Hashable) -> None:
        """``agent``'s episode ended: forget what it carried (its memory)."""


class HeuristicPolicy:
    """A scene's heuristic, applied to each request."""

    def __init__(self, heuristic: Heuristic) -> None:
        self._heuristic = heuristic

    def act(self, agents: Sequence[Hashable], reports: Sequence[AgentReport]) -> list[AgentAction]:
        """The heuristic's action for each request."""
        return [self._heuristic(report) for report in reports]

    def end_episode(self, agent: Hashable) -> None:
        """Nothing to forget."""


class OnnxPolicy:
    """An exported model (ML-Agents' ONNX contract) acting for ``behavior``'s agents on the CPU, deterministically."""

    def __init__(self, path: str | Path, behavior: BehaviorDef) -> None:
        try:
            import onnxruntime
        except ImportError as error:
            raise ModelError(
                f"acting with the model {path} needs onnxruntime: pip install 'rayagents[sims]' (or onnxruntime)"
            ) from error
        self._path = str(path)
        self._behavior = behavior
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self._session = onnxruntime.InferenceSession(
                self._path, sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as error:  # onnxruntime raises its own exception types for unreadable models
            raise ModelError(f"{self._path} could not be loaded as an ONNX model: {error}") from error
        self._order = sensor_order(behavior.sensors)
        inputs = {i.name: i for i in self._session.get_inputs()}
        outputs = {o.name for o in self._session.get_outputs()}
        self._check_inputs(inputs)
        spec = behavior.action_spec
        self._continuous = self._pick(outputs, CONTINUOUS_OUTPUTS) if spec.continuous_size else None
        self._discrete = self._pick(outputs, DISCRETE_OUTPUTS) if spec.discrete_size else None
        self._uses_mask = MASK_INPUT in inputs
        self._memory_size = 0
        if MEMORY_INPUT in inputs:
            if MEMORY_OUTPUT not in outputs:
                raise ModelError(f"{self._path} takes {MEMORY_INPUT} but has no {MEMORY_OUTPUT} output")
            self._memory_size = int(inputs[MEMORY_INPUT].shape[-1])
        self._memories: dict[Hashable, np.ndarray] = {}

    def act(self, agents: Sequence[Hashable], reports: Sequence[AgentReport]) -> list[AgentAction]:
        """The model's deterministic actions for a batch of requests."""
        count = len(reports)
        if count == 0:
            return []
        spec = self._behavior.action_spec
        feeds: dict[str, np.ndarray] = {}
        for position, sensor_index in enumerate(self._order):
            feeds[OBSERVATION_INPUT.format(position)] = np.stack(
                [np.asarray(report.observations[sensor_index], dtype=np.float32) for report in reports]
            )
        if self._uses_mask:
            disabled = np.zeros((count, sum(spec.discrete_branches)), dtype=bool)
            for row, report in enumerate(reports):
                if report.action_mask is not None:
                    disabled[row] = np.asarray(report.action_mask, dtype=bool).reshape(-1)
            feeds[MASK_INPUT] = (~disabled).astype(np.float32)
        names = [name for name in (self._continuous, self._discrete) if name is not None]
        if self._memory_size:
            zeros = np.zeros((1, self._memory_size), np.float32)
            feeds[MEMORY_INPUT] = np.stack([self._memories.get(agent, zeros) for agent in agents])
            names.append(MEMORY_OUTPUT)
        results = dict(zip(names, self._session.run(names, feeds)))
        if self._memory_size:
            for agent, memory in zip(agents, results[MEMORY_OUTPUT]):
                self._memories[agent] = memory
        continuous = (
            results[self._continuous].astype(np.float32).reshape(count, spec.continuous_size)
            if self._continuous
            else np.zeros((count, 0), np.float32)
        )
        discrete = (
            results[self._discrete].astype(np.int32).reshape(count, spec.discrete_size)
            if self._discrete
            else np.zeros((count, 0), np.int32)
        )
        return [AgentAction(continuous[row], discrete[row]) for row in range(count)]

    def end_episode(self, agent: Hashable) -> None:
        """Drop the agent's memory: its next episode starts from zeros."""
        self._memories.pop(agent, None)

    def _check_inputs(self, inputs: dict) -> None:
        """ModelError unless the model takes one ``obs_i`` per sensor, each of the sensor's shape."""
        behavior = self._behavior
        sensors = [behavior.sensors[i] for i in self._order]
        expected = [f"{OBSERVATION_INPUT.format(i)} {tuple(s.shape)}" for i, s in enumerate(sensors)]
        taken = sorted(name for name in inputs if name.startswith("obs_"))
        problem = None
        if len(taken) != len(sensors):
            problem = f"it takes {len(taken)} observation input(s) ({', '.join(taken) or 'none named obs_i'})"
        else:
            for position, sensor in enumerate(sensors):
                entry = inputs.get(OBSERVATION_INPUT.format(position))
                shape = None if entry is None else tuple(entry.shape[1:])
                if shape != tuple(sensor.shape):
                    problem = f"its input {OBSERVATION_INPUT.format(position)} has shape {shape}"
                    break
        if problem:
            raise ModelError(
                f"{self._path} does not fit behavior '{behavior.name}': {problem}, but the behavior's sensors "
                f"(sorted by name) need {', '.join(expected)}. Use the model trained on this behavior (an "
                "ML-Agents 2.x/3.x or rayagents export)."
            )

    def _pick(self, outputs: set[str], candidates: Sequence[str]) -> str:
        for name in candidates:
            if name in outputs:
                return name
        raise ModelError(
            f"{self._path} has none of the outputs {', '.join(candidates)} that behavior '{self._behavior.name}''s "
            f"actions need (it has {', '.join(sorted(outputs))}): export the model with ML-Agents 2.x/3.x or rayagents."
        )
