"""The running observation normalizer (`network_settings.normalize`).

It keeps a running mean and sum of squared deviations per feature (Welford's update, batched), starting from
one pseudo-observation of mean 0 and variance 1 as ML-Agents does, and normalizes as
``clamp((x - mean) / sqrt(var), -5, 5)``. Its statistics are buffers, so they are saved in the module's
``state_dict`` (and therefore in the ``"Policy"`` entry of a checkpoint) and baked into the exported ONNX graph.
"""

from __future__ import annotations

import torch
from torch import nn

from rayagents.learner.acting import NORMALIZED_CLIP


class RunningNormalizer(nn.Module):
    """Normalizes one observation of shape ``(size,)`` with a running mean and variance.

    The statistics are float64 buffers (``count``, ``mean``, ``m2``) so long runs do not lose precision; the
    forward pass computes in the input's dtype. :meth:`update` is explicit: the forward pass never changes the
    statistics, so acting and training with the same weights give the same outputs.
    """

    count: torch.Tensor
    mean: torch.Tensor
    m2: torch.Tensor

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size
        self.register_buffer("count", torch.ones((), dtype=torch.float64))
        self.register_buffer("mean", torch.zeros(size, dtype=torch.float64))
        self.register_buffer("m2", torch.ones(size, dtype=torch.float64))

    @property
    def variance(self) -> torch.Tensor:
        """The running variance per feature (float64)."""
        return self.m2 / self.count

    @torch.no_grad()
    def update(self, batch: torch.Tensor) -> None:
        """Folds a batch of observations, shaped ``(n, size)``, into the running statistics."""
        if batch.ndim != 2 or batch.shape[1] != self.size:
            raise ValueError(f"the normalizer expects observations shaped (n, {self.size}), got {tuple(batch.shape)}")
        if batch.shape[0] == 0:
            return
        values = batch.to(torch.float64)
        new_count = self.count + values.shape[0]
        to_old_mean = values - self.mean
        new_mean = self.mean + (to_old_mean / new_count).sum(dim=0)
        to_new_mean = values - new_mean
        self.m2.add_((to_new_mean * to_old_mean).sum(dim=0))
        self.mean.copy_(new_mean)
        self.count.copy_(new_count)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """The normalized observations, clipped to ±5."""
        mean = self.mean.to(inputs.dtype)
        std = torch.sqrt(self.variance).to(inputs.dtype)
        return torch.clamp((inputs - mean) / std, -NORMALIZED_CLIP, NORMALIZED_CLIP)
