"""A full ingestion through a virtual repository over a local and a remote member.

The repositories are declared on the e2e emulator at run time, under keys the stack's
registry string does not select, so the other e2e tests see nothing of them: a local
``docker-team``, a remote ``docker-hub`` (its content in ``docker-hub-cache``, put there
as a pull through it would, with the upstream's modification time) and a virtual
``docker-all`` over both. syft pulls every image through the virtual key.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from airflow_provider_scout.defaults import FULL_INGEST_DAG_ID
from scout_testing.devstack.stack import DevStack, FinishedRun

pytestmark = pytest.mark.e2e

LOCAL, REMOTE, VIRTUAL, STAGING = "docker-team", "docker-hub", "docker-all", "docker-upstream"


def test_a_full_ingest_through_a_virtual_over_a_local_and_a_remote_member(
    e2e_stack: DevStack, full_ingest_run: FinishedRun
) -> None:
    admin = e2e_stack.emulator.admin
    admin.add_repository(LOCAL, "local")
    admin.add_repository(STAGING, "local")  # where the "upstream" image is built; not a member
    admin.add_repository(REMOTE, "remote")
    admin.add_repository(VIRTUAL, "virtual", members=[LOCAL, REMOTE])
    app = e2e_stack.push_image(LOCAL, "classes/app", ["1.0"], "alpine", "classes e2e app")
    upstream = e2e_stack.push_image(STAGING, "library/base", ["3"], "multiarch", "classes e2e base")
    upstream_time = datetime(2020, 2, 2, tzinfo=UTC)
    admin.seed_tags(REMOTE, "library/base", ["3"], f"{STAGING}/library/base:3", modified=upstream_time)
    # The same digest reached through both members: a pull through the virtual gets the local one.
    admin.seed_tags(REMOTE, "classes/app", ["1.0"], f"{LOCAL}/classes/app:1.0", modified=upstream_time)

    client = e2e_stack.client
    client.set_paused(FULL_INGEST_DAG_ID, False)
    before = e2e_stack.sboms()
    run_id = client.trigger(
        FULL_INGEST_DAG_ID, conf={"registry": e2e_stack.emulator.registry_string(repository=VIRTUAL)}
    )
    finished = e2e_stack.finished_run(FULL_INGEST_DAG_ID, run_id, before)

    assert finished.state == "success", finished.summary
    expected = {*app.platform_digests.values(), *upstream.platform_digests.values()}
    assert len(expected) == 3  # one single-platform image, two platforms of the list
    assert finished.new_sboms == expected
    results = finished.summary["results"]
    assert sorted((r["repository"], r["image"], r["digest"]) for r in results) == sorted(
        [(VIRTUAL, "classes/app", digest) for digest in app.platform_digests.values()]
        + [(VIRTUAL, "library/base", digest) for digest in upstream.platform_digests.values()]
    )  # named through the virtual key, the digest of both members once
    assert (finished.summary["indexed"], finished.summary["failed"]) == (3, 0)
    assert all(f"/{VIRTUAL}/" in r["reference"] for r in results)
    assert finished.summary["warnings"] == []
