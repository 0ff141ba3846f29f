"""Visual encoders: a camera's ``(batch, C, H, W)`` float images in, ``(batch, hidden_units)`` features out.

One encoder per ``network_settings.vis_encode_type``, each built as ML-Agents builds it (``torch_entities/
encoders.py``): convolutions with torch's default initialization and LeakyReLU (slope 0.01), then one dense layer
to ``hidden_units`` whose weights are Kaiming-He normal times 1.41 (ML-Agents' "ReLU gain") with a zero bias:

- ``fully_connected``: the flattened image, dense, LeakyReLU (any size: minimum 1x1).
- ``match3``: conv 35 3x3/1, conv 144 3x3/1, dense, LeakyReLU (minimum 5x5).
- ``simple``: conv 16 8x8/4, conv 32 4x4/2, dense, LeakyReLU (minimum 20x20).
- ``nature_cnn``: conv 32 8x8/4, conv 64 4x4/2, conv 64 3x3/1, dense, LeakyReLU (minimum 36x36).
- ``resnet``: three stacks of 16, 32, 32 channels, each a conv 3x3/1 (padding 1), a 3x3/2 max pool and two
  residual blocks (Swish, conv, Swish, conv, plus the input); then Swish, dense, ReLU (minimum 15x15).

Images are scaled to [0, 1] before they get here (``encoders.as_float``); they are never normalized.
"""

from __future__ import annotations

import torch
from torch import nn

from rayagents.configs import ConfigError
from rayagents.configs.network import EncoderType
from rayagents.learner.layers import linear_layer
from rayagents.protocol.types import ObservationSpec

RELU_GAIN = 1.41
"""The factor ML-Agents multiplies the visual encoders' dense weights by (Kaiming-He normal, linear)."""


def conv_output_size(size: int, kernel: int, stride: int, padding: int = 0) -> int:
    """The height (or width) out of a convolution of ``size`` pixels."""
    return (size + 2 * padding - kernel) // stride + 1


def pool_output_size(size: int, kernel: int = 3, stride: int = 2) -> int:
    """The height (or width) out of a max pool of ``size`` pixels (no padding)."""
    return (size - kernel) // stride + 1


class FullyConnectedVisualEncoder(nn.Module):
    """``fully_connected``: every pixel of every channel into one dense layer, then LeakyReLU."""

    def __init__(self, channels: int, height: int, width: int, output_size: int) -> None:
        super().__init__()
        self.output_size = output_size
        self.dense = nn.Sequential(linear_layer(channels * height * width, output_size, RELU_GAIN), nn.LeakyReLU())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The features, ``(batch, output_size)``."""
        return self.dense(torch.flatten(images, 1))


class SmallVisualEncoder(nn.Module):
    """``match3``: two 3x3 convolutions of stride 1 (35 then 144 channels), for small boards such as Match-3's."""

    def __init__(self, channels: int, height: int, width: int, output_size: int) -> None:
        super().__init__()
        self.output_size = output_size
        h, w = height, width
        for _ in range(2):
            h, w = conv_output_size(h, 3, 1), conv_output_size(w, 3, 1)
        self.conv_layers = nn.Sequential(
            nn.Conv2d(channels, 35, 3, 1), nn.LeakyReLU(), nn.Conv2d(35, 144, 3, 1), nn.LeakyReLU()
        )
        self.dense = nn.Sequential(linear_layer(144 * h * w, output_size, RELU_GAIN), nn.LeakyReLU())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The features, ``(batch, output_size)``."""
        return self.dense(torch.flatten(self.conv_layers(images), 1))


class SimpleVisualEncoder(nn.Module):
    """``simple``: an 8x8 convolution of stride 4 (16 channels) and a 4x4 one of stride 2 (32 channels)."""

    def __init__(self, channels: int, height: int, width: int, output_size: int) -> None:
        super().__init__()
        self.output_size = output_size
        h, w = conv_output_size(height, 8, 4), conv_output_size(width, 8, 4)
        h, w = conv_output_size(h, 4, 2), conv_output_size(w, 4, 2)
        self.conv_layers = nn.Sequential(
            nn.Conv2d(channels, 16, 8, 4), nn.LeakyReLU(), nn.Conv2d(16, 32, 4, 2), nn.LeakyReLU()
        )
        self.dense = nn.Sequential(linear_layer(32 * h * w, output_size, RELU_GAIN), nn.LeakyReLU())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The features, ``(batch, output_size)``."""
        return self.dense(torch.flatten(self.conv_layers(images), 1))


class NatureVisualEncoder(nn.Module):
    """``nature_cnn``: the DQN Nature paper's three convolutions (32 8x8/4, 64 4x4/2, 64 3x3/1)."""

    def __init__(self, channels: int, height: int, width: int, output_size: int) -> None:
        super().__init__()
        self.output_size = output_size
        h, w = height, width
        for kernel, stride in ((8, 4), (4, 2), (3, 1)):
            h, w = conv_output_size(h, kernel, stride), conv_output_size(w, kernel, stride)
        self.conv_layers = nn.Sequential(
            nn.Conv2d(channels, 32, 8, 4),
            nn.LeakyReLU(),
            nn.Conv2d(32, 64, 4, 2),
            nn.LeakyReLU(),
            nn.Conv2d(64, 64, 3, 1),
            nn.LeakyReLU(),
        )
        self.dense = nn.Sequential(linear_layer(64 * h * w, output_size, RELU_GAIN), nn.LeakyReLU())

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The features, ``(batch, output_size)``."""
        return self.dense(torch.flatten(self.conv_layers(images), 1))


class ResNetBlock(nn.Module):
    """A residual block of ``resnet``: the input plus Swish, 3x3 conv, Swish, 3x3 conv (same size, same channels)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.SiLU(),
            nn.Conv2d(channels, channels, 3, 1, padding=1),
            nn.SiLU(),
            nn.Conv2d(channels, channels, 3, 1, padding=1),
        )

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """``inputs`` plus the block's residual, same shape."""
        return inputs + self.layers(inputs)


RESNET_CHANNELS = (16, 32, 32)
"""The channels of ``resnet``'s three stacks."""
RESNET_BLOCKS = 2
"""Residual blocks per stack."""


class ResNetVisualEncoder(nn.Module):
    """``resnet``: the IMPALA network, three stacks of conv, max pool and two residual blocks, then a dense layer."""

    def __init__(self, channels: int, height: int, width: int, output_size: int) -> None:
        super().__init__()
        self.output_size = output_size
        layers: list[nn.Module] = []
        previous, h, w = channels, height, width
        for stack_channels in RESNET_CHANNELS:
            layers.append(nn.Conv2d(previous, stack_channels, 3, 1, padding=1))
            layers.append(nn.MaxPool2d(3, 2))
            h, w = pool_output_size(h), pool_output_size(w)
            layers.extend(ResNetBlock(stack_channels) for _ in range(RESNET_BLOCKS))
            previous = stack_channels
        layers.append(nn.SiLU())
        self.sequential = nn.Sequential(*layers)
        self.dense = linear_layer(RESNET_CHANNELS[-1] * h * w, output_size, RELU_GAIN)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The features, ``(batch, output_size)``."""
        return torch.relu(self.dense(torch.flatten(self.sequential(images), 1)))


VisualEncoder = (
    FullyConnectedVisualEncoder | SmallVisualEncoder | SimpleVisualEncoder | NatureVisualEncoder | ResNetVisualEncoder
)
"""Any of the five visual encoders."""


def check_resolution(spec: ObservationSpec, encoder_type: EncoderType) -> None:
    """Raises ConfigError when the camera of ``spec`` (``(C, H, W)``) is smaller than ``encoder_type`` accepts."""
    _, height, width = spec.shape
    minimum = encoder_type.min_resolution
    if height >= minimum and width >= minimum:
        return
    fitting = [kind.value for kind in EncoderType if kind.min_resolution <= min(height, width)]
    raise ConfigError(
        f"observation {spec.name!r} is a {width}x{height} camera (shape {spec.shape}, channels first), smaller than "
        f"the {minimum}x{minimum} that network_settings.vis_encode_type {encoder_type.value!r} needs: choose a "
        f"vis_encode_type whose minimum fits ({', '.join(fitting)}) or give the sensor a camera of at least "
        f"{minimum}x{minimum} pixels"
    )


def visual_encoder(spec: ObservationSpec, encoder_type: EncoderType, output_size: int) -> VisualEncoder:
    """The ``encoder_type`` encoder for the ``(C, H, W)`` camera of ``spec``, with ``output_size`` features."""
    if len(spec.shape) != 3:
        raise ValueError(f"observation {spec.name!r} has shape {spec.shape}: a visual observation is (C, H, W)")
    check_resolution(spec, encoder_type)
    channels, height, width = spec.shape
    if encoder_type == EncoderType.FULLY_CONNECTED:
        return FullyConnectedVisualEncoder(channels, height, width, output_size)
    if encoder_type == EncoderType.MATCH3:
        return SmallVisualEncoder(channels, height, width, output_size)
    if encoder_type == EncoderType.SIMPLE:
        return SimpleVisualEncoder(channels, height, width, output_size)
    if encoder_type == EncoderType.NATURE_CNN:
        return NatureVisualEncoder(channels, height, width, output_size)
    return ResNetVisualEncoder(channels, height, width, output_size)
