"""Variable-length (entity) observations: ML-Agents' entity embedding and residual self-attention, padding masks,
invariance to the order of the entities and to padding, gradients."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional

from rayagents.configs.network import NetworkSettings
from rayagents.learner.attention import (
    ATTENTION_EMBEDDING_SIZE,
    EntityEmbedding,
    LayerNorm,
    ResidualSelfAttention,
    multi_head_attention,
    padding_mask,
)
from rayagents.learner.encoders import NetworkBody
from rayagents.protocol.types import DimensionProperty, ObservationSpec, ObservationType

SETTINGS = NetworkSettings(hidden_units=16, num_layers=1)


def entities(name: str, max_entities: int, entity_size: int) -> ObservationSpec:
    """A buffer sensor's observation spec."""
    return ObservationSpec(
        (max_entities, entity_size),
        (DimensionProperty.VARIABLE_SIZE, DimensionProperty.NONE),
        ObservationType.DEFAULT,
        name,
    )


def vector(name: str, size: int) -> ObservationSpec:
    """A vector observation spec."""
    return ObservationSpec((size,), (DimensionProperty.NONE,), ObservationType.DEFAULT, name)


def padded(real: torch.Tensor, max_entities: int) -> torch.Tensor:
    """``(batch, n, size)`` entities followed by rows of zeros up to ``max_entities``."""
    batch, n, size = real.shape
    return torch.cat([real, torch.zeros(batch, max_entities - n, size)], dim=1)


def nonzero(batch: int, n: int, size: int) -> torch.Tensor:
    """Random entities none of which looks like padding."""
    values = torch.randn(batch, n, size)
    return values + torch.sign(values) * 0.5


def test_padding_mask_marks_rows_whose_squares_sum_below_one_hundredth() -> None:
    ent = torch.tensor([[[0.0, 0.0], [0.05, 0.05], [0.1, 0.0], [1.0, -2.0]]])
    other = torch.tensor([[[3.0], [0.0]]])
    assert padding_mask([ent]).tolist() == [[1.0, 1.0, 0.0, 0.0]]  # 0.005 < 0.01 <= 0.01
    assert padding_mask([ent, other]).tolist() == [[1.0, 1.0, 0.0, 0.0, 0.0, 1.0]]


def test_layer_norm_has_no_parameters_and_normalizes_the_last_axis() -> None:
    x = torch.randn(3, 5, 7) * 4 + 2
    norm = LayerNorm()
    assert list(norm.parameters()) == []
    torch.testing.assert_close(norm(x), functional.layer_norm(x, (7,), eps=1e-5))


def test_multi_head_attention_is_scaled_dot_product_attention_per_head_scaled_by_the_whole_embedding() -> None:
    torch.manual_seed(0)
    batch, n, heads, embedding = 3, 5, 4, 16
    q, k, v = (torch.randn(batch, n, embedding) for _ in range(3))
    mask = torch.zeros(batch, n)
    mask[0, 3:] = 1.0
    mask[2, 0] = 1.0
    out = multi_head_attention(q, k, v, mask, heads, n, embedding)

    def split(x: torch.Tensor) -> torch.Tensor:
        return x.reshape(batch, n, heads, embedding // heads).transpose(1, 2)

    allowed = (mask == 0).reshape(batch, 1, 1, n)
    expected = functional.scaled_dot_product_attention(
        split(q), split(k), split(v), attn_mask=allowed, scale=1.0 / embedding**0.5
    )
    torch.testing.assert_close(out, expected.transpose(1, 2).reshape(batch, n, embedding))


def test_entity_encoder_has_mlagents_sizes() -> None:
    torch.manual_seed(0)
    body = NetworkBody((vector("Self", 6), entities("Others", 5, 4), entities("Walls", 3, 2)), SETTINGS)
    encoder = body.observation_encoder
    others, walls = encoder.processors[1], encoder.processors[2]
    assert isinstance(others, EntityEmbedding) and isinstance(walls, EntityEmbedding)
    # x_self (the fixed encodings through a layer of 128) is concatenated to every entity.
    assert encoder.self_encoder is not None
    assert encoder.self_encoder.layers[0].in_features == 6
    assert others.encoder[0].in_features == ATTENTION_EMBEDDING_SIZE + 4
    assert walls.encoder[0].in_features == ATTENTION_EMBEDDING_SIZE + 2
    assert others.encoder[0].out_features == ATTENTION_EMBEDDING_SIZE
    assert encoder.attention is not None and encoder.attention.max_entities == 8
    assert encoder.output_size == 6 + ATTENTION_EMBEDDING_SIZE
    out = body([torch.randn(4, 6), nonzero(4, 5, 4), nonzero(4, 3, 2)])
    assert out.shape == (4, 16)
    # T-Fixup initialization: normal times sqrt(0.125 / 128), zero bias.
    weight = encoder.attention.fc_q.weight
    assert weight.std().item() == pytest.approx((0.125 / ATTENTION_EMBEDDING_SIZE) ** 0.5, rel=0.1)
    assert torch.count_nonzero(encoder.attention.fc_q.bias) == 0


def test_without_fixed_observations_entities_are_embedded_alone() -> None:
    torch.manual_seed(0)
    body = NetworkBody((entities("Others", 5, 4),), SETTINGS)
    encoder = body.observation_encoder
    assert encoder.self_encoder is None
    assert encoder.processors[0].encoder[0].in_features == 4
    assert encoder.output_size == ATTENTION_EMBEDDING_SIZE
    assert body([nonzero(3, 5, 4)]).shape == (3, 16)


def test_the_pooled_vector_follows_the_fixed_encodings() -> None:
    torch.manual_seed(0)
    body = NetworkBody((entities("Others", 4, 3), vector("Self", 5)), SETTINGS)
    fixed = torch.randn(2, 5)
    features = body.observation_encoder([padded(nonzero(2, 2, 3), 4), fixed])
    assert features.shape == (2, 5 + ATTENTION_EMBEDDING_SIZE)
    torch.testing.assert_close(features[:, :5], fixed)
    # With every entity padding, the pooled average is zero.
    empty = body.observation_encoder([torch.zeros(2, 4, 3), fixed])
    torch.testing.assert_close(empty[:, 5:], torch.zeros(2, ATTENTION_EMBEDDING_SIZE))


@pytest.mark.parametrize("with_self", [True, False])
def test_output_does_not_depend_on_the_order_of_the_entities(with_self: bool) -> None:
    torch.manual_seed(0)
    specs = (vector("Self", 3), entities("Others", 6, 4), entities("Walls", 3, 2))
    body = NetworkBody(specs if with_self else specs[1:], SETTINGS)
    batch = 5
    others = padded(nonzero(batch, 4, 4), 6)
    walls = nonzero(batch, 3, 2)
    fixed = [torch.randn(batch, 3)] if with_self else []
    out = body([*fixed, others, walls])
    generator = torch.Generator().manual_seed(1)
    shuffled_others = torch.stack([o[torch.randperm(6, generator=generator)] for o in others])
    shuffled_walls = torch.stack([w[torch.randperm(3, generator=generator)] for w in walls])
    assert not torch.equal(shuffled_others, others)
    torch.testing.assert_close(body([*fixed, shuffled_others, shuffled_walls]), out, rtol=1e-5, atol=1e-5)
    # ... while the entities' values do matter.
    changed = others.clone()
    changed[:, 0] += 1.0
    assert not torch.allclose(body([*fixed, changed, walls]), out, atol=1e-4)


def test_padded_entities_are_ignored() -> None:
    torch.manual_seed(0)
    short = NetworkBody((vector("Self", 3), entities("Others", 3, 4)), SETTINGS)
    long = NetworkBody((vector("Self", 3), entities("Others", 7, 4)), SETTINGS)
    long.load_state_dict(short.state_dict())  # no weight depends on max_entities
    fixed, real = torch.randn(6, 3), nonzero(6, 3, 4)
    real[1, 2] = 0.0  # the second agent sees only two entities
    expected = short([fixed, real])
    torch.testing.assert_close(long([fixed, padded(real, 7)]), expected, rtol=1e-5, atol=1e-5)
    interleaved = torch.zeros(6, 7, 4)
    interleaved[:, [1, 4, 6]] = real
    torch.testing.assert_close(long([fixed, interleaved]), expected, rtol=1e-5, atol=1e-5)
    # A real entity where there was padding does change the output.
    extra = padded(real, 7)
    extra[:, 5] = 1.0
    assert not torch.allclose(long([fixed, extra]), expected, atol=1e-4)


def test_gradients_reach_every_parameter_of_the_attention_body() -> None:
    torch.manual_seed(0)
    body = NetworkBody((vector("Self", 3), entities("Others", 4, 4), entities("Walls", 2, 2)), SETTINGS)
    others = padded(nonzero(5, 3, 4), 4)
    body([torch.randn(5, 3), others, nonzero(5, 2, 2)]).pow(2).sum().backward()
    for name, parameter in body.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_residual_self_attention_pools_the_masked_mean_of_normalized_residuals() -> None:
    torch.manual_seed(0)
    attention = ResidualSelfAttention(max_entities=4)
    embeddings = torch.randn(2, 4, ATTENTION_EMBEDDING_SIZE)
    mask = torch.tensor([[0.0, 0.0, 1.0, 1.0], [0.0, 1.0, 0.0, 0.0]])
    norm = LayerNorm()
    x = norm(embeddings)
    q, k, v = attention.fc_q(x), attention.fc_k(x), attention.fc_v(x)
    attended = multi_head_attention(q, k, v, mask, 4, 4, ATTENTION_EMBEDDING_SIZE)
    residual = norm(attention.fc_out(attended) + x)
    keep = (1 - mask).unsqueeze(2)
    expected = (residual * keep).sum(1) / (keep.sum(1) + 1e-7)
    torch.testing.assert_close(attention(embeddings, mask), expected)
    assert sum(isinstance(m, nn.Linear) for m in attention.modules()) == 4
