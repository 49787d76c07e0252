"""Converting a hostile syft report: one purl reported thousands of times, before and after issue 25.

A hostile image can make syft list one package over and over (the same ``package.json``
copied into thousands of directories). Converting syft's report into Scout's SBOM merges
the copies into one artifact; before issue 25 each merge scanned the locations kept so far
(a list), so the conversion grew with the square of the copies (4k/8k/16k copies: 0.4/1.0/3.5 s
on the development machine). Two workloads, each at three sizes doubling, run through the
merge as it was (kept below to measure it) and through the provider's as it is:

* **copies**: ``--copies`` artifacts of one purl, each found at a path of its own;
* **locations**: one artifact listing ``--copies`` distinct locations.

Printed side by side: seconds before and now (best of ``--repeat``), and each workload's
growth from the smallest to the largest size (x4 copies: 4 when linear, 16 when quadratic).
Check (every size): both give the same artifacts. Target (full size): now grows at most
x6 from the smallest to the largest size.

    .venv/bin/python bench/sbom_merge.py [--smoke] [--copies 4000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "bench"))
sys.path.insert(0, str(REPO_ROOT))

from verdict import Goal, parse_sized, print_table, verdict  # noqa: E402

from airflow_provider_scout import scout_sbom  # noqa: E402

FULL = {"copies": 4000}
SMOKE = {"copies": 400}
SIZES = (1, 2, 4)  # multiples of --copies
GROWTH_GOAL = 6.0  # x4 the copies: 4 when linear, 16 when quadratic
DIFF_IDS = [f"sha256:{n:064x}" for n in range(1, 4)]
BLOBS = [f"sha256:{n:064x}" for n in range(101, 104)]
DISTRO = {"os_name": "debian", "os_version": "12"}
PURL = "pkg:npm/lodash@4.17.21"
Convert = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]


def _old_artifacts(syft_artifacts: Iterable[Any]) -> list[dict[str, Any]]:
    """The merge before issue 25, kept here to measure it: lists scanned on every merge."""

    def location(path: str, diff_id: Any) -> dict[str, Any]:
        if diff_id not in DIFF_IDS:
            return {"path": path}
        index = DIFF_IDS.index(diff_id)
        return {"path": path, "ordinal": index, "digest": BLOBS[index], "diff_id": diff_id}

    def locations_of(syft_locations: Iterable[Any]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for loc in syft_locations:
            if isinstance(loc, Mapping) and loc.get("path"):
                candidate = location(str(loc["path"]), loc.get("layerID"))
                if candidate not in found:
                    found.append(candidate)
        return found

    def entry_of(purl: Any, licenses: list[str], locations: list[dict[str, Any]]) -> dict[str, Any]:
        entry: dict[str, Any] = {"type": purl.type}
        if purl.namespace:
            entry["namespace"] = purl.namespace
        entry.update(name=purl.name, version=purl.version, purl=str(purl))
        if licenses:
            entry["licenses"] = licenses
        entry["locations"] = locations
        return entry

    def merge(merged: dict[str, dict[str, Any]], entry: dict[str, Any]) -> None:
        known = merged.get(entry["purl"])
        if known is None:
            merged[entry["purl"]] = {**entry, "locations": list(entry["locations"])}
            return
        licenses = list(dict.fromkeys([*known.get("licenses", []), *entry.get("licenses", [])]))
        if licenses:
            known["licenses"] = licenses
        known["locations"] += [loc for loc in entry["locations"] if loc not in known["locations"]]
        if "parent" in entry:
            known.setdefault("parent", entry["parent"])

    merged: dict[str, dict[str, Any]] = {}
    for artifact in syft_artifacts:
        purl = scout_sbom._Purl.parse(str(artifact.get("purl") or ""))
        if purl is None:
            continue
        entry = entry_of(purl, scout_sbom._licenses(artifact.get("licenses") or ()), [])
        entry["locations"] = locations_of(artifact.get("locations") or ())
        merge(merged, entry)
    return sorted(merged.values(), key=lambda a: a["purl"])


def _now_artifacts(syft_artifacts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    layers = scout_sbom._Layers(DIFF_IDS, BLOBS, list(range(len(DIFF_IDS))))
    return scout_sbom._artifacts(syft_artifacts, layers, DISTRO)


def _copies(count: int) -> list[dict[str, Any]]:
    return [
        {
            "purl": PURL,
            "licenses": [{"value": "MIT", "spdxExpression": "MIT"}],
            "locations": [{"path": f"/app/{n}/node_modules/lodash/package.json", "layerID": DIFF_IDS[n % 3]}],
        }
        for n in range(count)
    ]


def _locations(count: int) -> list[dict[str, Any]]:
    paths = [{"path": f"/srv/{n}/lodash/package.json", "layerID": DIFF_IDS[n % 3]} for n in range(count)]
    return [{"purl": PURL, "licenses": ["MIT"], "locations": paths}]


def _best(convert: Convert, artifacts: list[dict[str, Any]], repeat: int) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = convert(artifacts)
        best = min(best, time.perf_counter() - start)
    return best, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--copies", type=int, default=None, help="the smallest size (full 4000, smoke 400)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the best is kept")
    options, size = parse_sized(parser, FULL, SMOKE, argv)
    goals: list[Goal] = []
    rows: list[tuple[Any, ...]] = []
    for workload, build in (("copies", _copies), ("locations", _locations)):
        seconds: dict[str, list[float]] = {"before": [], "now": []}
        same = True
        for multiple in SIZES:
            count = options.copies * multiple
            artifacts = build(count)
            before, old = _best(_old_artifacts, artifacts, 1)  # quadratic: once is enough
            now, new = _best(_now_artifacts, artifacts, options.repeat)
            same = same and old == new and len(new) == 1 and len(new[0]["locations"]) == count
            seconds["before"].append(before)
            seconds["now"].append(now)
            rows.append((f"{workload} x{count:,}", f"{before:.3f}", f"{now:.4f}", f"{before / now:.0f}x"))
        growth = {how: times[-1] / times[0] for how, times in seconds.items()}
        rows.append(
            (
                f"{workload}: growth x{SIZES[-1]} copies",
                f"x{growth['before']:.1f}",
                f"x{growth['now']:.1f}",
                "",
            )
        )
        goals.append(Goal(f"{workload}: same artifacts as before", str(same), "True", same, check=True))
        goals.append(
            Goal(
                f"{workload}: growth from x1 to x{SIZES[-1]}",
                f"x{growth['now']:.1f} (before x{growth['before']:.1f})",
                f"<= x{GROWTH_GOAL:g}",
                growth["now"] <= GROWTH_GOAL,
            )
        )
    print_table(("workload", "before s", "now s", "before/now"), rows)
    return verdict(goals, size)


if __name__ == "__main__":
    sys.exit(main())
