"""Text that came from a server, made safe to show in a log line, the UI or an asset event (no I/O).

Artifactory, a registry and Scout choose the bytes of names, notifications and error
messages. A terminal that shows a task log obeys what they hold: ``ESC[2J`` clears the
screen, OSC 8 turns text into a link, a newline forges a log line of its own, and bidi
overrides reorder what a reader sees. :func:`printable` removes escape sequences whole,
turns line breaks and tabs into spaces and drops every other control character.
"""

from __future__ import annotations

import re

__all__ = ["printable", "printable_repr"]

# Escape sequences removed whole, so no "[2J" or "]8;;https://..." is left behind. Each
# pattern is linear: one character class per run, no nested repetition.
_CSI = r"\x1b\[[0-?]*[ -/]*[@-~]?"
_OSC = r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
_OTHER_ESCAPE = r"\x1b[@-Z\\-_]?"
_C1_CSI = r"\x9b[0-?]*[ -/]*[@-~]?"
_SEQUENCE_RE = re.compile(f"{_OSC}|{_CSI}|{_C1_CSI}|{_OTHER_ESCAPE}")
_SPACING = str.maketrans({"\n": " ", "\r": " ", "\t": " ", "\v": " ", "\f": " "})


def printable(text: object, limit: int | None = None) -> str:
    """``text`` without escape sequences or control characters, cut at ``limit`` characters."""
    value = _SEQUENCE_RE.sub("", str(text)).translate(_SPACING)
    if not value.isprintable():
        # Python's printable: no Cc, Cf, Cs, Co, Cn, Zl, Zp, nor any space but " ".
        value = "".join(c for c in value if c == " " or c.isprintable())
    if limit is not None and len(value) > limit:
        return value[: max(limit - 1, 0)] + "…"
    return value


def printable_repr(text: object, limit: int = 140) -> str:
    """``repr`` of a rejected name for a warning: controls shown as escapes, never obeyed."""
    return printable(repr(str(text)[: limit * 2]), limit)
