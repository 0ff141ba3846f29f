"""A sweep's trainer YAML: the keys ``--search`` may sample, a trial's YAML with its sample laid in, and the checks
made before any trial starts.

A key is a dotted path as ``configuration.yaml`` spells it (``rayagents-learn CONFIG --dry-run`` prints it), so
every key the schema knows can be searched, also one the YAML leaves at its default; a key the resolved options do
not have is refused. A name with dots in it (a behavior ``Walker.v2``) is matched whole. A sample is laid into the
user's own YAML (creating the sections it needs), so a trial's YAML reads like the one the user wrote.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from rayagents.cluster.search_spaces import SearchSpace, SearchSpaceError
from rayagents.configs import ConfigError, RunOptions, apply_cli_overrides, override_section, to_dict
from rayagents.configs.loader import parse_yaml_text, run_options_from_yaml_text

KeyPath = tuple[str, ...]
"""A key of the YAML as its parts: ``("behaviors", "CartPole", "max_steps")``."""

SWEEP_OWNED: frozenset[KeyPath] = frozenset(
    ("checkpoint_settings", name) for name in ("run_id", "results_dir", "resume", "force", "load_model")
)
"""Keys the sweep sets for each trial itself (its run id, results folder, resume or not)."""


@dataclass(frozen=True)
class SampledKey:
    """A searched key, found in the configuration."""

    space: SearchSpace
    """The ``--search`` it comes from."""
    path: KeyPath
    """Where the key sits in the YAML."""


def find_key(tree: Mapping[str, Any], key: str) -> KeyPath:
    """The path of dotted ``key`` in ``tree`` (the resolved options as a dict); a :class:`SearchSpaceError` names
    the first part not found and the keys that are there."""
    parts = key.split(".")
    path: list[str] = []
    node: Any = tree
    start = 0
    while start < len(parts):
        if not isinstance(node, Mapping):
            where = ".".join(path)
            raise SearchSpaceError(
                f"--search {key}: {where} is a value ({node!r}), not a section, so it has no key "
                f"{'.'.join(parts[start:])!r}; search {where} itself"
            )
        match = next(
            (end for end in range(len(parts), start, -1) if ".".join(parts[start:end]) in node),
            None,
        )
        if match is None:
            where = ".".join(path) or "the top level"
            names = ", ".join(str(name) for name in node) or "none"
            raise SearchSpaceError(
                f"--search {key}: the configuration has no key {parts[start]!r} under {where} (its keys: {names}); "
                "write the key as configuration.yaml spells it (rayagents-learn CONFIG --dry-run prints it), and "
                "add a behavior or reward signal to the YAML before searching its keys"
            )
        name = ".".join(parts[start:match])
        path.append(name)
        node = node[name]
        start = match
    return tuple(path)


def with_values(tree: Any, values: Mapping[KeyPath, Any]) -> dict[str, Any]:
    """A copy of the YAML document ``tree`` with each path set to its value (sections made where missing)."""
    result: dict[str, Any] = copy.deepcopy(dict(tree or {}))
    for path, value in values.items():
        node = result
        for part in path[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[path[-1]] = copy.deepcopy(value)
    return result


def sample_yaml(base_text: str, values: Mapping[KeyPath, Any], header: Sequence[str] = ()) -> str:
    """The YAML text of ``base_text`` with ``values`` laid in, after the ``header`` comment lines."""
    tree = with_values(parse_yaml_text(base_text), values)
    comments = "".join(f"# {line}\n" for line in header)
    return comments + yaml.safe_dump(tree, sort_keys=False)


def _cli_conflict(path: KeyPath, explicit: Mapping[str, object]) -> str | None:
    """The command-line option that would beat every sample of ``path``, if one was given."""
    for dest in explicit:
        if dest == "deterministic" and path[-2:] == ("network_settings", "deterministic"):
            return dest
        try:
            section = override_section(dest)
        except ConfigError:
            continue
        if section is not None and path == (section, dest):
            return dest
    return None


def locate_keys(
    spaces: Sequence[SearchSpace], options: RunOptions, explicit: Mapping[str, object]
) -> tuple[SampledKey, ...]:
    """Each space's key in the resolved ``options``; refuses a key the sweep sets itself and one a command-line
    option (``explicit``, by argparse dest) would override."""
    resolved = to_dict(options)
    found = []
    for space in spaces:
        path = find_key(resolved, space.key)
        if path in SWEEP_OWNED:
            raise SearchSpaceError(
                f"--search {space.key}: the sweep sets {'.'.join(path)} for each trial itself; search another key"
            )
        conflict = _cli_conflict(path, explicit)
        if conflict is not None:
            flag = "--" + conflict.replace("_", "-")
            raise SearchSpaceError(
                f"--search {space.key}: the rayagents-learn option for it ({flag}) is given after --, and a "
                "command-line option beats the YAML, so every trial would use the same value; drop one of the two"
            )
        found.append(SampledKey(space=space, path=path))
    return tuple(found)


def check_samples(
    base_text: str, source: str, keys: Sequence[SampledKey], explicit: Mapping[str, object]
) -> None:
    """Loads the configuration with each space's probe values (its bounds, every choice) laid in, the other keys at
    their first probe: a value the schema refuses is a :class:`SearchSpaceError` naming the key and the value."""
    firsts = {key.path: key.space.probes()[0] for key in keys}
    for key in keys:
        for value in key.space.probes():
            text = sample_yaml(base_text, {**firsts, key.path: value})
            try:
                apply_cli_overrides(run_options_from_yaml_text(text, source), explicit)
            except ConfigError as error:
                raise SearchSpaceError(
                    f"--search {key.space.text}: the value {value!r} does not fit {'.'.join(key.path)}: {error}"
                ) from None
