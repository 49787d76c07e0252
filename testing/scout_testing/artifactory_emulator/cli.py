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
import sys
from collections.abc import Sequence
from pathlib import Path

from scout_testing.artifactory_emulator.state import SIGNING_MODES, WebhookTarget

ENV_USER = "ARTIFACTORY_EMULATOR_USER"
ENV_PASSWORD = "ARTIFACTORY_EMULATOR_PASSWORD"
ENV_TOKEN = "ARTIFACTORY_EMULATOR_TOKEN"
ENV_WEBHOOK_SECRET = "ARTIFACTORY_EMULATOR_WEBHOOK_SECRET"
DEFAULT_REPOSITORIES = ("docker-local", "docker-prod", "docker-dev")

_DESCRIPTION = f"""\
Artifactory emulator: a TEST DOUBLE of JFrog Artifactory for tests, benchmarks and the demo,
not a product. It serves the REST subset the provider uses (ping, repositories, AQL over tag
manifests, storage info), the Docker Registry v2 API under the REST, repository-path and
subdomain access methods, and docker "pushed" webhooks, while a real docker-registry
(--registry-url) stores every blob and manifest.

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
    try:
        webhooks = [
            WebhookTarget(url, secret, args.webhook_signing, subscription_key=f"emulator-webhook-{number}")
            for number, url in enumerate(args.webhook_urls, start=1)
        ]
    except ValueError as exc:
        print(f"artifactory-emulator: {exc}", file=sys.stderr)
        return 2
    config = EmulatorConfig(
        registry_url=args.registry_url,
        public_url=f"http://{args.host}:{args.port}",
        repositories=tuple(args.repositories or DEFAULT_REPOSITORIES),
        username=os.environ.get(ENV_USER) or None,
        password=os.environ.get(ENV_PASSWORD) or None,
        token=os.environ.get(ENV_TOKEN) or None,
        webhooks=webhooks,
        state_dir=args.state_dir,
        seed_fixtures=args.seed_fixtures,
    )
    uvicorn.run(create_app(config), host=args.host, port=args.port, access_log=False, log_level="info")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
