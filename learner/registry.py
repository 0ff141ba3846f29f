"""The trainer registry: one entry per ``trainer_type``, the only place outside an algorithm's module that names it.

An entry builds the three things an algorithm brings (see :mod:`algorithm`): the learner side, the acting policy
the EnvActors run, and the play rules. The generic trainer, the LearnerActor, the EnvActors, the driver and the
checkpoint code take what an entry builds and never ask which algorithm it is; adding SAC or POCA is a new module
and a new line here.

The registry imports no torch itself. An entry imports its algorithm's module when the learner side is first asked
for; the play rules are torch-free (:mod:`play_rules`: the driver reads them), and the acting policy of a plain actor
is a :class:`~rayagents.learner.numpy_policy.NumpyPolicy`: an EnvActor that builds its policies here (the driver hands
it a :class:`PolicyFactory`) loads torch only for an actor that acts in torch.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from rayagents.configs import ConfigWarning, RunOptions, TrainerSettings, behavior_settings
from rayagents.learner.numpy_policy import NumpyPolicy, acts_in_numpy
from rayagents.learner.play_rules import PlayRules, poca_play_rules, ppo_play_rules, sac_play_rules
from rayagents.protocol.types import BehaviorName, BehaviorSpec

if TYPE_CHECKING:
    import torch

    from rayagents.learner.algorithm import ActingPolicy, Algorithm

AlgorithmFactory = Callable[[BehaviorSpec, TrainerSettings, "torch.device", "int | None"], "Algorithm"]
"""Builds the learner side of a behavior: (spec, settings, device, seed) → the algorithm."""
PolicyBuilder = Callable[[BehaviorName, BehaviorSpec, TrainerSettings], "ActingPolicy"]
"""Builds the acting policy of a behavior id, without weights yet."""


def _imported(module: str, name: str) -> Callable[..., Any]:
    """``module.name``, called through an import at the first call: the algorithm's module (and torch) is loaded
    only where its learner side is made."""

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    call.__qualname__ = call.__name__ = f"{module}.{name}"
    return call


@dataclass(frozen=True)
class TrainerEntry:
    """What one ``trainer_type`` brings."""

    trainer_type: str
    """The YAML's ``trainer_type``."""
    make_algorithm: AlgorithmFactory
    """The learner side."""
    make_policy: PolicyBuilder
    """The policy the EnvActors act with."""
    play_rules: Callable[[TrainerSettings], PlayRules]
    """The policy lag it accepts and whether it trains on whole sequences."""


def _policy(
    behavior: BehaviorName, spec: BehaviorSpec, settings: TrainerSettings, squashed: bool
) -> ActingPolicy:
    """The acting policy of a behavior id: in numpy for a plain actor, else in torch (only then is torch loaded);
    ``squashed`` for SAC's tanh-squashed Gaussian with a state-dependent standard deviation."""
    network = settings.network_settings
    if acts_in_numpy(spec, network):
        return NumpyPolicy(behavior, spec, squash=squashed, deterministic=network.deterministic)
    from rayagents.learner.networks import PPO_ACTOR, SAC_ACTOR  # torch: an actor that acts in torch
    from rayagents.learner.policy import InferencePolicy

    return InferencePolicy(behavior, spec, network, SAC_ACTOR if squashed else PPO_ACTOR)


def _actor_policy(behavior: BehaviorName, spec: BehaviorSpec, settings: TrainerSettings) -> ActingPolicy:
    """A stochastic actor that keeps log probabilities and entropies (PPO's and POCA's acting policy)."""
    return _policy(behavior, spec, settings, squashed=False)


def _squashed_policy(behavior: BehaviorName, spec: BehaviorSpec, settings: TrainerSettings) -> ActingPolicy:
    """SAC's acting policy: a tanh-squashed Gaussian with a state-dependent standard deviation."""
    return _policy(behavior, spec, settings, squashed=True)


TRAINERS: Mapping[str, TrainerEntry] = MappingProxyType(
    {
        "ppo": TrainerEntry(
            "ppo",
            make_algorithm=_imported("rayagents.learner.ppo", "PPO"),
            make_policy=_actor_policy,
            play_rules=ppo_play_rules,
        ),
        "sac": TrainerEntry(
            "sac",
            make_algorithm=_imported("rayagents.learner.sac", "SAC"),
            make_policy=_squashed_policy,
            play_rules=sac_play_rules,
        ),
        "poca": TrainerEntry(
            "poca",
            make_algorithm=_imported("rayagents.learner.poca", "POCA"),
            make_policy=_actor_policy,
            play_rules=poca_play_rules,
        ),
    }
)
"""Every trainer this version trains, by ``trainer_type``."""


def trainer_types() -> tuple[str, ...]:
    """The trainer types this version trains."""
    return tuple(TRAINERS)


def trainer_entry(trainer_type: str) -> TrainerEntry:
    """The entry of ``trainer_type``; NotImplementedError naming the ones this version trains."""
    entry = TRAINERS.get(trainer_type)
    if entry is None:
        raise NotImplementedError(
            f"trainer_type {trainer_type!r} is not yet trained by rayagents (it trains: {', '.join(TRAINERS)})"
        )
    return entry


def play_rules(settings: TrainerSettings) -> PlayRules:
    """The play rules of a behavior with these settings."""
    return trainer_entry(settings.trainer_type).play_rules(settings)


class PolicyFactory:
    """Builds each behavior's acting policy from the run's options (what the driver hands every EnvActor).

    Arguments:
        options: the run options; a behavior's ``trainer_type`` picks its policy, its settings build it.
    """

    def __init__(self, options: RunOptions) -> None:
        self.options = options

    def __call__(self, behavior: BehaviorName, behavior_spec: BehaviorSpec) -> ActingPolicy:
        """A policy for ``behavior`` without weights yet."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConfigWarning)  # the learner warns once for an unconfigured behavior
            settings = behavior_settings(self.options, behavior)
        return trainer_entry(settings.trainer_type).make_policy(behavior, behavior_spec, settings)
