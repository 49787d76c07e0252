"""Every Docker Scout GraphQL document the provider sends, with their variables and answers.

The documents follow Scout's public API (``https://api.scout.docker.com/v1/graphql``):
each operation takes ``context: Context!``, which names the organization, and
``imageSummariesByDigest`` takes the repository as ``ScRepositoryInput``. They are kept
here, in one place, and the tests validate them against a hand-written SDL of just the
fields used (``tests/support/data/scout_schema.graphql``). No Airflow import; the client that sends
them is :mod:`airflow_provider_scout.hooks.scout.api`.

``indexImage`` is documented only as ``indexImage(context, image: {digest, repository,
tags}) -> {digest}``. Inferred, not documented: that ``repository`` is the same
``ScRepositoryInput`` (``{hostName, repoName}``) ``imageSummariesByDigest`` takes, and the
field types. The document therefore spells the ``image`` object out inline instead of
naming its (unknown) input type, and declares every variable non-null, which fits both a
nullable and a non-null argument of the real schema.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

__all__ = [
    "IMAGE_SUMMARIES_BY_DIGEST",
    "INDEXED",
    "INDEX_IMAGE",
    "ORGANIZATION_STATUS",
    "SEVERITIES",
    "ImageSummary",
    "OrganizationStatus",
    "ScoutGraphQLError",
    "image_summaries_request",
    "index_image_request",
    "organization_status_request",
    "parse_image_summaries",
    "parse_index_image",
    "parse_organization_status",
]

IMAGE_SUMMARIES_BY_DIGEST = """\
query imageSummariesByDigest($context: Context!, $digests: [String!]!, $repository: ScRepositoryInput) {
  imageSummariesByDigest(context: $context, digests: $digests, repository: $repository) {
    digest
    sbomState
    vulnerabilityReport {
      critical
      high
      medium
      low
      unspecified
      total
    }
  }
}
"""

ORGANIZATION_STATUS = """\
query organizationStatus($context: Context!) {
  organizationStatus(context: $context) {
    hasImageAnalysisEnabled
    hasAnalyzedImages
  }
}
"""

INDEX_IMAGE = """\
mutation indexImage(
  $context: Context!, $digest: String!, $repository: ScRepositoryInput!, $tags: [String!]!
) {
  indexImage(context: $context, image: {digest: $digest, repository: $repository, tags: $tags}) {
    digest
  }
}
"""

SEVERITIES = ("critical", "high", "medium", "low", "unspecified", "total")
INDEXED = "INDEXED"  # the sbomState of an image whose SBOM Scout holds


class ScoutGraphQLError(RuntimeError):
    """Scout answered an operation with GraphQL ``errors`` or without the expected data."""


@dataclass(frozen=True)
class ImageSummary:
    """What Scout knows about one image digest."""

    digest: str
    sbom_state: str  # INDEXED, INDEXING, INDEXING_FAILED, ...
    vulnerabilities: dict[str, int] | None  # counts per severity and "total"; None until a scan ran

    @property
    def is_indexed(self) -> bool:
        return self.sbom_state == INDEXED

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class OrganizationStatus:
    has_image_analysis_enabled: bool
    has_analyzed_images: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _context(organization: str) -> dict[str, str]:
    return {"organization": organization}


def image_summaries_request(
    organization: str, digests: Iterable[str], repository_host: str, repository_name: str
) -> dict[str, Any]:
    """The JSON body of an ``imageSummariesByDigest`` request."""
    return {
        "operationName": "imageSummariesByDigest",
        "query": IMAGE_SUMMARIES_BY_DIGEST,
        "variables": {
            "context": _context(organization),
            "digests": list(digests),
            "repository": {"hostName": repository_host, "repoName": repository_name},
        },
    }


def index_image_request(
    organization: str, digest: str, repository_host: str, repository_name: str, tags: Iterable[str]
) -> dict[str, Any]:
    """The JSON body of an ``indexImage`` mutation: record ``tags`` for ``digest`` in the repository."""
    return {
        "operationName": "indexImage",
        "query": INDEX_IMAGE,
        "variables": {
            "context": _context(organization),
            "digest": digest,
            "repository": {"hostName": repository_host, "repoName": repository_name},
            "tags": list(tags),
        },
    }


def organization_status_request(organization: str) -> dict[str, Any]:
    """The JSON body of an ``organizationStatus`` request."""
    return {
        "operationName": "organizationStatus",
        "query": ORGANIZATION_STATUS,
        "variables": {"context": _context(organization)},
    }


def _data(answer: Any, operation: str) -> Any:
    """The operation's field from a GraphQL answer; ``errors`` or a missing field raise."""
    if not isinstance(answer, Mapping):
        raise ScoutGraphQLError(f"Scout's answer to {operation} is not a JSON object")
    errors = answer.get("errors")
    if errors:
        messages = "; ".join(
            str(e.get("message", e)) if isinstance(e, Mapping) else str(e)
            for e in (errors if isinstance(errors, list) else [errors])
        )
        raise ScoutGraphQLError(f"Scout rejected {operation}: {messages}")
    data = answer.get("data")
    if not isinstance(data, Mapping) or operation not in data:
        raise ScoutGraphQLError(f"Scout's answer to {operation} has no data.{operation}")
    return data[operation]


def parse_image_summaries(answer: Any) -> dict[str, ImageSummary]:
    """``imageSummariesByDigest`` answer -> summaries by digest (digests Scout does not know are absent)."""
    summaries: dict[str, ImageSummary] = {}
    for item in _data(answer, "imageSummariesByDigest") or ():
        if not isinstance(item, Mapping) or not item.get("digest"):
            raise ScoutGraphQLError("Scout's imageSummariesByDigest answer holds an entry without a digest")
        report = item.get("vulnerabilityReport")
        vulnerabilities = (
            {severity: int(report.get(severity) or 0) for severity in SEVERITIES}
            if isinstance(report, Mapping)
            else None
        )
        summaries[item["digest"]] = ImageSummary(
            digest=item["digest"],
            sbom_state=str(item.get("sbomState") or ""),
            vulnerabilities=vulnerabilities,
        )
    return summaries


def parse_index_image(answer: Any) -> str:
    """``indexImage`` answer -> the digest Scout recorded."""
    result = _data(answer, "indexImage")
    if not isinstance(result, Mapping) or not result.get("digest"):
        raise ScoutGraphQLError("Scout's answer to indexImage has no digest")
    return str(result["digest"])


def parse_organization_status(answer: Any) -> OrganizationStatus:
    status = _data(answer, "organizationStatus")
    if not isinstance(status, Mapping):
        raise ScoutGraphQLError("Scout's answer to organizationStatus is null")
    return OrganizationStatus(
        has_image_analysis_enabled=bool(status.get("hasImageAnalysisEnabled")),
        has_analyzed_images=bool(status.get("hasAnalyzedImages")),
    )
