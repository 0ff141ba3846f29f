"""Goal conditioning: ``goal_conditioning_type: hyper`` builds ML-Agents' ConditionalEncoder with a HyperNetwork as
its last layer; ``none`` feeds the goals as ordinary inputs."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from rayagents.configs import ConfigError
from rayagents.configs.network import ConditioningType, NetworkSettings
from rayagents.learner.attention import ATTENTION_EMBEDDING_SIZE, LayerNorm
from rayagents.learner.conditioning import ConditionalEncoder, HyperNetwork
from rayagents.learner.encoders import NetworkBody
from rayagents.learner.networks import Actor
from rayagents.protocol.types import ActionSpec, DimensionProperty, ObservationSpec, ObservationType

GOAL = ObservationType.GOAL_SIGNAL


def vector(name: str, size: int, kind: ObservationType = ObservationType.DEFAULT) -> ObservationSpec:
    """A vector observation spec."""
    return ObservationSpec((size,), (DimensionProperty.NONE,), kind, name)


def entities(name: str, max_entities: int, entity_size: int, kind: ObservationType) -> ObservationSpec:
    """A buffer sensor's observation spec."""
    properties = (DimensionProperty.VARIABLE_SIZE, DimensionProperty.NONE)
    return ObservationSpec((max_entities, entity_size), properties, kind, name)


def test_hyper_builds_a_conditional_encoder_whose_last_layer_is_a_hypernetwork() -> None:
    torch.manual_seed(0)
    specs = (vector("Position", 4), vector("Goal", 3, GOAL), vector("Other", 2))
    body = NetworkBody(specs, NetworkSettings(hidden_units=16, num_layers=3))
    assert body.linear_encoder is None and body.conditional_encoder is not None
    layers = list(body.conditional_encoder.layers)
    assert [type(layer) for layer in layers] == [nn.Linear, nn.SiLU, nn.Linear, nn.SiLU, HyperNetwork, nn.SiLU]
    # The goals are also ordinary inputs: the first layer takes every observation.
    assert body.observation_encoder.goal_size == 3
    assert layers[0].in_features == 4 + 3 + 2
    hyper = layers[4]
    assert isinstance(hyper, HyperNetwork) and (hyper.input_size, hyper.output_size) == (16, 16)
    kinds = [type(m) for m in hyper.hypernet]
    assert kinds == [nn.Linear, nn.SiLU, nn.Linear, nn.SiLU, LayerNorm, nn.Linear]
    assert (hyper.hypernet[0].in_features, hyper.hypernet[0].out_features) == (3, 16)
    assert (hyper.hypernet[5].in_features, hyper.hypernet[5].out_features) == (16, 16 * 16)
    bound = math.sqrt(1.0 / (16 * 16))
    assert hyper.hypernet[5].weight.abs().max() <= bound
    assert hyper.hypernet[5].weight.abs().max() > 0.9 * bound  # uniform over the whole bound
    assert torch.count_nonzero(hyper.bias) == 0 and torch.count_nonzero(hyper.hypernet[5].bias) == 0
    assert body([torch.randn(7, 4), torch.randn(7, 3), torch.randn(7, 2)]).shape == (7, 16)
    assert body.output_size == 16


def test_none_feeds_goals_as_inputs_to_a_linear_encoder() -> None:
    specs = (vector("Position", 4), vector("Goal", 3, GOAL))
    body = NetworkBody(specs, NetworkSettings(hidden_units=8, goal_conditioning_type=ConditioningType.NONE))
    assert body.conditional_encoder is None and body.linear_encoder is not None
    assert body.linear_encoder.layers[0].in_features == 7
    plain = NetworkBody((vector("Position", 4),), NetworkSettings(hidden_units=8))
    assert plain.conditional_encoder is None and plain.linear_encoder is not None


def test_hypernetwork_computes_each_agents_weights_from_its_goal() -> None:
    torch.manual_seed(0)
    hyper = HyperNetwork(input_size=5, output_size=4, goal_size=3, hidden_size=8)
    with torch.no_grad():
        hyper.bias.copy_(torch.randn(4))
    inputs, goals = torch.randn(6, 5), torch.randn(6, 3)
    out = hyper(inputs, goals)
    for i in range(6):
        weights = hyper.hypernet(goals[i : i + 1]).reshape(5, 4)
        torch.testing.assert_close(out[i], inputs[i] @ weights + hyper.bias)
    # The goal changes the layer: same inputs, another goal, another output.
    assert not torch.allclose(hyper(inputs, goals.flip(0)), out)


def test_conditional_encoder_output_depends_on_the_goal_multiplicatively() -> None:
    torch.manual_seed(0)
    encoder = ConditionalEncoder(input_size=6, goal_size=2, hidden_size=8, num_layers=2)
    inputs = torch.randn(4, 6)
    first = encoder(inputs, torch.tensor([[1.0, 0.0]] * 4))
    second = encoder(inputs, torch.tensor([[0.0, 1.0]] * 4))
    assert first.shape == (4, 8) and not torch.allclose(first, second)
    # Per agent: a batch gives each agent what it would get alone.
    goals = torch.randn(4, 2)
    together = encoder(inputs, goals)
    for i in range(4):
        torch.testing.assert_close(together[i : i + 1], encoder(inputs[i : i + 1], goals[i : i + 1]))
    assert ConditionalEncoder(6, 2, 8, num_layers=0).output_size == 6


def test_gradients_reach_the_hypernetwork_and_every_body_parameter() -> None:
    torch.manual_seed(0)
    specs = (vector("Position", 4), vector("Goal", 3, GOAL))
    body = NetworkBody(specs, NetworkSettings(hidden_units=8, num_layers=2))
    body([torch.randn(5, 4), torch.randn(5, 3)]).pow(2).sum().backward()
    for name, parameter in body.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_q_network_bodies_take_actions_and_goals() -> None:
    torch.manual_seed(0)
    specs = (vector("Position", 4), vector("Goal", 3, GOAL))
    body = NetworkBody(specs, NetworkSettings(hidden_units=8, num_layers=2), action_size=2)
    assert body.conditional_encoder is not None
    assert body.conditional_encoder.layers[0].in_features == 4 + 3 + 2
    assert body([torch.randn(5, 4), torch.randn(5, 3)], torch.randn(5, 2)).shape == (5, 8)


def test_goals_with_entities_and_normalization() -> None:
    torch.manual_seed(0)
    specs = (
        vector("Position", 4),
        entities("Others", 3, 2, ObservationType.DEFAULT),
        vector("Goal", 2, GOAL),
    )
    body = NetworkBody(specs, NetworkSettings(hidden_units=8, num_layers=1, normalize=True))
    assert body.observation_encoder.goal_size == 2
    hyper = body.conditional_encoder.layers[0] if body.conditional_encoder is not None else None
    assert isinstance(hyper, HyperNetwork) and hyper.input_size == 4 + 2 + ATTENTION_EMBEDDING_SIZE
    goals = torch.randn(5, 2) * 10 + 30
    obs = [torch.randn(5, 4), torch.randn(5, 3, 2), goals]
    before = body(obs)
    body.update_normalization([torch.randn(100, 4), torch.randn(100, 3, 2), torch.randn(100, 2) * 10 + 30])
    assert not torch.allclose(body(obs), before)  # the goal (and the vector) normalizers moved
    normalized_goal = body.observation_encoder.processors[2](goals)
    _, goal_encoding = body.observation_encoder.encode(obs)
    assert goal_encoding is not None
    torch.testing.assert_close(goal_encoding, normalized_goal)


def test_variable_length_goals_cannot_condition_a_hypernetwork() -> None:
    specs = (vector("Position", 4), vector("Goal", 2, GOAL), entities("Targets", 3, 2, GOAL))
    with pytest.raises(ConfigError, match=r"'Targets'.*goal_conditioning_type: none"):
        NetworkBody(specs, NetworkSettings(hidden_units=8))
    NetworkBody(specs, NetworkSettings(hidden_units=8, goal_conditioning_type=ConditioningType.NONE))
    # As in ML-Agents, goals that are only variable-length add no goal encoding: a plain body.
    only = NetworkBody((vector("Position", 4), entities("Targets", 3, 2, GOAL)), NetworkSettings(hidden_units=8))
    assert only.conditional_encoder is None


def test_a_goal_conditioned_actor_acts() -> None:
    torch.manual_seed(0)
    specs = (vector("Position", 4), vector("Goal", 3, GOAL))
    actor = Actor(specs, ActionSpec(2, (3,)), NetworkSettings(hidden_units=8))
    sample = actor.act([torch.randn(6, 4), torch.randn(6, 3)])
    assert sample.continuous.shape == (6, 2) and sample.discrete.shape == (6, 1)
