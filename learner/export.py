"""ONNX export of an actor for Unity's inference engine (Sentis), following ML-Agents' model contract (spec §6).

Inputs: ``obs_0 … obs_{N-1}`` (``[batch, *shape]``, sensor order), only when there are discrete branches
``action_masks`` (``[batch, sum(branches)]``, float, 1 = allowed), and only with memory ``recurrent_in``
(``[batch, 1, memory_size]``: each agent's LSTM hidden and cell state, concatenated). Outputs, in order:
``version_number`` ([1] = 3.0), ``memory_size`` ([1], 0 without memory), then for continuous actions ``continuous_actions`` (a sample,
``clamp(x, -3, 3) / 3``; SAC's actor: ``tanh`` of the sample), ``continuous_action_output_shape`` ([1]),
``deterministic_continuous_actions`` (the mean, clipped or squashed the same way), then for discrete branches ``discrete_actions`` (int64 ``[batch, n_branches]``, a
multinomial sample), ``discrete_action_output_shape`` ([1, n_branches]), ``deterministic_discrete_actions`` (the
argmax), and with memory ``recurrent_out`` (``[batch, 1, memory_size]``, the memory after the step, which Unity
feeds back as the agent's next ``recurrent_in``). Axis 0 of every input and per-agent output is dynamic and named ``batch``. Normalizers are part of the
graph. The exporter is torch's TorchScript-based one (``dynamo=False``) at opset 9, ML-Agents' own opset: Unity
imports opsets 7 to 15, and the dynamo exporter writes 18 or newer. That exporter needs the ``onnx`` package;
each model is checked with ``onnx.checker`` before it is written.
"""

from __future__ import annotations

import copy
import io
import os
import warnings
from pathlib import Path

import torch
from torch import nn

from rayagents.learner.distributions import categorical_mode, categorical_sample, clip_continuous
from rayagents.learner.networks import Actor

ONNX_OPSET = 9
"""The opset written: ML-Agents' ``SerializationSettings.onnx_opset``; Unity accepts 7 to 15."""

MODEL_EXPORT_VERSION = 3
"""``version_number``: ML-Agents 2.0+'s model API (C# ``ModelApiVersion.MLAgents2_0``)."""

BATCH_AXIS = "batch"
MEMORY_INPUT = "recurrent_in"
"""The memory input of a model with memory, ``[batch, 1, memory_size]``."""
MEMORY_OUTPUT = "recurrent_out"
"""The memory output of a model with memory, ``[batch, 1, memory_size]``."""


def input_names(actor: Actor) -> list[str]:
    """The graph's input names for ``actor``."""
    names = [f"obs_{i}" for i in range(len(actor.observation_specs))]
    if actor.action_spec.discrete_size > 0:
        names.append("action_masks")
    if actor.memory_size > 0:
        names.append(MEMORY_INPUT)
    return names


def output_names(actor: Actor) -> list[str]:
    """The graph's output names for ``actor``, in ML-Agents' order."""
    names = ["version_number", "memory_size"]
    if actor.action_spec.continuous_size > 0:
        names += ["continuous_actions", "continuous_action_output_shape", "deterministic_continuous_actions"]
    if actor.action_spec.discrete_size > 0:
        names += ["discrete_actions", "discrete_action_output_shape", "deterministic_discrete_actions"]
    if actor.memory_size > 0:
        names.append(MEMORY_OUTPUT)
    return names


class ExportableActor(nn.Module):
    """An actor with ML-Agents' ONNX signature: positional observations (and the mask) in, the outputs above out."""

    version_number: torch.Tensor
    memory_size: torch.Tensor
    continuous_action_output_shape: torch.Tensor
    discrete_action_output_shape: torch.Tensor

    def __init__(self, actor: Actor) -> None:
        super().__init__()
        self.actor = actor
        spec = actor.action_spec
        self.register_buffer("version_number", torch.tensor([float(MODEL_EXPORT_VERSION)]))
        self.register_buffer("memory_size", torch.tensor([float(actor.memory_size)]))
        self.register_buffer("continuous_action_output_shape", torch.tensor([float(spec.continuous_size)]))
        self.register_buffer(
            "discrete_action_output_shape", torch.tensor([[float(b) for b in spec.discrete_branches]])
        )

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The outputs of :func:`output_names`, in that order."""
        n_obs = len(self.actor.observation_specs)
        has_mask = self.actor.action_spec.discrete_size > 0
        memories = inputs[n_obs + int(has_mask)][:, 0, :] if self.actor.memory_size > 0 else None
        encoding, new_memories = self.actor.encode(list(inputs[:n_obs]), memories)
        heads = self.actor.action_heads
        outputs: list[torch.Tensor] = [self.version_number, self.memory_size]
        if heads.continuous is not None:
            mean, log_std = heads.continuous(encoding)
            sample = mean + torch.exp(log_std) * torch.randn_like(mean)
            to_player = torch.tanh if heads.tanh_squash else clip_continuous
            outputs += [to_player(sample), self.continuous_action_output_shape, to_player(mean)]
        if heads.discrete is not None:
            log_probs = heads.discrete(encoding, inputs[n_obs])
            outputs += [categorical_sample(log_probs), self.discrete_action_output_shape, categorical_mode(log_probs)]
        if new_memories is not None:
            outputs.append(new_memories[:, None, :])
        return tuple(outputs)


def export_policy_model(actor: Actor, path: str | os.PathLike[str], opset_version: int = ONNX_OPSET) -> Path:
    """Writes ``actor`` as an ONNX model to ``path`` (atomically: a temporary name, then ``os.replace``)."""
    if not 7 <= opset_version <= 15:
        raise ValueError(f"opset {opset_version} cannot be imported by Unity's inference engine, which reads 7 to 15")
    try:
        import onnx
    except ImportError as error:
        raise RuntimeError(
            "writing .onnx models needs the onnx package (torch's exporter uses it): pip install onnx"
        ) from error
    module = ExportableActor(copy.deepcopy(actor).cpu()).eval()
    dummy: list[torch.Tensor] = [torch.zeros((1, *spec.shape)) for spec in actor.observation_specs]
    if actor.action_spec.discrete_size > 0:
        dummy.append(torch.ones((1, sum(actor.action_spec.discrete_branches))))
    if actor.memory_size > 0:
        dummy.append(torch.zeros((1, 1, actor.memory_size)))
    inputs = input_names(actor)
    outputs = output_names(actor)
    per_agent = set(inputs) | {
        "continuous_actions",
        "deterministic_continuous_actions",
        "discrete_actions",
        "deterministic_discrete_actions",
        MEMORY_OUTPUT,
    }
    dynamic_axes = {name: {0: BATCH_AXIS} for name in inputs + outputs if name in per_agent}
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx.*")
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)  # the LSTM's shape checks, traced once
        # the LSTM's initial states are the model's recurrent_in input, so any batch size runs:
        warnings.filterwarnings("ignore", message=".*with a variable length with LSTM.*")
        with torch.no_grad():
            torch.onnx.export(
                module,
                tuple(dummy),
                buffer,
                dynamo=False,
                opset_version=opset_version,
                input_names=inputs,
                output_names=outputs,
                dynamic_axes=dynamic_axes,
                do_constant_folding=True,
            )
    onnx.checker.check_model(onnx.load_model_from_string(buffer.getvalue()))
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        temporary.write_bytes(buffer.getvalue())
        os.replace(temporary, target)
    finally:
        if temporary.exists():
            temporary.unlink()
    return target
