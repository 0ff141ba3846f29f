"""``--search KEY=SPACE``: every kind of space, read without evaluating code, and the errors of malformed ones."""

from __future__ import annotations

import pytest
from ray.tune.search.sample import Categorical, Float, Integer

from rayagents.cluster.search_spaces import SearchSpaceError, parse_search, parse_searches

KEY = "behaviors.CartPole.hyperparameters.learning_rate"


@pytest.mark.parametrize(
    ("space", "kind", "arguments", "probes"),
    [
        ("uniform(0.1, 0.3)", "uniform", (0.1, 0.3), (0.1, 0.3)),
        ("quniform(0, 1, 0.25)", "quniform", (0.0, 1.0, 0.25), (0.0, 1.0)),
        ("loguniform(1e-4,1e-2)", "loguniform", (1e-4, 1e-2), (1e-4, 1e-2)),
        ("randint(1, 4)", "randint", (1, 4), (1, 3)),
        ("qrandint(64, 256, 64)", "qrandint", (64, 256, 64), (64, 256)),
        ("lograndint(16, 512)", "lograndint", (16, 512), (16, 511)),
        ("choice([64, 128, 'x', True, None])", "choice", (64, 128, "x", True, None), (64, 128, "x", True, None)),
        ("grid_search([0.1, 0.2])", "grid_search", (0.1, 0.2), (0.1, 0.2)),
    ],
)
def test_each_kind_of_space_is_read_with_its_arguments(
    space: str, kind: str, arguments: tuple[object, ...], probes: tuple[object, ...]
) -> None:
    parsed = parse_search(f"{KEY}={space}")
    assert (parsed.key, parsed.kind, parsed.arguments, parsed.probes()) == (KEY, kind, arguments, probes)


def test_spaces_become_tune_domains() -> None:
    assert isinstance(parse_search(f"{KEY}=loguniform(1e-4, 1e-2)").to_tune(), Float)
    assert isinstance(parse_search(f"{KEY}=randint(1, 4)").to_tune(), Integer)
    assert isinstance(parse_search(f"{KEY}=choice([1, 2])").to_tune(), Categorical)
    assert parse_search(f"{KEY}=grid_search([1, 2])").to_tune() == {"grid_search": [1, 2]}


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("learning_rate", "is not KEY=SPACE"),
        ("=uniform(0, 1)", "is not KEY=SPACE"),
        ("a..b=uniform(0, 1)", "empty part"),
        (f"{KEY}=0.001", "is not a space"),
        (f"{KEY}=gaussian(0, 1)", "'gaussian' is no kind of space"),
        (f"{KEY}=uniform(0.1)", "uniform takes 2 numbers"),
        (f"{KEY}=uniform(0.3, 0.1)", "LOW must be below HIGH"),
        (f"{KEY}=loguniform(0, 1)", "a log scale needs 0 < LOW"),
        (f"{KEY}=randint(1.5, 4)", "must be an integer"),
        (f"{KEY}=uniform('a', 1)", "must be a number"),
        (f"{KEY}=choice([])", "one non-empty list"),
        (f"{KEY}=choice(1, 2)", "one non-empty list"),
        (f"{KEY}=choice([__import__('os').getcwd()])", "is not a literal value"),
        (f"{KEY}=uniform(low=0, high=1)", "is not a space"),
        (f"{KEY}=os.system('true')", "is not a space"),
    ],
)
def test_a_malformed_space_names_itself_and_what_to_write(text: str, says: str) -> None:
    with pytest.raises(SearchSpaceError, match="--search") as error:
        parse_search(text)
    assert says in str(error.value)


def test_the_same_key_twice_is_refused() -> None:
    with pytest.raises(SearchSpaceError, match="twice"):
        parse_searches([f"{KEY}=uniform(0, 1)", f"{KEY}=choice([1])"])
