"""Tag patterns and globs run on RE2: no pattern a user supplies can make matching blow up."""

from __future__ import annotations

import fnmatch

import jsonschema
import pytest

from airflow_provider_scout.config import TagFilter, parse_registry_string
from airflow_provider_scout.exceptions import PatternError, RegistryStringError
from airflow_provider_scout.patterns import (
    MAX_GLOB_LENGTH,
    MAX_TAG_PATTERN_LENGTH,
    MAX_TAG_PATTERNS,
    compile_glob,
    compile_tag_pattern,
    tag_pattern_schema,
)

BASE = "type=artifactory,registry=r.example,api=https://r.example/artifactory,repository=docker-local"
# An ordinary 44-character tag that almost matches: Python's `re` backtracks through 2**43
# ways of splitting the a's before it gives up (hours); RE2 reads the tag once.
ALMOST = "a" * 43 + "!"


def test_the_catastrophic_pattern_of_the_attack_runs_on_re2_and_selects_nothing() -> None:
    compiled = compile_tag_pattern(r"^(a+)+$")
    assert type(compiled).__module__.startswith("re2")  # not Python's backtracking `re`
    assert compiled.search(ALMOST) is None
    assert compiled.search("a" * 44) is not None
    tags = TagFilter.of([r"^(a+)+$", r"^(.*a){20}$"])
    assert not tags.selects(ALMOST)
    assert tags.selects("aaaa")


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        (r"^(a+)\1$", r"invalid escape sequence: \1"),
        (r"^(?!nightly)", "invalid perl operator: (?!"),
        (r"(?<=v)\d+", "invalid perl operator: (?<"),
        ("a{1001}", "invalid repetition size"),
        ("(unclosed", "missing ): (unclosed"),
    ],
)
def test_a_pattern_re2_refuses_is_named_with_re2s_one_line_reason(pattern: str, reason: str) -> None:
    with pytest.raises(PatternError) as failure:
        TagFilter.of(["^latest$", pattern])
    message = str(failure.value)
    assert message.startswith(f"tag pattern {pattern!r} is not a valid RE2 regular expression: ")
    assert reason in message and "\n" not in message


def test_tag_patterns_have_a_length_and_a_count_limit() -> None:
    longest = "^" + "a" * (MAX_TAG_PATTERN_LENGTH - 1)
    assert TagFilter.of([longest]).selects("a" * (MAX_TAG_PATTERN_LENGTH - 1))
    with pytest.raises(PatternError, match=f"characters long; the limit is {MAX_TAG_PATTERN_LENGTH}"):
        compile_tag_pattern(longest + "a")
    with pytest.raises(PatternError, match="must be a non-empty string"):
        compile_tag_pattern("")
    assert TagFilter.of(["^x$"] * MAX_TAG_PATTERNS).selects("x")
    with pytest.raises(PatternError, match=f"the limit is {MAX_TAG_PATTERNS}"):
        TagFilter.of(["^x$"] * (MAX_TAG_PATTERNS + 1))


def test_tag_patterns_mean_what_go_regexp_means() -> None:
    # `docker scout watch --tag` is Go's regexp: `\d` is ASCII, `\z` and `\pL` exist.
    assert not TagFilter.of([r"^\d+$"]).selects("١٢")  # Arabic-Indic digits
    assert TagFilter.of([r"^v\d+\z"]).selects("v12")
    assert TagFilter.of([r"^\pL+$"]).selects("latest")


GLOBS = ["*", "docker-*", "*/app", "team/*/app", "a?c", "[abc]*", "[!abc]*", "[a-c]x", "[]a]", "[!]a]", "["]
GLOBS += ["x[", "[[:alpha:]]", "a\\b", "a.b", "(a|b)", "a+", "^a$", "**/app", "[a-]", "[-a]"]
NAMES = ["", "a", "b", "x", "abc", "a.c", "axc", "ax", "bx", "cx", "dx", "]", "[", "x[", "a\\b", "a.b"]
NAMES += ["axb", "(a|b)", "a+", "aa", "^a$", "docker-prod", "docker-", "team/x/app", "team/app", "-", ":]"]
NAMES += ["team/x/y/app", "x/app", "/app", "app", "[:alpha:]]", "a]", "\n/app"]


@pytest.mark.parametrize("glob", GLOBS)
def test_a_glob_matches_exactly_what_fnmatchcase_matches(glob: str) -> None:
    compiled = compile_glob(glob)
    assert type(compiled).__module__.startswith("re2")
    differing = [n for n in NAMES if bool(compiled.fullmatch(n)) != fnmatch.fnmatchcase(n, glob)]
    assert not differing


def test_registry_string_globs_run_on_re2_and_a_bad_one_names_its_key() -> None:
    config = parse_registry_string(BASE.replace("docker-local", "docker-*") + ",include=*/a*a*a*a*a*a*a*b")
    assert config.selects_repository("docker-prod") and not config.selects_repository("helm-local")
    assert not config.selects("docker-prod", "x/" + "a" * 5000)
    assert config.selects("docker-prod", "x/" + "a" * 5000 + "b")
    with pytest.raises(RegistryStringError, match=r"key 'exclude' '\[z-a\]' is not a valid RE2"):
        parse_registry_string(BASE + ",exclude=[z-a]")
    with pytest.raises(RegistryStringError, match=f"'include' .* the limit is {MAX_GLOB_LENGTH}"):
        parse_registry_string(BASE + ",include=" + "a" * (MAX_GLOB_LENGTH + 1))


@pytest.mark.parametrize(
    ("pattern", "complaint"),
    [
        (r"^(a+)\1$", "RE2 has no backreferences"),
        (r"(?P<x>a)\k<x>", "RE2 has no backreferences"),
        (r"^(?!nightly)", "RE2 has no lookaround"),
        (r"(?<=v)\d", "RE2 has no lookaround"),
        (r"(?>a+)b", "RE2 has no atomic groups"),
        ("a" * (MAX_TAG_PATTERN_LENGTH + 1), "is too long"),
    ],
)
def test_the_form_schema_refuses_what_re2_refuses_visibly(pattern: str, complaint: str) -> None:
    with pytest.raises(jsonschema.ValidationError) as failure:
        jsonschema.validate(pattern, tag_pattern_schema())
    assert complaint in str(failure.value)
    with pytest.raises(PatternError):
        compile_tag_pattern(pattern)


@pytest.mark.parametrize("pattern", [r"^v?\d+\.\d+$", r"\\1", r"\(?=", r"[\\]", "latest", r"^(a+)+$"])
def test_the_form_schema_lets_through_what_re2_compiles(pattern: str) -> None:
    jsonschema.validate(pattern, tag_pattern_schema())
    compile_tag_pattern(pattern)
