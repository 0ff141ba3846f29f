"""Observation encoders: every sensor's observation in, one feature vector out.

A network body is an :class:`ObservationEncoder` (one input processor per sensor, concatenated) followed by a
:class:`LinearEncoder` (``num_layers`` fully connected layers of ``hidden_units`` with the Swish activation,
``x * sigmoid(x)`` = ``nn.SiLU``, as in ML-Agents). Vector observations are the only kind handled so far; the
seam for the others is :func:`input_processor`, which refuses visual and variable-length observations, and
:func:`check_network_settings`, which refuses recurrent memory, each naming the setting.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from rayagents.configs.network import ConditioningType, NetworkSettings
from rayagents.learner.normalizer import RunningNormalizer
from rayagents.protocol.types import ObservationSpec, ObservationType


def linear_layer(in_features: int, out_features: int, kernel_gain: float = 1.0) -> nn.Linear:
    """A linear layer initialized like ML-Agents': Kaiming-He normal weights times ``kernel_gain``, zero bias."""
    layer = nn.Linear(in_features, out_features)
    nn.init.kaiming_normal_(layer.weight, nonlinearity="linear")
    with torch.no_grad():
        layer.weight.mul_(kernel_gain)
    nn.init.zeros_(layer.bias)
    return layer


def check_network_settings(settings: NetworkSettings) -> None:
    """Raises NotImplementedError for network settings the learner does not support yet."""
    if settings.memory is not None:
        raise NotImplementedError(
            "network_settings.memory (a recurrent network) is not yet supported by rayagents; "
            "remove the memory section of the behavior's network_settings"
        )


def observation_tensor(observations: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """A batch of observations as a tensor on ``device``: uint8 images stay bytes (:func:`as_float` scales them in
    the network), everything else float32."""
    array = np.asarray(observations)
    return torch.as_tensor(array if array.dtype == np.uint8 else array.astype(np.float32, copy=False)).to(device)


def as_float(observations: torch.Tensor) -> torch.Tensor:
    """A sensor's observations as floats: uint8 images (kept as bytes from the player to here) scaled to [0, 1]."""
    if observations.dtype == torch.uint8:
        return observations.float() / 255.0
    return observations if observations.dtype == torch.float32 else observations.float()


class VectorInput(nn.Module):
    """A flat vector observation, normalized when ``network_settings.normalize`` is set."""

    def __init__(self, size: int, normalize: bool) -> None:
        super().__init__()
        self.size = size
        self.normalizer: RunningNormalizer | None = RunningNormalizer(size) if normalize else None

    def update_normalization(self, observations: torch.Tensor) -> None:
        """Folds ``(n, size)`` observations into the running statistics (nothing without a normalizer)."""
        if self.normalizer is not None:
            self.normalizer.update(observations)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        """The (normalized) observations, ``(batch, size)``."""
        if self.normalizer is not None:
            return self.normalizer(observations)
        return observations


def input_processor(spec: ObservationSpec, settings: NetworkSettings) -> VectorInput:
    """The module that turns one sensor's observations into features; only vector observations so far."""
    is_goal = spec.observation_type == ObservationType.GOAL_SIGNAL
    if is_goal and settings.goal_conditioning_type != ConditioningType.NONE:
        raise NotImplementedError(
            f"observation {spec.name!r} is a goal signal and network_settings.goal_conditioning_type is "
            f"{settings.goal_conditioning_type.value!r}: hypernetwork goal conditioning is not yet supported by "
            "rayagents; set goal_conditioning_type: none to feed goals to the network as ordinary inputs"
        )
    if len(spec.shape) == 1:
        return VectorInput(spec.shape[0], settings.normalize)
    if len(spec.shape) == 3:
        raise NotImplementedError(
            f"observation {spec.name!r} is visual (shape {spec.shape}): visual encoders "
            f"(network_settings.vis_encode_type {settings.vis_encode_type.value!r}) are not yet supported by rayagents"
        )
    raise NotImplementedError(
        f"observation {spec.name!r} has shape {spec.shape}: variable-length (entity) observations, which ML-Agents "
        "encodes with attention, are not yet supported by rayagents"
    )


class ObservationEncoder(nn.Module):
    """One input processor per sensor, in sensor order; their features are concatenated."""

    def __init__(self, specs: Sequence[ObservationSpec], settings: NetworkSettings) -> None:
        super().__init__()
        if not specs:
            raise ValueError("a behavior needs at least one observation to build a network")
        self.processors = nn.ModuleList([input_processor(spec, settings) for spec in specs])
        self.output_size = sum(processor.size for processor in self.processors)

    def update_normalization(self, observations: Sequence[torch.Tensor]) -> None:
        """Folds a batch of every sensor's observations into the normalizers."""
        for processor, obs in zip(self.processors, observations):
            processor.update_normalization(as_float(obs))

    def forward(self, observations: Sequence[torch.Tensor]) -> torch.Tensor:
        """The concatenated features, ``(batch, output_size)``."""
        if len(observations) != len(self.processors):
            raise ValueError(f"expected {len(self.processors)} observations, got {len(observations)}")
        features = [processor(as_float(obs)) for processor, obs in zip(self.processors, observations)]
        return features[0] if len(features) == 1 else torch.cat(features, dim=1)


class LinearEncoder(nn.Module):
    """``num_layers`` fully connected layers of ``hidden_units``, each followed by Swish (SiLU)."""

    def __init__(self, input_size: int, num_layers: int, hidden_units: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        size = input_size
        for _ in range(num_layers):
            layers.append(linear_layer(size, hidden_units))
            layers.append(nn.SiLU())
            size = hidden_units
        self.layers = nn.Sequential(*layers)
        self.output_size = size

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """The encoding, ``(batch, output_size)``."""
        return self.layers(inputs)


class NetworkBody(nn.Module):
    """Observations in, an encoding of ``hidden_units`` (or the raw features when ``num_layers`` is 0) out.

    With ``action_size`` > 0 (SAC's Q networks) the continuous actions are concatenated to the observations'
    features before the fully connected layers, as in ML-Agents."""

    def __init__(self, specs: Sequence[ObservationSpec], settings: NetworkSettings, action_size: int = 0) -> None:
        super().__init__()
        check_network_settings(settings)
        self.action_size = action_size
        self.observation_encoder = ObservationEncoder(specs, settings)
        self.linear_encoder = LinearEncoder(
            self.observation_encoder.output_size + action_size, settings.num_layers, settings.hidden_units
        )
        self.output_size = self.linear_encoder.output_size

    def update_normalization(self, observations: Sequence[torch.Tensor]) -> None:
        """Folds a batch of every sensor's observations into the normalizers."""
        self.observation_encoder.update_normalization(observations)

    @torch.no_grad()
    def copy_normalization(self, other: NetworkBody) -> None:
        """Takes ``other``'s normalizer statistics (SAC's critics normalize as the actor does)."""
        for mine, theirs in zip(self.observation_encoder.processors, other.observation_encoder.processors):
            source, target = getattr(theirs, "normalizer", None), getattr(mine, "normalizer", None)
            if source is not None and target is not None:
                target.load_state_dict(source.state_dict())

    def forward(self, observations: Sequence[torch.Tensor], actions: torch.Tensor | None = None) -> torch.Tensor:
        """The encoding, ``(batch, output_size)``; ``actions`` ``(batch, action_size)`` when the body takes them."""
        features = self.observation_encoder(observations)
        if self.action_size > 0:
            if actions is None:
                raise ValueError(f"this network body takes {self.action_size} continuous actions with its observations")
            features = torch.cat([features, actions], dim=1)
        return self.linear_encoder(features)
