"""The command line of ``rayagents tune`` (kept apart from the sweep itself, so that ``rayagents`` starts fast)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from rayagents.cluster.search_spaces import SPACE_FORMS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``rayagents tune``."""
    parser.add_argument("config", help="the trainer configuration YAML each trial starts from")
    parser.add_argument(
        "--search",
        action="append",
        required=True,
        metavar="KEY=SPACE",
        help="a dotted YAML key and its space, e.g. behaviors.CartPole.hyperparameters.learning_rate="
        "'loguniform(1e-4,1e-2)'; repeat for more keys. Spaces: " + "; ".join(SPACE_FORMS.values()),
    )
    parser.add_argument(
        "--num-samples", type=int, default=1, help="trials drawn (with grid_search: per grid point)"
    )
    parser.add_argument(
        "--max-concurrent-trials", type=int, default=0, help="trials run at once (default: as many as fit)"
    )
    parser.add_argument("--run-id", default="tune", help="the sweep's name; its trials' runs are RUN_ID_0, RUN_ID_1…")
    parser.add_argument("--results-dir", default="results", help="where the sweep and its runs go (a folder or URI)")
    parser.add_argument("--resume", action="store_true", help="continue the interrupted sweep RUN_ID")
    parser.add_argument("--force", action="store_true", help="start the sweep RUN_ID over, overwriting its runs")
    parser.add_argument(
        "--behavior", default=None, help="whose Environment/Cumulative Reward is compared (default: the only one)"
    )
    parser.add_argument(
        "--grace-period",
        type=int,
        default=None,
        metavar="STEPS",
        help="steps every trial trains before it can be stopped early (default: a tenth of max_steps, at least "
        "one summary_freq)",
    )
    parser.add_argument(
        "--reduction-factor", type=float, default=2.0, help="ASHA's reduction factor: the share of trials kept "
        "at each rung is 1/F"
    )
    parser.add_argument(
        "--search-seed", type=int, default=None, help="seed of the random draws of the spaces (default: unseeded)"
    )
    parser.add_argument("--top", type=int, default=10, help="trials shown in the summary table")
    parser.epilog = (
        "After --, the rayagents-learn options of every trial (--env, --num-envs, --seed, --address, ...); "
        "--run-id, --results-dir, --resume and --force are the sweep's and go before --."
    )


def split_learn_args(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """``rayagents tune`` arguments split at the first ``--``: the sweep's, then the rayagents-learn options."""
    arguments = list(argv)
    if "--" not in arguments:
        return arguments, []
    cut = arguments.index("--")
    return arguments[:cut], arguments[cut + 1 :]
