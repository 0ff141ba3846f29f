"""The ``.pt`` checkpoint format: ML-Agents', a ``torch.save``'d dict of ``{module_name: state_dict}``.

Names (spec §6): ``"Policy"`` (the actor), ``"global_step"`` (:class:`GlobalSteps`), and per trainer its
optimizers and extra modules, for PPO ``"Optimizer:value_optimizer"`` (Adam over actor and critic) and
``"Optimizer:critic"`` (the critic). A file is written under a temporary name and moved into place with
``os.replace``, so a reader never sees half a checkpoint; it is read with ``torch.load(weights_only=True)``.
Loading is lenient like ML-Agents': a module missing from the file, or whose tensors do not fit, keeps its
fresh initialization and a warning says so.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Mapping, Protocol, Union

import torch
from torch import nn

from rayagents.learner.checkpoints import CheckpointError

logger = logging.getLogger(__name__)

POLICY = "Policy"
GLOBAL_STEP = "global_step"

class SavedRecords(Protocol):
    """Data that is not a module but is saved like one: a replay buffer (its experiences as tensors)."""

    def state_dict(self) -> Mapping[str, torch.Tensor]:
        """What is saved: tensors by name."""
        ...

    def load_saved(self, state: Mapping[str, torch.Tensor]) -> str:
        """Takes saved tensors in; returns '' or why they were not taken."""
        ...


Saveable = Union[nn.Module, torch.optim.Optimizer, SavedRecords]
"""What a checkpoint entry is made from: a module, an optimizer, or saved records."""


class GlobalSteps(nn.Module):
    """The trainer's step (agent decisions so far) as an int64 parameter, so it travels in the checkpoint.

    The parameter's state_dict key is ``_GlobalSteps__global_step``, the key ML-Agents' own ``GlobalSteps``
    module writes, so the ``"global_step"`` entries of the two are interchangeable.
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_parameter(
            "_GlobalSteps__global_step", nn.Parameter(torch.zeros(1, dtype=torch.int64), requires_grad=False)
        )

    def _step_tensor(self) -> torch.Tensor:
        return self.get_parameter("_GlobalSteps__global_step")

    @property
    def current_step(self) -> int:
        """The step."""
        return int(self._step_tensor().item())

    @current_step.setter
    def current_step(self, value: int) -> None:
        self._step_tensor().data.fill_(int(value))

    def increment(self, value: int) -> None:
        """Adds ``value`` agent decisions to the step."""
        self._step_tensor().data.add_(int(value))


def save_checkpoint(path: str | os.PathLike[str], modules: Mapping[str, Saveable]) -> Path:
    """Writes ``{name: state_dict}`` of ``modules`` to ``path`` atomically; returns the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    state = {name: module.state_dict() for name, module in modules.items()}
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with open(temporary, "wb") as handle:
            torch.save(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    finally:
        if temporary.exists():
            temporary.unlink()
    return target


def load_checkpoint(
    path: str | os.PathLike[str],
    modules: Mapping[str, Saveable],
    reset_global_step: bool = False,
    source_name: str | None = None,
) -> list[str]:
    """Loads what fits of the checkpoint at ``path`` into ``modules``; returns the warnings (also logged).

    ``reset_global_step`` (``--initialize-from``) leaves ``"global_step"`` as it is; ``--resume`` loads it.
    ``source_name`` is what the messages call the file (the URI it was downloaded from); default: ``path``.
    """
    local = Path(path)
    source = source_name if source_name is not None else str(local)
    if not local.is_file():
        raise FileNotFoundError(
            f"checkpoint {source} does not exist; check --resume / --initialize-from and results_dir"
        )
    try:
        # Memory-mapped: a large replay buffer is copied into place without a second copy in memory.
        saved: dict[str, Any] = torch.load(local, map_location="cpu", weights_only=True, mmap=True)
    except Exception as error:  # torch raises RuntimeError, pickle and zip errors for a damaged file
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(
            f"checkpoint {source} cannot be read ({reason[:200]}): it is damaged, cut short, or not a checkpoint"
        ) from None
    if not isinstance(saved, dict):
        raise CheckpointError(f"checkpoint {source} is not a dict of state_dicts (got {type(saved).__name__})")
    warnings: list[str] = []
    for name, module in modules.items():
        if name == GLOBAL_STEP and reset_global_step:
            continue
        if name not in saved:
            warnings.append(f"{source}: no {name!r} entry; it keeps its fresh initialization")
            continue
        if isinstance(module, torch.optim.Optimizer):
            problem = _load_optimizer(module, saved[name])
        elif isinstance(module, nn.Module):
            problem = _load_module(module, saved[name])
        else:
            problem = module.load_saved(saved[name])
        if problem:
            warnings.append(f"{source}: {name!r} {problem}")
    for warning in warnings:
        logger.warning("%s", warning)
    return warnings


def _load_module(module: nn.Module, state: Mapping[str, torch.Tensor]) -> str:
    """Loads ``state`` (non-strict) unless a tensor's shape does not fit; returns a problem or ''."""
    own = module.state_dict()
    mismatched = [
        f"{key} {tuple(value.shape)} vs {tuple(own[key].shape)}"
        for key, value in state.items()
        if key in own and tuple(value.shape) != tuple(own[key].shape)
    ]
    if mismatched:
        return "does not fit this network (" + ", ".join(mismatched) + "); it keeps its fresh initialization"
    result = module.load_state_dict(state, strict=False)
    if result.missing_keys:
        return f"lacked {result.missing_keys}; those keep their fresh initialization"
    return ""


def _load_optimizer(optimizer: torch.optim.Optimizer, state: Mapping[str, Any]) -> str:
    """Loads an optimizer's state when its groups and per-parameter tensors fit; returns a problem or ''."""
    groups = state.get("param_groups", [])
    own_groups = optimizer.param_groups
    if len(groups) != len(own_groups) or any(
        len(saved["params"]) != len(own["params"]) for saved, own in zip(groups, own_groups)
    ):
        return "has different parameter groups; the optimizer starts afresh"
    parameters = [p for group in own_groups for p in group["params"]]
    saved_ids = [i for group in groups for i in group["params"]]
    per_parameter = state.get("state", {})
    for saved_id, parameter in zip(saved_ids, parameters):
        for key, value in per_parameter.get(saved_id, {}).items():
            if key != "step" and isinstance(value, torch.Tensor) and value.shape != parameter.shape:
                return f"state {key!r} does not fit its parameter; the optimizer starts afresh"
    optimizer.load_state_dict(dict(state))
    return ""
