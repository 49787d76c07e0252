"""Rewrite ``scout_schema.graphql`` from Scout's published SDL (run after the documents change).

    .venv/bin/python tests/support/data/extract_scout_schema.py <path of schema.graphql>

The published SDL is the one Docker generates for ``https://api.scout.docker.com/v1/graphql``:
docker/hub-mcp ``src/scout/genql/schema.graphql``. Every type the provider's documents reach
is copied verbatim, docstrings included; ``Query`` keeps only the fields the documents use
(each copied verbatim with its docstring). The test SDL therefore types every used field
exactly as Scout does, and nothing more.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = "docker/hub-mcp src/scout/genql/schema.graphql"
QUERY_FIELDS = (
    "imageSummariesByDigest",
    "organizationStatus",
    "taggedImagesByRepository",
    "goalResultsByDigests",
)
TYPES = (
    "Context",
    "ScRepositoryInput",
    "SdImageSummary",
    "SBOMState",
    "VulnerabilityReport",
    "ScOrganizationStatus",
    "ScTaggedImagesQuery",
    "ScTaggedImagesResult",
    "GoalResultsDigestsQuery",
    "ScPolicyImage",
    # The kinds of BaseScPolicy a goalResultsByDigests document asks about in fragments; an
    # interface does not name its implementations, so the closure would not reach them.
    "ScBooleanPolicy",
    "ScGenericPolicy",
    "ScLicencePolicy",
    "ScVulnerabilityPolicy",
)
_BUILT_IN = {"String", "Int", "Float", "Boolean", "ID"}


def _blocks(sdl: str) -> dict[str, str]:
    """Top-level definitions by name, each with the docstring right above it."""
    pattern = re.compile(
        r'((?:"""(?:.|\n)*?"""\n)?)(type|input|enum|scalar|interface|union) (\w+)[^\n]*\{\n(?:.|\n)*?\n\}\n'
    )
    return {match.group(3): match.group(0) for match in pattern.finditer(sdl)}


def _query_fields(query_block: str) -> str:
    body = query_block.split("{\n", 1)[1].rsplit("\n}", 1)[0]
    fields = re.findall(r'((?:  """(?:.|\n)*?"""\n)?  (\w+)\(.*\n)', body + "\n")
    kept = {name: text for text, name in fields if name in QUERY_FIELDS}
    missing = set(QUERY_FIELDS) - set(kept)
    if missing:
        raise SystemExit(f"the published Query has no field {', '.join(sorted(missing))}")
    return "type Query {\n" + "\n".join(kept[name] for name in QUERY_FIELDS) + "}\n"


def _closure(blocks: dict[str, str], roots: tuple[str, ...]) -> list[str]:
    """``roots`` and every type they reach, in the order first reached (a result type's fields
    name further types, which the schema must define to build)."""
    ordered: list[str] = []
    pending = list(roots)
    while pending:
        name = pending.pop(0)
        if name in ordered or name in _BUILT_IN:
            continue
        if name not in blocks:
            raise SystemExit(f"the published SDL has no type {name}")
        ordered.append(name)
        header, body = re.sub(r'"""(?:.|\n)*?"""', "", blocks[name]).split("{", 1)
        pending += re.findall(r"\w+", header.partition(" implements ")[2])  # its interfaces
        pending += re.findall(r":\s*\[?(\w+)", body)
    return ordered


def main(source: Path) -> None:
    blocks = _blocks(source.read_text())
    if "Query" not in blocks:
        raise SystemExit("the published SDL has no type Query")
    parts = [
        f"# Copied verbatim from Scout's published SDL ({SOURCE}) by extract_scout_schema.py:\n"
        "# the types the provider's GraphQL documents use, and of Query the fields they call.\n"
        "# Every document in airflow_provider_scout/hooks/scout/graphql.py is validated against\n"
        "# it, and the stand-in Scout server executes requests with it.\n",
        *(blocks[name] for name in _closure(blocks, TYPES)),
        _query_fields(blocks["Query"]),
    ]
    (HERE / "scout_schema.graphql").write_text("\n".join(parts))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
