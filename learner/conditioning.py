"""Goal conditioning by hypernetwork (``goal_conditioning_type: hyper``), as ML-Agents' ``torch_entities/
conditioning.py`` builds it.

When a behavior has goal-signal observations, the network body's fully connected layers are a
:class:`ConditionalEncoder`: ``num_layers`` layers of ``hidden_units`` with Swish, the last of which is a
:class:`HyperNetwork`: a layer whose weights are computed from the goals' encoding for each agent (a two-layer
network of ``hidden_units`` with Swish, a parameter-free layer norm, then a linear layer to every weight), and whose
bias is an ordinary parameter. The goals are also ordinary inputs of the body, as in ML-Agents.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from rayagents.learner.attention import LayerNorm
from rayagents.learner.layers import linear_layer

HYPER_LAYERS = 2
"""Hidden layers of each hypernetwork (ML-Agents' ``num_layers=2``)."""
CONDITIONAL_LAYERS = 1
"""How many of the body's last layers are hypernetworks (ML-Agents' ``num_conditional_layers=1``)."""


class HyperNetwork(nn.Module):
    """A fully connected layer ``input_size -> output_size`` whose weight matrix is generated from ``goals``."""

    def __init__(self, input_size: int, output_size: int, goal_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size = input_size
        self.output_size = output_size
        layers: list[nn.Module] = []
        size = goal_size
        for _ in range(HYPER_LAYERS):
            layers += [linear_layer(size, hidden_size), nn.SiLU()]
            size = hidden_size
        weights = linear_layer(hidden_size, input_size * output_size)
        bound = math.sqrt(1.0 / (hidden_size * input_size))
        nn.init.uniform_(weights.weight, -bound, bound)
        self.hypernet = nn.Sequential(*layers, LayerNorm(), weights)
        self.bias = nn.Parameter(torch.zeros(output_size))

    def forward(self, inputs: torch.Tensor, goals: torch.Tensor) -> torch.Tensor:
        """``(batch, input_size)`` inputs and ``(batch, goal_size)`` goal encodings in, ``(batch, output_size)`` out."""
        weights = self.hypernet(goals).reshape(-1, self.input_size, self.output_size)
        return torch.bmm(inputs.unsqueeze(1), weights).reshape(-1, self.output_size) + self.bias


class ConditionalEncoder(nn.Module):
    """``num_layers`` fully connected layers of ``hidden_size`` with Swish; the last ``conditional_layers`` of them
    are hypernetworks conditioned on the goals."""

    def __init__(
        self,
        input_size: int,
        goal_size: int,
        hidden_size: int,
        num_layers: int,
        conditional_layers: int = CONDITIONAL_LAYERS,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        size = input_size
        for index in range(num_layers):
            if num_layers - index <= conditional_layers:
                layers.append(HyperNetwork(size, hidden_size, goal_size, hidden_size))
            else:
                layers.append(linear_layer(size, hidden_size))
            layers.append(nn.SiLU())
            size = hidden_size
        self.layers = nn.ModuleList(layers)
        self.output_size = size

    def forward(self, inputs: torch.Tensor, goals: torch.Tensor) -> torch.Tensor:
        """``(batch, input_size)`` inputs and ``(batch, goal_size)`` goal encodings in, ``(batch, output_size)`` out."""
        activation = inputs
        for layer in self.layers:
            activation = layer(activation, goals) if isinstance(layer, HyperNetwork) else layer(activation)
        return activation
