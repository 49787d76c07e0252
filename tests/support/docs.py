"""The documentation as the tests read it: the README and the pages of the MkDocs site (docs/)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.support import REPO_ROOT

README = REPO_ROOT / "README.md"
DOCS_DIR = REPO_ROOT / "docs"
MKDOCS_CONFIG = REPO_ROOT / "mkdocs.yml"


def documentation_files() -> list[Path]:
    """The README first, then every page of docs/."""
    return [README, *sorted(DOCS_DIR.glob("*.md"))]


def documentation_text() -> str:
    """Every documentation file's text, one after the other."""
    return "\n".join(path.read_text() for path in documentation_files())


def fenced_blocks(text: str, language: str) -> list[str]:
    """Contents of the fenced code blocks opened with ```<language> (exactly)."""
    blocks: list[str] = []
    current: list[str] | None = None
    opened_with = ""
    for line in text.splitlines():
        if current is None and line.startswith("```"):
            current, opened_with = [], line[3:].strip()
        elif current is not None and line.strip() == "```":
            if opened_with == language:
                blocks.append("\n".join(current) + "\n")
            current = None
        elif current is not None:
            current.append(line)
    return blocks


def markdown_links(text: str) -> list[str]:
    """Targets of the inline links ``[text](target)`` outside code blocks and code spans."""
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    prose = re.sub(r"`[^`\n]*`", "", prose)
    return re.findall(r"\[[^\]\n]*\]\(([^)\s]+)\)", prose)


def heading_anchors(text: str) -> set[str]:
    """The anchors GitHub gives a Markdown file's headings (lower case, punctuation dropped)."""
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    anchors = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *$", prose, flags=re.M):
        anchors.add(re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-"))
    return anchors
