"""RunOptions back to plain data: the `configuration.yaml` a run writes into its results folder."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping

import yaml

from rayagents.configs.environment_parameters import ParameterRandomizationSettings
from rayagents.configs.run import RunOptions


def plain(value: object) -> object:
    """A settings value as plain YAML data: dataclasses as mappings, enums as their values, tuples as lists.

    A sampler becomes `{sampler_type, sampler_parameters}`, as in mlagents' configuration.yaml."""
    if isinstance(value, ParameterRandomizationSettings):
        parameters = {field.name: plain(getattr(value, field.name)) for field in dataclasses.fields(value)}
        return {"sampler_type": value.sampler_type.value, "sampler_parameters": parameters}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: plain(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {plain(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value


def to_dict(run_options: RunOptions) -> dict[str, object]:
    """The run options as a plain dict, section by section, as `configuration.yaml` holds them.

    Loading the dict again (run_options_from_dict) gives equal RunOptions."""
    result = plain(run_options)
    assert isinstance(result, dict)
    return result


def dump_yaml(run_options: RunOptions) -> str:
    """The run options as YAML text (the content of `results/<run-id>/configuration.yaml`)."""
    return str(yaml.safe_dump(to_dict(run_options), sort_keys=False, default_flow_style=False))
