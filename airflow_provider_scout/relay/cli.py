"""``airflow-scout relay``: run the webhook relay (secrets come from the environment only)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sqlite3
import sys
import time
from collections.abc import Mapping
from typing import Any

from airflow_provider_scout.defaults import (
    AIRFLOW_PASSWORD_ENV,
    AIRFLOW_TOKEN_ENV,
    AIRFLOW_URL_ENV,
    AIRFLOW_USERNAME_ENV,
    REGISTRY_ENV,
    RELAY_PORT,
    WEBHOOK_SECRET_ENV,
)
from airflow_provider_scout.exceptions import InputError
from airflow_provider_scout.limits import Limits
from airflow_provider_scout.relay.options import add_options, given_options
from airflow_provider_scout.relay.settings import (
    DATABASE_FILE,
    RECOMMENDED_SECRET_LENGTH,
    ConnectionLimits,
    RelayConfigError,
    RelaySettings,
    airflow_url_from,
    artifactory_auth_from,
    credentials_from,
    registry_from,
    tag_filter_from,
)

__all__ = ["add_parser", "run"]

log = logging.getLogger("airflow_provider_scout.relay")


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "relay",
        help="receive Artifactory webhooks and trigger the webhook DAG",
        description=(
            "Receive Artifactory docker webhooks, authenticate them, store accepted events durably and "
            "deliver them to Airflow as runs of the webhook DAG."
        ),
        epilog=(
            f"Environment: {WEBHOOK_SECRET_ENV} (required; "
            f"{RECOMMENDED_SECRET_LENGTH}+ characters recommended), "
            f"{REGISTRY_ENV}, {AIRFLOW_URL_ENV}, {AIRFLOW_USERNAME_ENV} + {AIRFLOW_PASSWORD_ENV} "
            f"or {AIRFLOW_TOKEN_ENV}."
        ),
    )
    add_options(parser)
    parser.set_defaults(run=run)

    actions = parser.add_subparsers(dest="relay_action", metavar="ACTION")
    requeue = actions.add_parser(
        "requeue",
        help="re-deliver batches Airflow refused for good (under new DAG run ids)",
        description=(
            "List the batches Airflow refused for good, or move their events into new batches that a "
            "running relay delivers within seconds (exactly once, like any batch)."
        ),
    )
    requeue.add_argument("dag_run_ids", nargs="*", metavar="DAG_RUN_ID", help="failed batches to re-deliver")
    requeue.add_argument("--all", action="store_true", help="re-deliver every failed batch")
    add_options(requeue, only=("state_dir",))
    requeue.set_defaults(run=run_requeue)


def settings_from_args(args: argparse.Namespace, environ: Mapping[str, str]) -> RelaySettings:
    given = given_options(args, environ)
    registry = registry_from(given.pop("registry", None), environ)
    limit_fields = {field.name for field in dataclasses.fields(ConnectionLimits)}
    limits = ConnectionLimits(**{k: v for k, v in given.items() if k in limit_fields})
    port = given.pop("port", None)
    return RelaySettings(
        **{k: v for k, v in given.items() if k not in limit_fields and k not in ("tag", "airflow_url")},
        limits=limits,
        registry=registry,
        secret=environ.get(WEBHOOK_SECRET_ENV, ""),
        airflow_url=airflow_url_from(given.get("airflow_url"), environ),
        airflow_credentials=credentials_from(environ),
        artifactory_auth=artifactory_auth_from(environ),
        tags=tag_filter_from(given.get("tag", ())),
        upstream=upstream_limits(environ),
        port=port if port is not None else registry.port or RELAY_PORT,
    )


def upstream_limits(environ: Mapping[str, str]) -> Limits:
    """The body cap and deadline the relay reads Artifactory with, from the tasks' ``SCOUT_*`` variables."""
    try:
        return Limits.from_environment(environ)
    except InputError as exc:
        raise RelayConfigError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs every request at INFO; the relay logs each delivery itself.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        settings = settings_from_args(args, dict(os.environ))
    except RelayConfigError as exc:
        print(f"airflow-scout relay: error: {exc}", file=sys.stderr)
        return 2
    if settings.secret_is_short:
        log.warning(
            "%s is shorter than %d characters; use a longer random secret",
            WEBHOOK_SECRET_ENV,
            RECOMMENDED_SECRET_LENGTH,
        )

    from airflow_provider_scout.relay.server import serve
    from airflow_provider_scout.relay.store import EventStore

    # Fail here, in one line naming the file, rather than in the server's lifespan with a traceback.
    try:
        store = EventStore(settings.database_path, settings.dedupe_window)
        try:
            store.probe_write(time.time())
        finally:
            store.close()
    except (OSError, sqlite3.Error) as exc:
        print(
            f"airflow-scout relay: error: cannot write the event store {settings.database_path}: {exc}",
            file=sys.stderr,
        )
        return 1

    try:
        serve(settings)
    except OSError as exc:
        print(
            f"airflow-scout relay: error: cannot listen on {settings.host}:{settings.port}: {exc}",
            file=sys.stderr,
        )
        return 1
    return 0


def run_requeue(args: argparse.Namespace) -> int:
    from airflow_provider_scout.relay.store import EventStore

    try:
        state_dir = given_options(args, os.environ).get("state_dir", RelaySettings.state_dir)
    except RelayConfigError as exc:
        print(f"airflow-scout relay requeue: error: {exc}", file=sys.stderr)
        return 2
    path = state_dir / DATABASE_FILE
    if not path.is_file():
        print(f"airflow-scout relay requeue: error: no event store at {path}", file=sys.stderr)
        return 2
    try:
        store = EventStore(path)
    except (OSError, sqlite3.Error) as exc:
        print(
            f"airflow-scout relay requeue: error: cannot open the event store {path}: {exc}", file=sys.stderr
        )
        return 1
    try:
        if not args.all and not args.dag_run_ids:
            failed = store.failed_batches()
            for batch in failed:
                print(f"{batch['dag_run_id']}  {batch['events']} events  {batch['error']}")
            print(f"{len(failed)} failed batches; re-deliver with DAG_RUN_ID... or --all")
            return 0
        try:
            moved = store.requeue(None if args.all else args.dag_run_ids, time.time())
        except ValueError as exc:
            print(f"airflow-scout relay requeue: error: {exc}", file=sys.stderr)
            return 2
        for old, new in moved:
            print(f"requeued {old} as {new}")
        return 0
    finally:
        store.close()
