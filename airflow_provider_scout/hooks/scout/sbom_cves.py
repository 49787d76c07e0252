"""CVE counts for the ``sbom`` backend: ``docker scout cves`` on the image's SPDX document.

Only when the Scout connection exists and holds credentials (login and access token): then
each SBOM the backend writes is also given to
``docker-scout cves --format sarif --output <hex>.sarif.json [--org ORG] sbom://<hex>.spdx.json``
(docker/scout-cli ``docs/scout_cves.md``: ``sbom://`` reads an SPDX file, SARIF is the only JSON
output of ``cves``). For such local analysis Scout transmits only package URLs and layer digests
and stores nothing (Docker's docs, ``scout/deep-dive/data-handling``). Without credentials the
backend starts no docker-scout and makes no request: nothing leaves the site.

The counts come from the SARIF report: each rule is one vulnerability, its severity the rule's
``properties.cvssV3_severity`` (``CRITICAL`` ... ``LOW``, anything else ``unspecified``); only
rules some result refers to are counted. The report is kept beside the SBOM as ``<hex>.sarif.json``.
docker-scout runs as for a push: in one of the host's slots, its intermittent failures retryable
(:mod:`.cli_runner`), with the task's private Docker config and cache (:class:`TaskWorkspace`).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_scout.defaults import HUB_PASSWORD_ENV, HUB_USER_ENV, MAX_REPORT_BYTES_ENV
from airflow_provider_scout.exceptions import ScoutFatalError
from airflow_provider_scout.hooks.scout.cli_runner import CliSlots, run_docker_scout
from airflow_provider_scout.hooks.scout.docker_scout_backend import TaskWorkspace
from airflow_provider_scout.hooks.scout.process import go_network_environment
from airflow_provider_scout.hooks.scout.settings import ScoutSettings
from airflow_provider_scout.hooks.scout.work_dir import work_directory
from airflow_provider_scout.limits import Limits
from airflow_provider_scout.models import IndexTarget
from airflow_provider_scout.results import SEVERITIES

if TYPE_CHECKING:
    from airflow.sdk.types import Logger

__all__ = ["SbomCves", "sarif_severity_counts"]


class SbomCves:
    """``docker scout cves`` on SPDX documents, with the Scout connection's credentials."""

    def __init__(self, settings: ScoutSettings, log: Logger) -> None:
        self.settings = settings
        self.log = log

    @property
    def enabled(self) -> bool:
        """A Scout connection with a login and an access token exists (the worker's own
        ``DOCKER_SCOUT_HUB_*`` variables alone do not make the backend send anything)."""
        settings = self.settings
        return settings.has_connection and bool(settings.hub_user) and bool(settings.hub_token)

    def scan(self, target: IndexTarget, spdx: bytes) -> tuple[dict[str, int], bytes]:
        """The vulnerability counts by severity (and ``total``) of one SPDX document, and the SARIF report.

        :raises ScoutRetryableError: or :class:`ScoutFatalError`, naming the reference and digest.
        """
        settings = self.settings
        executable = shutil.which(settings.cli_path)
        if executable is None:
            raise ScoutFatalError(
                f"the docker-scout CLI was not found at {settings.cli_path!r} (extra 'cli_path' of "
                f"{settings.source}); it reads CVEs for the SBOMs when the connection has credentials"
            )
        name = target.digest.split(":", 1)[-1]
        workspace = TaskWorkspace()
        try:
            with work_directory("scout-cves-") as work:
                spdx_path, sarif_path = Path(work, f"{name}.spdx.json"), Path(work, f"{name}.sarif.json")
                spdx_path.write_bytes(spdx)
                argv = [executable, "cves", "--format", "sarif", "--output", str(sarif_path)]
                argv += ["--org", settings.org] if settings.org else []
                credentials = {
                    HUB_USER_ENV: settings.hub_user or "",
                    HUB_PASSWORD_ENV: settings.hub_token or "",
                }
                # Only Scout is reached (no registry): the Scout connection's proxies and CA.
                credentials.update(go_network_environment([settings.network], str(workspace.path), self.log))
                run_docker_scout(
                    [*argv, f"sbom://{spdx_path}"],
                    workspace.environment(credentials),
                    [settings.hub_token],
                    command="docker-scout cves",
                    reference=f"{target.reference} ({target.digest})",
                    timeout=settings.timeout,
                    slots=CliSlots.from_environment(),
                    log=self.log,
                )
                report = _read_report(sarif_path, target)
        finally:
            workspace.remove()
        try:
            counts = sarif_severity_counts(json.loads(report))
        except ValueError as exc:
            where = f"{target.reference} ({target.digest})"
            raise ScoutFatalError(
                f"docker-scout cves wrote no readable SARIF report for {where}: {exc}"
            ) from None
        return counts, report


def _read_report(path: Path, target: IndexTarget) -> bytes:
    """The report, read within ``SCOUT_MAX_REPORT_BYTES``; exit 0 without one is an error."""
    cap = Limits.from_environment().max_report_bytes
    where = f"{target.reference} ({target.digest})"
    try:
        with path.open("rb") as report:
            data = report.read(cap + 1)
    except FileNotFoundError:
        raise ScoutFatalError(f"docker-scout cves exited 0 but wrote no SARIF report for {where}") from None
    if len(data) > cap:
        raise ScoutFatalError(f"the SARIF report of {where} exceeds {cap} bytes ({MAX_REPORT_BYTES_ENV})")
    return data


def sarif_severity_counts(document: Any) -> dict[str, int]:
    """Vulnerabilities by severity in a ``docker scout cves --format sarif`` report, and ``total``.

    :raises ValueError: when the document is not SARIF with runs.
    """
    if not isinstance(document, Mapping) or not isinstance(document.get("runs"), list):
        raise ValueError("not a SARIF document with runs")
    counts = dict.fromkeys(SEVERITIES, 0)
    for run in document["runs"]:
        if not isinstance(run, Mapping):
            raise ValueError("a SARIF run is not an object")
        driver = (run.get("tool") or {}).get("driver") or {}
        rules = {rule.get("id"): rule for rule in driver.get("rules") or () if isinstance(rule, Mapping)}
        found = {result.get("ruleId") for result in run.get("results") or () if isinstance(result, Mapping)}
        for rule_id in found & rules.keys():
            properties = rules[rule_id].get("properties") or {}
            severity = str(properties.get("cvssV3_severity") or "").lower()
            counts[severity if severity in counts else "unspecified"] += 1
    return {**counts, "total": sum(counts.values())}
