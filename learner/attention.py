"""Attention over variable-length observations (buffer sensors): entities in, one pooled vector out.

A sensor of shape ``(max_entities, entity_size)`` sends up to ``max_entities`` entities a step, padded with rows of
zeros. As in ML-Agents (``torch_entities/attention.py``, ``networks.py``), each entity is embedded to
:data:`ATTENTION_EMBEDDING_SIZE` by an :class:`EntityEmbedding` (Swish of a linear layer; with fixed observations
the agent's own encoding, ``x_self``, is concatenated to every entity first), the embeddings of all variable-length
sensors are concatenated along the entity axis, and one :class:`ResidualSelfAttention` (4 heads, parameter-free
layer norms, a residual connection) encodes them and averages them over the entities that are not padding. An entity
is padding when the sum of its squared values is below :data:`PADDING_THRESHOLD`; padding is masked out of the keys
and of the average, so the output ignores it and does not depend on the order of the entities.

Weights are initialized as ML-Agents does (T-Fixup): normal, times ``sqrt(0.125 / embedding_size)``, zero bias.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

ATTENTION_EMBEDDING_SIZE = 128
"""The embedding size of every entity and of the attention (ML-Agents' fixed ``ATTENTION_EMBEDDING_SIZE``)."""
NUM_HEADS = 4
"""Attention heads."""
PADDING_THRESHOLD = 0.01
"""An entity whose squared values sum to less than this is padding."""
MASKED_LOGIT = -1e6
"""The attention logit of a padded key: its weight after the softmax is zero."""
POOLING_EPSILON = 1e-7
"""Added to the count of real entities in the average, so that a step without entities gives zeros."""
LAYER_NORM_EPSILON = 1e-5
"""Added to the variance in :class:`LayerNorm`."""


def tfixup_linear(in_features: int, out_features: int, embedding_size: int) -> nn.Linear:
    """A linear layer initialized like ML-Agents' attention layers: normal weights times
    ``sqrt(0.125 / embedding_size)``, zero bias."""
    layer = nn.Linear(in_features, out_features)
    nn.init.normal_(layer.weight)
    with torch.no_grad():
        layer.weight.mul_((0.125 / embedding_size) ** 0.5)
    nn.init.zeros_(layer.bias)
    return layer


class LayerNorm(nn.Module):
    """Layer normalization over the last axis without a learned scale or shift (ML-Agents' ``LayerNorm``)."""

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """``(x - mean) / sqrt(variance + 1e-5)`` over the last axis, same shape."""
        mean = torch.mean(inputs, dim=-1, keepdim=True)
        variance = torch.mean((inputs - mean) ** 2, dim=-1, keepdim=True)
        return (inputs - mean) / torch.sqrt(variance + LAYER_NORM_EPSILON)


@torch.no_grad()
def padding_mask(entities: Sequence[torch.Tensor]) -> torch.Tensor:
    """1.0 for each padded entity, else 0.0: ``(batch, total entities)`` for ``(batch, max_entities, size)``
    tensors, concatenated in order."""
    masks = [(torch.sum(ent**2, dim=2) < PADDING_THRESHOLD).float() for ent in entities]
    return masks[0] if len(masks) == 1 else torch.cat(masks, dim=1)


class SelfEncoder(nn.Module):
    """The agent's fixed observations' encoding as ``x_self``: Swish of a linear layer to the embedding size."""

    def __init__(self, input_size: int, embedding_size: int = ATTENTION_EMBEDDING_SIZE) -> None:
        super().__init__()
        self.output_size = embedding_size
        self.layers = nn.Sequential(tfixup_linear(input_size, embedding_size, embedding_size), nn.SiLU())

    def forward(self, encoded: torch.Tensor) -> torch.Tensor:
        """``(batch, input_size)`` in, ``(batch, embedding_size)`` out."""
        return self.layers(encoded)


class EntityEmbedding(nn.Module):
    """The entities of one variable-length sensor, each embedded (with ``x_self`` when ``self_size`` > 0)."""

    def __init__(
        self, entity_size: int, max_entities: int, self_size: int, embedding_size: int = ATTENTION_EMBEDDING_SIZE
    ) -> None:
        super().__init__()
        self.entity_size = entity_size
        self.max_entities = max_entities
        self.self_size = self_size
        self.output_size = 0
        """What this processor adds to the fixed encodings: nothing (its entities reach them through attention)."""
        self.embedding_size = embedding_size
        self.encoder = nn.Sequential(tfixup_linear(self_size + entity_size, embedding_size, embedding_size), nn.SiLU())

    def forward(self, x_self: torch.Tensor | None, entities: torch.Tensor) -> torch.Tensor:
        """``(batch, max_entities, entity_size)`` entities (and ``x_self`` ``(batch, self_size)``) in,
        ``(batch, max_entities, embedding_size)`` out."""
        if self.self_size > 0:
            if x_self is None:
                raise ValueError("this entity embedding concatenates x_self to each entity, and none was given")
            one = x_self.reshape(-1, 1, self.self_size)
            repeated = torch.cat([one] * self.max_entities, dim=1)  # a Concat in ONNX (repeat would add Expand, Tile)
            entities = torch.cat([repeated, entities], dim=2)
        return self.encoder(entities)


def multi_head_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    mask: torch.Tensor,
    num_heads: int,
    n: int,
    embedding: int,
) -> torch.Tensor:
    """Scaled dot-product attention of ``(batch, n, embedding)`` queries, keys and values in ``num_heads`` heads,
    with the padded keys (``mask`` 1.0, ``(batch, n)``) masked out: ``(batch, n, embedding)``.

    ``n`` and ``embedding`` are Python ints so that the exported graph reshapes by constants. As in ML-Agents, the
    logits are scaled by ``1 / sqrt(embedding)`` (the whole embedding, not a head's), and a masked logit is replaced
    by :data:`MASKED_LOGIT`."""
    head_size = embedding // num_heads
    q = query.reshape(-1, n, num_heads, head_size).permute(0, 2, 1, 3)  # (b, h, n, e/h)
    k = key.reshape(-1, n, num_heads, head_size).permute(0, 2, 3, 1)  # (b, h, e/h, n)
    v = value.reshape(-1, n, num_heads, head_size).permute(0, 2, 1, 3)  # (b, h, n, e/h)
    logits = torch.matmul(q, k)  # (b, h, n, n)
    key_mask = mask.reshape(-1, 1, 1, n)
    logits = (1 - key_mask) * logits / (embedding**0.5) + key_mask * MASKED_LOGIT
    weights = torch.softmax(logits, dim=3)
    attended = torch.matmul(weights, v).permute(0, 2, 1, 3)  # (b, n, h, e/h)
    return attended.reshape(-1, n, embedding)


class ResidualSelfAttention(nn.Module):
    """Multi-head self-attention over entity embeddings with a residual connection, then the average over the
    entities that are not padding."""

    def __init__(
        self, max_entities: int | None, embedding_size: int = ATTENTION_EMBEDDING_SIZE, num_heads: int = NUM_HEADS
    ) -> None:
        super().__init__()
        if embedding_size % num_heads != 0:
            raise ValueError(f"the embedding size {embedding_size} must be a multiple of the {num_heads} heads")
        self.max_entities = max_entities
        """The entities of all variable-length sensors together; None: as many as each call brings (a network that
        is never exported, such as POCA's critic over a varying number of agents)."""
        self.num_heads = num_heads
        self.output_size = embedding_size
        self.fc_q = tfixup_linear(embedding_size, embedding_size, embedding_size)
        self.fc_k = tfixup_linear(embedding_size, embedding_size, embedding_size)
        self.fc_v = tfixup_linear(embedding_size, embedding_size, embedding_size)
        self.fc_out = tfixup_linear(embedding_size, embedding_size, embedding_size)
        self.embedding_norm = LayerNorm()
        self.residual_norm = LayerNorm()

    def forward(self, embeddings: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``(batch, max_entities, embedding_size)`` embeddings and their ``(batch, max_entities)`` padding mask in,
        ``(batch, embedding_size)`` out."""
        entities = self.max_entities if self.max_entities is not None else int(embeddings.shape[1])
        inputs = self.embedding_norm(embeddings)
        query, key, value = self.fc_q(inputs), self.fc_k(inputs), self.fc_v(inputs)
        attended = multi_head_attention(query, key, value, mask, self.num_heads, entities, self.output_size)
        outputs = self.residual_norm(self.fc_out(attended) + inputs)
        keep = 1 - mask
        total = torch.sum(outputs * keep.reshape(-1, entities, 1), dim=1)
        return total / (torch.sum(keep, dim=1, keepdim=True) + POOLING_EPSILON)
