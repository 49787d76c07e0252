"""What indexing one image gave, and the run's summary of them (no Airflow import).

The indexing task pushes its :class:`IndexResult` list under :data:`RESULTS_XCOM_KEY`
as JSON-ready dicts; the summary task reads them back, fills in a failed result for
every planned image that has none, and reports them as :class:`IndexSummary`.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from airflow_provider_scout.exceptions import InputError
from airflow_provider_scout.models import IndexTarget
from airflow_provider_scout.policy import PolicyResult, failing, status_counts
from airflow_provider_scout.upstream_text import printable

__all__ = [
    "DEFAULT_MAX_ROWS",
    "RESULTS_XCOM_KEY",
    "SEVERITIES",
    "IndexResult",
    "IndexState",
    "IndexSummary",
    "SummaryBuilder",
]

# Indexing results are pushed under this key before a failing task raises: a failed
# task's return value is never stored, and the summary must still see why it failed.
RESULTS_XCOM_KEY = "index_results"

# Scout's vulnerability severities, most severe first: the counts an IndexResult carries
# (besides "total") and the fields the GraphQL read-back asks for.
SEVERITIES = ("critical", "high", "medium", "low", "unspecified")
# The table's column: the four named severities; every count stays in the XCom.
_TABLE_SEVERITIES = SEVERITIES[:4]
_REQUIRED_FIELDS = ("reference", "repository", "image", "digest", "state")
# Results one summary keeps for its table and XCom (SCOUT_SUMMARY_MAX_ROWS): at about 500
# bytes of JSON each, 50,000 of them were a 25 MB XCom and a 50,000-line log table.
DEFAULT_MAX_ROWS = 1_000


class IndexState(StrEnum):
    """How one image ended; the value is what XComs, logs and asset events carry."""

    INDEXED = "indexed"
    # The sbom backend added new tags to the stored SBOM of a digest analysed before.
    RETAGGED = "retagged"
    SKIPPED = "skipped"  # already indexed
    DRY_RUN = "dry_run"
    # Every tag names another digest now; the run indexing that digest records them.
    MOVED = "moved"
    FAILED = "failed"

    @property
    def delivered(self) -> bool:
        """Whether image data changed where downstream DAGs look: those results emit an asset event.

        ``retagged`` counts: a tag now names the digest (a new release tag, or ``latest``
        moved back to it) and its SBOM changed.
        """
        return self in (IndexState.INDEXED, IndexState.RETAGGED)


@dataclass(frozen=True)
class IndexResult:
    """One planned image, how indexing it ended and what it produced."""

    reference: str
    repository: str
    image: str
    tags: tuple[str, ...]
    digest: str
    platform: str | None
    state: IndexState
    packages: int | None = None
    vulnerabilities: Mapping[str, int] | None = None  # counts by severity, when Scout has a report
    sbom_path: str | None = None  # sbom backend: where the SBOM was written
    # tag -> the digest it names now (None: deleted), found right before its push (cli) or its
    # writing into the stored SBOM (sbom)
    moved_tags: Mapping[str, str | None] | None = None
    # cli backend, repository mapped to a Scout environment: environment -> the tags this run
    # recorded there (empty: Scout listed them all already)
    environments: Mapping[str, list[str]] | None = None
    error: str | None = None
    duration: float | None = None  # seconds the backend took, when it ran
    # Scout's policy results (cli backend, read after the push or for a skipped digest); None:
    # not read. Empty: Scout evaluated no policy for the digest (yet).
    policies: tuple[PolicyResult, ...] | None = None

    @property
    def emits_event(self) -> bool:
        """Whether downstream DAGs hear of this result through the image's asset: its data
        changed (:attr:`IndexState.delivered`), or a tag of it entered a Scout environment (a
        promotion: skipped, since Scout holds the analysis, yet now in production)."""
        return self.state.delivered or any(self.environments.values() if self.environments else ())

    @property
    def failing_policies(self) -> list[str] | None:
        """The names of the policies the image does not meet; None when policies were not read."""
        return None if self.policies is None else failing(self.policies)

    @classmethod
    def failed(cls, target: IndexTarget, error: str) -> IndexResult:
        """A failure; its error may quote a server or a tool, so control characters go (XCom, UI, logs)."""
        return cls.of(target, IndexState.FAILED, error=printable(error))

    @classmethod
    def of(cls, target: IndexTarget, state: IndexState, **produced: Any) -> IndexResult:
        """The result of ``target`` in ``state`` with what indexing produced (packages, sbom_path, ...)."""
        return cls(
            reference=target.reference,
            repository=target.repository,
            image=target.image,
            tags=tuple(target.tags),
            digest=target.digest,
            platform=target.platform,
            state=state,
            **produced,
        )

    def outcome(self) -> str:
        """The task log's one line for this image, in plain words (what a dry run *would* do)."""
        image = f"{self.reference}{f' [{self.platform}]' if self.platform else ''}"
        found = "" if self.packages is None else f"{self.packages} packages"
        took = "" if self.duration is None else f" in {self.duration:.1f}s"
        match self.state:
            case IndexState.INDEXED:
                where = f", SBOM {self.sbom_path}" if self.sbom_path else ""
                return f"Indexed {image}: {found or 'done'}{where}{took}"
            case IndexState.DRY_RUN:
                return f"Would index {image}: {found or 'analysed'}{took}; dry run, nothing delivered"
            case IndexState.RETAGGED:
                return f"Recorded the tags {', '.join(self.tags)} of the already analysed {image}"
            case IndexState.SKIPPED:
                return f"Skipped {image}: already indexed"
            case IndexState.MOVED:
                return f"Did not index {image}: its tags name another digest now"
            case _:
                return f"Failed to index {image}: {self.error}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for XCom and asset event extras."""
        data = dataclasses.asdict(self)
        data["tags"] = list(self.tags)
        data["state"] = self.state.value
        data["vulnerabilities"] = dict(self.vulnerabilities) if self.vulnerabilities is not None else None
        data["moved_tags"] = dict(self.moved_tags) if self.moved_tags is not None else None
        data["policies"] = None if self.policies is None else [p.to_dict() for p in self.policies]
        data["failing_policies"] = self.failing_policies  # derived: what a downstream DAG filters on
        data["environments"] = (
            {name: list(tags) for name, tags in self.environments.items()} if self.environments else None
        )
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> IndexResult:
        """Read :meth:`to_dict` back; a missing field or an unknown state is named in the error."""
        missing = [name for name in _REQUIRED_FIELDS if name not in data]
        if missing:
            raise InputError(f"index result is missing fields: {', '.join(missing)}")
        try:
            state = IndexState(data["state"])
        except ValueError:
            raise InputError(
                f"index result of {data['reference']!r} has an unknown state {data['state']!r}"
            ) from None
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        policies = data.get("policies")
        return cls(
            **{
                **known,
                "tags": tuple(data.get("tags") or ()),
                "platform": data.get("platform"),
                "state": state,
                "policies": None if policies is None else tuple(PolicyResult.from_dict(p) for p in policies),
            }
        )


@dataclass(frozen=True, kw_only=True)
class IndexSummary:
    """A run's report: counts over every planned image, and at most ``max_rows`` of their results.

    Built by :class:`SummaryBuilder`, one result at a time, so a run of 50,000 images is
    summarised in bounded memory and its XCom stays small (issue 25): the counts (by state,
    vulnerabilities by severity) cover every image; ``results`` holds the failures first,
    then the other results in plan order, up to the cap, shown in plan order; ``left_out``
    says how many of each list were not kept.
    """

    results: tuple[IndexResult, ...]  # the rows kept, in plan order
    warnings: tuple[str, ...]  # e.g. a listing Artifactory trimmed (range.notification)
    counts: Mapping[IndexState, int]
    total: int
    # summed by severity over the images with a vulnerability report (``reported`` of them)
    vulnerabilities: Mapping[str, int]
    reported: int
    failures: tuple[IndexResult, ...]  # the failures kept (every one, up to the cap)
    non_compliant: tuple[IndexResult, ...]
    left_out: Mapping[str, int]  # list -> results not kept in it

    @classmethod
    def of(
        cls, results: Iterable[IndexResult], *, warnings: Iterable[str] = (), max_rows: int = DEFAULT_MAX_ROWS
    ) -> IndexSummary:
        """The summary of ``results`` in plan order (see :class:`SummaryBuilder`)."""
        builder = SummaryBuilder(max_rows=max_rows)
        for result in results:
            builder.add(result)
        return builder.build(warnings)

    def count(self, state: IndexState) -> int:
        return self.counts.get(state, 0)

    def headline(self) -> str:
        """The run in one short line, "N indexed, M failed", other outcomes only when they occur."""
        parts = [f"{self.count(IndexState.INDEXED)} indexed", f"{self.count(IndexState.FAILED)} failed"]
        for state, words in (
            (IndexState.DRY_RUN, "would be indexed (dry run)"),
            (IndexState.RETAGGED, "retagged"),
            (IndexState.SKIPPED, "already indexed"),
            (IndexState.MOVED, "moved"),
        ):
            if self.count(state):
                parts.append(f"{self.count(state)} {words}")
        return f"{', '.join(parts)} of {self.total} image(s)"

    def counts_line(self) -> str:
        return (
            f"{self.count(IndexState.INDEXED)} indexed, "
            f"{self.count(IndexState.RETAGGED)} retagged (new tags on a stored SBOM), "
            f"{self.count(IndexState.SKIPPED)} skipped (already indexed), "
            f"{self.count(IndexState.DRY_RUN)} dry run, "
            f"{self.count(IndexState.MOVED)} moved (their tags name another digest now), "
            f"{self.count(IndexState.FAILED)} failed"
        )

    def vulnerabilities_line(self) -> str:
        """Vulnerabilities by severity, summed over every image Scout reported on."""
        counts = ", ".join(f"{self.vulnerabilities.get(severity, 0)} {severity}" for severity in SEVERITIES)
        return f"Vulnerabilities of the {self.reported} image(s) with a report: {counts}"

    def to_dict(self) -> dict[str, Any]:
        """The summary task's XCom: a count per state, the total, vulnerabilities by severity,
        the failures, the non-compliant images, the warnings, the kept results, and how many
        of each list were left out (all 0 below ``max_rows``)."""
        return {
            **{state.value: self.count(state) for state in IndexState},
            "total": self.total,
            "vulnerabilities": dict(self.vulnerabilities),
            "reported": self.reported,
            "failures": [{"reference": r.reference, "error": r.error} for r in self.failures],
            "non_compliant": [
                {"reference": r.reference, "digest": r.digest, "failing_policies": r.failing_policies}
                for r in self.non_compliant
            ],
            "warnings": list(self.warnings),
            "results": [result.to_dict() for result in self.results],
            "left_out": dict(self.left_out),
        }

    def table(self) -> str:
        """One line per image, columns aligned; the error column last and unpadded."""
        header = (
            "IMAGE",
            "PLATFORM",
            "DIGEST",
            "TAGS",
            "STATE",
            "PACKAGES",
            "VULNERABILITIES",
            "POLICIES",
            "ERROR",
        )
        rows = [
            (
                f"{r.repository}/{r.image}",
                r.platform or "-",
                _short_digest(r.digest),
                ",".join(r.tags) or "-",
                r.state.value,
                "-" if r.packages is None else str(r.packages),
                _vulnerabilities(r.vulnerabilities),
                _policies(r.policies),
                r.error or _moved(r.moved_tags),
            )
            for r in self.results
        ]
        if not rows:
            return "(no image selected)"
        widths = [max(len(row[column]) for row in (header, *rows)) for column in range(len(header) - 1)]
        lines = []
        for row in (header, *rows):
            cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
            lines.append("  ".join([*cells, row[-1]]).rstrip())
        return "\n".join(lines)


class SummaryBuilder:
    """Counts every result it is given; keeps at most ``max_rows`` results, failures first.

    Memory is bounded by ``max_rows``, not by the number of images: the failures and the
    other results are each kept up to ``max_rows`` (with their plan position), and
    :meth:`build` takes the failures first, fills up with the others, and puts the rows
    back in plan order. Non-compliant images are kept up to ``max_rows`` too.
    """

    def __init__(self, *, max_rows: int = DEFAULT_MAX_ROWS) -> None:
        if max_rows < 1:
            raise InputError(f"max_rows must be at least 1, not {max_rows}")
        self.max_rows = max_rows
        self._counts: Counter[IndexState] = Counter()
        self._vulnerabilities: Counter[str] = Counter()
        self._reported = 0
        self._failed: list[tuple[int, IndexResult]] = []
        self._others: list[tuple[int, IndexResult]] = []
        self._non_compliant: list[IndexResult] = []
        self._non_compliant_seen = 0
        self._total = 0

    def add(self, result: IndexResult) -> None:
        position = self._total
        self._total += 1
        self._counts[result.state] += 1
        if result.vulnerabilities is not None:
            self._reported += 1
            for severity in SEVERITIES:
                self._vulnerabilities[severity] += int(result.vulnerabilities.get(severity, 0) or 0)
        kept = self._failed if result.state is IndexState.FAILED else self._others
        if len(kept) < self.max_rows:
            kept.append((position, result))
        if result.failing_policies:
            self._non_compliant_seen += 1
            if len(self._non_compliant) < self.max_rows:
                self._non_compliant.append(result)

    def build(self, warnings: Iterable[str] = ()) -> IndexSummary:
        failed = self._failed[: self.max_rows]
        rows = sorted([*failed, *self._others[: self.max_rows - len(failed)]], key=lambda row: row[0])
        return IndexSummary(
            results=tuple(result for _, result in rows),
            warnings=tuple(warnings),
            counts={state: self._counts[state] for state in IndexState},
            total=self._total,
            vulnerabilities={severity: self._vulnerabilities[severity] for severity in SEVERITIES},
            reported=self._reported,
            failures=tuple(result for _, result in failed),
            non_compliant=tuple(self._non_compliant),
            left_out={
                "results": self._total - len(rows),
                "failures": self._counts[IndexState.FAILED] - len(failed),
                "non_compliant": self._non_compliant_seen - len(self._non_compliant),
            },
        )


def _moved(moved_tags: Mapping[str, str | None] | None) -> str:
    """What the last column says of tags that named another digest when they were to be pushed."""
    if not moved_tags:
        return ""
    moves = (f"{tag} -> {_short_digest(now) if now else 'deleted'}" for tag, now in moved_tags.items())
    return "tags moved, not pushed: " + ", ".join(moves)


def _short_digest(digest: str) -> str:
    return digest.split(":", 1)[-1][:12] if digest else "-"


def _vulnerabilities(counts: Mapping[str, int] | None) -> str:
    if not counts:
        return "-"
    return " ".join(f"{severity[0].upper()}:{counts.get(severity, 0)}" for severity in _TABLE_SEVERITIES)


def _policies(policies: tuple[PolicyResult, ...] | None) -> str:
    """met / not met / no data counts, then the names of the policies not met."""
    if policies is None:
        return "-"
    counts = status_counts(policies)
    shown = f"{counts['met']} met, {counts['not_met']} not met, {counts['no_data']} no data"
    names = failing(policies)
    return f"{shown} ({'; '.join(names)})" if names else shown
