"""Loading a trainer configuration YAML (the mlagents-learn format plus `cluster_settings`) into RunOptions.

Every load is independent: nothing is remembered between loads."""

from __future__ import annotations

import dataclasses
import os

import yaml

from rayagents.configs.behaviors import merge_default_settings, trainer_settings_from_dict
from rayagents.configs.errors import ConfigError
from rayagents.configs.overrides import resolve_resume_initialize
from rayagents.configs.parameters import environment_parameters_from_yaml
from rayagents.configs.run import RunOptions
from rayagents.configs.structure import FieldError, KeyPath, as_mapping, structure
from rayagents.configs.trainer import TrainerSettings


def run_options_from_dict(data: object) -> RunOptions:
    """RunOptions from a parsed YAML document (a mapping, or None for an empty file).

    Raises FieldError (a ConfigError) naming the key path of the first bad value."""
    top = dict(as_mapping({} if data is None else data, (), "run option sections"))
    default_raw = top.get("default_settings")
    defaults_mapping = as_mapping({} if default_raw is None else default_raw, ("default_settings",), "trainer settings")

    def default_settings(raw: object, path: KeyPath) -> TrainerSettings | None:
        return None if raw is None else trainer_settings_from_dict(raw, path)

    def behaviors(raw: object, path: KeyPath) -> dict[str, TrainerSettings]:
        result: dict[str, TrainerSettings] = {}
        for name, value in as_mapping({} if raw is None else raw, path, "behavior names to trainer settings").items():
            at = path + (name,)
            mapping = as_mapping({} if value is None else value, at, "trainer settings")
            result[name] = trainer_settings_from_dict(merge_default_settings(defaults_mapping, mapping), at)
        return result

    options: RunOptions = structure(
        RunOptions,
        top,
        (),
        special={
            "default_settings": default_settings,
            "behaviors": behaviors,
            "environment_parameters": environment_parameters_from_yaml,
        },
    )
    return dataclasses.replace(options, checkpoint_settings=resolve_resume_initialize(options.checkpoint_settings))


def _line_of(text: str, path: KeyPath) -> int | None:
    """The 1-based line of the YAML node at `path` (or of its deepest existing parent)."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    line: int | None = None
    for part in path:
        if isinstance(node, yaml.MappingNode):
            pairs = [(key, value) for key, value in node.value if isinstance(key, yaml.ScalarNode)]
            match = next(((key, value) for key, value in pairs if key.value == str(part)), None)
            if match is None:
                break
            line = match[0].start_mark.line + 1
            node = match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def parse_yaml_text(text: str, source: str = "<string>") -> object:
    """The YAML document in `text`, or a ConfigError naming `source` and the line of the syntax error."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{source}: not valid YAML: {error}") from None


def run_options_from_yaml_text(text: str, source: str = "<string>") -> RunOptions:
    """RunOptions from YAML text; errors start with `source` and the line of the bad key."""
    data = parse_yaml_text(text, source)
    try:
        return run_options_from_dict(data)
    except FieldError as error:
        line = _line_of(text, error.path)
        where = f"{source}, line {line}" if line is not None else source
        raise ConfigError(f"{where}: {error}") from None


def load_run_options(path: str | os.PathLike[str] | None) -> RunOptions:
    """RunOptions from the trainer configuration YAML at `path`; None gives the defaults (no behaviors)."""
    if path is None:
        return RunOptions()
    try:
        with open(path, encoding="utf-8") as stream:
            text = stream.read()
    except OSError as error:
        raise ConfigError(
            f"cannot read the trainer configuration {os.fspath(path)!r}: {error.strerror}; "
            "check the path passed as trainer_config_path"
        ) from None
    return run_options_from_yaml_text(text, os.fspath(path))
