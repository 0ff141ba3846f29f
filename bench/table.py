"""A benchmark result row and the README table it is written into."""

from __future__ import annotations

import argparse
import os
import platform
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
"""The README whose tables the benchmarks rewrite."""
BEGIN = "<!-- bench:begin -->"
END = "<!-- bench:end -->"


@dataclass(frozen=True)
class Row:
    """One measured figure, as one line of the README table."""

    benchmark: str
    """What was measured, in words."""
    value: str
    """The measured figure with its unit."""
    target: str
    """The target from the issue, or '—' when there is none."""
    met: bool | None
    """Whether the target is met; None when there is no target."""
    command: str
    """The command that measures it."""


def render(rows: list[Row], machine: str) -> str:
    """The Markdown table (between the bench markers) for ``rows`` measured on ``machine``."""
    lines = [
        BEGIN,
        f"Measured on {machine}.",
        "",
        "| benchmark | measured | target | met | command |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        met = "—" if r.met is None else ("yes" if r.met else "**no**")
        lines.append(f"| {r.benchmark} | {r.value} | {r.target} | {met} | `{r.command}` |")
    lines.append(END)
    return "\n".join(lines)


def rewrite_readme(readme: Path, section: str, rows: list[Row], machine: str) -> None:
    """Replaces the bench table of ``section`` (a heading's text) in ``readme``; other sections stay."""
    text = readme.read_text()
    block = render(rows, machine)
    pattern = re.compile(
        rf"(### {re.escape(section)}\n\n){re.escape(BEGIN)}.*?{re.escape(END)}", re.DOTALL
    )
    if pattern.search(text):
        text = pattern.sub(lambda m: m.group(1) + block, text)
    else:
        raise ValueError(f"{readme} has no '### {section}' heading followed by a bench table; add one first")
    readme.write_text(text)


def machine() -> str:
    """A one-line description of the machine the figures were measured on."""
    return f"{platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}"


def report(section: str, rows: list[Row], write_readme: bool) -> None:
    """Prints a benchmark's rows under ``## section`` and (with ``write_readme``) rewrites that README table."""
    print(f"## {section}")
    for row in rows:
        print(f"  {row.benchmark}: {row.value}  (target {row.target})")
    if write_readme:
        rewrite_readme(README, section, rows, machine())


def seeded_arguments(
    description: str, parts: Sequence[str] | None, default_seeds: Sequence[int], argv: Sequence[str] | None
) -> argparse.Namespace:
    """The command line of a learning benchmark: its ``part`` (one of ``parts``; none when None), ``--seeds 0,1,2``
    (default ``default_seeds``) and ``--no-readme``."""
    parser = argparse.ArgumentParser(description=description)
    if parts is not None:
        parser.add_argument("part", choices=tuple(parts))
    parser.add_argument("--seeds", type=lambda s: [int(p) for p in s.split(",")], default=list(default_seeds))
    parser.add_argument("--no-readme", action="store_true", help="print only; leave README.md as it is")
    return parser.parse_args(argv)
