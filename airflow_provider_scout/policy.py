"""Scout's policy results for one image, as the provider carries them (no I/O, no Airflow import).

Scout evaluates an organization's policies on every analysed image and serves the results
through ``goalResultsByDigests`` (:mod:`airflow_provider_scout.hooks.scout.graphql`). Each
policy reduces here to one of three states, decided from the typed fields of its
``currentResult`` rather than from ``statusLabel``, whose values Scout does not publish:

* ``met``: evaluated, and the result has no deviation (``hasDeviation`` false for a boolean
  policy, ``deviationCount`` 0 for the others);
* ``not_met``: evaluated with deviations;
* ``no_data``: not evaluated yet or without a current result; right after a push Scout may
  still be evaluating (its docs say results can take a few minutes).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from airflow_provider_scout.exceptions import InputError

__all__ = ["PolicyResult", "PolicyStatus", "failing", "status_counts"]


class PolicyStatus(StrEnum):
    MET = "met"
    NOT_MET = "not_met"
    NO_DATA = "no_data"


@dataclass(frozen=True)
class PolicyResult:
    """One policy of one image: its name as Scout shows it and how the image fares."""

    name: str  # displayName, else configurationName
    definition: str  # definitionName: the kind of policy, stable across renamings
    status: PolicyStatus
    deviations: int | None = None  # how many deviations, when the result counts them
    label: str | None = None  # Scout's statusLabel, shown as Scout words it
    stale: bool = False  # the policy changed since this result was evaluated

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PolicyResult:
        """:raises InputError: naming a missing field or an unknown status."""
        try:
            return cls(
                name=str(data["name"]),
                definition=str(data["definition"]),
                status=PolicyStatus(data["status"]),
                deviations=data.get("deviations"),
                label=data.get("label"),
                stale=bool(data.get("stale", False)),
            )
        except KeyError as exc:
            raise InputError(f"policy result is missing the field {exc.args[0]!r}") from None
        except ValueError:
            raise InputError(f"policy result has an unknown status {data.get('status')!r}") from None


def status_counts(policies: Iterable[PolicyResult]) -> dict[str, int]:
    """How many policies are met, not met and without data, keyed by the status values."""
    counts = dict.fromkeys((status.value for status in PolicyStatus), 0)
    for policy in policies:
        counts[policy.status.value] += 1
    return counts


def failing(policies: Iterable[PolicyResult]) -> list[str]:
    """The names of the policies not met, in Scout's order."""
    return [policy.name for policy in policies if policy.status is PolicyStatus.NOT_MET]
