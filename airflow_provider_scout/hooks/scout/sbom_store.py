"""Where the ``sbom`` backend keeps SBOMs: ``<sbom dir>/sha256/<hex>.json`` (Scout's SBOM JSON)
and ``<sbom dir>/sha256/<hex>.spdx.json`` (SPDX 2.3 JSON, for ``docker scout cves sbom://``).

The directory is a local path, a ``file://`` URL or any Airflow ObjectStoragePath URL
(``s3://...``). Writes never leave half a file for a reader to find.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow.sdk import ObjectStoragePath

from airflow_provider_scout.defaults import SBOM_DIR_ENV
from airflow_provider_scout.exceptions import ScoutFatalError, ScoutRetryableError
from airflow_provider_scout.hooks.scout.settings import ScoutSettings
from airflow_provider_scout.scout_sbom import (
    sarif_relative_path,
    sbom_relative_path,
    spdx_relative_path,
    stored_sbom_tags,
)
from airflow_provider_scout.whole_file import IncompleteWriteError, write_whole

if TYPE_CHECKING:
    from airflow.sdk.types import Logger

__all__ = ["SbomStore"]


class SbomStore:
    """The SBOM directory of one hook's settings."""

    def __init__(self, settings: ScoutSettings, log: Logger) -> None:
        self.settings = settings
        self.log = log

    def base(self) -> Path | ObjectStoragePath:
        """The SBOM directory.

        :raises ScoutFatalError: when none is configured, saying where to set one.
        """
        base = self.settings.sbom_dir
        if not base:
            raise ScoutFatalError(
                f"the sbom backend needs a directory for SBOMs: set the {SBOM_DIR_ENV} environment "
                f"variable or the extra 'sbom_dir' of the Scout connection {self.settings.conn_id!r}"
            )
        if "://" not in base:
            return Path(base)
        if base.startswith("file://"):
            return Path(urlsplit(base).path)
        return ObjectStoragePath(base)

    def location(self, digest: str) -> Path | ObjectStoragePath:
        try:
            relative = sbom_relative_path(digest)
        except ValueError as exc:
            raise ScoutFatalError(str(exc)) from None
        return self.base() / relative

    def spdx_location(self, digest: str) -> Path | ObjectStoragePath:
        try:
            relative = spdx_relative_path(digest)
        except ValueError as exc:
            raise ScoutFatalError(str(exc)) from None
        return self.base() / relative

    def sarif_location(self, digest: str) -> Path | ObjectStoragePath:
        try:
            relative = sarif_relative_path(digest)
        except ValueError as exc:
            raise ScoutFatalError(str(exc)) from None
        return self.base() / relative

    def read(self, digest: str) -> dict[str, Any] | None:
        """The stored SBOM of ``digest``; None when there is none or it is not a readable SBOM of it."""
        location = self.location(digest)
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

    @staticmethod
    def write(location: Path | ObjectStoragePath, document: Mapping[str, Any]) -> None:
        """Store an SBOM at the :meth:`location` of its digest."""
        _write_atomically(location, json.dumps(document, indent=1).encode())

    @staticmethod
    def write_file(location: Path | ObjectStoragePath, data: bytes) -> None:
        """Store a document as it is (the SPDX JSON syft wrote)."""
        _write_atomically(location, data)


def _write_atomically(location: Path | ObjectStoragePath, data: bytes) -> None:
    try:
        write_whole(location, data)
    except IncompleteWriteError as exc:
        raise ScoutRetryableError(f"cannot write the SBOM to {location}: {exc}") from None
