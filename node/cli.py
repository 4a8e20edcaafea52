"""The ``openseats`` command line.

Every command takes ``--data DIR`` (default ``$OPENSEATS_DATA`` or
``./openseats-data``) or ``--config PATH``.  Commands that change the node
work directly on its database, through the same services as the web app
(:func:`node.runtime.open_node`), so they are safe while ``serve`` runs.
Expected mistakes print one clear line and exit with status 1; usage
errors, configuration mistakes and an unreachable database exit with 2.
No stack traces.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from importlib.metadata import PackageNotFoundError, version

from pydantic import ValidationError

import node.cli_admin  # noqa: F401  (registers its commands)
from node import cli_backup, cli_reservations  # noqa: F401  (register their commands)
from node.cli_commands import COMMANDS, CliError, storage_problem
from node.cli_parsers import add_parsers
from node.db.faults import StorageFault, StorageFull
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
    add_parsers(commands)
    cli_backup.add_parsers(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "schemas":
        flags = ["--check"] if args.check else []
        return schemagen.main(flags) or vectorgen.main(flags)
    handler = COMMANDS.get((args.command, getattr(args, "action", None)))
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return asyncio.run(handler(args))
    except CliError as exc:
        print(f"Fehler / error: {exc}", file=sys.stderr)
        return exc.exit_code
    except StorageFault as exc:  # unreachable at start is a setup problem: exit 2
        print(f"Fehler / error: {storage_problem(args, exc)}", file=sys.stderr)
        return 1 if isinstance(exc, StorageFull) else 2
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            where = ".".join(str(p) for p in error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            print(f"Fehler / error: {where}: {message}" if where else message, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
