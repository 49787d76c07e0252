"""The subset of Artifactory Query Language the emulator (a test double) answers.

Pure functions, no I/O: :func:`parse_aql` turns the query text the hook sends into an
:class:`AqlQuery`, :func:`run_query` applies it to item dicts and builds the response
body Artifactory would send. Supported::

    items.find(<criteria>).include("f", ...).sort({"$asc"|"$desc": ["f", ...]}).offset(N).limit(M)

Criteria are JSON: ``{"field": value}`` (``$eq``), ``{"field": {"$op": value}}`` with
``$eq $ne $match $nmatch $gt $gte $lt $lte``, ``{"$and": [...]}`` / ``{"$or": [...]}``
(a list of criteria objects) at any depth; several keys in one object all have to hold.
``$match`` takes Artifactory's wildcards: ``*`` (crosses ``/``) and ``?``.

Rules Artifactory enforces with a 400, checked by :func:`check_field_rules`:
sorted fields must be included, and a non-admin caller must include ``repo``, ``path`` and
``name``. :func:`run_query` filters rows the caller may not read *after* ``limit``, as
Artifactory does, and trims a result set larger than a cap with ``range.notification``
(JFrog SaaS: 500,000 rows).
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "DEFAULT_FIELDS",
    "ITEM_FIELDS",
    "MAX_QUERY_LENGTH",
    "NON_ADMIN_FIELDS",
    "AqlError",
    "AqlQuery",
    "check_field_rules",
    "format_time",
    "parse_aql",
    "parse_time",
    "run_query",
]

NON_ADMIN_FIELDS = ("repo", "path", "name")
# Artifactory refuses longer query strings with 400 (aql.query.max.length, default 6,000).
MAX_QUERY_LENGTH = 6000

ITEM_FIELDS = frozenset(
    {
        "repo",
        "path",
        "name",
        "type",
        "size",
        "depth",
        "sha256",
        "created",
        "created_by",
        "modified",
        "modified_by",
        "updated",
    }
)
# What Artifactory returns for items when the query has no include().
DEFAULT_FIELDS = (
    "repo",
    "path",
    "name",
    "type",
    "size",
    "created",
    "created_by",
    "modified",
    "modified_by",
    "updated",
)
_TIME_FIELDS = frozenset({"created", "modified", "updated"})
_NUMBER_FIELDS = frozenset({"size", "depth"})
_COMPARISONS = ("$eq", "$ne", "$match", "$nmatch", "$gt", "$gte", "$lt", "$lte")

Item = Mapping[str, Any]
Predicate = Callable[[Item], bool]


class AqlError(ValueError):
    """The query is not one the emulator understands; the message says where."""


@dataclass(frozen=True)
class AqlQuery:
    domain: str
    criteria: Mapping[str, Any]
    include: tuple[str, ...]
    sort_order: str | None  # "$asc" or "$desc"
    sort_fields: tuple[str, ...]
    offset: int
    limit: int | None
    predicate: Predicate


def format_time(moment: datetime) -> str:
    """Artifactory's AQL time format: UTC, milliseconds, ``Z``."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_time(text: str) -> datetime:
    """An ISO 8601 time or date as AQL accepts it; naive values are taken as UTC."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise AqlError(f"{text!r} is not an ISO 8601 date or time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_aql(text: str) -> AqlQuery:
    """Parse ``items.find(...)`` with its optional modifiers; :class:`AqlError` names what is wrong."""
    if len(text) > MAX_QUERY_LENGTH:
        raise AqlError(f"query has {len(text)} characters, more than the {MAX_QUERY_LENGTH} allowed")
    scanner = _Scanner(text)
    domain = scanner.identifier()
    if domain != "items":
        raise AqlError(f"unsupported domain {domain!r}: the emulator answers items.find() only")
    calls: dict[str, str] = {}
    while not scanner.at_end():
        scanner.expect(".")
        name = scanner.identifier()
        if name in calls:
            raise AqlError(f"{name}() given twice")
        calls[name] = scanner.arguments()
    if "find" not in calls:
        raise AqlError("query must start with items.find(...)")
    unknown = set(calls) - {"find", "include", "sort", "offset", "limit"}
    if unknown:
        raise AqlError(f"unsupported query element(s): {', '.join(sorted(unknown))}")

    criteria = _json_argument("find", calls["find"] or "{}")
    if not isinstance(criteria, dict):
        raise AqlError("find() takes a JSON object of criteria")
    predicate = _compile_criteria(criteria)

    include: tuple[str, ...] = DEFAULT_FIELDS
    if "include" in calls:
        fields = _json_argument("include", f"[{calls['include']}]")
        if not fields or not all(isinstance(f, str) for f in fields):
            raise AqlError("include() takes one or more quoted field names")
        include = tuple("*" if f == "*" else _field_name(f, "include") for f in fields)
        if "*" in include:
            include = tuple(sorted(ITEM_FIELDS))

    sort_order: str | None = None
    sort_fields: tuple[str, ...] = ()
    if "sort" in calls:
        sort = _json_argument("sort", calls["sort"])
        if not isinstance(sort, dict) or len(sort) != 1:
            raise AqlError('sort() takes {"$asc": [fields]} or {"$desc": [fields]}')
        ((sort_order, fields),) = sort.items()
        if sort_order not in ("$asc", "$desc"):
            raise AqlError(f"sort order must be $asc or $desc, not {sort_order!r}")
        if not isinstance(fields, list) or not fields or not all(isinstance(f, str) for f in fields):
            raise AqlError("sort() takes a non-empty list of field names")
        sort_fields = tuple(_field_name(f, "sort") for f in fields)

    return AqlQuery(
        domain=domain,
        criteria=criteria,
        include=include,
        sort_order=sort_order,
        sort_fields=sort_fields,
        offset=_count_argument("offset", calls.get("offset"), default=0),
        limit=_count_argument("limit", calls.get("limit"), default=None),
        predicate=predicate,
    )


def check_field_rules(query: AqlQuery, *, admin: bool) -> None:
    """Artifactory's field rules; :class:`AqlError` (a 400) when the query breaks one.

    The wording of the messages is the emulator's: JFrog documents the rules, not the text.
    """
    missing_sorted = [f for f in query.sort_fields if f not in query.include]
    if missing_sorted:
        raise AqlError(
            f"sorted field(s) {', '.join(missing_sorted)} must also be in include(): "
            "Artifactory sorts only on included fields"
        )
    if not admin:
        missing = [f for f in NON_ADMIN_FIELDS if f not in query.include]
        if missing:
            raise AqlError(
                "for permission reasons a non-admin query must include repo, path and name; "
                f"missing: {', '.join(missing)}"
            )


# What range.notification says when a result set is trimmed. JFrog documents that SaaS
# trims at 500,000 rows and says so there, not the exact wording: this text is ours.
TRIM_NOTIFICATION = (
    "AQL search results were trimmed to {cap} rows; narrow the query or page with offset/limit"
)


def run_query(
    query: AqlQuery,
    items: Iterable[Item],
    *,
    readable: Callable[[Item], bool] | None = None,
    result_cap: int | None = None,
) -> dict[str, Any]:
    """The response body: ``{"results": [...], "range": {...}}`` shaped as Artifactory's.

    As in Artifactory, ``range.total`` counts the rows of this response, not every match.
    ``readable`` drops rows the caller may not read from the page *after* ``offset`` and
    ``limit`` were applied (so a page can be short mid-stream); ``result_cap`` trims the
    sorted result set and adds ``range.notification``.
    """
    matches = [item for item in items if query.predicate(item)]
    # Without sort() the order is the database's; repo/path/name keeps it stable here.
    keys = query.sort_fields or ("repo", "path", "name")
    matches.sort(
        key=lambda item: tuple(_sort_key(item.get(k)) for k in keys), reverse=query.sort_order == "$desc"
    )
    trimmed = result_cap is not None and len(matches) > result_cap
    if trimmed:
        matches = matches[:result_cap]
    end = None if query.limit is None else query.offset + query.limit
    page = matches[query.offset : end]
    if readable is not None:
        page = [item for item in page if readable(item)]
    results = [{field: _render(item.get(field)) for field in query.include} for item in page]
    window: dict[str, Any] = {
        "start_pos": query.offset,
        "end_pos": query.offset + len(results),
        "total": len(results),
    }
    if query.limit is not None:
        window["limit"] = query.limit
    if trimmed:
        window["notification"] = TRIM_NOTIFICATION.format(cap=result_cap)
    return {"results": results, "range": window}


def _render(value: Any) -> Any:
    return format_time(value) if isinstance(value, datetime) else value


def _sort_key(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.timestamp()
    return "" if value is None else value


def _field_name(field: Any, where: str) -> str:
    if not isinstance(field, str) or field not in ITEM_FIELDS:
        raise AqlError(f"unknown items field {field!r} in {where}(); known: {', '.join(sorted(ITEM_FIELDS))}")
    return field


def _json_argument(name: str, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise AqlError(f"{name}() argument is not valid JSON: {exc.msg} at character {exc.pos}") from None


def _count_argument(name: str, text: str | None, default: int | None) -> Any:
    if text is None:
        return default
    value = text.strip()
    if not re.fullmatch(r"\d+", value):
        raise AqlError(f"{name}() takes a non-negative integer, not {value!r}")
    return int(value)


def _compile_criteria(criteria: Any) -> Predicate:
    if not isinstance(criteria, dict):
        raise AqlError(f"criteria must be JSON objects, not {json.dumps(criteria)}")
    predicates: list[Predicate] = []
    for key, value in criteria.items():
        if key in ("$and", "$or"):
            predicates.append(_compile_group(key, value))
        elif key.startswith("$"):
            raise AqlError(f"unknown operator {key!r} where a field or $and/$or was expected")
        else:
            predicates.append(_compile_field(_field_name(key, "find"), value))
    return lambda item: all(p(item) for p in predicates)


def _compile_group(operator: str, members: Any) -> Predicate:
    if isinstance(members, dict):
        members = [{key: value} for key, value in members.items()]
    if not isinstance(members, list) or not members:
        raise AqlError(f"{operator} takes a non-empty list of criteria")
    compiled = [_compile_criteria(member) for member in members]
    if operator == "$and":
        return lambda item: all(p(item) for p in compiled)
    return lambda item: any(p(item) for p in compiled)


def _compile_field(field: str, condition: Any) -> Predicate:
    if not isinstance(condition, dict):
        condition = {"$eq": condition}
    if not condition:
        raise AqlError(f"empty condition for field {field!r}")
    compiled = [_compile_comparison(field, op, operand) for op, operand in condition.items()]
    return lambda item: all(p(item) for p in compiled)


def _compile_comparison(field: str, operator: str, operand: Any) -> Predicate:
    if operator not in _COMPARISONS:
        raise AqlError(
            f"unknown comparison {operator!r} on field {field!r}; known: {', '.join(_COMPARISONS)}"
        )
    if operator in ("$match", "$nmatch"):
        if not isinstance(operand, str):
            raise AqlError(f"{operator} on {field!r} takes a string pattern")
        pattern = re.compile(fnmatch.translate(operand), re.DOTALL)
        wanted = operator == "$match"
        return lambda item: (pattern.match(str(item.get(field, ""))) is not None) == wanted
    reference = _coerce(field, operand)
    compare = _ORDERINGS[operator]

    def check(item: Item) -> bool:
        value = item.get(field)
        return value is not None and compare(value, reference)

    return check


def _coerce(field: str, operand: Any) -> Any:
    if field in _TIME_FIELDS:
        if not isinstance(operand, str):
            raise AqlError(f"{field!r} compares with an ISO 8601 time string")
        return parse_time(operand)
    if field in _NUMBER_FIELDS:
        if isinstance(operand, bool) or not isinstance(operand, (int, float, str)):
            raise AqlError(f"{field!r} compares with a number")
        try:
            return float(operand)
        except ValueError:
            raise AqlError(f"{field!r} compares with a number, not {operand!r}") from None
    if not isinstance(operand, str):
        raise AqlError(f"{field!r} compares with a string")
    return operand


_ORDERINGS: dict[str, Callable[[Any, Any], bool]] = {
    "$eq": lambda a, b: a == b,
    "$ne": lambda a, b: a != b,
    "$gt": lambda a, b: a > b,
    "$gte": lambda a, b: a >= b,
    "$lt": lambda a, b: a < b,
    "$lte": lambda a, b: a <= b,
}


class _Scanner:
    """Splits ``name(args).name(args)`` while treating JSON strings inside args as opaque."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def _skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def at_end(self) -> bool:
        self._skip_space()
        return self.pos >= len(self.text)

    def expect(self, char: str) -> None:
        self._skip_space()
        if not self.text.startswith(char, self.pos):
            raise AqlError(f"expected {char!r} at character {self.pos}, found {self._excerpt()!r}")
        self.pos += len(char)

    def identifier(self) -> str:
        self._skip_space()
        match = re.compile(r"[A-Za-z_][A-Za-z0-9_]*").match(self.text, self.pos)
        if not match:
            raise AqlError(f"expected a name at character {self.pos}, found {self._excerpt()!r}")
        self.pos = match.end()
        return match.group()

    def arguments(self) -> str:
        """The raw text between ``(`` and its matching ``)``."""
        self.expect("(")
        start, depth, quoted = self.pos, 0, False
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if quoted:
                if char == "\\":
                    self.pos += 1
                elif char == '"':
                    quoted = False
            elif char == '"':
                quoted = True
            elif char in "([{":
                depth += 1
            elif char in ")]}":
                if depth == 0:
                    if char != ")":
                        break
                    self.pos += 1
                    return self.text[start : self.pos - 1]
                depth -= 1
            self.pos += 1
        raise AqlError(f"unbalanced brackets or quotes after character {start}")

    def _excerpt(self) -> str:
        return self.text[self.pos : self.pos + 20] or "end of query"
