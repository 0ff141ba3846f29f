"""Per-behavior trainer settings from YAML: default_settings merging, hyperparameters, reward signals."""

from __future__ import annotations

import copy
import dataclasses
import warnings
from collections.abc import Mapping

from rayagents.configs.errors import ConfigError, ConfigWarning
from rayagents.configs.hyperparameters import HyperparamSettings, copies_schedules, hyperparameter_class, trainer_types
from rayagents.configs.network import NetworkSettings
from rayagents.configs.reward_signals import RewardSignalSettings, RewardSignalType
from rayagents.configs.run import RunOptions
from rayagents.configs.structure import FieldError, KeyPath, as_mapping, describe, field_names, structure
from rayagents.configs.trainer import TrainerSettings


def deep_merge(base: Mapping[str, object], override: Mapping[str, object]) -> dict[str, object]:
    """A new dict: `base` with `override` laid over it, merging nested mappings key by key."""
    merged: dict[str, object] = copy.deepcopy(dict(base))
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = deep_merge(current, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def merge_default_settings(defaults: Mapping[str, object], behavior: Mapping[str, object]) -> dict[str, object]:
    """A behavior's YAML mapping with the YAML's `default_settings` deep-merged under it.

    When the behavior names another trainer_type than default_settings, the default hyperparameters (written
    for the other trainer) are left out rather than reported as keys the behavior's trainer does not have."""
    base = dict(defaults)
    default_type = base.get("trainer_type", "ppo")
    if behavior.get("trainer_type", default_type) != default_type:
        base.pop("hyperparameters", None)
    return deep_merge(base, behavior)


def _hyperparameters(trainer_type: str, raw: object, path: KeyPath) -> HyperparamSettings:
    cls = hyperparameter_class(trainer_type)
    mapping = dict(as_mapping({} if raw is None else raw, path, f"{cls.__name__} hyperparameters"))
    own = field_names(cls)
    for key in mapping:
        if key in own:
            continue
        owners = [other for other in trainer_types() if key in field_names(hyperparameter_class(other))]
        if owners:
            raise FieldError(
                path + (key,),
                f"{key!r} is a hyperparameter of trainer_type {' and '.join(repr(o) for o in owners)}, "
                f"not of {trainer_type!r} ({cls.__name__}); remove it or change trainer_type. "
                f"The {cls.__name__} keys are: {', '.join(own)}.",
            )
    if copies_schedules(trainer_type) and "learning_rate_schedule" in mapping:
        mapping.setdefault("beta_schedule", mapping["learning_rate_schedule"])
        mapping.setdefault("epsilon_schedule", mapping["learning_rate_schedule"])
    return structure(cls, mapping, path)


def _reward_signal(kind: RewardSignalType, raw: object, path: KeyPath) -> RewardSignalSettings:
    cls = kind.settings_class()
    mapping = as_mapping({} if raw is None else raw, path, f"{cls.__name__} settings")
    settings: RewardSignalSettings = structure(cls, mapping, path)
    encoding_size = getattr(settings, "encoding_size", None)
    if mapping.get("encoding_size") is not None:
        warnings.warn(
            f"{'.'.join(str(p) for p in path)}.encoding_size is deprecated; use network_settings.hidden_units",
            ConfigWarning,
            stacklevel=2,
        )
        if "network_settings" not in mapping and encoding_size is not None:  # it takes the place of hidden_units
            network = dataclasses.replace(settings.network_settings, hidden_units=encoding_size)
            settings = dataclasses.replace(settings, network_settings=network)
    return settings


def _reward_signals(raw: object, path: KeyPath) -> dict[RewardSignalType, RewardSignalSettings]:
    mapping = as_mapping({} if raw is None else raw, path, "reward signal names to their settings")
    signals: dict[RewardSignalType, RewardSignalSettings] = {}
    for key, value in mapping.items():
        kinds = {kind.value: kind for kind in RewardSignalType}
        if key not in kinds:
            raise FieldError(
                path + (key,),
                f"{key!r} is not a reward signal; use one of: {', '.join(kinds)}",
            )
        signals[kinds[key]] = _reward_signal(kinds[key], value, path + (key,))
    return signals


def trainer_settings_from_dict(raw: object, path: KeyPath) -> TrainerSettings:
    """TrainerSettings from one YAML behavior mapping (default_settings already merged in) at `path`."""
    mapping = dict(as_mapping({} if raw is None else raw, path, "trainer settings"))
    if "framework" in mapping:
        warnings.warn(
            f"{'.'.join(str(p) for p in path)}.framework is deprecated and ignored (training uses PyTorch); remove it",
            ConfigWarning,
            stacklevel=2,
        )
        del mapping["framework"]
    trainer_type = mapping.get("trainer_type", "ppo")
    if not isinstance(trainer_type, str) or trainer_type not in trainer_types():
        raise FieldError(
            path + ("trainer_type",),
            f"{describe(trainer_type)} is not a trainer type; use one of: {', '.join(trainer_types())}",
        )

    def hyperparameters(value: object, at: KeyPath) -> HyperparamSettings:
        return _hyperparameters(trainer_type, value, at)

    if "hyperparameters" not in mapping:
        mapping["hyperparameters"] = {}
    return structure(
        TrainerSettings,
        mapping,
        path,
        special={"hyperparameters": hyperparameters, "reward_signals": _reward_signals},
    )


def behavior_name_of(behavior_id: str) -> str:
    """The behavior name of a behavior id: `Striker?team=1` -> `Striker`."""
    return behavior_id.split("?", 1)[0]


def behavior_settings(run_options: RunOptions, name: str, require_configured: bool = False) -> TrainerSettings:
    """The trainer settings of behavior `name` (a `?team=` suffix is ignored).

    A behavior the YAML does not list gets `default_settings` or, without them, the defaults, with a
    ConfigWarning. With `require_configured` (as mlagents-learn does when a trainer config file was given), a
    behavior missing from a YAML without default_settings is a ConfigError instead."""
    behavior = behavior_name_of(name)
    if behavior in run_options.behaviors:
        return run_options.behaviors[behavior]
    configured = ", ".join(run_options.behaviors) or "none"
    if run_options.default_settings is not None:
        warnings.warn(
            f"behavior {behavior!r} is not in the trainer configuration (it lists: {configured}); "
            "it is trained with default_settings",
            ConfigWarning,
            stacklevel=2,
        )
        return run_options.default_settings
    if require_configured:
        raise ConfigError(
            f"behavior {behavior!r} is not in the trainer configuration (it lists: {configured}); add an entry "
            f"for {behavior} under 'behaviors', or a 'default_settings' section"
        )
    warnings.warn(
        f"behavior {behavior!r} is not in the trainer configuration (it lists: {configured}); "
        "it is trained with the default settings",
        ConfigWarning,
        stacklevel=2,
    )
    return TrainerSettings()


def with_deterministic(settings: TrainerSettings, deterministic: bool) -> TrainerSettings:
    """`settings` with `network_settings.deterministic` set (the `--deterministic` flag)."""
    network: NetworkSettings = dataclasses.replace(settings.network_settings, deterministic=deterministic)
    return dataclasses.replace(settings, network_settings=network)
