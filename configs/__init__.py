"""The run options schema: the ML-Agents trainer YAML plus cluster settings, its loading and CLI overrides."""

from rayagents.configs.behaviors import behavior_settings
from rayagents.configs.export import dump_yaml, to_dict
from rayagents.configs.loader import (
    load_run_options,
    parse_yaml_text,
    run_options_from_dict,
    run_options_from_yaml_text,
)
from rayagents.configs.overrides import (
    apply_cli_overrides,
    apply_deterministic,
    override_dests,
    override_section,
    resolve_resume_initialize,
)
from rayagents.configs.settings import *  # noqa: F403  (the settings classes and enums, listed in settings.__all__)
from rayagents.configs.settings import __all__ as _settings_names

__all__ = [
    *_settings_names,
    "apply_cli_overrides",
    "apply_deterministic",
    "behavior_settings",
    "dump_yaml",
    "load_run_options",
    "override_dests",
    "override_section",
    "parse_yaml_text",
    "resolve_resume_initialize",
    "run_options_from_dict",
    "run_options_from_yaml_text",
    "to_dict",
]
