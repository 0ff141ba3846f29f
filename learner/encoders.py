"""Observation encoders: every sensor's observation in, one feature vector out.

A network body is an :class:`ObservationEncoder` followed by fully connected layers, as ML-Agents builds it
(``torch_entities/networks.py``, ``utils.py``). The observation encoder has one input processor per sensor, in
sensor order (:func:`input_processor`): a vector observation is passed through (normalized with
``network_settings.normalize``), a visual one (``(C, H, W)``) is encoded to ``hidden_units`` by the
``vis_encode_type`` encoder (:mod:`rayagents.learner.visual_encoders`), and a variable-length one
(``(max_entities, entity_size)``) is embedded entity by entity (:mod:`rayagents.learner.attention`). The fixed
encodings are concatenated in sensor order; when there are variable-length observations, one residual
self-attention over all their entities (with the fixed encodings as ``x_self``) adds a pooled vector of 128 after
them. The fully connected layers are a :class:`LinearEncoder` (``num_layers`` of ``hidden_units`` with the Swish
activation, ``x * sigmoid(x)`` = ``nn.SiLU``), or, with goal-signal observations and ``goal_conditioning_type:
hyper``, a :class:`~rayagents.learner.conditioning.ConditionalEncoder` conditioned on the goals' encodings.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from rayagents.configs import ConfigError
from rayagents.configs.network import ConditioningType, NetworkSettings
from rayagents.learner.attention import (
    ATTENTION_EMBEDDING_SIZE,
    EntityEmbedding,
    ResidualSelfAttention,
    SelfEncoder,
    padding_mask,
)
from rayagents.learner.conditioning import ConditionalEncoder
from rayagents.learner.layers import linear_layer
from rayagents.learner.normalizer import RunningNormalizer
from rayagents.learner.visual_encoders import VisualEncoder, visual_encoder
from rayagents.protocol.types import DimensionProperty, ObservationSpec, ObservationType


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
        self.output_size = size
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


InputProcessor = VectorInput | VisualEncoder | EntityEmbedding
"""What turns one sensor's observations into features."""


def is_variable_length(spec: ObservationSpec) -> bool:
    """Whether ``spec`` is a buffer sensor's ``(max_entities, entity_size)`` observation (VARIABLE_SIZE on axis 0)."""
    return (
        len(spec.shape) == 2
        and len(spec.dimension_property) == 2
        and bool(spec.dimension_property[0] & DimensionProperty.VARIABLE_SIZE)
    )


def input_processor(spec: ObservationSpec, settings: NetworkSettings, self_size: int = 0) -> InputProcessor:
    """The module that turns one sensor's observations into features: a :class:`VectorInput` for ``(length,)``,
    the ``vis_encode_type`` encoder (``hidden_units`` features) for ``(C, H, W)``, an :class:`EntityEmbedding` for
    ``(max_entities, entity_size)`` (``self_size``: the size of ``x_self`` concatenated to each entity, 0 when
    the behavior has no fixed observations)."""
    if len(spec.shape) == 1:
        return VectorInput(spec.shape[0], settings.normalize)
    if len(spec.shape) == 3:
        return visual_encoder(spec, settings.vis_encode_type, settings.hidden_units)
    if is_variable_length(spec):
        max_entities, entity_size = spec.shape
        return EntityEmbedding(entity_size, max_entities, self_size)
    raise ConfigError(
        f"observation {spec.name!r} has shape {spec.shape} and dimension properties "
        f"{[int(p) for p in spec.dimension_property]}, which no encoder takes: a sensor must be a vector "
        "(length,), an image (C, H, W), or a buffer sensor (max_entities, entity_size) with VARIABLE_SIZE on axis 0"
    )


class ObservationEncoder(nn.Module):
    """One input processor per sensor, in sensor order. The fixed observations' features are concatenated; with
    variable-length observations, a residual self-attention over their entities adds a pooled vector after them.

    ``goal_size`` is the size of the goal signals' features (the fixed ones), which :meth:`encode` returns apart
    for goal conditioning."""

    def __init__(self, specs: Sequence[ObservationSpec], settings: NetworkSettings) -> None:
        super().__init__()
        if not specs:
            raise ValueError("a behavior needs at least one observation to build a network")
        fixed = {i: input_processor(spec, settings) for i, spec in enumerate(specs) if not is_variable_length(spec)}
        fixed_size = sum(processor.output_size for processor in fixed.values())
        self_size = ATTENTION_EMBEDDING_SIZE if fixed_size > 0 else 0
        self.processors = nn.ModuleList(
            [fixed[i] if i in fixed else input_processor(spec, settings, self_size) for i, spec in enumerate(specs)]
        )
        self.fixed_indices = tuple(sorted(fixed))
        self.entity_indices = tuple(i for i in range(len(specs)) if i not in fixed)
        self.self_encoder: SelfEncoder | None = None
        self.attention: ResidualSelfAttention | None = None
        if self.entity_indices:
            if self_size > 0:
                self.self_encoder = SelfEncoder(fixed_size)
            self.attention = ResidualSelfAttention(sum(specs[i].shape[0] for i in self.entity_indices))
        self.output_size = fixed_size + (self.attention.output_size if self.attention is not None else 0)
        goals = [i for i, spec in enumerate(specs) if spec.observation_type == ObservationType.GOAL_SIGNAL]
        self.goal_indices = tuple(i for i in goals if i in fixed)
        self.goal_size = sum(fixed[i].output_size for i in self.goal_indices)
        self.variable_length_goals = tuple(specs[i].name for i in goals if i not in fixed)

    def update_normalization(self, observations: Sequence[torch.Tensor]) -> None:
        """Folds a batch of every sensor's observations into the normalizers (vector observations only)."""
        for processor, obs in zip(self.processors, observations):
            if isinstance(processor, VectorInput):
                processor.update_normalization(as_float(obs))

    def encode(self, observations: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The concatenated features ``(batch, output_size)`` and the goal signals' features ``(batch, goal_size)``
        (None without goal signals)."""
        if len(observations) != len(self.processors):
            raise ValueError(f"expected {len(self.processors)} observations, got {len(observations)}")
        features = {i: self.processors[i](as_float(observations[i])) for i in self.fixed_indices}
        parts = [features[i] for i in self.fixed_indices]
        if self.attention is not None:
            entities = [as_float(observations[i]) for i in self.entity_indices]
            fixed = torch.cat(parts, dim=1) if parts else None
            x_self = self.self_encoder(fixed) if self.self_encoder is not None and fixed is not None else None
            embeddings = [self.processors[i](x_self, ent) for i, ent in zip(self.entity_indices, entities)]
            stacked = embeddings[0] if len(embeddings) == 1 else torch.cat(embeddings, dim=1)
            parts.append(self.attention(stacked, padding_mask(entities)))
        encoding = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
        goals = [features[i] for i in self.goal_indices]
        goal_encoding = None if not goals else goals[0] if len(goals) == 1 else torch.cat(goals, dim=1)
        return encoding, goal_encoding

    def forward(self, observations: Sequence[torch.Tensor]) -> torch.Tensor:
        """The concatenated features, ``(batch, output_size)``."""
        return self.encode(observations)[0]


class LinearEncoder(nn.Module):
    """``num_layers`` fully connected layers of ``hidden_units``, each followed by Swish (SiLU); every layer's initial
    weights are scaled by ``kernel_gain`` (ML-Agents' ``LinearEncoder``)."""

    def __init__(self, input_size: int, num_layers: int, hidden_units: int, kernel_gain: float = 1.0) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        size = input_size
        for _ in range(num_layers):
            layers.append(linear_layer(size, hidden_units, kernel_gain))
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
    features before the fully connected layers, as in ML-Agents. With goal signals and ``goal_conditioning_type:
    hyper`` the fully connected layers are a :class:`ConditionalEncoder` (``conditional_encoder``), otherwise a
    :class:`LinearEncoder` (``linear_encoder``)."""

    def __init__(self, specs: Sequence[ObservationSpec], settings: NetworkSettings, action_size: int = 0) -> None:
        super().__init__()
        self.action_size = action_size
        self.observation_encoder = ObservationEncoder(specs, settings)
        input_size = self.observation_encoder.output_size + action_size
        self.linear_encoder: LinearEncoder | None = None
        self.conditional_encoder: ConditionalEncoder | None = None
        hyper = settings.goal_conditioning_type == ConditioningType.HYPER
        if hyper and self.observation_encoder.goal_size > 0:
            if self.observation_encoder.variable_length_goals:
                raise ConfigError(
                    f"goal signal observations {list(self.observation_encoder.variable_length_goals)} are "
                    "variable-length, which a hypernetwork cannot be conditioned on (nor can ML-Agents'): set "
                    "network_settings.goal_conditioning_type: none to feed the goals to the network as inputs"
                )
            self.conditional_encoder = ConditionalEncoder(
                input_size, self.observation_encoder.goal_size, settings.hidden_units, settings.num_layers
            )
            self.output_size = self.conditional_encoder.output_size
        else:
            self.linear_encoder = LinearEncoder(input_size, settings.num_layers, settings.hidden_units)
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
        features, goals = self.observation_encoder.encode(observations)
        if self.action_size > 0:
            if actions is None:
                raise ValueError(f"this network body takes {self.action_size} continuous actions with its observations")
            features = torch.cat([features, actions], dim=1)
        if self.conditional_encoder is not None:
            assert goals is not None  # the conditional encoder exists only with goal signals
            return self.conditional_encoder(features, goals)
        assert self.linear_encoder is not None
        return self.linear_encoder(features)
