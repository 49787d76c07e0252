"""``artifactory-emulator``: run the Artifactory emulator, a TEST DOUBLE of JFrog Artifactory.

A console script of the test rig (``testing/pyproject.toml``), not of the provider: the
provider's ``airflow-scout`` command only runs the relay.

Secrets come from the environment only: ``ARTIFACTORY_EMULATOR_USER`` /
``ARTIFACTORY_EMULATOR_PASSWORD`` (basic auth), ``ARTIFACTORY_EMULATOR_TOKEN`` (bearer, or
the basic password) and ``ARTIFACTORY_EMULATOR_WEBHOOK_SECRET``. With no credential set
the emulator serves anonymous clients.
"""

from __future__ import annotations

import argparse
import logging
import os
import ssl
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scout_testing.artifactory_emulator.webhooks import SIGNING_MODES, WebhookTarget

ENV_USER = "ARTIFACTORY_EMULATOR_USER"
ENV_PASSWORD = "ARTIFACTORY_EMULATOR_PASSWORD"
ENV_TOKEN = "ARTIFACTORY_EMULATOR_TOKEN"
ENV_WEBHOOK_SECRET = "ARTIFACTORY_EMULATOR_WEBHOOK_SECRET"
# Defaults of the repository-class and AQL flags (not secrets, but set the same way in compose).
ENV_REMOTES = "ARTIFACTORY_EMULATOR_REMOTES"  # key,key
ENV_VIRTUALS = "ARTIFACTORY_EMULATOR_VIRTUALS"  # key=member,member;key=member
ENV_UNREADABLE = "ARTIFACTORY_EMULATOR_UNREADABLE"  # key or repo/path glob, comma-separated
ENV_AQL_QUEUE_SECONDS = "ARTIFACTORY_EMULATOR_AQL_QUEUE_SECONDS"
ENV_RESULT_CAP = "ARTIFACTORY_EMULATOR_RESULT_CAP"
DEFAULT_REPOSITORIES = ("docker-local", "docker-prod", "docker-dev")

_DESCRIPTION = f"""\
Artifactory emulator: a TEST DOUBLE of JFrog Artifactory for tests, benchmarks and the demo,
not a product. It serves the REST subset the provider uses (ping, repositories, AQL over tag
manifests, storage info), the Docker Registry v2 API under the REST, repository-path and
subdomain access methods, and docker "pushed" webhooks, while a real docker-registry
(--registry-url) stores every blob and manifest.

Repository classes: --repository declares local repositories, --remote a
remote one (its content lives in <key>-cache, filled by the /_emulator/seed-tags control),
--virtual KEY=MEMBER,... a virtual one over declared members. --unreadable hides a
repository or repo/path glob from the user (AQL drops such rows after `limit`).

Secrets are read from the environment, never from arguments:
  {ENV_USER} / {ENV_PASSWORD}   basic auth
  {ENV_TOKEN}   bearer token, also accepted as the basic password
  {ENV_WEBHOOK_SECRET}   X-JFrog-Event-Auth secret of --webhook-url
With no credential set, clients are served anonymously.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="artifactory-emulator",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--port", type=int, required=True, help="TCP port to listen on")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument(
        "--registry-url", required=True, help="URL of the docker-registry that stores the content"
    )
    parser.add_argument(
        "--repository",
        action="append",
        dest="repositories",
        metavar="KEY",
        help=f"Docker local repository to serve; repeatable (default: {', '.join(DEFAULT_REPOSITORIES)})",
    )
    parser.add_argument(
        "--remote",
        action="append",
        dest="remotes",
        metavar="KEY",
        default=_env_list(ENV_REMOTES, ","),
        help=f"Docker remote repository, stored in KEY-cache; repeatable (env {ENV_REMOTES})",
    )
    parser.add_argument(
        "--virtual",
        action="append",
        dest="virtuals",
        metavar="KEY=MEMBER[,MEMBER...]",
        default=_env_list(ENV_VIRTUALS, ";"),
        help=f"Docker virtual repository over declared members, in order; repeatable ({ENV_VIRTUALS})",
    )
    parser.add_argument(
        "--unreadable",
        action="append",
        metavar="KEY_OR_GLOB",
        default=_env_list(ENV_UNREADABLE, ","),
        help=f"repository key or repo/path/name glob the user may not read; repeatable ({ENV_UNREADABLE})",
    )
    parser.add_argument("--tls-cert", help="serve HTTPS with this certificate (PEM)")
    parser.add_argument("--tls-key", help="the key of --tls-cert")
    parser.add_argument("--tls-client-ca", help="require client certificates signed by this CA (mutual TLS)")
    parser.add_argument(
        "--public-host", help="the host name clients use, in the URLs the emulator builds (default: --host)"
    )
    parser.add_argument(
        "--admin-user",
        action="store_true",
        help="the user is an Artifactory admin: AQL's non-admin rule (include repo, path, name) is off",
    )
    parser.add_argument(
        "--aql-queue-seconds",
        type=float,
        default=float(os.environ.get(ENV_AQL_QUEUE_SECONDS) or 10.0),
        help=f"seconds a 4th AQL waits before its 429 (default: %(default)s; {ENV_AQL_QUEUE_SECONDS})",
    )
    parser.add_argument(
        "--result-cap",
        type=int,
        default=int(os.environ.get(ENV_RESULT_CAP) or 0) or None,
        help=f"trim AQL results to this many rows with range.notification (SaaS: 500000; {ENV_RESULT_CAP})",
    )
    parser.add_argument(
        "--webhook-url",
        action="append",
        dest="webhook_urls",
        default=[],
        metavar="URL",
        help="where docker 'pushed' events are posted; repeatable",
    )
    parser.add_argument(
        "--webhook-signing",
        choices=SIGNING_MODES,
        default="hmac",
        help="X-JFrog-Event-Auth is the plain secret or the HMAC-SHA256 of the body (default: %(default)s)",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        help="keep the tag index (with modification times) here so it survives a restart",
    )
    parser.add_argument(
        "--seed-fixtures",
        action="store_true",
        help="after start, build the standard fixture images and push them through the emulator",
    )
    return parser


def _env_list(name: str, separator: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, "").split(separator) if item.strip()]


def parse_virtuals(specs: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """``KEY=MEMBER,MEMBER`` specs as a mapping; ValueError names the bad one."""
    virtuals: dict[str, tuple[str, ...]] = {}
    for spec in specs:
        key, equals, members = spec.partition("=")
        if not equals or not key.strip():
            raise ValueError(f"--virtual takes KEY=MEMBER[,MEMBER...], not {spec!r}")
        virtuals[key.strip()] = tuple(m.strip() for m in members.split(",") if m.strip())
    return virtuals


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from scout_testing.artifactory_emulator.app import EmulatorConfig, create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per proxied request drowns the log
    if not 1 <= args.port <= 65535:
        print(f"artifactory-emulator: --port must be 1-65535, got {args.port}", file=sys.stderr)
        return 2
    if not args.registry_url.startswith(("http://", "https://")):
        print(
            f"artifactory-emulator: --registry-url must be an http(s) URL, got {args.registry_url!r}",
            file=sys.stderr,
        )
        return 2
    secret = os.environ.get(ENV_WEBHOOK_SECRET) or None
    if args.webhook_urls and secret is None:
        logging.getLogger(__name__).warning(
            "%s is not set: webhooks go out unauthenticated", ENV_WEBHOOK_SECRET
        )
    if args.aql_queue_seconds < 0 or (args.result_cap is not None and args.result_cap < 1):
        print("artifactory-emulator: --aql-queue-seconds must be >= 0 and --result-cap >= 1", file=sys.stderr)
        return 2
    try:
        virtuals = parse_virtuals(args.virtuals)
        webhooks = [
            WebhookTarget(url, secret, args.webhook_signing, subscription_key=f"emulator-webhook-{number}")
            for number, url in enumerate(args.webhook_urls, start=1)
        ]
    except ValueError as exc:
        print(f"artifactory-emulator: {exc}", file=sys.stderr)
        return 2
    config = EmulatorConfig(
        registry_url=args.registry_url,
        public_url=f"{'https' if args.tls_cert else 'http'}://{args.public_host or args.host}:{args.port}",
        repositories=tuple(args.repositories or DEFAULT_REPOSITORIES),
        username=os.environ.get(ENV_USER) or None,
        password=os.environ.get(ENV_PASSWORD) or None,
        token=os.environ.get(ENV_TOKEN) or None,
        webhooks=webhooks,
        state_dir=args.state_dir,
        seed_fixtures=args.seed_fixtures,
        remotes=tuple(args.remotes),
        virtuals=virtuals,
        unreadable=tuple(args.unreadable),
        admin=args.admin_user,
        aql_queue_seconds=args.aql_queue_seconds,
        result_cap=args.result_cap,
    )
    try:
        app = create_app(config)
    except ValueError as exc:  # a member that is not declared, a key that is not a key
        print(f"artifactory-emulator: {exc}", file=sys.stderr)
        return 2
    tls: dict[str, Any] = {}
    if args.tls_cert:
        tls = {"ssl_certfile": args.tls_cert, "ssl_keyfile": args.tls_key}
        if args.tls_client_ca:
            tls |= {"ssl_ca_certs": args.tls_client_ca, "ssl_cert_reqs": ssl.CERT_REQUIRED}
    uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_level="info", **tls)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
