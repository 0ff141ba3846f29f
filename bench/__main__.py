"""``python -m bench``: reruns every benchmark and rewrites the README's performance tables."""

from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path

from bench import scaling, sims, training, wire
from bench.table import rewrite_readme

README = Path(__file__).resolve().parents[1] / "README.md"


def machine() -> str:
    """A one-line description of the machine the figures were measured on."""
    return f"{platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}"


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
        print(f"## {section}")
        for row in rows:
            print(f"  {row.benchmark}: {row.value}  (target {row.target})")
        if not options.no_readme:
            rewrite_readme(README, section, rows, machine())


if __name__ == "__main__":
    main()
