"""``python -m bench``: reruns every benchmark and rewrites the README's performance tables."""

from __future__ import annotations

import argparse
import os

from bench import learning, mlagents, scaling, sims, training, wire
from bench.table import report


def main() -> None:
    """Runs the wire, simulation-host, training, scaling and learning benchmarks and the comparison with
    ``mlagents-learn`` (where one is found), prints them and writes them into the README."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0, help="how long each measurement runs")
    parser.add_argument(
        "--mlagents-learn",
        default=None,
        metavar="PATH",
        help=f"the mlagents-learn to compare with (default: ${mlagents.MLAGENTS_LEARN_ENV}, else on PATH)",
    )
    parser.add_argument("--no-readme", action="store_true", help="print only; leave README.md as it is")
    options = parser.parse_args()
    try:
        mlagents_learn = mlagents.find_mlagents_learn(options.mlagents_learn, os.environ)
    except ValueError as error:
        parser.error(str(error))
    sections = {
        "The wire": wire.run(options.seconds),
        "The simulation host": sims.run(options.seconds),
        training.SECTION: training.run(options.seconds),
        scaling.SECTION: scaling.run(options.seconds),
        learning.SECTION: learning.run(learning.DEFAULT_LAYOUTS, learning.DEFAULT_SEEDS),
        mlagents.SECTION: mlagents.run(mlagents_learn),
    }
    for section, rows in sections.items():
        report(section, rows, write_readme=not options.no_readme)


if __name__ == "__main__":
    main()
