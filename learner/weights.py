"""Policy weights as they travel from the learner to the EnvActors: one version number and plain numpy arrays.

A :class:`PolicyWeights` holds the actor's ``state_dict`` (parameters and buffers, the observation normalizer's
running statistics included) as numpy arrays, so Ray ships it through its object store without pickling torch
modules, and an EnvActor loads it into its own CPU copy of the actor. The learner makes one per weights version
(:func:`actor_weights`); :func:`load_actor_weights` checks names and shapes before it copies anything, so a
mismatched snapshot never leaves an actor half loaded.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import torch
from torch import nn

from rayagents.learner.acting import check_weights
from rayagents.protocol.weights import PolicyWeights

__all__ = ["PolicyWeights", "actor_weights", "load_actor_weights"]


def actor_weights(actor: nn.Module) -> dict[str, np.ndarray]:
    """The actor's parameters and buffers as numpy copies, by ``state_dict`` key."""
    return {name: tensor.detach().cpu().numpy().copy() for name, tensor in actor.state_dict().items()}


def load_actor_weights(actor: nn.Module, state: Mapping[str, np.ndarray]) -> None:
    """Copies ``state`` into ``actor``'s tensors; ValueError (and nothing copied) unless every key and shape fits."""
    own = actor.state_dict()
    check_weights({name: tuple(tensor.shape) for name, tensor in own.items()}, state)
    with torch.no_grad():
        for name, tensor in own.items():
            tensor.copy_(torch.tensor(np.asarray(state[name])))
