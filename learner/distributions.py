"""Action heads: a Gaussian for continuous actions and one categorical per discrete branch, hybrid both.

Conventions, the same in training, acting and the exported ONNX model:
- PPO's Gaussian (ML-Agents' ``conditional_sigma=False, tanh_squash=False``): the log standard deviation is a
  learned parameter independent of the state; the raw sample is what is trained on, and the player receives
  ``clamp(sample, -3, 3) / 3`` (:func:`clip_continuous`).
- SAC's squashed Gaussian (``conditional_sigma=True, tanh_squash=True``): mean and log standard deviation both come
  from the encoding; the sample ``u`` is squashed, ``a = tanh(u)``, and ``a`` is both what is trained on and what
  the player receives (unclipped). Its log density is the Gaussian's of ``u`` minus ``sum log(1 - a² + 1e-6)``.
- Action masks here are floats ``(batch, sum(branches))`` with **1 = allowed, 0 = masked** (the ONNX
  ``action_masks`` input; the wire's mask is the opposite, see
  :func:`~rayagents.learner.acting.allowed_from_disabled`). A masked action's logit is pushed to -1e8, so it gets
  probability 0 and is never sampled.
- A log probability is the joint one: summed over continuous dimensions and discrete branches; so is entropy.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from rayagents.learner.acting import (
    CONTINUOUS_CLIP,
    HALF_LOG_2PI,
    LOG_STD_MAX,
    LOG_STD_MIN,
    MASKED_LOGIT,
    SQUASH_EPSILON,
)
from rayagents.learner.encoders import linear_layer
from rayagents.protocol.types import ActionSpec


def clip_continuous(actions: torch.Tensor) -> torch.Tensor:
    """What the player receives for a raw continuous sample: ``clamp(x, -3, 3) / 3``, in [-1, 1]."""
    return torch.clamp(actions, -CONTINUOUS_CLIP, CONTINUOUS_CLIP) / CONTINUOUS_CLIP


class GaussianHead(nn.Module):
    """Continuous actions: the mean from the encoding; the log standard deviation a state-independent parameter, or
    with ``conditional_sigma`` a second linear layer of the encoding."""

    def __init__(self, hidden_size: int, action_size: int, conditional_sigma: bool = False) -> None:
        super().__init__()
        self.conditional_sigma = conditional_sigma
        self.mu = linear_layer(hidden_size, action_size, kernel_gain=0.2)
        if conditional_sigma:
            self.log_sigma_layer: nn.Linear | None = linear_layer(hidden_size, action_size, kernel_gain=0.2)
        else:
            self.log_sigma_layer = None
            self.log_sigma = nn.Parameter(torch.zeros(1, action_size))

    def forward(self, encoding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The mean ``(batch, size)`` and log standard deviation (``(batch, size)``, or ``(1, size)`` when it does
        not depend on the state)."""
        log_sigma = self.log_sigma if self.log_sigma_layer is None else self.log_sigma_layer(encoding)
        return self.mu(encoding), torch.clamp(log_sigma, LOG_STD_MIN, LOG_STD_MAX)


def squash_correction(squashed: torch.Tensor) -> torch.Tensor:
    """``sum log(1 - a² + eps)`` over dimensions, ``(batch,)``: what tanh squashing subtracts from a log density."""
    return torch.log(1.0 - squashed.pow(2) + SQUASH_EPSILON).sum(dim=1)


def unsquash(squashed: torch.Tensor) -> torch.Tensor:
    """``atanh`` of a squashed action, kept finite at ±1."""
    bound = 1.0 - SQUASH_EPSILON
    return torch.atanh(torch.clamp(squashed, -bound, bound))


def gaussian_log_prob(actions: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """The joint log density of ``actions`` ``(batch, size)``, summed over dimensions: ``(batch,)``."""
    var = torch.exp(2.0 * log_std)
    per_dim = -((actions - mean) ** 2) / (2.0 * var) - log_std - HALF_LOG_2PI
    return per_dim.sum(dim=1)


def gaussian_noise_log_prob(noise: torch.Tensor | None, log_std: torch.Tensor, batch: int) -> torch.Tensor:
    """The joint log density ``(batch,)`` of the sample ``mean + exp(log_std) * noise`` (the mean itself for None),
    summed over dimensions: the same value as :func:`gaussian_log_prob` of that sample, with fewer operations."""
    per_dim = -log_std - HALF_LOG_2PI
    if noise is not None:
        per_dim = per_dim - 0.5 * noise.square()
    return per_dim.sum(dim=1).expand(batch)


def gaussian_entropy(log_std: torch.Tensor, batch: int) -> torch.Tensor:
    """The entropy of the (unsquashed) Gaussian summed over dimensions, ``(batch,)``."""
    per_dim = 0.5 * math.log(2.0 * math.pi * math.e) + log_std
    return per_dim.sum(dim=1).expand(batch)


class CategoricalHeads(nn.Module):
    """Discrete actions: one linear layer of logits per branch, masked by the allowed-mask."""

    def __init__(self, hidden_size: int, branches: Sequence[int]) -> None:
        super().__init__()
        self.branch_sizes = tuple(int(b) for b in branches)
        self.branches = nn.ModuleList([linear_layer(hidden_size, size, kernel_gain=0.1) for size in self.branch_sizes])

    def forward(self, encoding: torch.Tensor, allowed: torch.Tensor) -> list[torch.Tensor]:
        """Masked log probabilities, one ``(batch, branch_size)`` tensor per branch."""
        log_probs: list[torch.Tensor] = []
        start = 0
        for layer, size in zip(self.branches, self.branch_sizes):
            branch_allowed = allowed[:, start : start + size]
            start += size
            logits = layer(encoding) * branch_allowed - (1.0 - branch_allowed) * MASKED_LOGIT
            log_probs.append(torch.log_softmax(logits, dim=1))
        return log_probs


def categorical_sample(log_probs: Sequence[torch.Tensor]) -> torch.Tensor:
    """One multinomial sample per branch: int64 ``(batch, n_branches)``."""
    return torch.cat([torch.multinomial(torch.exp(lp), 1) for lp in log_probs], dim=1)


def categorical_mode(log_probs: Sequence[torch.Tensor]) -> torch.Tensor:
    """The most likely action per branch: int64 ``(batch, n_branches)``."""
    return torch.cat([torch.argmax(lp, dim=1, keepdim=True) for lp in log_probs], dim=1)


def categorical_log_prob(log_probs: Sequence[torch.Tensor], actions: torch.Tensor) -> torch.Tensor:
    """The joint log probability of ``actions`` ``(batch, n_branches)``, summed over branches: ``(batch,)``."""
    picked = [lp.gather(1, actions[:, i : i + 1].long()).squeeze(1) for i, lp in enumerate(log_probs)]
    return torch.stack(picked, dim=1).sum(dim=1)


def categorical_entropy(log_probs: Sequence[torch.Tensor]) -> torch.Tensor:
    """The entropy summed over branches, ``(batch,)``."""
    return torch.stack([-(torch.exp(lp) * lp).sum(dim=1) for lp in log_probs], dim=1).sum(dim=1)


class ActionHeads(nn.Module):
    """The action part of an actor for an :class:`ActionSpec`: Gaussian, categorical, or both (hybrid).

    ``tanh_squash`` and ``conditional_sigma`` make the Gaussian SAC's (see the module's docstring)."""

    def __init__(
        self, hidden_size: int, spec: ActionSpec, tanh_squash: bool = False, conditional_sigma: bool = False
    ) -> None:
        super().__init__()
        if spec.continuous_size == 0 and spec.discrete_size == 0:
            raise ValueError("the action spec has neither continuous actions nor discrete branches")
        self.spec = spec
        self.tanh_squash = tanh_squash
        self.continuous: GaussianHead | None = (
            GaussianHead(hidden_size, spec.continuous_size, conditional_sigma) if spec.continuous_size > 0 else None
        )
        self.discrete: CategoricalHeads | None = (
            CategoricalHeads(hidden_size, spec.discrete_branches) if spec.discrete_size > 0 else None
        )

    def all_allowed(self, encoding: torch.Tensor) -> torch.Tensor:
        """An allowed-mask that allows every action, for the batch of ``encoding``."""
        return encoding.new_ones(encoding.shape[0], sum(self.spec.discrete_branches))

    def sample(
        self, encoding: torch.Tensor, allowed: torch.Tensor | None, deterministic: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Raw continuous ``(batch, c)``, discrete int64 ``(batch, b)``, joint log prob and entropy ``(batch,)``.

        ``allowed`` may be None for a behavior without discrete branches. Acting runs this once per exchange on a
        few agents, where each tensor operation costs more than its arithmetic, so it does only what it needs: the
        Gaussian's log density is read from the standard normal noise that made the sample."""
        batch = encoding.shape[0]
        parts: list[tuple[torch.Tensor, torch.Tensor]] = []
        continuous = encoding.new_zeros(batch, 0)
        discrete = encoding.new_zeros(batch, 0, dtype=torch.int64)
        if self.continuous is not None:
            mean, log_std = self.continuous(encoding)
            noise = None if deterministic else torch.randn_like(mean)
            continuous = mean if noise is None else torch.addcmul(mean, torch.exp(log_std), noise)
            log_prob = gaussian_noise_log_prob(noise, log_std, batch)
            if self.tanh_squash:
                continuous = torch.tanh(continuous)
                log_prob = log_prob - squash_correction(continuous)
            parts.append((log_prob, gaussian_entropy(log_std, batch)))
        if self.discrete is not None:
            if allowed is None:
                allowed = self.all_allowed(encoding)
            log_probs = self.discrete(encoding, allowed)
            discrete = categorical_mode(log_probs) if deterministic else categorical_sample(log_probs)
            parts.append((categorical_log_prob(log_probs, discrete), categorical_entropy(log_probs)))
        if len(parts) == 1:
            return continuous, discrete, parts[0][0], parts[0][1]
        return continuous, discrete, parts[0][0] + parts[1][0], parts[0][1] + parts[1][1]

    def evaluate(
        self, encoding: torch.Tensor, allowed: torch.Tensor, continuous: torch.Tensor, discrete: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The joint log probability of the given actions and the entropy, each ``(batch,)``."""
        batch = encoding.shape[0]
        log_prob = encoding.new_zeros(batch)
        entropy = encoding.new_zeros(batch)
        if self.continuous is not None:
            mean, log_std = self.continuous(encoding)
            if self.tanh_squash:
                log_prob = log_prob + gaussian_log_prob(unsquash(continuous), mean, log_std)
                log_prob = log_prob - squash_correction(continuous)
            else:
                log_prob = log_prob + gaussian_log_prob(continuous, mean, log_std)
            entropy = entropy + gaussian_entropy(log_std, batch)
        if self.discrete is not None:
            log_probs = self.discrete(encoding, allowed)
            log_prob = log_prob + categorical_log_prob(log_probs, discrete)
            entropy = entropy + categorical_entropy(log_probs)
        return log_prob, entropy

    def reparameterized(
        self, encoding: torch.Tensor, allowed: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """What SAC's update differentiates: a squashed continuous sample drawn with the reparameterization trick
        ``(batch, c)`` and its log density ``(batch,)`` (zeros without continuous actions), and every discrete
        branch's full masked log probabilities (one ``(batch, branch_size)`` tensor each)."""
        batch = encoding.shape[0]
        continuous = encoding.new_zeros(batch, 0)
        log_prob = encoding.new_zeros(batch)
        if self.continuous is not None:
            mean, log_std = self.continuous(encoding)
            unsquashed = mean + torch.exp(log_std) * torch.randn_like(mean)
            log_prob = gaussian_log_prob(unsquashed, mean, log_std)
            continuous = unsquashed
            if self.tanh_squash:
                continuous = torch.tanh(unsquashed)
                log_prob = log_prob - squash_correction(continuous)
        branches = self.discrete(encoding, allowed) if self.discrete is not None else []
        return continuous, log_prob, branches
