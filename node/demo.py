"""``openseats demo``: three federated nodes on localhost, in one process.

A corporate programme (LEX-like), a company programme (DATEV-like) and a
public-administration network (KIWI-like) are created with their own data
dirs and SQLite databases, peered through the real protocol with real
fingerprint checks, and seeded with German sessions: some open to all
partners, some to one partner only, one cancelled.  The catalogues are
public in the demo, so a newcomer can simply click the printed URLs.
Each node's web UI has an admin ``admin`` with a random password, printed
in the banner and kept in ``admin-password.txt`` beside ``admin-token.txt``.
Everything runs until Ctrl-C; a temporary data dir is removed afterwards.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import signal
import tempfile
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from node.app import create_app
from node.db import Database
from node.db import catalogue as catalogue_repo
from node.db import tokens as token_repo
from node.identity import NodeIdentity
from node.publishing.input import OpeningInput, SessionInput
from node.runtime import NodeServices
from node.settings import CONFIG_NAME, Settings, load_settings, write_config
from node.ui.accounts import AccountError, check_password, create_admin, reset_password
from node.web.access_log import RedactingAccessLogger
from node.web.protocol_routes import NODE

BERLIN = ZoneInfo("Europe/Berlin")
DEMO_ADMIN = "admin"


@dataclass(frozen=True)
class DemoOrg:
    key: str
    node_id: str
    name: str


ORGS = (
    DemoOrg("lex", "lex.demo.openseats", "LEX – Lernen im Konzern"),
    DemoOrg("lernwelt", "lernwelt.demo.openseats", "Lernwelt – Peer Learning im Softwarehaus"),
    DemoOrg("kiwi", "kiwi.demo.openseats", "KIWI – Lernen in der Verwaltung"),
)

# (org, title, format, minutes, day offset, hour, host, tags, audience, seats, cancelled)
SESSIONS: tuple[tuple[Any, ...], ...] = (
    (
        "lex",
        "KI-Prompting für Einsteiger",
        "impulse",
        60,
        2,
        10,
        "Anna Schröder",
        ["KI", "Prompting"],
        "all",
        5,
        False,
    ),
    (
        "lex",
        "AMA: Wie arbeitet ein Konzern-Lernnetzwerk?",
        "ama",
        30,
        3,
        13,
        "Jonas Weber",
        ["Lernkultur"],
        ["lernwelt.demo.openseats"],
        3,
        False,
    ),
    (
        "lex",
        "Werkstatt: Eine Prompt-Bibliothek fürs Team",
        "workshop",
        90,
        6,
        9,
        "Dr. Miriam Koch",
        ["KI", "Werkstatt"],
        "all",
        4,
        True,
    ),
    (
        "lex",
        "Impuls: Feedbackkultur im Team",
        "impulse",
        60,
        8,
        15,
        "Sven Hartmann",
        ["Führung"],
        None,
        0,
        False,
    ),
    (
        "lernwelt",
        "Erfahrungsaustausch: Vom SharePoint-Kalender ins LMS",
        "exchange",
        60,
        4,
        11,
        "Petra Huber",
        ["LMS", "Doppelerfassung"],
        "all",
        6,
        False,
    ),
    (
        "lernwelt",
        "Impuls: Barrierefreie PDFs in 30 Minuten",
        "impulse",
        30,
        5,
        14,
        "Jürgen Weiß",
        ["Barrierefreiheit"],
        ["kiwi.demo.openseats"],
        2,
        False,
    ),
    (
        "kiwi",
        "Offenes Gruppentreffen: Digitale Verwaltung",
        "open_group",
        90,
        3,
        16,
        "Heike Brandt",
        ["Verwaltung", "Digitalisierung"],
        "all",
        8,
        False,
    ),
    (
        "kiwi",
        "Impuls: Agile Methoden in Behörden",
        "impulse",
        60,
        7,
        10,
        "Tobias Meier",
        ["Agilität"],
        ["lex.demo.openseats"],
        3,
        False,
    ),
)


@dataclass
class DemoNode:
    org: DemoOrg
    settings: Settings
    runner: web.AppRunner
    admin_token: str
    admin_password: str = ""

    @property
    def node(self) -> NodeServices:
        return self.runner.app[NODE]


async def _prepare(org: DemoOrg, data: Path, port: int) -> tuple[Settings, str | None]:
    """Create the node's data dir on first use; return its settings and new token."""
    config = data / CONFIG_NAME
    token = None
    if not config.exists():
        data.mkdir(parents=True, exist_ok=True)
        write_config(
            config,
            {
                "node_id": org.node_id,
                "base_url": f"http://127.0.0.1:{port}",
                "display_name": org.name,
                "listen_port": port,
                "public_catalogue": True,
                "poll_interval_seconds": 30,
            },
        )
        settings = load_settings(data)
        db = Database(settings.database)
        try:
            await db.upgrade()
            await NodeIdentity(settings, db).create_first_key(datetime.now(BERLIN))
            async with db.write() as conn:
                token = await token_repo.create(conn, "admin", "demo", datetime.now(BERLIN))
        finally:
            await db.dispose()
    return load_settings(data), token


async def _admin_password(node: NodeServices, data: Path) -> str:
    """The web UI's ``admin`` password: random per node, kept in admin-password.txt."""
    path = data / "admin-password.txt"
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    while True:
        password = secrets.token_urlsafe(12)
        try:
            check_password(password, DEMO_ADMIN)
            break
        except AccountError:  # a random draw that breaks a rule: draw again
            continue
    try:
        await create_admin(node.db, DEMO_ADMIN, password, node.clock.now())
    except AccountError:  # the user exists, its password file was removed
        await reset_password(node.db, DEMO_ADMIN, password)
    path.write_text(password + "\n", encoding="utf-8")
    path.chmod(0o600)
    return password


async def _peer(a: DemoNode, b: DemoNode) -> None:
    """a asks b, with b's fingerprint as read from b's own identity; b accepts."""
    if any(p.node_id == b.org.node_id for p in await a.node.peering.list()):
        return
    await a.node.peering.add(b.settings.base_url, b.node.identity.fingerprint)
    await b.node.peering.accept(a.org.node_id)


async def _seed(nodes: dict[str, DemoNode]) -> None:
    today = datetime.now(BERLIN).date()
    for org, title, fmt, minutes, day, hour, host, tags, audience, seats, cancel in SESSIONS:
        services = nodes[org].node
        if await services.sessions.list(q=title.split(":")[-1].strip()[:20]):
            continue
        start = datetime.combine(today + timedelta(days=day), time(hour), BERLIN)
        row = await services.sessions.create(
            SessionInput(
                title=title,
                format=fmt,
                duration_minutes=minutes,
                start=start,
                host_name=host,
                tags=tags,
                description=f"{title} – eine Peer-Learning-Session von {host}.",
                join_url=f"https://meet.example.org/{org}-{day}{hour}",
            )
        )
        if audience is not None:
            await services.sessions.open(row.id, OpeningInput(seats=seats, audience=audience))
        if cancel:
            await services.sessions.cancel(row.id)


async def _converge(nodes: list[DemoNode]) -> None:
    for _ in range(3):
        for demo in nodes:
            await demo.node.notifier.changed()
            await demo.node.deliverer.deliver_due()
        for demo in nodes:
            for other in nodes:
                if other is not demo:
                    await demo.node.subscriber.pull(other.org.node_id, force=True)


async def _bookable(demo: DemoNode, origin: str) -> str | None:
    """A partner session with free seats in *demo*'s catalogue, for the example."""
    node = demo.node
    query = catalogue_repo.Query(start_from=node.clock.now(), org=origin, open_seats=True)
    async with node.db.read() as conn:
        entries = await catalogue_repo.search(conn, query, node.settings.registration_template)
    return entries[0].id if entries else None


def _banner(nodes: list[DemoNode], root: Path, temporary: bool, bookable: str | None) -> str:
    lines = ["", "OpenSeats-Demo: drei Knoten laufen / three nodes are running", ""]
    for demo in nodes:
        base = demo.settings.base_url
        lines += [
            f"  {demo.org.name}  ({demo.org.node_id})",
            f"    Katalog / catalogue:  {base}/api/v1/catalogue",
            f"    Kalender / calendar:  {base}/api/v1/catalogue.ics",
            f"    Admin-API:            {base}/admin/api/v1/sessions",
            f"    Admin-Token:          {demo.admin_token}",
            f"    Admin-Oberfläche:     {base}/admin/",
            f"    Anmeldung / login:    {DEMO_ADMIN}",
            f"    Passwort / password:  {demo.admin_password}",
            f"    Fingerabdruck:        {demo.node.identity.fingerprint}",
            "",
        ]
    example = nodes[0]
    lines += [
        "  Beispiel / example:",
        f"    curl -s {nodes[1].settings.base_url}/api/v1/catalogue?q=prompting",
        f"    curl -s -H 'Authorization: Bearer {example.admin_token}' "
        f"{example.settings.base_url}/admin/api/v1/peers",
    ]
    if bookable:
        partner = nodes[1]
        lines += [
            f"  Platz bei {example.org.name} reservieren / reserve a seat "
            f"(via {partner.org.name}):",
            f"    curl -s -X POST -H 'Authorization: Bearer {partner.admin_token}' "
            "-H 'Content-Type: application/json' "
            """-d '{"attendee": {"ref": "demo-1", "display_name": "Mia Beispiel"}}' """
            f"{partner.settings.base_url}/api/v1/sessions/{bookable}/reservations",
            f"    curl -s -H 'Authorization: Bearer {partner.admin_token}' "
            f"{partner.settings.base_url}/api/v1/reservations?ref=demo-1",
        ]
    lines += [
        "",
        f"  Daten / data: {root}"
        + ("  (wird beim Beenden gelöscht / removed on exit)" if temporary else ""),
        "  Beenden mit Strg-C / stop with Ctrl-C",
        "",
    ]
    return "\n".join(lines)


async def run_demo(base_port: int, data: Path | None) -> int:
    temporary = data is None
    root = Path(tempfile.mkdtemp(prefix="openseats-demo-")) if data is None else data
    nodes: list[DemoNode] = []
    # Ctrl-C at any moment, even while the nodes are starting, stops cleanly.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        for offset, org in enumerate(ORGS):
            settings, token = await _prepare(org, root / org.key, base_port + offset)
            token_file = root / org.key / "admin-token.txt"
            if token:
                token_file.write_text(token + "\n", encoding="utf-8")
                token_file.chmod(0o600)
            runner = web.AppRunner(
                create_app(settings), handle_signals=False, access_log_class=RedactingAccessLogger
            )
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", settings.listen_port).start()
            password = await _admin_password(runner.app[NODE], root / org.key)
            nodes.append(DemoNode(org, settings, runner, token_file.read_text().strip(), password))
        by_key = {demo.org.key: demo for demo in nodes}
        await _peer(by_key["lex"], by_key["lernwelt"])
        await _peer(by_key["lex"], by_key["kiwi"])
        await _peer(by_key["lernwelt"], by_key["kiwi"])
        await _seed(by_key)
        await _converge(nodes)
        bookable = await _bookable(by_key["lernwelt"], by_key["lex"].org.node_id)
        print(_banner(nodes, root, temporary, bookable), flush=True)
        await stop.wait()
        print("Demo wird beendet / stopping the demo …", flush=True)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        for demo in reversed(nodes):
            await demo.runner.cleanup()
        if temporary:
            shutil.rmtree(root, ignore_errors=True)
    return 0
