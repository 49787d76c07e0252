"""The ``airflow-scout`` console command: the webhook relay."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="airflow-scout",
        description="Companion services of the Docker Scout provider for Apache Airflow.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    # Each subcommand module owns its own arguments; imports stay lazy so `--help` is fast.
    from airflow_provider_scout.relay.cli import add_parser as add_relay

    add_relay(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
