"""``--search KEY=SPACE``: a search space over one key of the trainer YAML, read without evaluating any code.

``KEY`` is a dotted path into the YAML (``behaviors.CartPole.hyperparameters.learning_rate``); ``SPACE`` is one of
:data:`SPACE_FORMS`. The space's arguments are Python literals read with :func:`ast.literal_eval` (numbers,
strings, booleans, None, lists), never evaluated. A malformed space is a :class:`SearchSpaceError` that names it and
says what to write.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

SPACE_FORMS: dict[str, str] = {
    "uniform": "uniform(LOW, HIGH): a float drawn evenly between LOW and HIGH",
    "quniform": "quniform(LOW, HIGH, Q): uniform, rounded to a multiple of Q",
    "loguniform": "loguniform(LOW, HIGH): a float drawn evenly on a log scale (0 < LOW < HIGH)",
    "randint": "randint(LOW, HIGH): an integer from LOW to HIGH - 1",
    "qrandint": "qrandint(LOW, HIGH, Q): an integer from LOW to HIGH (both included), a multiple of Q",
    "lograndint": "lograndint(LOW, HIGH): an integer from LOW to HIGH - 1 on a log scale (0 < LOW)",
    "choice": "choice([A, B, ...]): one of the values, drawn at random",
    "grid_search": "grid_search([A, B, ...]): every value in turn (each --num-samples times)",
}
"""Each kind of space, with what it draws."""

SPACE_FORMS_HINT = "write e.g. KEY=loguniform(1e-4, 1e-2), KEY=choice([64, 128]) or KEY=grid_search([0.1, 0.2])"
"""The short hint that ends a message about a malformed space."""


_NUMERIC_BOUNDS: dict[str, tuple[int, type]] = {
    "uniform": (2, float),
    "quniform": (3, float),
    "loguniform": (2, float),
    "randint": (2, int),
    "qrandint": (3, int),
    "lograndint": (2, int),
}
"""The kinds that take LOW, HIGH (and Q): how many arguments and of which type."""


class SearchSpaceError(ValueError):
    """A ``--search`` argument that cannot be used; the message names it and says what to write."""


def _forms() -> str:
    return "; ".join(SPACE_FORMS.values())


@dataclass(frozen=True)
class SearchSpace:
    """One ``--search KEY=SPACE``: the key it samples and the space of values."""

    key: str
    """The dotted path into the trainer YAML (``behaviors.CartPole.hyperparameters.learning_rate``)."""
    kind: str
    """The kind of space: a key of :data:`SPACE_FORMS`."""
    arguments: tuple[Any, ...]
    """The space's arguments: (LOW, HIGH) or (LOW, HIGH, Q) for the numeric kinds, the values for choice and
    grid_search."""
    text: str
    """The ``--search`` argument as given (for messages)."""

    def probes(self) -> tuple[Any, ...]:
        """Values that stand for the whole space when a configuration is checked before the sweep: the bounds a
        sample can take, or every value of a choice or grid."""
        if self.kind in ("choice", "grid_search"):
            return self.arguments
        low, high = self.arguments[0], self.arguments[1]
        if self.kind in ("randint", "lograndint"):
            return (low, high - 1)
        return (low, high)

    def to_tune(self) -> Any:
        """The space as a Ray Tune search space (a ``ray.tune`` domain, or a grid)."""
        from ray import tune

        builders = {
            "uniform": tune.uniform,
            "quniform": tune.quniform,
            "loguniform": tune.loguniform,
            "randint": tune.randint,
            "qrandint": tune.qrandint,
            "lograndint": tune.lograndint,
        }
        if self.kind == "choice":
            return tune.choice(list(self.arguments))
        if self.kind == "grid_search":
            return tune.grid_search(list(self.arguments))
        return builders[self.kind](*self.arguments)


def _literal(node: ast.expr, text: str) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError):
        raise SearchSpaceError(
            f"--search {text!r}: {ast.unparse(node)!r} is not a literal value; write numbers, quoted strings, "
            "true/false as True/False, or a list of those"
        ) from None


def _number(value: Any, kind: type, text: str, name: str) -> float | int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SearchSpaceError(f"--search {text!r}: {name} must be a number, not {value!r}; {SPACE_FORMS_HINT}")
    if kind is int and not float(value).is_integer():
        raise SearchSpaceError(f"--search {text!r}: {name} must be an integer, not {value!r}")
    return int(value) if kind is int else float(value)


def _numeric(kind: str, values: list[Any], text: str) -> tuple[Any, ...]:
    count, number_type = _NUMERIC_BOUNDS[kind]
    if len(values) != count:
        raise SearchSpaceError(f"--search {text!r}: {kind} takes {count} numbers: {SPACE_FORMS[kind]}")
    numbers = [_number(v, number_type, text, name) for v, name in zip(values, ("LOW", "HIGH", "Q"))]
    low, high = numbers[0], numbers[1]
    if kind == "qrandint" and low > high or kind != "qrandint" and low >= high:
        raise SearchSpaceError(f"--search {text!r}: LOW must be below HIGH: {SPACE_FORMS[kind]}")
    if kind in ("loguniform", "lograndint") and low <= 0:
        raise SearchSpaceError(f"--search {text!r}: a log scale needs 0 < LOW: {SPACE_FORMS[kind]}")
    if count == 3 and numbers[2] <= 0:
        raise SearchSpaceError(f"--search {text!r}: Q must be above 0: {SPACE_FORMS[kind]}")
    return tuple(numbers)


def _values(kind: str, values: list[Any], text: str) -> tuple[Any, ...]:
    if len(values) != 1 or not isinstance(values[0], (list, tuple)) or not values[0]:
        raise SearchSpaceError(f"--search {text!r}: {kind} takes one non-empty list: {SPACE_FORMS[kind]}")
    return tuple(values[0])


def parse_search(text: str) -> SearchSpace:
    """``KEY=SPACE`` as a :class:`SearchSpace`; a :class:`SearchSpaceError` names what is wrong and what to write."""
    key, equals, space = text.partition("=")
    key, space = key.strip(), space.strip()
    if not equals or not key or not space:
        raise SearchSpaceError(
            f"--search {text!r} is not KEY=SPACE; write a dotted YAML key, =, and a space, e.g. "
            "behaviors.CartPole.hyperparameters.learning_rate=loguniform(1e-4,1e-2)"
        )
    if any(not part for part in key.split(".")):
        raise SearchSpaceError(f"--search {text!r}: {key!r} has an empty part; write e.g. behaviors.NAME.max_steps")
    try:
        tree = ast.parse(space, mode="eval").body
    except SyntaxError:
        tree = None
    if not isinstance(tree, ast.Call) or not isinstance(tree.func, ast.Name) or tree.keywords:
        raise SearchSpaceError(f"--search {text!r}: {space!r} is not a space; the spaces are: {_forms()}")
    kind = tree.func.id
    if kind not in SPACE_FORMS:
        raise SearchSpaceError(f"--search {text!r}: {kind!r} is no kind of space; the spaces are: {_forms()}")
    values = [_literal(argument, text) for argument in tree.args]
    arguments = _numeric(kind, values, text) if kind in _NUMERIC_BOUNDS else _values(kind, values, text)
    return SearchSpace(key=key, kind=kind, arguments=arguments, text=text)


def parse_searches(texts: Sequence[str]) -> tuple[SearchSpace, ...]:
    """Every ``--search``; the same key twice is an error."""
    spaces = tuple(parse_search(text) for text in texts)
    seen: set[str] = set()
    for space in spaces:
        if space.key in seen:
            raise SearchSpaceError(f"--search names {space.key!r} twice; give each key one space")
        seen.add(space.key)
    return spaces
