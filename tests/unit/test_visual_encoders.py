"""Visual encoders (``vis_encode_type``): ML-Agents' layers and sizes, the minimum camera size, uint8 images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from rayagents.configs import ConfigError
from rayagents.configs.network import EncoderType, NetworkSettings
from rayagents.learner.encoders import NetworkBody, observation_tensor
from rayagents.learner.visual_encoders import RELU_GAIN, visual_encoder
from rayagents.protocol.types import DimensionProperty, ObservationSpec, ObservationType

CAMERA_PROPERTIES = (
    DimensionProperty.NONE,
    DimensionProperty.TRANSLATIONAL_EQUIVARIANCE,
    DimensionProperty.TRANSLATIONAL_EQUIVARIANCE,
)


def camera(name: str, channels: int, height: int, width: int) -> ObservationSpec:
    """A visual observation spec, channels first."""
    return ObservationSpec((channels, height, width), CAMERA_PROPERTIES, ObservationType.DEFAULT, name)


def vector(name: str, size: int) -> ObservationSpec:
    """A vector observation spec."""
    return ObservationSpec((size,), (DimensionProperty.NONE,), ObservationType.DEFAULT, name)


def conv_specs(module: nn.Module) -> list[tuple[int, int, int, int, int]]:
    """(in channels, out channels, kernel, stride, padding) of each convolution, in order."""
    return [
        (m.in_channels, m.out_channels, m.kernel_size[0], m.stride[0], m.padding[0])  # type: ignore[misc]
        for m in module.modules()
        if isinstance(m, nn.Conv2d)
    ]


def dense_of(module: nn.Module) -> nn.Linear:
    """The encoder's one linear layer."""
    (linear,) = [m for m in module.modules() if isinstance(m, nn.Linear)]
    return linear


RESNET_CONVS = [
    (3, 16, 3, 1, 1), (16, 16, 3, 1, 1), (16, 16, 3, 1, 1), (16, 16, 3, 1, 1), (16, 16, 3, 1, 1),
    (16, 32, 3, 1, 1), (32, 32, 3, 1, 1), (32, 32, 3, 1, 1), (32, 32, 3, 1, 1), (32, 32, 3, 1, 1),
    (32, 32, 3, 1, 1), (32, 32, 3, 1, 1), (32, 32, 3, 1, 1), (32, 32, 3, 1, 1), (32, 32, 3, 1, 1),
]  # fmt: skip
"""resnet: per stack a conv then two residual blocks of two convs each."""

LAYERS_AT_84 = {
    EncoderType.FULLY_CONNECTED: ([], 3 * 84 * 84),
    EncoderType.MATCH3: ([(3, 35, 3, 1, 0), (35, 144, 3, 1, 0)], 144 * 80 * 80),
    EncoderType.SIMPLE: ([(3, 16, 8, 4, 0), (16, 32, 4, 2, 0)], 32 * 9 * 9),
    EncoderType.NATURE_CNN: ([(3, 32, 8, 4, 0), (32, 64, 4, 2, 0), (64, 64, 3, 1, 0)], 64 * 7 * 7),
    EncoderType.RESNET: (RESNET_CONVS, 32 * 9 * 9),
}
"""ML-Agents' convolutions and the dense layer's input size for a 3x84x84 camera."""


@pytest.mark.parametrize("encoder_type", list(EncoderType), ids=lambda t: t.value)
def test_encoders_have_mlagents_layers(encoder_type: EncoderType) -> None:
    torch.manual_seed(0)
    encoder = visual_encoder(camera("Eyes", 3, 84, 84), encoder_type, 8)
    convs, flat = LAYERS_AT_84[encoder_type]
    assert conv_specs(encoder) == convs
    dense = dense_of(encoder)
    assert (dense.in_features, dense.out_features) == (flat, 8)
    # Kaiming-He normal (linear) times 1.41, zero bias: std 1.41 / sqrt(fan_in).
    assert torch.count_nonzero(dense.bias) == 0
    assert dense.weight.std().item() == pytest.approx(RELU_GAIN / flat**0.5, rel=0.15)
    if encoder_type == EncoderType.RESNET:
        assert sum(isinstance(m, nn.MaxPool2d) for m in encoder.modules()) == 3


@pytest.mark.parametrize("encoder_type", list(EncoderType), ids=lambda t: t.value)
@pytest.mark.parametrize("size", ["minimum", "typical"])
def test_encoder_output_is_batch_by_hidden_units(encoder_type: EncoderType, size: str) -> None:
    side = encoder_type.min_resolution if size == "minimum" else 84
    torch.manual_seed(0)
    encoder = visual_encoder(camera("Eyes", 2, side, side + 3), encoder_type, 24)
    out = encoder(torch.rand(5, 2, side, side + 3))
    assert out.shape == (5, 24) and encoder.output_size == 24
    assert torch.isfinite(out).all()
    assert out.std(dim=0).max() > 0  # different images, different features


@pytest.mark.parametrize("encoder_type", [t for t in EncoderType if t.min_resolution > 1], ids=lambda t: t.value)
def test_a_camera_smaller_than_the_encoder_takes_is_refused_naming_sensor_and_minimum(
    encoder_type: EncoderType,
) -> None:
    minimum = encoder_type.min_resolution
    settings = NetworkSettings(vis_encode_type=encoder_type, hidden_units=8)
    for height, width in ((minimum - 1, 84), (84, minimum - 1)):
        spec = camera("FrontCamera", 3, height, width)
        with pytest.raises(ConfigError) as error:
            NetworkBody((vector("Speed", 2), spec), settings)
        message = str(error.value)
        assert "'FrontCamera'" in message
        assert f"{minimum}x{minimum}" in message and encoder_type.value in message
        assert str(spec.shape) in message
        assert "fully_connected" in message  # an encoder that fits is suggested
    NetworkBody((vector("Speed", 2), camera("FrontCamera", 3, minimum, minimum)), settings)  # the minimum is fine


@pytest.mark.parametrize("encoder_type", list(EncoderType), ids=lambda t: t.value)
def test_uint8_and_float_images_give_the_same_features(encoder_type: EncoderType) -> None:
    torch.manual_seed(0)
    spec = camera("Eyes", 3, 36, 40)
    body = NetworkBody((spec, vector("Speed", 2)), NetworkSettings(vis_encode_type=encoder_type, hidden_units=16))
    pixels = np.random.default_rng(0).integers(0, 256, size=(6, 3, 36, 40), dtype=np.uint8)
    speed = torch.randn(6, 2)
    as_bytes = observation_tensor(pixels)
    assert as_bytes.dtype == torch.uint8  # images stay bytes until the network
    from_bytes = body.observation_encoder([as_bytes, speed])
    from_floats = body.observation_encoder([torch.as_tensor(pixels.astype(np.float32) / 255.0), speed])
    torch.testing.assert_close(from_bytes, from_floats)
    torch.testing.assert_close(body([as_bytes, speed]), body([torch.as_tensor(pixels / 255.0), speed]))


def test_images_are_not_normalized_and_fixed_features_are_concatenated_in_sensor_order() -> None:
    torch.manual_seed(0)
    settings = NetworkSettings(normalize=True, hidden_units=16)
    specs = (vector("A", 3), camera("Eyes", 1, 20, 20), vector("B", 2))
    body = NetworkBody(specs, settings)
    assert body.observation_encoder.output_size == 3 + 16 + 2
    assert [key for key in body.state_dict() if "normalizer.mean" in key] == [
        "observation_encoder.processors.0.normalizer.mean",
        "observation_encoder.processors.2.normalizer.mean",
    ]
    images = torch.rand(8, 1, 20, 20)
    obs = [torch.randn(8, 3), images, torch.randn(8, 2)]
    before = body.observation_encoder(obs)
    body.update_normalization([torch.randn(50, 3) * 5 + 4, torch.rand(50, 1, 20, 20) * 100, torch.randn(50, 2) + 9])
    after = body.observation_encoder(obs)
    torch.testing.assert_close(after[:, 3:19], before[:, 3:19])  # the image features did not move
    torch.testing.assert_close(after[:, 3:19], body.observation_encoder.processors[1](images))
    assert not torch.allclose(after[:, :3], before[:, :3])  # the vectors' did


@pytest.mark.parametrize("encoder_type", list(EncoderType), ids=lambda t: t.value)
def test_gradients_reach_every_visual_encoder_parameter(encoder_type: EncoderType) -> None:
    torch.manual_seed(0)
    side = max(encoder_type.min_resolution, 20)
    body = NetworkBody((camera("Eyes", 3, side, side),), NetworkSettings(vis_encode_type=encoder_type, hidden_units=8))
    images = torch.as_tensor(np.random.default_rng(1).integers(0, 256, size=(4, 3, side, side), dtype=np.uint8))
    body([images]).pow(2).sum().backward()
    for name, parameter in body.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
