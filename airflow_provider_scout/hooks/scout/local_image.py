"""The image a syft run reads: from the layer cache as a local OCI layout, or from the registry.

With the cache on and a :class:`~.backend.BlobSource` at hand, the target's manifest,
config and layers are taken from the worker's layer store (fetched first when missing,
each blob once however many images and platforms share it) and linked into an OCI image
layout that syft reads as ``oci-dir:``. Otherwise syft pulls ``registry:<reference>``
itself, as it always did, with the registry credentials in its environment.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_provider_scout.defaults import LAYER_CACHE_MAX_BYTES_ENV
from airflow_provider_scout.exceptions import (
    ArtifactoryError,
    ManifestError,
    ScoutFatalError,
    ScoutRetryableError,
)
from airflow_provider_scout.hooks.scout.backend import BlobSource
from airflow_provider_scout.hooks.scout.image_layout import image_blobs, image_layout, manifest_media_type
from airflow_provider_scout.hooks.scout.layer_store import LayerStore
from airflow_provider_scout.models import IndexTarget

if TYPE_CHECKING:
    from airflow_provider_scout.hooks.scout.layer_store import StoreLease

__all__ = ["SyftSource", "syft_source"]


@dataclass(frozen=True)
class SyftSource:
    """What syft is pointed at: ``registry:<reference>`` or ``oci-dir:<layout>``."""

    argument: str
    from_registry: bool
    # oci-dir: the image's architecture, which syft reads from a registry but not from a layout
    architecture: str | None = None
    extra_args: tuple[str, ...] = field(default=())


@contextlib.contextmanager
def syft_source(
    target: IndexTarget, store: LayerStore | None, blob_source: BlobSource | None, *, source_name: str
) -> Iterator[SyftSource]:
    """The source for one syft run, held until the block ends (the layout's blobs are not evicted).

    :raises ScoutRetryableError: or :class:`ScoutFatalError` naming the reference, when the
        image's blobs cannot be fetched.
    """
    if store is None or blob_source is None:
        platform = ("--platform", target.platform) if target.platform else ()
        yield SyftSource(f"registry:{target.reference}", from_registry=True, extra_args=platform)
        return
    with store.lease() as lease:
        try:
            blobs, media_type, architecture = _hold_image(target, lease, blob_source, store.max_bytes)
        except ArtifactoryError as exc:
            kind = ScoutRetryableError if exc.retryable else ScoutFatalError
            raise kind(f"cannot fetch the blobs of {target.reference}: {exc}") from None
        except ManifestError as exc:
            raise ScoutFatalError(f"cannot read the manifest of {target.reference}: {exc}") from None
        with image_layout(store.root / "layouts", target.digest, media_type, blobs) as layout:
            # The layout's path is not the image's name: the SBOMs name the repository.
            yield SyftSource(
                f"oci-dir:{layout}",
                from_registry=False,
                architecture=architecture,
                extra_args=("--source-name", source_name),
            )


def _hold_image(
    target: IndexTarget, lease: StoreLease, source: BlobSource, max_bytes: int
) -> tuple[dict[str, Path], str, str | None]:
    """Every blob of the target held: {digest: path}, the manifest's media type, the architecture.

    :raises ScoutFatalError: when the blobs declare more bytes than the store may hold: a
        manifest names any sizes it likes, and each blob is fetched up to its declared size.
    """
    repository, image = target.repository, target.image

    def fetch_manifest(digest: str, into: Path, size: int | None) -> None:
        into.write_bytes(source.manifest(repository, image, digest)[0])

    def fetch_blob(digest: str, into: Path, size: int | None) -> None:
        source.download(repository, image, digest, into, size)

    manifest_path = lease.hold(target.digest, None, fetch_manifest)
    manifest = manifest_path.read_bytes()
    media_type = manifest_media_type(manifest, what=target.reference)
    held = {target.digest: manifest_path}
    descriptors = image_blobs(manifest, what=target.reference)
    declared = sum(blob.size for blob in descriptors)
    if declared > max_bytes:
        raise ScoutFatalError(
            f"{target.reference}: its config and layers declare {declared:,} bytes, more than the "
            f"layer cache may hold ({LAYER_CACHE_MAX_BYTES_ENV}={max_bytes:,}); nothing was fetched"
        )
    for blob in descriptors:
        held[blob.digest] = lease.hold(blob.digest, blob.size, fetch_blob)
    return held, media_type, _architecture(held[descriptors[0].digest])


def _architecture(config: Path) -> str | None:
    try:
        value = json.loads(config.read_bytes()).get("architecture")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) and value else None
