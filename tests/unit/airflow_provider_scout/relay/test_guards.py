"""The relay's guards, each on a fake clock: what one client can make the relay do, and how often."""

from __future__ import annotations

import asyncio

from airflow_provider_scout.relay.guards import HealthCache


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_health_probes_at_most_once_per_interval_and_shares_a_running_probe() -> None:
    clock = FakeClock()
    probes: list[float] = []
    answers = iter([None, "disk full"])

    async def probe() -> str | None:
        probes.append(clock.now)
        await asyncio.sleep(0.01)  # concurrent askers arrive while it runs
        return next(answers)

    cache = HealthCache(probe, interval=2.0, clock=clock)

    async def scenario() -> list[str | None]:
        first = await asyncio.gather(*(cache.problem() for _ in range(50)))
        clock.now = 101.75
        within = await cache.problem()
        clock.now = 102.25
        after = await cache.problem()
        return [*set(first), within, after]

    assert asyncio.run(scenario()) == [None, None, "disk full"]
    assert probes == [100.0, 102.25]
