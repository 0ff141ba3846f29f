"""Layers initialized as ML-Agents initializes them."""

from __future__ import annotations

import torch
from torch import nn


def linear_layer(in_features: int, out_features: int, kernel_gain: float = 1.0) -> nn.Linear:
    """A linear layer initialized like ML-Agents': Kaiming-He normal weights times ``kernel_gain``, zero bias."""
    layer = nn.Linear(in_features, out_features)
    nn.init.kaiming_normal_(layer.weight, nonlinearity="linear")
    with torch.no_grad():
        layer.weight.mul_(kernel_gain)
    nn.init.zeros_(layer.bias)
    return layer
