"""``POST /api/search/aql`` of the Artifactory emulator (a test double): the tag index through :mod:`.aql`.

What it models of JFrog: rows the user may not read are dropped after ``limit`` (short
pages mid-stream); a result set over the configured cap is trimmed with
``range.notification``; sorted fields must be included and a non-admin user must include
repo, path and name (400); three queries run at once, a fourth waits
(``aql_queue_seconds``, 10 s by default) for a slot, then gets 429 without ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from scout_testing.artifactory_emulator.aql import AqlError, check_field_rules, parse_aql, run_query
from scout_testing.artifactory_emulator.state import EmulatorState

AQL_SLOTS = 3  # Artifactory's default number of AQL/search calls running at once


class AqlSearch:
    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self.queue_seconds = state.config.aql_queue_seconds
        self.result_cap = state.config.result_cap
        self.running = 0
        self._slot_freed: asyncio.Condition | None = None  # made in the server's event loop

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[Response | None]:
        """Hold one of the :data:`AQL_SLOTS` while the query runs; yields the 429 when none came free."""
        if not await self._take_slot():
            # Artifactory sends no Retry-After here: clients back off on their own.
            yield PlainTextResponse(
                "Too many concurrent AQL/search requests; try again later", status_code=429
            )
            return
        try:
            yield None
        finally:
            await self._release_slot()

    @property
    def slot_freed(self) -> asyncio.Condition:
        if self._slot_freed is None:
            self._slot_freed = asyncio.Condition()
        return self._slot_freed

    async def _take_slot(self) -> bool:
        """A slot, waiting up to ``queue_seconds`` for one."""
        async with self.slot_freed:
            try:
                await asyncio.wait_for(
                    self.slot_freed.wait_for(lambda: self.running < AQL_SLOTS), timeout=self.queue_seconds
                )
            except TimeoutError:
                return False
            self.running += 1
            return True

    async def _release_slot(self) -> None:
        async with self.slot_freed:
            self.running -= 1
            self.slot_freed.notify()

    async def search(self, request: Request) -> Response:
        raw = await request.body()
        try:
            text = raw.decode()
        except UnicodeDecodeError:
            return PlainTextResponse("AQL query is not UTF-8 text", status_code=400)
        admin = self.state.config.admin
        try:
            query = parse_aql(text)
            check_field_rules(query, admin=admin)
        except AqlError as exc:
            return PlainTextResponse(f"Failed to parse query: {exc}", status_code=400)
        book = self.state.book
        items = [
            item
            for entry in self.state.index
            if entry.committed
            for item in entry.aql_items(in_cache=book.is_cache(entry.repository))
        ]
        permissions = self.state.permissions
        readable: Callable[[Any], bool] | None = (
            None
            if admin
            else lambda item: permissions.may_read_item(
                str(item["repo"]), str(item["path"]), str(item["name"])
            )
        )
        return JSONResponse(run_query(query, items, readable=readable, result_cap=self.result_cap))
