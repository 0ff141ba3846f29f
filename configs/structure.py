"""Turning parsed YAML (plain dicts, lists and scalars) into the typed, frozen settings classes.

Every error names the full key path of the bad value (e.g. `behaviors.3DBall.hyperparameters.batchsize`)."""

from __future__ import annotations

import dataclasses
import difflib
import enum
import math
import types
import typing
from collections.abc import Callable, Mapping, Sequence

from rayagents.configs.errors import ConfigError

KeyPath = tuple[str | int, ...]
"""Where a value sits in the YAML: mapping keys and list indices from the top."""

SettingsT = typing.TypeVar("SettingsT")
"""A settings dataclass."""

Converter = Callable[[object, KeyPath], object]
"""Turns the raw YAML value at a key path into the value a settings field holds."""


class FieldError(ConfigError):
    """A ConfigError about the value at one key path of the YAML."""

    def __init__(self, path: KeyPath, detail: str) -> None:
        self.path: KeyPath = path
        self.detail: str = detail
        super().__init__(f"{dotted(path)}: {detail}" if path else detail)


def dotted(path: KeyPath) -> str:
    """The key path as the user reads it: `behaviors.3DBall.network_settings.memory`, `...curriculum[2]`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def describe(value: object) -> str:
    """A short rendering of a YAML value for an error message."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def unknown_key_error(path: KeyPath, key: str, allowed: Sequence[str], where: str) -> FieldError:
    """The error for a key that is not allowed: names its path, the nearest allowed key, and all of them."""
    nearest = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.6)
    hint = f" Did you mean {nearest[0]!r}?" if nearest else ""
    return FieldError(
        path + (key,),
        f"unknown key {key!r} in {where}.{hint} The keys allowed here are: {', '.join(allowed)}.",
    )


def field_names(cls: type) -> tuple[str, ...]:
    """The YAML keys a settings class takes, in declaration order."""
    return tuple(field.name for field in dataclasses.fields(cls))


def as_mapping(value: object, path: KeyPath, what: str) -> Mapping[str, object]:
    """`value` as a mapping with string keys, or a FieldError saying a mapping of `what` was expected."""
    if not isinstance(value, Mapping):
        raise FieldError(path, f"expected a mapping of {what}, got {describe(value)}")
    for key in value:
        if not isinstance(key, str):
            raise FieldError(path, f"key {describe(key)} is not a name; keys must be strings")
    return value


def to_bool(value: object, path: KeyPath) -> bool:
    """A YAML boolean (`true`, `False`, ...) as bool."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise FieldError(path, f"expected true or false, got {describe(value)}")


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def to_int(value: object, path: KeyPath) -> int:
    """A whole number; also a float or numeric string with no fraction ("1.0e7" -> 10000000)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    number = _number(value)
    if number is None or not math.isfinite(number) or not number.is_integer():
        raise FieldError(path, f"expected a whole number, got {describe(value)}")
    return int(number)


def to_float(value: object, path: KeyPath) -> float:
    """A number; also a numeric string such as "3e-4" (which YAML 1.1 reads as a string)."""
    number = _number(value)
    if number is None or math.isnan(number):
        raise FieldError(path, f"expected a number, got {describe(value)}")
    return number


def to_str(value: object, path: KeyPath) -> str:
    """A string; a number (e.g. a numeric run id) is taken as its text."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise FieldError(path, f"expected a string, got {describe(value)}")


def to_enum(enum_type: type[enum.Enum], value: object, path: KeyPath) -> enum.Enum:
    """An enum member from its value, case-insensitively."""
    allowed = [str(member.value) for member in enum_type]
    if isinstance(value, str):
        for member in enum_type:
            if str(member.value) == value.strip().lower():
                return member
    raise FieldError(path, f"{describe(value)} is not allowed; use one of: {', '.join(allowed)}")


def convert(annotation: object, value: object, path: KeyPath) -> object:
    """`value` converted to the type `annotation` (a settings field's type), or a FieldError."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        members = [arg for arg in args if arg is not type(None)]
        if value is None and len(members) < len(args):
            return None
        if len(members) != 1:
            raise TypeError(f"no converter for the union {annotation}")
        return convert(members[0], value, path)
    if annotation is bool:
        return to_bool(value, path)
    if annotation is int:
        return to_int(value, path)
    if annotation is float:
        return to_float(value, path)
    if annotation is str:
        return to_str(value, path)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return to_enum(annotation, value, path)
    if isinstance(annotation, type) and dataclasses.is_dataclass(annotation):
        return structure(annotation, value, path)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise FieldError(path, f"expected a list, got {describe(value)}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(convert(args[0], item, path + (index,)) for index, item in enumerate(value))
        if len(value) != len(args):
            raise FieldError(path, f"expected a list of exactly {len(args)} values, got {describe(value)}")
        return tuple(
            convert(arg, item, path + (index,)) for index, (arg, item) in enumerate(zip(args, value, strict=True))
        )
    if origin in (Mapping, dict) and len(args) == 2:
        mapping = as_mapping(value, path, "names to values")
        return {key: convert(args[1], item, path + (key,)) for key, item in mapping.items()}
    raise TypeError(f"no converter for the settings type {annotation}")


def convert_field(field: dataclasses.Field[typing.Any], annotation: object, value: object, path: KeyPath) -> object:
    """`value` converted for the settings field `field` of type `annotation`.

    A field whose metadata lists `none_aliases` (e.g. "auto") takes those words as None."""
    aliases: Sequence[str] = field.metadata.get("none_aliases", ())
    if isinstance(value, str) and value.strip().lower() in aliases:
        return None
    return convert(annotation, value, path)


def structure(
    cls: type[SettingsT],
    value: object,
    path: KeyPath,
    special: Mapping[str, Converter] | None = None,
) -> SettingsT:
    """An instance of the settings dataclass `cls` from the YAML mapping `value` at `path`.

    Unknown keys, values of the wrong type and missing required keys raise FieldError naming the path.
    `special` maps a field name to a converter used instead of the field's type (for fields whose class
    depends on other keys, such as hyperparameters on trainer_type). The class's own checks
    (`__post_init__`) run too; their ConfigError comes back with the path in front."""
    mapping = as_mapping({} if value is None else value, path, f"{cls.__name__} settings")
    names = field_names(cls)
    for key in mapping:
        if key not in names:
            raise unknown_key_error(path, key, names, f"{cls.__name__} ({dotted(path) or 'the top level'})")
    hints = typing.get_type_hints(cls)
    converters = special or {}
    arguments: dict[str, object] = {}
    for field in dataclasses.fields(typing.cast(typing.Any, cls)):
        if field.name not in mapping:
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                raise FieldError(path, f"the required key {field.name!r} is missing from {cls.__name__}")
            continue
        raw = mapping[field.name]
        field_path = path + (field.name,)
        if field.name in converters:
            arguments[field.name] = converters[field.name](raw, field_path)
        else:
            arguments[field.name] = convert_field(field, hints[field.name], raw, field_path)
    try:
        return cls(**arguments)
    except FieldError:
        raise
    except ConfigError as error:
        raise FieldError(path, str(error)) from None
