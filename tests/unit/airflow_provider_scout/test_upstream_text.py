"""Text from upstream servers made safe for logs and the UI (pure)."""

from __future__ import annotations

import pytest

from airflow_provider_scout.upstream_text import printable, printable_repr


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("plain text, é and 漢字", "plain text, é and 漢字"),
        ("a\x1b[2Jb", "ab"),  # clear screen
        ("\x1b[1;31mred\x1b[0m", "red"),
        ("\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\", "click"),  # OSC 8 link
        ("\x1b]0;title\x07x", "x"),  # OSC ended by BEL
        ("line\nINFO forged\r\n", "line INFO forged  "),
        ("tab\there", "tab here"),
        ("nul\x00del\x7fc1\x85", "nuldelc1"),
        ("bidi \u202eevil\u202c", "bidi evil"),
        ("\x9b2Jcsi", "csi"),  # the C1 form of CSI
        ("lone \x1b", "lone "),
        (42, "42"),
    ],
)
def test_escape_sequences_and_control_characters_are_removed(text: object, shown: str) -> None:
    assert printable(text) == shown
    assert printable(text).isprintable()


def test_a_limit_cuts_with_an_ellipsis() -> None:
    assert printable("abcdef", 4) == "abc…"
    assert printable("abc", 4) == "abc"


def test_a_rejected_name_is_shown_as_a_repr_without_control_characters() -> None:
    shown = printable_repr("tag\x1b[2J\nnext")
    assert shown == "'tag\\x1b[2J\\nnext'"
    assert shown.isprintable()
    assert len(printable_repr("x" * 10_000)) == 140


def test_a_long_hostile_text_is_read_in_linear_time() -> None:
    """A regular expression with nested repetition would not return on these (correctness only)."""
    assert printable("\x1b[" + "0" * 100_000) == ""
    assert printable("\x1b]" + "x" * 100_000) == ""
