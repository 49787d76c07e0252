"""What every bench shares: its sizes (``--smoke`` or full), its tables and its verdict.

A bench declares its full size (the figures docs/development.md quotes) and a smoke size (seconds,
run by the test command so the bench cannot rot). Its outcome is a list of :class:`Goal`:

* a **check** (every image indexed, every event delivered once, both listings equal) is
  judged at every size: a smoke run that breaks one fails;
* a **target** (a ratio, a latency, a speed-up) is a claim about the full size. At the
  smoke size it is printed with its measurement but not judged: ratios of a few images
  say nothing about thousands, and timing on a shared test machine is noise.

:func:`verdict` prints the goals as a table and one ``verdict:`` line, and returns the
process exit code (1 when a judged goal failed).
"""

from __future__ import annotations

import argparse
import datetime
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

SMOKE = "smoke"
FULL = "full"
CUSTOM = "custom"


@dataclass(frozen=True)
class Size:
    """One size of a bench: the value of each sized option, by its ``dest`` name."""

    name: str
    values: Mapping[str, Any]


@dataclass(frozen=True)
class Goal:
    """One thing a bench promises: what was measured, against what, and whether it held."""

    name: str
    measured: str
    target: str
    met: bool
    check: bool = False  # judged at every size (correctness), not only at the full size


def parse_sized(
    parser: argparse.ArgumentParser,
    full: Mapping[str, Any],
    smoke: Mapping[str, Any],
    argv: Sequence[str] | None = None,
) -> tuple[argparse.Namespace, Size]:
    """Parse ``argv`` with ``--smoke`` added; sized options left unset take the chosen size's value.

    Every key of ``full`` must be an option of ``parser`` whose default is ``None`` (so an
    explicit value can be told from an absent one), and ``smoke`` must size the same
    options. The returned :class:`Size` is named ``smoke``, ``full``, or ``custom`` when an
    option was given explicitly.
    """
    if set(full) != set(smoke):
        raise ValueError(
            f"the full and smoke sizes must set the same options: {sorted(full)} vs {sorted(smoke)}"
        )
    known = {action.dest: action for action in parser._actions}
    for dest in full:
        if dest not in known:
            raise ValueError(f"sized option {dest!r} is not an option of this bench")
        if known[dest].default is not None:
            raise ValueError(f"sized option {dest!r} must default to None, not {known[dest].default!r}")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="the small size the test command runs (seconds); targets are printed, not judged",
    )
    options = parser.parse_args(argv)
    chosen = smoke if options.smoke else full
    explicit = {dest for dest in full if getattr(options, dest) is not None}
    for dest, value in chosen.items():
        if getattr(options, dest) is None:
            setattr(options, dest, value)
    name = CUSTOM if explicit else (SMOKE if options.smoke else FULL)
    return options, Size(name, {dest: getattr(options, dest) for dest in full})


def describe(size: Size) -> str:
    """``size full (images=30, workers=3) on 2 CPUs, 2026-12-05``: where a figure came from."""
    values = ", ".join(f"{dest}={value}" for dest, value in size.values.items())
    today = datetime.date.today().isoformat()
    return f"size {size.name} ({values}) on {os.cpu_count()} CPUs, {today}"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table: the first column left-aligned, the others right-aligned."""
    cells = [[str(header) for header in headers], *[[_cell(value) for value in row] for row in rows]]
    for number, row in enumerate(cells):
        if len(row) != len(headers):
            raise ValueError(f"row {number} has {len(row)} cells, the table has {len(headers)} columns")
    widths = [max(len(row[column]) for row in cells) for column in range(len(headers))]
    lines = []
    for row in cells:
        parts = [row[0].ljust(widths[0])] + [
            cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(parts).rstrip())
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    print(format_table(headers, rows), flush=True)


def verdict(goals: Sequence[Goal], size: Size) -> int:
    """Print the goals and the verdict line; the exit code: 1 when a judged goal failed."""
    if not goals:
        raise ValueError("a bench must state at least one goal")
    judge_targets = size.name != SMOKE
    rows = []
    for goal in goals:
        judged = goal.check or judge_targets
        outcome = (
            ("met" if goal.met else "MISSED") if judged else f"not judged ({'met' if goal.met else 'missed'})"
        )
        rows.append((goal.name, goal.measured, goal.target, outcome))
    print()
    print_table(("goal", "measured", "target", "outcome"), rows)
    missed = [goal.name for goal in goals if not goal.met and (goal.check or judge_targets)]
    print(f"# {describe(size)}")
    if missed:
        print(f"verdict: MISSED {', '.join(missed)}", flush=True)
        return 1
    if judge_targets:
        print("verdict: all goals met", flush=True)
    else:
        print("verdict: checks passed; targets are judged at the full size only", flush=True)
    return 0


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}" if abs(value) < 100 else f"{value:.1f}"
    return str(value)
