"""The ``openseats`` command line.

Subcommands are added as the node grows; each one is a thin layer over the
node's packages and prints errors as one clear line (exit status 2 for
usage errors, 1 for failures), never a stack trace for expected mistakes.
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import PackageNotFoundError, version

from protocol import schemagen, vectorgen


def _version() -> str:
    try:
        return version("openseats")
    except PackageNotFoundError:  # running from a source tree without install
        return "0+unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="openseats",
        description="OpenSeats: Knoten für Peer-Learning-Allianzen / "
        "federation node for peer-learning alliances",
    )
    parser.add_argument("--version", action="version", version=f"openseats {_version()}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    schemas = commands.add_parser(
        "schemas", help="JSON Schemas und Testvektoren erzeugen / regenerate schemas and vectors"
    )
    schemas.add_argument("--check", action="store_true", help="nur vergleichen / compare only")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "schemas":
        flags = ["--check"] if args.check else []
        return schemagen.main(flags) or vectorgen.main(flags)
    parser.print_help(sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
