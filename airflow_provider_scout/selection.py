"""Which repositories and tags a registry string and a tag filter select (no Airflow import).

The Artifactory hook lists what exists; this module decides what is wanted. Keeping the
include/exclude globs and the tag regexes out of the AQL keeps queries short (AQL caps a
query at 6,000 characters) and gives the DAGs, the relay and the tests one definition.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from airflow_provider_scout.config import ArtifactoryRegistryConfig, TagFilter, is_glob
from airflow_provider_scout.models import TagRecord

__all__ = ["select_repositories", "select_tags"]


def select_repositories(config: ArtifactoryRegistryConfig, available: Iterable[str]) -> tuple[str, ...]:
    """The configured repositories, expanding globs against the repositories that exist.

    Pinned keys are kept even when ``available`` does not list them, so a repository the
    API user may not enumerate (or a typo) surfaces as the listing's own error instead
    of silently selecting nothing.
    """
    if config.repositories_are_pinned:
        return config.repositories
    pinned = [r for r in config.repositories if not is_glob(r)]
    matched = sorted(r for r in set(available) if config.selects_repository(r))
    return tuple(dict.fromkeys([*pinned, *matched]))


def select_tags(
    records: Iterable[TagRecord], config: ArtifactoryRegistryConfig, tags: TagFilter
) -> Iterator[TagRecord]:
    """The records whose repository, ``<repository>/<image>`` path and tag are all selected."""
    for record in records:
        if (
            config.selects_repository(record.repository)
            and config.selects(record.repository, record.image)
            and tags.selects(record.tag)
        ):
            yield record
