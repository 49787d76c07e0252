"""``airflow-scout relay``: run the webhook relay (secrets come from the environment only)."""

from __future__ import annotations

import argparse
import logging
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from airflow_provider_scout.defaults import (
    AIRFLOW_PASSWORD_ENV,
    AIRFLOW_TOKEN_ENV,
    AIRFLOW_URL_ENV,
    AIRFLOW_USERNAME_ENV,
    REGISTRY_ENV,
    RELAY_OPTION_ENV_PREFIX,
    RELAY_PORT,
    WEBHOOK_DAG_ID,
    WEBHOOK_SECRET_ENV,
)
from airflow_provider_scout.relay.settings import (
    RECOMMENDED_SECRET_LENGTH,
    ConnectionLimits,
    RelayConfigError,
    RelaySettings,
    airflow_url_from,
    artifactory_auth_from,
    credentials_from,
    parse_duration,
    registry_from,
    tag_filter_from,
)

__all__ = ["add_parser", "run"]

log = logging.getLogger("airflow_provider_scout.relay")

_T = TypeVar("_T")

# Options that also come from SCOUT_RELAY_<OPTION>: dest, how to read it, the default, help.
_TUNABLES: tuple[tuple[str, Callable[[str], Any], Any, str], ...] = (
    ("host", str, RelaySettings.host, "address to listen on; 0.0.0.0 for every interface"),
    (
        "max_header_bytes",
        int,
        ConnectionLimits.max_header_bytes,
        "request line + headers larger than this: 400",
    ),
    ("max_headers", int, ConnectionLimits.max_headers, "more headers than this: 431"),
    (
        "header_timeout",
        parse_duration,
        ConnectionLimits.header_timeout,
        "time to send a complete request head",
    ),
    ("body_timeout", parse_duration, ConnectionLimits.body_timeout, "time to send the body after the head"),
    ("keep_alive", parse_duration, ConnectionLimits.keep_alive, "idle time allowed between requests"),
    (
        "max_connections",
        int,
        ConnectionLimits.max_connections,
        "above this, the oldest idle connection closes",
    ),
    ("dedupe_window", parse_duration, RelaySettings.dedupe_window, "same tag at the same digest: duplicate"),
    (
        "failed_retention",
        parse_duration,
        RelaySettings.failed_retention,
        "refused batches are kept this long",
    ),
)


def _env_name(dest: str) -> str:
    return RELAY_OPTION_ENV_PREFIX + dest.upper()


def _option(
    args: argparse.Namespace, environ: Mapping[str, str], dest: str, read: Callable[[str], _T]
) -> _T | None:
    """The option's value from the command line, else from SCOUT_RELAY_<OPTION>, else None."""
    given = getattr(args, dest)
    source = f"--{dest.replace('_', '-')}"
    if given is None:
        given = environ.get(_env_name(dest)) or None
        source = _env_name(dest)
    if given is None:
        return None
    try:
        return read(given)
    except ValueError as exc:
        raise RelayConfigError(f"{source}: {exc}") from None


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
    parser.add_argument("--registry", help=f"docker scout watch registry string (default: ${REGISTRY_ENV})")
    parser.add_argument(
        "--tag",
        action="append",
        default=[],
        metavar="REGEX",
        help="only tags matching this regular expression (repeatable; default: all tags)",
    )
    parser.add_argument(
        "--port",
        type=int,
        help=f"listening port (default: the registry string's port, else {RELAY_PORT}; 0: any free port)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=Path(".scout/relay"),
        help="directory of the relay's event store (default: %(default)s)",
    )
    parser.add_argument(
        "--coalesce-seconds",
        type=float,
        default=3.0,
        help="events arriving within this window become one DAG run (default: %(default)s)",
    )
    parser.add_argument("--airflow-url", help=f"Airflow API server base URL (default: ${AIRFLOW_URL_ENV})")
    parser.add_argument("--dag-id", default=WEBHOOK_DAG_ID, help="DAG to trigger (default: %(default)s)")
    parser.add_argument(
        "--accept-promoted",
        action="store_true",
        help="also index docker 'promoted' events, not only 'pushed'",
    )
    parser.add_argument(
        "--max-body-bytes",
        type=int,
        default=256 * 1024,
        help="larger webhook bodies are refused with 413 (default: %(default)s)",
    )
    limits = parser.add_argument_group(
        "listening address, limits and retention", f"each also read from {RELAY_OPTION_ENV_PREFIX}<OPTION>"
    )
    for dest, _, default, meaning in _TUNABLES:
        shown = f"{default:.0f}s" if isinstance(default, float) else default
        limits.add_argument(
            f"--{dest.replace('_', '-')}", help=f"{meaning} (${_env_name(dest)}; default: {shown})"
        )
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
    requeue.add_argument(
        "--state-dir", type=Path, default=Path(".scout/relay"), help="the relay's state directory"
    )
    requeue.set_defaults(run=run_requeue)


def settings_from_args(args: argparse.Namespace, environ: dict[str, str]) -> RelaySettings:
    registry = registry_from(args.registry, environ)
    given = {
        dest: value
        for dest, read, _, _ in _TUNABLES
        if (value := _option(args, environ, dest, read)) is not None
    }
    limit_fields = set(ConnectionLimits.__dataclass_fields__)
    limits = ConnectionLimits(**{k: v for k, v in given.items() if k in limit_fields})
    return RelaySettings(
        **{k: v for k, v in given.items() if k not in limit_fields},
        limits=limits,
        registry=registry,
        secret=environ.get(WEBHOOK_SECRET_ENV, ""),
        airflow_url=airflow_url_from(args.airflow_url, environ),
        airflow_credentials=credentials_from(environ),
        artifactory_auth=artifactory_auth_from(environ),
        state_dir=args.state_dir,
        tags=tag_filter_from(args.tag),
        accept_promoted=args.accept_promoted,
        dag_id=args.dag_id,
        port=args.port if args.port is not None else registry.port or RELAY_PORT,
        coalesce_seconds=args.coalesce_seconds,
        max_body_bytes=args.max_body_bytes,
    )


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

    path = args.state_dir / "relay.sqlite3"
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
