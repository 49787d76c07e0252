"""Every Docker Scout GraphQL document the provider sends, with their variables and answers.

The documents follow Scout's public API (``https://api.scout.docker.com/v1/graphql``), typed
as in the SDL Docker publishes for it (docker/hub-mcp ``src/scout/genql/schema.graphql``):
each operation takes ``context: Context!``, which names the organization, and
``imageSummariesByDigest`` takes the repository as ``ScRepositoryInput``. The tests validate
every document here against the published types (``tests/support/data/scout_schema.graphql``,
copied from that file). No mutation is sent: what ``indexImage`` does is documented nowhere,
and ``docker-scout push`` is the documented way to give Scout an image and its tag. No
Airflow import; the client that sends them is :mod:`airflow_provider_scout.hooks.scout.api`.

An answer without the fields a document asks for raises :class:`ScoutGraphQLError`: Scout
never leaves out a non-null field, so a missing one means the answer is not Scout's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from airflow_provider_scout.exceptions import ScoutGraphQLError
from airflow_provider_scout.policy import PolicyResult, PolicyStatus
from airflow_provider_scout.results import SEVERITIES
from airflow_provider_scout.upstream_text import printable

__all__ = [
    "GOAL_RESULTS_BY_DIGESTS",
    "IMAGE_SUMMARIES_BY_DIGEST",
    "INDEXED",
    "ORGANIZATION_STATUS",
    "REPORT_COUNTS",
    "SBOM_STATES",
    "TAGGED_IMAGES_BY_REPOSITORY",
    "ImageSummary",
    "OrganizationStatus",
    "ScoutGraphQLError",
    "auth_error_status",
    "goal_results_request",
    "image_summaries_request",
    "organization_status_request",
    "parse_goal_results",
    "parse_image_summaries",
    "parse_organization_status",
    "parse_tagged_images",
    "tagged_images_request",
]

# The vulnerabilityReport fields asked for: every severity and the total.
REPORT_COUNTS = (*SEVERITIES, "total")
_NAME_LIMIT = 200  # characters of a policy name or status label Scout chose
_REPORT_FIELDS = "".join(f"      {name}\n" for name in REPORT_COUNTS)

IMAGE_SUMMARIES_BY_DIGEST = f"""\
query imageSummariesByDigest($context: Context!, $digests: [String!]!, $repository: ScRepositoryInput) {{
  imageSummariesByDigest(context: $context, digests: $digests, repository: $repository) {{
    digest
    sbomState
    vulnerabilityReport {{
{_REPORT_FIELDS}    }}
  }}
}}
"""

ORGANIZATION_STATUS = """\
query organizationStatus($context: Context!) {
  organizationStatus(context: $context) {
    hasImageAnalysisEnabled
    hasAnalyzedImages
  }
}
"""

# The tag filter's matching rule is not documented: the answer is searched for the exact name.
TAGGED_IMAGES_BY_REPOSITORY = """\
query taggedImagesByRepository($context: Context!, $query: ScTaggedImagesQuery!) {
  taggedImagesByRepository(context: $context, query: $query) {
    tags {
      name
      digest
    }
  }
}
"""
TAG_PAGE_SIZE = 20  # ScTaggedImagesQuery pages (PagingInput); a tag filter matches few names

# Each kind of BaseScPolicy types its currentResult apart; a boolean result says hasDeviation,
# the others count their deviations. What statusLabel holds is not published: it is only shown.
GOAL_RESULTS_BY_DIGESTS = """\
query goalResultsByDigests($context: Context!, $query: GoalResultsDigestsQuery!) {
  goalResultsByDigests(context: $context, query: $query) {
    digest
    policies {
      __typename
      definitionName
      configurationName
      displayName
      evaluated
      ... on ScBooleanPolicy {
        currentResult {
          statusLabel
          hasDeviation
          isStale
        }
      }
      ... on ScGenericPolicy {
        currentResult {
          statusLabel
          deviationCount
          isStale
        }
      }
      ... on ScLicencePolicy {
        currentResult {
          statusLabel
          deviationCount
          isStale
        }
      }
      ... on ScVulnerabilityPolicy {
        currentResult {
          statusLabel
          deviationCount
          isStale
        }
      }
    }
  }
}
"""

INDEXED = "INDEXED"  # the sbomState of an image whose SBOM Scout holds
# enum SBOMState of the published SDL
SBOM_STATES = frozenset({"INDEXED", "INDEXING", "INDEXING_FAILED", "INDEXING_UNAVAILABLE", "NONE"})


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
    organization: str, digests: Iterable[str], repository_host: str | None, repository_name: str | None
) -> dict[str, Any]:
    """The JSON body of an ``imageSummariesByDigest`` request.

    Without a repository (both None) the argument is null, which the SDL allows: Scout then
    searches the organization by digest alone, whichever repository the digest was pushed to.
    """
    repository = None
    if repository_host is not None and repository_name is not None:
        repository = {"hostName": repository_host, "repoName": repository_name}
    return {
        "operationName": "imageSummariesByDigest",
        "query": IMAGE_SUMMARIES_BY_DIGEST,
        "variables": {"context": _context(organization), "digests": list(digests), "repository": repository},
    }


def organization_status_request(organization: str) -> dict[str, Any]:
    """The JSON body of an ``organizationStatus`` request."""
    return {
        "operationName": "organizationStatus",
        "query": ORGANIZATION_STATUS,
        "variables": {"context": _context(organization)},
    }


def tagged_images_request(
    organization: str, repository_host: str, repository_name: str, tag: str
) -> dict[str, Any]:
    """The JSON body of a ``taggedImagesByRepository`` request for one tag name."""
    return {
        "operationName": "taggedImagesByRepository",
        "query": TAGGED_IMAGES_BY_REPOSITORY,
        "variables": {
            "context": _context(organization),
            "query": {
                "hostName": repository_host,
                "repoName": repository_name,
                "filter": {"tagName": tag},
                "paging": {"pageSize": TAG_PAGE_SIZE, "page": 1},
            },
        },
    }


def goal_results_request(organization: str, digests: Iterable[str]) -> dict[str, Any]:
    """The JSON body of a ``goalResultsByDigests`` request."""
    return {
        "operationName": "goalResultsByDigests",
        "query": GOAL_RESULTS_BY_DIGESTS,
        "variables": {"context": _context(organization), "query": {"digests": list(digests)}},
    }


def parse_goal_results(answer: Any) -> dict[str, tuple[PolicyResult, ...]]:
    """``goalResultsByDigests`` answer -> each digest's policies (digests Scout does not know are absent).

    :raises ScoutGraphQLError: naming the digest and the field an entry lacks.
    """
    items = _data(answer, "goalResultsByDigests")
    if not isinstance(items, list):
        raise ScoutGraphQLError("Scout's answer to goalResultsByDigests is not a list")
    results: dict[str, tuple[PolicyResult, ...]] = {}
    for item in items:
        digest = item.get("digest") if isinstance(item, Mapping) else None
        if not isinstance(digest, str) or not digest:
            raise ScoutGraphQLError("Scout's goalResultsByDigests answer holds an image without a digest")
        policies = item.get("policies")
        if not isinstance(policies, list):
            raise ScoutGraphQLError(f"Scout's goalResultsByDigests entry for {digest} has no policies list")
        results[digest] = tuple(_policy(policy, digest) for policy in policies)
    return results


def _policy(policy: Any, digest: str) -> PolicyResult:
    if not isinstance(policy, Mapping):
        raise ScoutGraphQLError(f"Scout's policy results for {digest} hold a policy that is not an object")
    definition, configuration = policy.get("definitionName"), policy.get("configurationName")
    if not isinstance(definition, str) or not isinstance(configuration, str):
        raise ScoutGraphQLError(f"a policy of {digest} lacks its definitionName or configurationName")
    display = policy.get("displayName")
    # Names and labels reach the summary, the task log and asset events: shown, never obeyed.
    name = printable(
        display if isinstance(display, str) and display else configuration or definition, _NAME_LIMIT
    )
    definition = printable(definition, _NAME_LIMIT)
    result = policy.get("currentResult")
    if policy.get("evaluated") is not True or not isinstance(result, Mapping):
        return PolicyResult(name, definition, PolicyStatus.NO_DATA)
    label = (
        printable(result["statusLabel"], _NAME_LIMIT) if isinstance(result.get("statusLabel"), str) else None
    )
    stale = result.get("isStale") is True
    if isinstance(result.get("hasDeviation"), bool):
        status = PolicyStatus.NOT_MET if result["hasDeviation"] else PolicyStatus.MET
        return PolicyResult(name, definition, status, int(result["hasDeviation"]), label, stale)
    count = result.get("deviationCount")
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise ScoutGraphQLError(f"the result of policy {name!r} of {digest} has no deviationCount")
    status = PolicyStatus.NOT_MET if count else PolicyStatus.MET
    return PolicyResult(name, definition, status, count, label, stale)


def parse_tagged_images(answer: Any, tag: str) -> str | None:
    """The digest Scout records for ``tag``; None when it records no such tag (or not the repository).

    :raises ScoutGraphQLError: when the answer carries errors or tags without a name or digest.
    """
    # ScTaggedImagesResult is nullable: null for a repository Scout does not know.
    result = _data(answer, "taggedImagesByRepository", nullable=True)
    if result is None:
        return None
    tags = result.get("tags") if isinstance(result, Mapping) else None
    if not isinstance(tags, list):
        raise ScoutGraphQLError("Scout's answer to taggedImagesByRepository has no tags list")
    for entry in tags:
        name = entry.get("name") if isinstance(entry, Mapping) else None
        digest = entry.get("digest") if isinstance(entry, Mapping) else None
        if not isinstance(name, str) or not isinstance(digest, str) or not digest:
            raise ScoutGraphQLError(
                "Scout's taggedImagesByRepository answer holds a tag without name or digest"
            )
        if name == tag:
            return digest
    return None


def auth_error_status(answer: Any) -> int | None:
    """401 or 403 when Scout refused the request inside a GraphQL answer, else None.

    Scout answers an unauthorised request with HTTP 200, ``data`` null and
    ``errors[].extensions.status`` 401 or 403, not with an HTTP status.
    """
    if not isinstance(answer, Mapping) or not isinstance(answer.get("errors"), list):
        return None
    for error in answer["errors"]:
        extensions = error.get("extensions") if isinstance(error, Mapping) else None
        status = extensions.get("status") if isinstance(extensions, Mapping) else None
        if status in (401, 403, "401", "403"):
            return int(status)
    return None


def _data(answer: Any, operation: str, *, nullable: bool = False) -> Any:
    """The operation's field from a GraphQL answer; ``errors`` or a missing field raise.

    With ``nullable`` (the SDL types the field without ``!``) a present null is returned.
    """
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
    if not isinstance(data, Mapping) or operation not in data or (data[operation] is None and not nullable):
        raise ScoutGraphQLError(f"Scout's answer to {operation} has no data.{operation}")
    return data[operation]


def parse_image_summaries(answer: Any) -> dict[str, ImageSummary]:
    """``imageSummariesByDigest`` answer -> summaries by digest (digests Scout does not know are absent).

    :raises ScoutGraphQLError: naming the field an entry lacks or holds wrongly.
    """
    items = _data(answer, "imageSummariesByDigest")
    if not isinstance(items, list):
        raise ScoutGraphQLError("Scout's answer to imageSummariesByDigest is not a list")
    summaries: dict[str, ImageSummary] = {}
    for item in items:
        if not isinstance(item, Mapping) or not isinstance(item.get("digest"), str) or not item["digest"]:
            raise ScoutGraphQLError("Scout's imageSummariesByDigest answer holds an entry without a digest")
        digest = item["digest"]
        state = item.get("sbomState")
        if state not in SBOM_STATES:
            raise ScoutGraphQLError(
                f"Scout's imageSummariesByDigest entry for {digest} has no valid sbomState ({state!r})"
            )
        summaries[digest] = ImageSummary(
            digest=digest, sbom_state=str(state), vulnerabilities=_report(item, digest)
        )
    return summaries


def _report(item: Mapping[str, Any], digest: str) -> dict[str, int] | None:
    if "vulnerabilityReport" not in item:
        raise ScoutGraphQLError(
            f"Scout's imageSummariesByDigest entry for {digest} has no vulnerabilityReport"
        )
    report = item["vulnerabilityReport"]
    if report is None:
        return None  # the image exists but was not scanned yet
    counts = report if isinstance(report, Mapping) else {}
    missing = [severity for severity in REPORT_COUNTS if not isinstance(counts.get(severity), int)]
    if missing:
        raise ScoutGraphQLError(
            f"Scout's vulnerabilityReport for {digest} lacks the counts {', '.join(missing)}"
        )
    return {severity: int(counts[severity]) for severity in REPORT_COUNTS}


def parse_organization_status(answer: Any) -> OrganizationStatus:
    """:raises ScoutGraphQLError: when a flag the document asks for is missing."""
    status = _data(answer, "organizationStatus")
    flags = ("hasImageAnalysisEnabled", "hasAnalyzedImages")
    missing = [
        flag for flag in flags if not isinstance(status, Mapping) or not isinstance(status.get(flag), bool)
    ]
    if missing:
        raise ScoutGraphQLError(f"Scout's answer to organizationStatus lacks {', '.join(missing)}")
    return OrganizationStatus(
        has_image_analysis_enabled=status["hasImageAnalysisEnabled"],
        has_analyzed_images=status["hasAnalyzedImages"],
    )
