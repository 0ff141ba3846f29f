"""Acting in numpy: an actor's forward pass and sampling without torch, for the EnvActors' hot loop.

An EnvActor acts once per exchange on a few agents (8 HalfCheetahs, say). At that size each torch operation costs
more in dispatch than in arithmetic: acting in torch took about 60 µs per HalfCheetah agent step, over a third of an
EnvActor's CPU, and :class:`NumpyActor` takes about 20 (``python -m bench.training`` measures both side by side). It
does the same arithmetic on numpy arrays, in about a tenth of the calls.

It covers the plain actors, which most behaviors have: vector observations only (normalized or not), no memory, no
goal hypernetwork; a Gaussian (PPO's clipped one or SAC's squashed one, with a state-independent or a conditional
standard deviation), categorical branches under action masks, or both. :meth:`NumpyActor.of` says None for any other
actor, which then acts in torch. The conventions are :mod:`~rayagents.learner.distributions`' (masked logits pushed
down by ``1e8``, joint log probabilities and entropies summed over dimensions and branches, log-densities read from
the noise that drew the sample), and its results match the torch actor's to float32 rounding (checked in the tests
against :meth:`~rayagents.learner.networks.Actor.evaluate`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from rayagents.learner.distributions import (
    CONTINUOUS_CLIP,
    HALF_LOG_2PI,
    LOG_STD_MAX,
    LOG_STD_MIN,
    MASKED_LOGIT,
    SQUASH_EPSILON,
)
from rayagents.learner.encoders import VectorInput
from rayagents.learner.networks import Actor
from rayagents.learner.normalizer import NORMALIZED_CLIP

GAUSSIAN_ENTROPY_CONSTANT = 0.5 * math.log(2.0 * math.pi * math.e)
"""The entropy of a standard normal, per dimension."""

LinearWeights = tuple[np.ndarray, np.ndarray]
"""A linear layer as float32 arrays: the transposed weight ``(in, out)`` and the bias ``(out,)``."""


@dataclass(frozen=True)
class Normalization:
    """One vector sensor's running normalizer, frozen as float32: ``clip((x - mean) / std, ±5)``."""

    mean: np.ndarray
    """float32 ``(size,)``."""
    std: np.ndarray
    """float32 ``(size,)``."""


@dataclass(frozen=True)
class NumpySample:
    """What :meth:`NumpyActor.act` chose for a batch of agents; fields as :class:`~rayagents.learner.networks.
    ActionSample`'s, as numpy arrays."""

    continuous: np.ndarray
    """float32 ``(batch, continuous_size)``: raw Gaussian samples (PPO), or squashed ones (SAC)."""
    discrete: np.ndarray
    """int32 ``(batch, n_branches)``."""
    log_prob: np.ndarray
    """float32 ``(batch,)``: the joint log probability."""
    entropy: np.ndarray
    """float32 ``(batch,)``."""
    env_continuous: np.ndarray
    """float32 ``(batch, continuous_size)``: what the player receives (``clip(x, ±3) / 3``, squashed ones as they
    are)."""


def _linear(layer: torch.nn.Linear) -> LinearWeights:
    weight = layer.weight.detach().cpu().numpy().astype(np.float32)
    return np.ascontiguousarray(weight.T), layer.bias.detach().cpu().numpy().astype(np.float32)


def _apply(layer: LinearWeights, inputs: np.ndarray) -> np.ndarray:
    outputs = inputs @ layer[0]
    outputs += layer[1]
    return outputs


def _swish(values: np.ndarray) -> np.ndarray:
    """``x * sigmoid(x)`` in place, with the sigmoid as ``0.5 * (1 + tanh(x / 2))`` (no overflow)."""
    gate = np.tanh(values * np.float32(0.5))
    gate += np.float32(1.0)
    gate *= np.float32(0.5)
    values *= gate
    return values


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


@dataclass(frozen=True)
class NumpyActor:
    """A frozen copy of a plain actor's weights that acts in numpy (see the module's docstring). Build it with
    :meth:`of` after every weights load; it never changes."""

    normalizers: tuple[Normalization | None, ...]
    """Per sensor, its normalizer (None without ``normalize``)."""
    layers: tuple[LinearWeights, ...]
    """The body's fully connected layers, each followed by Swish."""
    mu: LinearWeights | None
    """The Gaussian's mean; None without continuous actions."""
    log_sigma: LinearWeights | np.ndarray | None
    """The Gaussian's log standard deviation: a layer of the encoding (conditional), or a clamped ``(1, size)``
    array (state-independent); None without continuous actions."""
    squash: bool
    """The Gaussian sample is tanh-squashed (SAC) rather than clipped for the player (PPO)."""
    branches: tuple[LinearWeights, ...]
    """One logits layer per discrete branch."""

    @staticmethod
    def supports(actor: Actor) -> bool:
        """Whether ``actor`` is a plain actor, which :meth:`of` copies: vector observations only, no memory, no goal
        hypernetwork, no attention."""
        body = actor.network_body
        encoder = body.observation_encoder
        return (
            actor.memory is None
            and body.linear_encoder is not None
            and body.action_size == 0
            and encoder.attention is None
            and all(isinstance(p, VectorInput) for p in encoder.processors)
        )

    @staticmethod
    def of(actor: Actor) -> NumpyActor | None:
        """``actor``'s weights as a :class:`NumpyActor`, or None when it is not a plain actor (an image or a
        variable-length sensor, memory, a goal hypernetwork)."""
        if not NumpyActor.supports(actor):
            return None
        body = actor.network_body
        encoder = body.observation_encoder
        normalizers = []
        for processor in encoder.processors:
            normalizer = processor.normalizer if isinstance(processor, VectorInput) else None
            if normalizer is None:
                normalizers.append(None)
                continue
            mean = normalizer.mean.to(torch.float32).numpy().copy()
            std = torch.sqrt(normalizer.variance).to(torch.float32).numpy().copy()
            normalizers.append(Normalization(mean=mean, std=std))
        layers = tuple(_linear(m) for m in body.linear_encoder.layers if isinstance(m, torch.nn.Linear))
        heads = actor.action_heads
        mu: LinearWeights | None = None
        log_sigma: LinearWeights | np.ndarray | None = None
        if heads.continuous is not None:
            mu = _linear(heads.continuous.mu)
            if heads.continuous.log_sigma_layer is not None:
                log_sigma = _linear(heads.continuous.log_sigma_layer)
            else:
                fixed = heads.continuous.log_sigma.detach().cpu().numpy().astype(np.float32)
                log_sigma = np.clip(fixed, LOG_STD_MIN, LOG_STD_MAX)
        branches = () if heads.discrete is None else tuple(_linear(b) for b in heads.discrete.branches)
        return NumpyActor(tuple(normalizers), layers, mu, log_sigma, heads.tanh_squash, branches)

    def encode(self, observations: Sequence[np.ndarray]) -> np.ndarray:
        """What the action heads read, float32 ``(batch, size)``, from one float array ``(batch, length)`` per
        sensor."""
        parts = []
        for obs, normalizer in zip(observations, self.normalizers):
            values = np.asarray(obs, dtype=np.float32)
            if normalizer is not None:
                values = np.clip((values - normalizer.mean) / normalizer.std, -NORMALIZED_CLIP, NORMALIZED_CLIP)
            parts.append(values)
        encoding = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
        for layer in self.layers:
            encoding = _swish(_apply(layer, encoding))
        return encoding

    def act(
        self,
        observations: Sequence[np.ndarray],
        allowed: np.ndarray | None,
        deterministic: bool,
        rng: np.random.Generator,
    ) -> NumpySample:
        """Chooses actions for a batch of agents: ``allowed`` the float mask ``(batch, sum(branches))`` with
        1 = allowed (None: all allowed); ``deterministic`` takes the mean / the argmax; ``rng`` draws the rest."""
        encoding = self.encode(observations)
        batch = encoding.shape[0]
        log_prob = np.zeros(batch, dtype=np.float32)
        entropy = np.zeros(batch, dtype=np.float32)
        continuous = np.zeros((batch, 0), dtype=np.float32)
        env_continuous = continuous
        if self.mu is not None:
            mean = _apply(self.mu, encoding)
            if isinstance(self.log_sigma, tuple):
                log_std = np.clip(_apply(self.log_sigma, encoding), LOG_STD_MIN, LOG_STD_MAX)
            else:
                assert self.log_sigma is not None
                log_std = self.log_sigma
            per_dim = -log_std - np.float32(HALF_LOG_2PI)
            if deterministic:
                continuous = mean
            else:
                noise = rng.standard_normal(mean.shape, dtype=np.float32)
                continuous = mean + np.exp(log_std) * noise
                per_dim = per_dim - np.float32(0.5) * noise * noise
            log_prob += per_dim.sum(axis=1)  # (1,) broadcasts over the batch when sigma is state-independent
            entropy += (np.float32(GAUSSIAN_ENTROPY_CONSTANT) + log_std).sum(axis=1)
            if self.squash:
                continuous = np.tanh(continuous)
                log_prob -= np.log(np.float32(1.0) - continuous * continuous + np.float32(SQUASH_EPSILON)).sum(axis=1)
                env_continuous = continuous
            else:
                env_continuous = np.clip(continuous, -CONTINUOUS_CLIP, CONTINUOUS_CLIP) / np.float32(CONTINUOUS_CLIP)
        discrete = np.zeros((batch, len(self.branches)), dtype=np.int32)
        start = 0
        for index, layer in enumerate(self.branches):
            size = layer[1].shape[0]
            logits = _apply(layer, encoding)
            if allowed is not None:
                branch_allowed = allowed[:, start : start + size]
                logits = logits * branch_allowed - (np.float32(1.0) - branch_allowed) * np.float32(MASKED_LOGIT)
            start += size
            log_probs = _log_softmax(logits)
            probabilities = np.exp(log_probs)
            if deterministic:
                chosen = np.argmax(log_probs, axis=1)
            else:
                cumulative = np.cumsum(probabilities, axis=1)
                draws = rng.random((batch, 1)) * cumulative[:, -1:]  # float64: below the total, never on it
                chosen = np.minimum((cumulative <= draws).sum(axis=1), size - 1)
            discrete[:, index] = chosen
            log_prob += log_probs[np.arange(batch), chosen]
            entropy -= (probabilities * log_probs).sum(axis=1)
        return NumpySample(
            continuous=np.ascontiguousarray(continuous, dtype=np.float32),
            discrete=discrete,
            log_prob=log_prob,
            entropy=entropy,
            env_continuous=np.ascontiguousarray(env_continuous, dtype=np.float32),
        )
