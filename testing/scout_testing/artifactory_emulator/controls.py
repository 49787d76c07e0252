"""What tests steer and read in the Artifactory emulator (a test double), besides its content.

* :class:`FaultBook`: injected failures (status, ``Retry-After``, delay) per path regex;
* :class:`RequestStats`: request counts per mount, kind and status.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Fault:
    """Answer requests whose path matches ``path_regex`` with ``status`` and/or after ``delay`` seconds."""

    id: int
    path_regex: str
    status: int | None = None
    remaining: int | None = 1  # None: until cleared
    retry_after: int | None = None
    delay: float | None = None
    method: str | None = None
    fired: int = 0
    pattern: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.pattern = re.compile(self.path_regex)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("pattern")
        return data


class FaultBook:
    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._next_id = 1

    def add(self, spec: dict[str, Any]) -> Fault:
        """Register a fault from its JSON form; ValueError names the bad field."""
        known = {"path_regex", "status", "count", "retry_after", "delay", "method"}
        unknown = set(spec) - known
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
        regex = spec.get("path_regex")
        if not isinstance(regex, str) or not regex:
            raise ValueError("path_regex must be a non-empty regular expression")
        try:
            re.compile(regex)
        except re.error as exc:
            raise ValueError(f"path_regex is not a valid regular expression: {exc}") from None
        status = spec.get("status")
        if status is not None and (not isinstance(status, int) or not 400 <= status <= 599):
            raise ValueError("status must be an HTTP error status (400-599)")
        delay = spec.get("delay")
        if delay is not None and (not isinstance(delay, (int, float)) or delay < 0):
            raise ValueError("delay must be a non-negative number of seconds")
        if status is None and not delay:
            raise ValueError("a fault needs a status, a delay or both")
        count = spec.get("count", 1)
        if count is not None and (not isinstance(count, int) or count < 1):
            raise ValueError("count must be a positive integer or null (until cleared)")
        retry_after = spec.get("retry_after")
        if retry_after is not None and (not isinstance(retry_after, int) or retry_after < 0):
            raise ValueError("retry_after must be a non-negative integer of seconds")
        method = spec.get("method")
        if method is not None and not isinstance(method, str):
            raise ValueError("method must be an HTTP method name")
        fault = Fault(
            id=self._next_id,
            path_regex=regex,
            status=status,
            remaining=count,
            retry_after=retry_after,
            delay=float(delay) if delay else None,
            method=method.upper() if method else None,
        )
        self._next_id += 1
        self._faults.append(fault)
        return fault

    def take(self, method: str, path: str) -> Fault | None:
        """The first armed fault matching the request, its count consumed."""
        for fault in self._faults:
            if fault.remaining == 0 or (fault.method and fault.method != method):
                continue
            if fault.pattern.search(path):
                fault.fired += 1
                if fault.remaining is not None:
                    fault.remaining -= 1
                return fault
        return None

    def clear(self) -> None:
        self._faults.clear()

    def to_json(self) -> list[dict[str, Any]]:
        return [fault.to_json() for fault in self._faults]


class RequestStats:
    """Counts of the requests clients made (admin calls excluded)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.total = 0
        self.by_mount: Counter[str] = Counter()
        self.by_kind: Counter[str] = Counter()
        self.by_mount_kind: Counter[str] = Counter()
        self.by_status: Counter[str] = Counter()
        self.faults_fired = 0

    def count(self, mount: str, kind: str) -> None:
        self.total += 1
        self.by_mount[mount] += 1
        self.by_kind[kind] += 1
        self.by_mount_kind[f"{mount}:{kind}"] += 1

    def answered(self, status: int) -> None:
        self.by_status[str(status)] += 1

    def to_json(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "by_mount": dict(self.by_mount),
            "by_kind": dict(self.by_kind),
            "by_mount_kind": dict(self.by_mount_kind),
            "by_status": dict(self.by_status),
            "faults_fired": self.faults_fired,
        }
