"""The fault matrix (issue 20): every test here carries the ``chaos`` marker.

``./scripts/test.sh`` runs them with the rest (CI included); ``pytest -m chaos`` runs only
them, ``-m "not chaos"`` everything else. The common end-of-row checks and the recovery
record are in :mod:`tests.support.chaos`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.chaos)
