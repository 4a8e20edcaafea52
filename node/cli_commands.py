"""The subcommands of ``openseats`` (argument definitions and handlers)."""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from pydantic import ValidationError

from node import datadir
from node.app import create_app
from node.db import Database
from node.db import sync as sync_repo
from node.db import tokens as token_repo
from node.db.faults import StorageFault, StorageFull
from node.db.urls import describe_target, sqlite_file
from node.federation.peering import PeeringError
from node.identity import IdentityError, NodeIdentity, RotationRefused
from node.imports import ImportFileError
from node.observability.logs import configure_logging
from node.publishing.importer import detect_kind
from node.publishing.input import OpeningInput, SessionInput
from node.publishing.service import SessionError
from node.runtime import NodeServices, open_node
from node.settings import (
    CONFIG_NAME,
    Settings,
    SettingsError,
    describe_validation_error,
    load_settings,
    resolve_data_dir,
    write_config,
)
from node.web.access_log import RedactingAccessLogger
from protocol.models import format_timestamp

Command = Callable[[Any], Coroutine[Any, Any, int]]
COMMANDS: dict[tuple[str, str | None], Command] = {}

log = logging.getLogger(__name__)


class CliError(Exception):
    """An expected failure, printed as one line."""

    exit_code = 1


class ConfigError(CliError):
    """The node's configuration or environment is wrong (exit status 2, like usage errors)."""

    exit_code = 2


def command(name: str, action: str | None = None) -> Callable[[Command], Command]:
    def register(func: Command) -> Command:
        COMMANDS[(name, action)] = func
        return func

    return register


def _settings(args: argparse.Namespace) -> Settings:
    try:
        return load_settings(args.data, getattr(args, "config", None))
    except SettingsError as exc:
        raise ConfigError(str(exc)) from None


def storage_problem(args: argparse.Namespace, exc: StorageFault) -> str:
    """One line about an unreachable or full database, naming ``database_url``'s target."""
    try:
        target = describe_target(load_settings(args.data, getattr(args, "config", None)).database)
    except SettingsError:
        target = "?"
    if isinstance(exc, StorageFull):
        return (
            f"Speicher voll, nichts gespeichert (database_url → {target}) / storage full, "
            f"nothing was stored (database_url → {target}): {exc.detail or exc.reason}"
        )
    return (
        f"Datenbank nicht erreichbar (database_url → {target}) / database unreachable "
        f"(database_url → {target}): {exc.detail or exc.reason}"
    )


async def _with_node(
    args: argparse.Namespace, work: Callable[[NodeServices], Awaitable[int]]
) -> int:
    settings = _settings(args)
    try:
        async with open_node(settings) as node:
            return await work(node)
    except IdentityError as exc:
        raise CliError(str(exc)) from None
    except (SessionError, PeeringError) as exc:
        raise CliError(f"{exc.code}: {exc.message}") from None


@command("demo")
async def demo(args: argparse.Namespace) -> int:
    from node.demo import run_demo

    if not 1024 <= args.base_port <= 65533:
        raise CliError("--base-port: 1024..65533")
    configure_logging("console", "INFO")
    return await run_demo(args.base_port, Path(args.data) if args.data else None)


# --- init, fingerprint, serve, db, keys ----------------------------------------


@command("init")
async def init(args: argparse.Namespace) -> int:
    data = resolve_data_dir(args.data)
    config = data / CONFIG_NAME
    if config.exists():
        raise CliError(f"{config} gibt es schon / already exists")
    values: dict[str, Any] = {
        "node_id": args.node_id,
        "base_url": args.url.rstrip("/"),
        "display_name": args.display_name or args.node_id,
        "listen_port": args.port or urlsplit(args.url).port or 8700,
    }
    if args.database_url:
        values["database_url"] = args.database_url
    try:
        Settings(data_dir=data, **values)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, source="openseats init")) from None
    try:
        data.mkdir(parents=True, exist_ok=True)
        write_config(config, values)
    except OSError as exc:
        raise ConfigError(
            f"Datenverzeichnis nicht beschreibbar (--data / OPENSEATS_DATA) / "
            f"data dir not writable: {data}: {exc.strerror or exc}"
        ) from None
    settings = _settings(args)
    db = Database(settings.database)
    try:
        await db.upgrade()
        key = await NodeIdentity(settings, db).create_first_key(datetime.now(UTC))
    finally:
        await db.dispose()
    print(f"Knoten / node {settings.node_id} angelegt in / created in {data}")
    print(f"Fingerabdruck / fingerprint: {key.fingerprint}")
    return 0


@command("fingerprint")
async def fingerprint(args: argparse.Namespace) -> int:
    async def work(node: NodeServices) -> int:
        print(node.identity.fingerprint)
        return 0

    return await _with_node(args, work)


@command("keys", "rotate")
async def keys_rotate(args: argparse.Namespace) -> int:
    async def work(node: NodeServices) -> int:
        try:
            key = await node.identity.rotate(node.clock.now())
        except RotationRefused as exc:
            raise CliError(str(exc)) from None
        print(f"Neuer Schlüssel / new key {key.key_id}")
        print(f"Fingerabdruck / fingerprint: {key.fingerprint}")
        return 0

    return await _with_node(args, work)


@command("db", "upgrade")
async def db_upgrade(args: argparse.Namespace) -> int:
    settings = _settings(args)
    db = Database(settings.database)
    try:
        await db.upgrade()
    finally:
        await db.dispose()
    print("Datenbank aktuell / database is up to date")
    return 0


@command("serve")
async def serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    configure_logging(settings.log_format, settings.log_level)
    with _claim_data_dir(settings):
        return await _serve(args, settings)


@contextmanager
def _claim_data_dir(settings: Settings) -> Iterator[None]:
    """A SQLite node marks its data dir as in use (see :mod:`node.datadir`)."""
    if sqlite_file(settings.database) is None:
        yield
        return
    try:
        with datadir.serving(settings.data_dir):
            yield
    except datadir.DataDirNotWritable as exc:
        raise ConfigError(
            f"Datenverzeichnis nicht beschreibbar (--data / OPENSEATS_DATA) / "
            f"data dir not writable: {exc}"
        ) from None
    except datadir.DataDirBusy:
        raise ConfigError(
            f"In {settings.data_dir} läuft gerade eine Wiederherstellung / "
            f"a restore is running in {settings.data_dir}"
        ) from None


def _listen_problem(host: str, port: int, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (
            f"listen_port {port}: Port schon belegt (läuft der Knoten schon?) / "
            f"port already in use on {host} (is the node already running?)"
        )
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"listen_port {port}: keine Berechtigung / not permitted on {host}"
    return f"listen_host {host!r} / listen_port {port}: {exc.strerror or exc}"


async def _serve(args: argparse.Namespace, settings: Settings) -> int:
    stop = asyncio.Event()  # handlers first: a signal during start-up still stops cleanly
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(
        create_app(settings), handle_signals=False, access_log_class=RedactingAccessLogger
    )
    await runner.setup()
    try:
        host = args.host or settings.listen_host
        port = args.port or settings.listen_port
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            raise ConfigError(_listen_problem(host, port, exc)) from None
        log.info("OpenSeats %s listening on http://%s:%s", settings.node_id, host, port)
        await stop.wait()
    finally:
        await runner.cleanup()
    return 0


def _when(value: datetime | None) -> str | None:
    return format_timestamp(value) if value is not None else None


# --- tokens ----------------------------------------------------------------------


@command("token", "create")
async def token_create(args: argparse.Namespace) -> int:
    async def work(node: NodeServices) -> int:
        async with node.db.write() as conn:
            token = await token_repo.create(conn, args.role, args.label, node.clock.now())
        print(token)
        return 0

    return await _with_node(args, work)


@command("token", "list")
async def token_list(args: argparse.Namespace) -> int:
    async def work(node: NodeServices) -> int:
        async with node.db.read() as conn:
            for row in await token_repo.list_tokens(conn):
                state = "widerrufen/revoked" if row.revoked_at else "aktiv/active"
                print(f"{row.id}\t{row.role}\t{state}\t{row.label}")
        return 0

    return await _with_node(args, work)


@command("token", "revoke")
async def token_revoke(args: argparse.Namespace) -> int:
    async def work(node: NodeServices) -> int:
        async with node.db.write() as conn:
            if not await token_repo.revoke(conn, args.id, node.clock.now()):
                raise CliError(f"Token {args.id} nicht gefunden / not found")
        print(f"Token {args.id} widerrufen / revoked")
        return 0

    return await _with_node(args, work)


# --- sessions --------------------------------------------------------------------


@command("session", "add")
async def session_add(args: argparse.Namespace) -> int:
    async def work(node: NodeServices) -> int:
        data = SessionInput.model_validate(
            {
                "title": args.title,
                "description": args.description,
                "format": args.format,
                "languages": args.language or ["de"],
                "start": args.start,
                "timezone": args.timezone,
                "duration_minutes": args.duration,
                "host_name": args.host,
                "tags": args.tag,
                "join_url": args.join_url,
            },
            context={"now": node.clock.now()},
        )
        row = await node.sessions.create(data)
        print(row.id)
        return 0

    return await _with_node(args, work)


@command("session", "list")
async def session_list(args: argparse.Namespace) -> int:
    async def work(node: NodeServices) -> int:
        for row in await node.sessions.list(q=args.q):
            opening = f"{row.open_seats} Plätze/seats" if row.open_seats else "intern/internal"
            audience = "alle/all" if row.audience_all else ",".join(row.audience)
            print(
                f"{row.id}\t{format_timestamp(row.start_at)}\t{row.status}\t{opening}"
                f"{'' if not row.open_seats else ' → ' + audience}\t{row.title}"
            )
        return 0

    return await _with_node(args, work)


@command("session", "open")
async def session_open(args: argparse.Namespace) -> int:
    async def work(node: NodeServices) -> int:
        audience: Any = "all" if args.audience == "all" else args.audience.split(",")
        opening = OpeningInput(
            seats=args.seats,
            audience=audience,
            registration_mode="approval" if args.approval else "auto",
            waitlist=not args.no_waitlist,
            email_required=args.email_required,
        )
        row = await node.sessions.open(args.id, opening)
        print(f"{row.id}: {row.open_seats} Plätze geöffnet / seats opened (v{row.version})")
        return 0

    return await _with_node(args, work)


def _simple_session(action: str, done: str) -> Command:
    async def handler(args: argparse.Namespace) -> int:
        async def work(node: NodeServices) -> int:
            await getattr(node.sessions, action)(args.id)
            print(f"{args.id}: {done}")
            return 0

        return await _with_node(args, work)

    return handler


COMMANDS[("session", "close")] = _simple_session("close", "geschlossen / closed to partners")
COMMANDS[("session", "cancel")] = _simple_session("cancel", "abgesagt / cancelled")
COMMANDS[("session", "withdraw")] = _simple_session("withdraw", "zurückgezogen / withdrawn")


# --- peers -------------------------------------------------------------------------


@command("peer", "add")
async def peer_add(args: argparse.Namespace) -> int:
    async def work(node: NodeServices) -> int:
        result = await node.peering.add(args.url, args.fingerprint)
        print(f"{result.peer.node_id}: Fingerabdruck stimmt / fingerprint matches")
        if result.delivered:
            print(f"Anfrage zugestellt, Zustand / request delivered, state: {result.peer.state}")
        else:
            print(f"Anfrage wartet im Postausgang / request queued: {result.delivery_error}")
        return 0

    return await _with_node(args, work)


@command("peer", "list")
async def peer_list(args: argparse.Namespace) -> int:
    async def work(node: NodeServices) -> int:
        for peer in await node.peering.list():
            state = peer.state.replace("_", "-")
            print(f"{peer.node_id}\t{state}\t{peer.fingerprint}\t{peer.base_url}")
        return 0

    return await _with_node(args, work)


@command("peer", "show")
async def peer_show(args: argparse.Namespace) -> int:
    async def work(node: NodeServices) -> int:
        peer = await node.peering.get(args.node_id)
        async with node.db.read() as conn:
            sync = await sync_repo.load(conn, peer.id)
            rejected = await sync_repo.rejections(conn, peer.node_id)
        never = "nie / never"
        for label, value in (
            ("Knoten / node", peer.node_id),
            ("Name", peer.display_name),
            ("URL", peer.base_url),
            ("Fingerabdruck / fingerprint", peer.fingerprint),
            ("Zustand / state", peer.state.replace("_", "-")),
            ("Letzter Abgleich / last sync", _when(sync.last_success_at) or never),
            ("Letzter Fehler / last error", sync.last_error or "–"),
            ("Fehlversuche / failures", str(sync.failures)),
            ("Nächster Versuch / backoff until", _when(sync.next_attempt_at) or "–"),
            ("Position im Feed / cursor", str(sync.cursor)),
        ):
            print(f"{label}: {value}")
        if rejected:
            print("Abgelehnte Einträge / rejected items:")
            for item in rejected:
                print(f"  {_when(item.created_at)}  {item.item_id}: {item.reason}: {item.detail}")
        return 0

    return await _with_node(args, work)


def _peer_action(action: str, done: str) -> Command:
    async def handler(args: argparse.Namespace) -> int:
        async def work(node: NodeServices) -> int:
            result = await getattr(node.peering, action)(args.node_id)
            state = f" ({result.state.replace('_', '-')})" if result is not None else ""
            print(f"{args.node_id}: {done}{state}")
            return 0

        return await _with_node(args, work)

    return handler


for _action, _done in (
    ("accept", "angenommen / accepted"),
    ("decline", "abgelehnt / declined"),
    ("suspend", "ausgesetzt / suspended"),
    ("resume", "fortgesetzt / resumed"),
    ("remove", "entfernt / removed"),
):
    COMMANDS[("peer", _action)] = _peer_action(_action, _done)


# --- imports ------------------------------------------------------------------------


@command("import")
async def import_sessions(args: argparse.Namespace) -> int:
    async def work(node: NodeServices) -> int:
        source: str = args.source
        try:
            if source.startswith(("http://", "https://")):
                if args.every:
                    report = await node.importer.register(source, args.every)
                else:
                    report = await node.importer.import_url(source)
            else:
                path = Path(source)
                if not path.is_file():
                    raise CliError(f"Datei nicht gefunden / file not found: {source}")
                data = path.read_bytes()
                report = await node.importer.import_bytes(
                    data, args.format or detect_kind(data, path.name)
                )
        except ImportFileError as exc:
            raise CliError(f"{exc.code}: {exc.message}") from None
        print(
            f"importiert/imported {report.imported}, aktualisiert/updated {report.updated}, "
            f"unverändert/unchanged {report.unchanged}, abgesagt/cancelled {report.cancelled}, "
            f"abgelehnt/rejected {report.rejected}, vergangen/past {report.skipped_past}"
        )
        for problem in report.problems:
            print(f"  {problem.where}: {problem.code}: {problem.message}")
        return 0

    return await _with_node(args, work)
