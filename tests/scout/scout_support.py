"""Shared constants and helpers of the ScoutHook tests (a uniquely named module, unlike conftest)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

STAND_INS = Path(__file__).resolve().parent / "stand-ins"
DOCKER_SCOUT_STAND_IN = STAND_INS / "docker-scout"


def _load_stand_in_server() -> Any:
    # stand-ins/ is a folder of executables and servers, not a package.
    spec = importlib.util.spec_from_file_location("scout_server", STAND_INS / "scout_server.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


StandInScout = _load_stand_in_server().StandInScout

HUB_USER = "scout-robot"
HUB_TOKEN = "dckr_pat_standin-hub-secret-0123456789"
ORGANIZATION = "acme"


class CliRecord:
    """What the docker-scout stand-in recorded about its invocations."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def calls(self) -> list[dict[str, Any]]:
        return json.loads(self.path.read_text()) if self.path.exists() else []

    def last(self) -> dict[str, Any]:
        calls = self.calls()
        assert calls, "the docker-scout stand-in was not run"
        return calls[-1]
