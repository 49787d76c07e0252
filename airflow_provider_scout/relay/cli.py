"""``airflow-scout relay``: run the webhook relay (secrets come from the environment only)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

from airflow_provider_scout.defaults import (
    AIRFLOW_PASSWORD_ENV,
    AIRFLOW_TOKEN_ENV,
    AIRFLOW_URL_ENV,
    AIRFLOW_USERNAME_ENV,
    REGISTRY_ENV,
    RELAY_PORT,
    WEBHOOK_DAG_ID,
    WEBHOOK_SECRET_ENV,
)
from airflow_provider_scout.relay.settings import (
    RECOMMENDED_SECRET_LENGTH,
    RelayConfigError,
    RelaySettings,
    airflow_url_from,
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
    parser.add_argument("--registry", help=f"docker scout watch registry string (default: ${REGISTRY_ENV})")
    parser.add_argument(
        "--tag",
        action="append",
        default=[],
        metavar="REGEX",
        help="only tags matching this regular expression (repeatable; default: all tags)",
    )
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default: %(default)s)")
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
    parser.set_defaults(run=run)


def settings_from_args(args: argparse.Namespace, environ: dict[str, str]) -> RelaySettings:
    registry = registry_from(args.registry, environ)
    return RelaySettings(
        registry=registry,
        secret=environ.get(WEBHOOK_SECRET_ENV, ""),
        airflow_url=airflow_url_from(args.airflow_url, environ),
        airflow_credentials=credentials_from(environ),
        state_dir=args.state_dir,
        tags=tag_filter_from(args.tag),
        accept_promoted=args.accept_promoted,
        dag_id=args.dag_id,
        host=args.host,
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

    from airflow_provider_scout.relay.app import serve

    try:
        serve(settings)
    except OSError as exc:
        print(
            f"airflow-scout relay: error: cannot listen on {settings.host}:{settings.port}: {exc}",
            file=sys.stderr,
        )
        return 1
    return 0
