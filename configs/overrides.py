"""Command-line overrides: options given explicitly on the command line beat the YAML (mlagents-learn's rule)."""

from __future__ import annotations

import dataclasses
import typing
import warnings
from collections.abc import Mapping

from rayagents.configs.behaviors import with_deterministic
from rayagents.configs.errors import ConfigError, ConfigWarning
from rayagents.configs.run import (
    CheckpointSettings,
    ClusterSettings,
    EngineSettings,
    EnvironmentSettings,
    RunOptions,
    TorchSettings,
)
from rayagents.configs.structure import FieldError, convert_field, field_names, to_bool

SectionT = typing.TypeVar("SectionT")

_SECTIONS: tuple[tuple[str, type], ...] = (
    ("checkpoint_settings", CheckpointSettings),
    ("env_settings", EnvironmentSettings),
    ("engine_settings", EngineSettings),
    ("torch_settings", TorchSettings),
    ("cluster_settings", ClusterSettings),
)


def override_section(dest: str) -> str | None:
    """The RunOptions section a command-line option (argparse dest) belongs to; None for a top-level one.

    `deterministic` applies to every behavior's network_settings and `debug` sits at the top level."""
    for section, cls in _SECTIONS:
        if dest in field_names(cls):
            return section
    if dest in ("debug", "deterministic"):
        return None
    raise ConfigError(
        f"the command-line option {dest!r} has no place in the run options; the options that do are: "
        f"{', '.join(override_dests())}"
    )


def override_dests() -> tuple[str, ...]:
    """Every argparse dest apply_cli_overrides accepts."""
    names = [name for _, cls in _SECTIONS for name in field_names(cls)]
    return tuple(names) + ("debug", "deterministic")


def resolve_resume_initialize(
    checkpoint_settings: CheckpointSettings, explicit: frozenset[str] = frozenset()
) -> CheckpointSettings:
    """Settle `resume` against `initialize_from` when both are set, as mlagents-learn does.

    `explicit` holds the options given on the command line. An explicitly given `resume` (or `load_model`)
    drops initialize_from; an explicitly given `initialize_from` (without resume) drops resume; when both come
    from the YAML, resume wins. Each case warns."""
    initialize_from = checkpoint_settings.initialize_from
    if not checkpoint_settings.resume or initialize_from is None:
        return checkpoint_settings
    if "initialize_from" in explicit and not {"resume", "load_model"} & explicit:
        warnings.warn(
            f"both resume and initialize_from={initialize_from!r} are set; --initialize-from was given on the "
            f"command line, so run {checkpoint_settings.run_id!r} starts from {initialize_from!r} and resume "
            "is ignored",
            ConfigWarning,
            stacklevel=3,
        )
        return dataclasses.replace(checkpoint_settings, resume=False, load_model=False)
    warnings.warn(
        f"both resume and initialize_from={initialize_from!r} are set; run {checkpoint_settings.run_id!r} is "
        "resumed and initialize_from is ignored",
        ConfigWarning,
        stacklevel=3,
    )
    return dataclasses.replace(checkpoint_settings, initialize_from=None)


def apply_deterministic(options: RunOptions, deterministic: bool) -> RunOptions:
    """`options` with network_settings.deterministic set on every behavior and on default_settings."""
    defaults = options.default_settings
    return dataclasses.replace(
        options,
        behaviors={name: with_deterministic(settings, deterministic) for name, settings in options.behaviors.items()},
        default_settings=None if defaults is None else with_deterministic(defaults, deterministic),
    )


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def apply_cli_overrides(options: RunOptions, explicit: Mapping[str, object]) -> RunOptions:
    """`options` with the command-line values that were given explicitly (argparse dest -> value) laid over it.

    Pass only the options the user typed: a flag left at its default must not beat the YAML. Each value is
    checked like the YAML's; `load_model` (deprecated `--load`) sets resume; `deterministic` sets every
    behavior's network_settings.deterministic; resume and initialize_from are then settled (explicit flag wins)."""
    given = dict(explicit)
    if given.get("load_model"):
        given["resume"] = True
    updates: dict[str, dict[str, object]] = {section: {} for section, _ in _SECTIONS}
    flags: dict[str, bool] = {}
    for dest, value in given.items():
        section = override_section(dest)
        try:
            if section is None:
                flags[dest] = to_bool(value, (dest,))
            else:
                cls = dict(_SECTIONS)[section]
                field = next(field for field in dataclasses.fields(cls) if field.name == dest)
                hint = typing.get_type_hints(cls)[dest]
                updates[section][dest] = convert_field(field, hint, value, (section, dest))
        except FieldError as error:
            raise ConfigError(f"command-line option {_flag(dest)}: {error.detail}") from None
    result = dataclasses.replace(
        options,
        checkpoint_settings=_replaced(options.checkpoint_settings, "checkpoint_settings", updates),
        env_settings=_replaced(options.env_settings, "env_settings", updates),
        engine_settings=_replaced(options.engine_settings, "engine_settings", updates),
        torch_settings=_replaced(options.torch_settings, "torch_settings", updates),
        cluster_settings=_replaced(options.cluster_settings, "cluster_settings", updates),
        debug=flags.get("debug", options.debug),
    )
    if "deterministic" in flags:
        result = apply_deterministic(result, flags["deterministic"])
    checkpoint = resolve_resume_initialize(result.checkpoint_settings, frozenset(given))
    return dataclasses.replace(result, checkpoint_settings=checkpoint)


def _replaced(section: SectionT, name: str, updates: Mapping[str, Mapping[str, object]]) -> SectionT:
    """`section` with its command-line values laid over it; the section's own checks run again."""
    if not updates[name]:
        return section
    try:
        return dataclasses.replace(section, **updates[name])  # type: ignore[type-var]
    except ConfigError as error:
        flags = ", ".join(_flag(dest) for dest in updates[name])
        raise ConfigError(f"command-line options {flags} (with {name} of the YAML): {error}") from None
