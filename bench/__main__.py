"""``python -m bench``: reruns every benchmark and rewrites the README's performance tables."""

from __future__ import annotations

import argparse

from bench import scaling, sims, training, wire
from bench.table import report


def main() -> None:
    """Runs the wire, simulation-host, training and scaling benchmarks, prints them and writes them into the README."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0, help="how long each measurement runs")
    parser.add_argument("--no-readme", action="store_true", help="print only; leave README.md as it is")
    options = parser.parse_args()
    sections = {
        "The wire": wire.run(options.seconds),
        "The simulation host": sims.run(options.seconds),
        training.SECTION: training.run(options.seconds),
        scaling.SECTION: scaling.run(options.seconds),
    }
    for section, rows in sections.items():
        report(section, rows, write_readme=not options.no_readme)


if __name__ == "__main__":
    main()
