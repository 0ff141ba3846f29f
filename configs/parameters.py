"""Environment parameters from YAML: bare numbers, samplers and curricula."""

from __future__ import annotations

import warnings

from rayagents.configs.environment_parameters import (
    CompletionCriteriaSettings,
    ConstantSettings,
    EnvironmentParameterSettings,
    Lesson,
    ParameterRandomizationSettings,
    SamplerType,
)
from rayagents.configs.errors import ConfigWarning
from rayagents.configs.structure import (
    FieldError,
    KeyPath,
    as_mapping,
    describe,
    dotted,
    structure,
    to_enum,
    unknown_key_error,
)


def sampler_from_yaml(raw: object, path: KeyPath) -> ParameterRandomizationSettings:
    """A sampler from a bare number (a constant) or `{sampler_type, sampler_parameters}`."""
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return ConstantSettings(value=float(raw))
    mapping = as_mapping(raw, path, "sampler_type and sampler_parameters (or a bare number)")
    for key in mapping:
        if key not in ("sampler_type", "sampler_parameters"):
            raise unknown_key_error(path, key, ("sampler_type", "sampler_parameters"), "a sampler")
    if "sampler_type" not in mapping:
        raise FieldError(
            path,
            f"the sampler has no sampler_type; use one of: {', '.join(kind.value for kind in SamplerType)}",
        )
    kind = to_enum(SamplerType, mapping["sampler_type"], path + ("sampler_type",))
    assert isinstance(kind, SamplerType)
    if "sampler_parameters" not in mapping:
        raise FieldError(path, f"the {kind.value} sampler has no sampler_parameters")
    return structure(kind.settings_class(), mapping["sampler_parameters"], path + ("sampler_parameters",))


def _lesson(raw: object, path: KeyPath) -> Lesson:
    return structure(
        Lesson,
        raw,
        path,
        special={
            "value": sampler_from_yaml,
            "completion_criteria": lambda value, at: (
                None if value is None else structure(CompletionCriteriaSettings, value, at)
            ),
        },
    )


def _curriculum(name: str, raw: object, path: KeyPath) -> EnvironmentParameterSettings:
    mapping = as_mapping(raw, path, "curriculum")
    for key in mapping:
        if key != "curriculum":
            raise unknown_key_error(path, key, ("curriculum",), f"the curriculum of {name!r}")
    lessons_raw = mapping["curriculum"]
    lessons_path = path + ("curriculum",)
    if not isinstance(lessons_raw, list) or not lessons_raw:
        raise FieldError(lessons_path, f"expected a list of lessons, got {describe(lessons_raw)}")
    lessons = tuple(_lesson(lesson, lessons_path + (index,)) for index, lesson in enumerate(lessons_raw))
    if lessons[-1].completion_criteria is not None and len(lessons) > 1:
        warnings.warn(
            f"{dotted(lessons_path + (len(lessons) - 1,))}: the final lesson of {name!r} has completion_criteria; "
            "they are ignored",
            ConfigWarning,
            stacklevel=3,
        )
    return structure(EnvironmentParameterSettings, {"curriculum": lessons}, path, special={"curriculum": _keep})


def _keep(value: object, path: KeyPath) -> object:
    return value


def environment_parameters_from_yaml(raw: object, path: KeyPath) -> dict[str, EnvironmentParameterSettings] | None:
    """The `environment_parameters` section: each parameter as a curriculum (one lesson for a plain value)."""
    if raw is None:
        return None
    mapping = as_mapping(raw, path, "environment parameter names to values, samplers or curricula")
    parameters: dict[str, EnvironmentParameterSettings] = {}
    for name, value in mapping.items():
        at = path + (name,)
        if isinstance(value, dict) and "curriculum" in value:
            parameters[name] = _curriculum(name, value, at)
        else:
            lesson = Lesson(value=sampler_from_yaml(value, at), name=name, completion_criteria=None)
            parameters[name] = EnvironmentParameterSettings(curriculum=(lesson,))
    return parameters
