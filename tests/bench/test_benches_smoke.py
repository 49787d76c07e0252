"""Every bench runs at its smoke size in the test command, so none can rot unnoticed.

The benches are discovered from ``bench/``: a new one is run here as soon as it exists,
and one without a ``--smoke`` size fails here (argparse refuses the option) instead of
being skipped. ``KNOWN`` guards the other way: a bench renamed or deleted, or discovery
finding nothing, fails too. Only completion, the table and the verdict line are asserted:
targets (timing, ratios) are judged by the full-size runs, never here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BENCH_DIR = REPO_ROOT / "bench"
SHARED = {"verdict"}  # modules of bench/ that are not benches
KNOWN = {
    "celery_scaleout",
    "egress",
    "enumerate",
    "hostile_upstream",
    "index_throughput",
    "plan_scale",
    "plan_xcom",
    "relay_abuse",
    "sbom_merge",
    "webhook_burst",
}
SMOKE_TIMEOUT = 300  # seconds; a smoke run takes well under a minute


def _discovered() -> list[str]:
    return sorted(path.stem for path in BENCH_DIR.glob("*.py") if path.stem not in SHARED)


def test_every_known_bench_is_discovered() -> None:
    assert set(_discovered()) >= KNOWN


@pytest.mark.parametrize("bench", _discovered())
def test_bench_runs_at_smoke_size(bench: str) -> None:
    run = subprocess.run(
        [sys.executable, str(BENCH_DIR / f"{bench}.py"), "--smoke"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=SMOKE_TIMEOUT,
        check=False,
    )
    output = f"--- stdout\n{run.stdout[-4000:]}\n--- stderr\n{run.stderr[-4000:]}"
    assert "unrecognized arguments: --smoke" not in run.stderr, f"bench/{bench}.py has no --smoke size"
    assert run.returncode == 0, output
    lines = run.stdout.splitlines()
    assert any(line.split() == ["goal", "measured", "target", "outcome"] for line in lines), output
    assert lines[-1].startswith("verdict: "), output
    assert "# size smoke (" in run.stdout, output
