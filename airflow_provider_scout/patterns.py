"""Tag regexes and registry-string globs, compiled for RE2 and nothing else (no Airflow import).

Tag patterns come from whoever may trigger a DAG or configure the relay, and run against
every listed tag. On Python's backtracking ``re``, ``^(a+)+$`` against an ordinary
44-character tag runs for hours, and the refresh DAG (one active run) stalls behind it.
RE2 (``google-re2``) matches in time linear in the text whatever the pattern, and refuses
what it cannot do that way (backreferences, lookaround) when the pattern is compiled.

RE2 is also the syntax of the flag the ``tags`` parameter stands for: ``docker scout watch
--tag`` takes a Go ``regexp``, which is RE2. A pattern that works there works here, with
Go's meaning (``\\d`` is ASCII, ``$`` is the end of the tag), and one RE2 refuses was never
valid there.

The globs of the registry string (``repository``, ``include``, ``exclude``) are translated
here to RE2 too, so every pattern a user supplies is compiled in this one module.
"""

from __future__ import annotations

from typing import Protocol

import re2

from airflow_provider_scout.exceptions import PatternError

__all__ = [
    "MAX_GLOB_LENGTH",
    "MAX_TAG_PATTERNS",
    "MAX_TAG_PATTERN_LENGTH",
    "CompiledPattern",
    "compile_glob",
    "compile_tag_pattern",
    "tag_pattern_schema",
]

# A Docker tag is at most 128 characters; a pattern many times that long selects nothing a
# shorter one could not, and RE2's compile time and memory grow with the pattern.
MAX_TAG_PATTERN_LENGTH = 512
MAX_TAG_PATTERNS = 100
# A repository path is ``<key>/<image>``: a key (64) and an image name of a few hundred.
MAX_GLOB_LENGTH = 1024
# RE2's default (8 MiB) is per compiled pattern; a pattern needing more is refused, not run.
_MAX_MEMORY = 8 << 20


class CompiledPattern(Protocol):
    """What a compiled RE2 pattern offers the callers here (``re2`` ships no type hints)."""

    def search(self, text: str) -> object | None: ...

    def fullmatch(self, text: str) -> object | None: ...


def _options() -> re2.Options:
    options = re2.Options()
    options.max_mem = _MAX_MEMORY
    # RE2 logs every refused pattern to stderr itself; the error raised here names it once.
    options.log_errors = False
    return options


def _checked(pattern: str, what: str, max_length: int) -> str:
    if not isinstance(pattern, str) or not pattern:
        raise PatternError(f"{what} must be a non-empty string, not {pattern!r}")
    if len(pattern) > max_length:
        raise PatternError(
            f"{what} {pattern[:40]!r}... is {len(pattern)} characters long; the limit is {max_length}"
        )
    return pattern


def _compile(regex: str, pattern: str, what: str) -> CompiledPattern:
    try:
        compiled: CompiledPattern = re2.compile(regex, _options())
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):  # RE2's messages come as bytes
            reason = reason.decode(errors="replace")
        raise PatternError(f"{what} {pattern!r} is not a valid RE2 regular expression: {reason}") from None
    return compiled


def compile_tag_pattern(pattern: str) -> CompiledPattern:
    """A tag pattern as ``docker scout watch --tag`` takes it: RE2 syntax, matched with ``search``.

    :raises PatternError: naming the pattern, when it is empty, longer than
        :data:`MAX_TAG_PATTERN_LENGTH` or not valid RE2 (e.g. a backreference).
    """
    what = "tag pattern"
    return _compile(_checked(pattern, what, MAX_TAG_PATTERN_LENGTH), pattern, what)


def compile_glob(pattern: str, what: str = "glob") -> CompiledPattern:
    """A shell glob as :func:`fnmatch.fnmatchcase` reads it, compiled for a whole-string RE2 match.

    ``*`` matches any run of characters (``/`` included, as the registry string's globs mean),
    ``?`` one character, ``[...]`` a set (``[!...]`` its complement); an unclosed ``[`` is a
    literal, and there is no escape character.

    :param what: how the error names the pattern's origin, e.g. ``registry string key 'include'``.
    :raises PatternError: when the glob is empty, too long or has a reversed range (``[z-a]``).
    """
    glob = _checked(pattern, what, MAX_GLOB_LENGTH)
    return _compile(f"(?s){_translate_glob(glob)}", pattern, what)


def _translate_glob(pattern: str) -> str:
    parts: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        i += 1
        if char == "*":
            if not parts or parts[-1] != ".*":  # `**` means what `*` means
                parts.append(".*")
        elif char == "?":
            parts.append(".")
        elif char == "[":
            end = _set_end(pattern, i)
            if end < 0:
                parts.append(re2.escape(char))
                continue
            parts.append(_translate_set(pattern[i:end]))
            i = end + 1
        else:
            parts.append(re2.escape(char))
    return "".join(parts)


def _set_end(pattern: str, start: int) -> int:
    """Where the set opened just before ``start`` closes: its ``]`` (a leading ``!`` or ``]`` is in it)."""
    j = start
    if j < len(pattern) and pattern[j] == "!":
        j += 1
    if j < len(pattern) and pattern[j] == "]":
        j += 1
    return pattern.find("]", j)


def _translate_set(body: str) -> str:
    negated = body.startswith("!")
    if negated:
        body = body[1:]
    # Every member is escaped but a range's `-`: RE2 would read `[:alpha:]` as a class, `\\` as an escape.
    members = "".join(c if c == "-" and 0 < k < len(body) - 1 else re2.escape(c) for k, c in enumerate(body))
    return f"[{'^' if negated else ''}{members}]"


def tag_pattern_schema() -> dict[str, object]:
    """JSON schema of one tag pattern: what a trigger form can check before a run starts.

    Airflow validates a run's parameters with jsonschema, which cannot run RE2; the
    length and the constructs RE2 refuses that are plain to see are checked here, and the
    planning task compiles every pattern and fails with RE2's one-line error otherwise.
    The schema's own patterns are linear (no nested quantifier) for Python's ``re`` and
    the browser's JavaScript alike.
    """
    # Not itself escaped: an even run of backslashes before it (or none).
    unescaped = r"(^|[^\\])(\\\\)*"
    return {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_TAG_PATTERN_LENGTH,
        "not": {
            "anyOf": [
                {"description": "RE2 has no backreferences", "pattern": unescaped + r"\\([1-9]|k[<{'])"},
                {"description": "RE2 has no lookaround", "pattern": unescaped + r"\(\?<?[=!]"},
                {"description": "RE2 has no atomic groups", "pattern": unescaped + r"\(\?>"},
            ]
        },
    }
