"""Acting in numpy: an actor's forward pass and sampling without torch, for the EnvActors' hot loop.

An EnvActor acts once per exchange on a few agents (8 HalfCheetahs, say). At that size each torch operation costs
more in dispatch than in arithmetic: acting in torch took about 60 µs per HalfCheetah agent step, over a third of an
EnvActor's CPU, and :class:`NumpyActor` takes about 20 (``python -m bench.training`` measures both side by side). It
does the same arithmetic on numpy arrays, in about a tenth of the calls.

It covers the plain actors, which most behaviors have: vector observations only (normalized or not, no goal
signals), no memory; a Gaussian (PPO's clipped one or SAC's squashed one, with a state-independent or a conditional
standard deviation), categorical branches under action masks, or both; any other actor acts in torch. It reads the
weights as the learner publishes them (:func:`layout_from_state`, :meth:`NumpyActor.from_state`) and imports no
torch: an EnvActor whose actor acts in numpy never loads it. The conventions are
:mod:`~rayagents.learner.distributions`' (masked logits pushed down by ``1e8``, joint log probabilities and
entropies summed over dimensions and branches, log-densities read from the noise that drew the sample), and its
results match the torch actor's to float32 rounding (checked in the tests against
:meth:`~rayagents.learner.networks.Actor.evaluate`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from rayagents.learner.acting import (
    CONTINUOUS_CLIP,
    HALF_LOG_2PI,
    LOG_STD_MAX,
    LOG_STD_MIN,
    MASKED_LOGIT,
    NORMALIZED_CLIP,
    SQUASH_EPSILON,
    check_weights,
)

GAUSSIAN_ENTROPY_CONSTANT = 0.5 * math.log(2.0 * math.pi * math.e)
"""The entropy of a standard normal, per dimension."""

LinearWeights = tuple[np.ndarray, np.ndarray]
"""A linear layer as float32 arrays: the transposed weight ``(in, out)`` and the bias ``(out,)``."""

NORMALIZER_PREFIX = "network_body.observation_encoder.processors.{sensor}.normalizer."
"""Where sensor ``sensor``'s normalizer statistics are in a plain actor's ``state_dict`` (the names of the torch
actor's modules, :class:`~rayagents.learner.networks.Actor`)."""
BODY_LAYER = re.compile(r"network_body\.linear_encoder\.layers\.(\d+)\.weight")
"""The weight of one of the body's fully connected layers (numbered by its place among the body's modules)."""
MU = "action_heads.continuous.mu"
"""The Gaussian's mean layer."""
LOG_SIGMA = "action_heads.continuous.log_sigma"
"""The state-independent log standard deviation ``(1, size)`` (PPO's)."""
LOG_SIGMA_LAYER = "action_heads.continuous.log_sigma_layer"
"""The conditional log standard deviation's layer (SAC's)."""
BRANCH = re.compile(r"action_heads\.discrete\.branches\.(\d+)\.weight")
"""The logits layer of one discrete branch."""


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


@dataclass(frozen=True)
class LinearKeys:
    """Where a linear layer's weight ``(out, in)`` and bias ``(out,)`` are in an actor's ``state_dict``."""

    weight: str
    """The weight's key."""
    bias: str
    """The bias's key."""


@dataclass(frozen=True)
class NormalizerKeys:
    """Where a running normalizer's statistics are in an actor's ``state_dict``."""

    count: str
    """The count's key (a float64 scalar)."""
    mean: str
    """The running mean's key (float64 ``(size,)``)."""
    m2: str
    """The running sum of squared deviations' key (float64 ``(size,)``); the variance is ``m2 / count``."""


@dataclass(frozen=True)
class NumpyLayout:
    """Where a plain actor's weights are in its ``state_dict``: what :meth:`NumpyActor.from_state` reads. It is read
    from the first weights a policy loads (:func:`layout_from_state`), and later versions must have the same keys and
    shapes."""

    shapes: Mapping[str, tuple[int, ...]]
    """Every key of the actor's ``state_dict`` and its shape: published weights must have exactly these."""
    normalizers: tuple[NormalizerKeys | None, ...]
    """Per sensor, its normalizer (None without ``normalize``)."""
    layers: tuple[LinearKeys, ...]
    """The body's fully connected layers, each followed by Swish."""
    mu: LinearKeys | None
    """The Gaussian's mean; None without continuous actions."""
    log_sigma: LinearKeys | str | None
    """The Gaussian's log standard deviation: a layer of the encoding (conditional), or the key of the
    state-independent ``(1, size)`` parameter; None without continuous actions."""
    squash: bool
    """The Gaussian sample is tanh-squashed (SAC) rather than clipped for the player (PPO)."""
    branches: tuple[LinearKeys, ...]
    """One logits layer per discrete branch."""

    def keys(self) -> set[str]:
        """Every key this layout reads."""
        linear = [*self.layers, *self.branches, *([self.mu] if self.mu else [])]
        if isinstance(self.log_sigma, LinearKeys):
            linear.append(self.log_sigma)
        keys = {key for layer in linear for key in (layer.weight, layer.bias)}
        keys.update(key for n in self.normalizers if n is not None for key in (n.count, n.mean, n.m2))
        if isinstance(self.log_sigma, str):
            keys.add(self.log_sigma)
        return keys

    def check(self, state: Mapping[str, np.ndarray]) -> None:
        """ValueError unless ``state`` has exactly this actor's keys, each with its shape."""
        check_weights(self.shapes, state)


def _linear(keys: LinearKeys, state: Mapping[str, np.ndarray]) -> LinearWeights:
    weight = np.asarray(state[keys.weight], dtype=np.float32)
    return np.ascontiguousarray(weight.T), np.array(state[keys.bias], dtype=np.float32)


def _normalization(keys: NormalizerKeys, state: Mapping[str, np.ndarray]) -> Normalization:
    """The normalizer's statistics as the torch normalizer computes them (in float64, then float32)."""
    mean = np.asarray(state[keys.mean], dtype=np.float64)
    variance = np.asarray(state[keys.m2], dtype=np.float64) / np.asarray(state[keys.count], dtype=np.float64)
    return Normalization(mean=mean.astype(np.float32), std=np.sqrt(variance).astype(np.float32))


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


def _linear_keys(name: str) -> LinearKeys:
    return LinearKeys(weight=f"{name}.weight", bias=f"{name}.bias")


def _numbered(pattern: re.Pattern[str], keys: Sequence[str]) -> tuple[LinearKeys, ...]:
    """The linear layers whose weight keys match ``pattern``, in the order of their numbers."""
    found = sorted((int(match.group(1)), key) for key in keys if (match := pattern.fullmatch(key)))
    return tuple(_linear_keys(key[: -len(".weight")]) for _, key in found)


def layout_from_state(state: Mapping[str, np.ndarray], sensors: int, squash: bool) -> NumpyLayout:
    """The layout of the plain actor whose weights are ``state`` (an actor ``state_dict`` as numpy arrays) with
    ``sensors`` observations; ``squash`` for SAC's squashed Gaussian. ValueError when ``state`` holds weights no
    plain actor has (memory, images, attention, a goal hypernetwork) or lacks a body."""
    keys = list(state)
    prefixes = [NORMALIZER_PREFIX.format(sensor=sensor) for sensor in range(sensors)]
    normalizers = tuple(
        NormalizerKeys(count=f"{p}count", mean=f"{p}mean", m2=f"{p}m2") if f"{p}mean" in state else None
        for p in prefixes
    )
    log_sigma: LinearKeys | str | None = None
    if f"{LOG_SIGMA_LAYER}.weight" in state:
        log_sigma = _linear_keys(LOG_SIGMA_LAYER)
    elif LOG_SIGMA in state:
        log_sigma = LOG_SIGMA
    layout = NumpyLayout(
        shapes={key: tuple(np.shape(value)) for key, value in state.items()},
        normalizers=normalizers,
        layers=_numbered(BODY_LAYER, keys),
        mu=_linear_keys(MU) if f"{MU}.weight" in state else None,
        log_sigma=log_sigma,
        squash=squash,
        branches=_numbered(BRANCH, keys),
    )
    unread = sorted(set(keys) - layout.keys())
    if unread or not layout.layers or (layout.mu is None) != (layout.log_sigma is None):
        raise ValueError(
            f"the policy weights are not those of a plain actor (vector observations, no memory): weights "
            f"{unread or keys} do not fit; the learner and the EnvActor must build the network from the same "
            "behavior spec and network_settings"
        )
    return layout


@dataclass(frozen=True)
class NumpyActor:
    """A frozen copy of a plain actor's weights that acts in numpy (see the module's docstring). Build it with
    :meth:`from_state` from each weights version; it never changes."""

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
    def from_state(layout: NumpyLayout, state: Mapping[str, np.ndarray]) -> NumpyActor:
        """The actor of ``layout`` with the weights ``state`` (an actor ``state_dict`` as numpy arrays, as the
        learner publishes it); ValueError unless every key and shape fits."""
        layout.check(state)
        log_sigma: LinearWeights | np.ndarray | None = None
        if isinstance(layout.log_sigma, LinearKeys):
            log_sigma = _linear(layout.log_sigma, state)
        elif layout.log_sigma is not None:
            fixed = np.asarray(state[layout.log_sigma], dtype=np.float32)
            log_sigma = np.clip(fixed, LOG_STD_MIN, LOG_STD_MAX)
        return NumpyActor(
            normalizers=tuple(None if keys is None else _normalization(keys, state) for keys in layout.normalizers),
            layers=tuple(_linear(keys, state) for keys in layout.layers),
            mu=None if layout.mu is None else _linear(layout.mu, state),
            log_sigma=log_sigma,
            squash=layout.squash,
            branches=tuple(_linear(keys, state) for keys in layout.branches),
        )

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
