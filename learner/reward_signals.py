"""The reward signals a trainer combines (``reward_signals``): each one's rewards, scaled by its ``strength``, with
its own ``gamma`` and value head.

:class:`RewardSignals` holds one provider per entry (:mod:`reward_providers`): ``extrinsic`` (the player's reward),
``curiosity`` (:mod:`curiosity`), ``rnd`` (:mod:`rnd`) and ``gail`` (:mod:`gail`). PPO and SAC reward their
experiences through it and update the signals that learn from the minibatches they train on; a checkpoint keeps
every signal's networks and optimizer.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from rayagents.configs.reward_signals import (
    CuriositySettings,
    GAILSettings,
    RewardSignalSettings,
    RewardSignalType,
    RNDSettings,
)
from rayagents.learner.checkpoint_format import Saveable
from rayagents.learner.curiosity import CuriosityReward
from rayagents.learner.expert_data import ExpertSource
from rayagents.learner.gail import GAILReward
from rayagents.learner.reward_providers import ExtrinsicReward, RewardBatch, RewardProvider
from rayagents.learner.rnd import RNDReward
from rayagents.protocol.types import BehaviorSpec


def build_provider(
    kind: RewardSignalType,
    settings: RewardSignalSettings,
    spec: BehaviorSpec,
    device: torch.device,
    expert: ExpertSource,
    generator: torch.Generator | None,
) -> RewardProvider:
    """The provider of one ``reward_signals`` entry."""
    if kind == RewardSignalType.EXTRINSIC:
        return ExtrinsicReward(settings)
    if kind == RewardSignalType.CURIOSITY:
        assert isinstance(settings, CuriositySettings)
        return CuriosityReward(spec, settings, device)
    if kind == RewardSignalType.RND:
        assert isinstance(settings, RNDSettings)
        return RNDReward(spec, settings, device)
    if kind == RewardSignalType.GAIL:
        assert isinstance(settings, GAILSettings)
        return GAILReward(spec, settings, expert(settings.demo_path), device, generator)
    raise ValueError(f"unknown reward signal {kind!r}")


class RewardSignals:
    """Every reward signal of a behavior, by its ``reward_signals`` key (``extrinsic``, ``curiosity``, ...).

    Arguments:
        spec: the behavior's observations and actions.
        signals: the behavior's ``reward_signals``.
        device: where the signals' networks train.
        trainer: names the trainer in messages.
        expert: reads a ``demo_path`` (GAIL).
        generator: draws GAIL's expert minibatches; None draws from torch's global generator.
    """

    def __init__(
        self,
        spec: BehaviorSpec,
        signals: Mapping[RewardSignalType, RewardSignalSettings],
        device: torch.device,
        trainer: str,
        expert: ExpertSource,
        generator: torch.Generator | None = None,
    ) -> None:
        if not signals:
            raise ValueError(f"reward_signals is empty: a {trainer} trainer needs at least one reward signal")
        self.providers: dict[str, RewardProvider] = {
            kind.value: build_provider(kind, settings, spec, device, expert, generator)
            for kind, settings in signals.items()
        }

    @property
    def names(self) -> tuple[str, ...]:
        """The signals' keys, in the YAML's order: the value heads' names."""
        return tuple(self.providers)

    @property
    def learns(self) -> bool:
        """Whether any signal has networks to train."""
        return any(provider.learns for provider in self.providers.values())

    def settings(self, name: str) -> RewardSignalSettings:
        """The settings of signal ``name``."""
        return self.providers[name].settings

    def ignores_done(self, name: str) -> bool:
        """Whether signal ``name``'s returns go on past an episode's end."""
        return self.providers[name].ignore_done

    def rewards(self, batch: RewardBatch) -> dict[str, torch.Tensor]:
        """Each signal's rewards of ``batch``, scaled by its ``strength``, ``(n,)`` each."""
        return {
            name: provider.evaluate(batch) * provider.settings.strength for name, provider in self.providers.items()
        }

    def update(self, batch: RewardBatch) -> dict[str, float]:
        """One update of every signal that learns, on ``batch``; their statistics."""
        stats: dict[str, float] = {}
        for provider in self.providers.values():
            if provider.learns:
                stats.update(provider.update(batch))
        return stats

    def modules(self) -> dict[str, Saveable]:
        """The checkpoint entries of every signal."""
        entries: dict[str, Saveable] = {}
        for provider in self.providers.values():
            entries.update(provider.modules())
        return entries

    def restored(self) -> None:
        """The signals' networks were just restored from a checkpoint."""
        for provider in self.providers.values():
            provider.restored()
