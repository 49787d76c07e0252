"""What the Artifactory emulator (a test double) is given and keeps between requests.

:class:`EmulatorConfig` is what ``artifactory-emulator`` (or a test) starts it with;
:class:`EmulatorState` is what every API area shares: the repositories, the tag index, the
user's permissions, the injected faults and request counts, and the background tasks
(webhook deliveries, fixture seeding) that outlive a request. Each API area keeps the rest
of its own state (tokens in :mod:`.auth`, AQL limits in :mod:`.aql_search`, webhook
targets in :mod:`.webhooks`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path

from scout_testing.artifactory_emulator.controls import FaultBook, RequestStats
from scout_testing.artifactory_emulator.repositories import Permissions, RepositoryBook
from scout_testing.artifactory_emulator.tag_index import TagIndex
from scout_testing.artifactory_emulator.webhooks import WebhookTarget

AQL_QUEUE_SECONDS = 10.0  # how long a query beyond the slots waits before its 429 (JFrog: "about 10 s")


@dataclass
class EmulatorConfig:
    registry_url: str
    public_url: str  # how the emulator reaches itself and names itself in webhooks
    repositories: tuple[str, ...]  # local repositories
    username: str | None = None
    password: str | None = None
    token: str | None = None
    webhooks: list[WebhookTarget] = field(default_factory=list)
    state_dir: Path | None = None
    seed_fixtures: bool = False
    remotes: tuple[str, ...] = ()
    virtuals: dict[str, tuple[str, ...]] = field(default_factory=dict)
    unreadable: tuple[str, ...] = ()  # repository keys or repo/path/name globs the user may not read
    admin: bool = False  # the user is an Artifactory admin (AQL's non-admin field rule does not apply)
    aql_queue_seconds: float = AQL_QUEUE_SECONDS
    result_cap: int | None = None  # JFrog SaaS: 500,000

    @property
    def auth_required(self) -> bool:
        return bool(self.password or self.token)

    @property
    def api_url(self) -> str:
        """The REST API's base URL, as Artifactory names it in its answers."""
        return f"{self.public_url}/artifactory"


class EmulatorState:
    """The state the API areas share; built once per application."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.book = RepositoryBook(config.repositories, config.remotes, config.virtuals)
        self.permissions = Permissions(config.unreadable)
        self.index = TagIndex(config.state_dir)
        self.faults = FaultBook()
        self.stats = RequestStats()
        self.fixtures_status = "requested" if config.seed_fixtures else "not requested"
        self._background: set[asyncio.Task[None]] = set()

    def readable_storage(self, key: str) -> tuple[str, ...]:
        """What a pull through ``key`` may look in: its storage keys the user can read."""
        return tuple(s for s in self.book.reads(key) if self.permissions.may_read_repository(s))

    def spawn(self, coroutine: Awaitable[None]) -> None:
        """Run ``coroutine`` after the answer (a webhook delivery, the fixture seeding)."""
        task: asyncio.Task[None] = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def cancel_background(self) -> None:
        for task in list(self._background):
            task.cancel()
