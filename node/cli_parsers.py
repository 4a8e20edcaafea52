"""argparse definitions for ``openseats`` subcommands."""

from __future__ import annotations

import argparse
from typing import Any


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", help="Datenverzeichnis / data dir (default: ./openseats-data)")
    parser.add_argument("--config", help="Konfigurationsdatei / config file (TOML)")


def _group(commands: Any, name: str, help_text: str) -> Any:
    parser = commands.add_parser(name, help=help_text)
    return parser.add_subparsers(dest="action", metavar="ACTION", required=True)


def add_parsers(commands: Any) -> None:
    demo = commands.add_parser(
        "demo", help="drei verbundene Knoten auf localhost / three federated nodes on localhost"
    )
    demo.add_argument("--base-port", type=int, default=8701, help="erster Port / first port")
    demo.add_argument("--data", help="Datenverzeichnis (sonst temporär) / data dir (else temp)")

    init = commands.add_parser("init", help="Knoten anlegen / create a node")
    _common(init)
    init.add_argument("--node-id", required=True, help="z. B. lex.example.org")
    init.add_argument("--url", required=True, help="öffentliche Basis-URL / public base URL")
    init.add_argument("--display-name", help="Name der Organisation / organisation name")
    init.add_argument(
        "--port", type=int, help="Port für serve (Standard: Port der URL, sonst 8700)"
    )
    init.add_argument("--database-url", help="z. B. postgresql://127.0.0.1:5432/openseats")

    for name, text in (("fingerprint", "Fingerabdruck zeigen / show the fingerprint"),):
        _common(commands.add_parser(name, help=text))

    serve = commands.add_parser("serve", help="Knoten starten / run the node")
    _common(serve)
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)

    db = _group(commands, "db", "Datenbank / database")
    _common(db.add_parser("upgrade", help="Migrationen anwenden / apply migrations"))

    keys = _group(commands, "keys", "Schlüssel / keys")
    _common(keys.add_parser("rotate", help="Schlüssel wechseln / rotate the node key"))

    token = _group(commands, "token", "API-Tokens")
    create = token.add_parser("create", help="Token erzeugen / create a token")
    _common(create)
    create.add_argument("--role", required=True, choices=["admin", "portal", "calendar"])
    create.add_argument("--label", default="")
    _common(token.add_parser("list", help="Tokens zeigen / list tokens"))
    revoke = token.add_parser("revoke", help="Token widerrufen / revoke a token")
    _common(revoke)
    revoke.add_argument("id", type=int)

    session = _group(commands, "session", "Eigene Sessions / own sessions")
    add = session.add_parser("add", help="Session anlegen / add a session")
    _common(add)
    add.add_argument("--title", required=True)
    add.add_argument("--start", required=True, help="z. B. 2026-12-03T10:00 (Ortszeit/local)")
    add.add_argument("--duration", required=True, type=int, help="Minuten / minutes")
    add.add_argument("--host", required=True, help="Gastgeber:in / host name")
    add.add_argument(
        "--format",
        default="impulse",
        choices=["impulse", "ama", "exchange", "workshop", "open_group", "other"],
    )
    add.add_argument("--language", action="append", default=None)
    add.add_argument("--timezone", default="Europe/Berlin")
    add.add_argument("--description", default="")
    add.add_argument("--tag", action="append", default=[])
    add.add_argument("--join-url")
    listing = session.add_parser("list", help="Sessions zeigen / list sessions")
    _common(listing)
    listing.add_argument("--q", help="Suche / search")
    opening = session.add_parser("open", help="für Partner öffnen / open to partners")
    _common(opening)
    opening.add_argument("id")
    opening.add_argument("--seats", type=int, required=True)
    opening.add_argument("--audience", default="all", help="all oder/or node-a,node-b")
    opening.add_argument("--approval", action="store_true", help="Freigabe nötig / approval")
    opening.add_argument("--no-waitlist", action="store_true")
    opening.add_argument("--email-required", action="store_true")
    for action, text in (
        ("close", "für Partner schließen / close to partners"),
        ("cancel", "absagen / cancel"),
        ("withdraw", "zurückziehen / withdraw entirely"),
    ):
        sub = session.add_parser(action, help=text)
        _common(sub)
        sub.add_argument("id")

    imports = commands.add_parser(
        "import", help="Sessions aus CSV/ICS importieren / import sessions from CSV or ICS"
    )
    _common(imports)
    imports.add_argument("source", help="Datei oder URL / file or URL (.csv, .ics)")
    imports.add_argument("--format", choices=["csv", "ics"], help="sonst erkannt / else detected")
    imports.add_argument(
        "--every",
        type=int,
        metavar="MINUTES",
        help="URL regelmäßig abgleichen / re-sync a URL every MINUTES",
    )

    peer = _group(commands, "peer", "Partner / peers")
    add_peer = peer.add_parser("add", help="Partner hinzufügen / add a peer")
    _common(add_peer)
    add_peer.add_argument("url")
    add_peer.add_argument("--fingerprint", required=True)
    _common(peer.add_parser("list", help="Partner zeigen / list peers"))
    for action, text in (
        ("show", "Partner im Detail / show a peer"),
        ("accept", "Anfrage annehmen / accept a request"),
        ("decline", "Anfrage ablehnen / decline a request"),
        ("suspend", "aussetzen / suspend"),
        ("resume", "fortsetzen / resume"),
        ("remove", "entfernen / remove"),
    ):
        sub = peer.add_parser(action, help=text)
        _common(sub)
        sub.add_argument("node_id")

    reservations = _group(commands, "reservations", "Reservierungen / reservations")
    listing = reservations.add_parser(
        "list", help="eingehend und ausgehend zeigen / show incoming and outgoing"
    )
    _common(listing)
    listing.add_argument("--session", metavar="ID", help="nur diese Session / only this session")
    listing.add_argument(
        "--pending", action="store_true", help="offene Freigaben / pending approvals"
    )
    listing.add_argument(
        "--outgoing", action="store_true", help="unsere bei Partnern / ours at partners"
    )
    listing.add_argument("--ref", help="nur diese Person (ref) / only this attendee ref")
    listing.add_argument("--state", help="z. B. / e.g. confirmed, waitlisted, pending")
    for action, text in (
        ("approve", "Freigabe erteilen / approve a pending reservation"),
        ("decline", "Freigabe ablehnen / decline a pending reservation"),
        ("cancel", "als Gastgeber stornieren / cancel as the host"),
    ):
        sub = reservations.add_parser(action, help=text)
        _common(sub)
        sub.add_argument("uuid")
    cap = reservations.add_parser("cap", help="Obergrenze je Partner / cap per partner")
    _common(cap)
    cap.add_argument("session_id", metavar="SESSION_ID")
    cap.add_argument("node_id", metavar="NODE_ID")
    cap.add_argument("n", metavar="N", nargs="?", help="höchstens N Plätze / at most N seats")
    cap.add_argument("--remove", action="store_true", help="Obergrenze entfernen / remove")

    privacy = _group(commands, "privacy", "Datenschutz / privacy")
    export = privacy.add_parser("export", help="alles zu einer ref / everything for a ref")
    _common(export)
    export.add_argument("ref")
    export.add_argument("--output", metavar="FILE", help="in Datei / to a file (JSON)")
    erase = privacy.add_parser("delete", help="alles zu einer ref löschen / delete a ref")
    _common(erase)
    erase.add_argument("ref")
    erase.add_argument("--yes", action="store_true", help="wirklich löschen / really delete")

    admin = _group(commands, "admin", "Admins der Weboberfläche / admin UI users")
    create_user = admin.add_parser("create-user", help="Admin anlegen / create an admin user")
    _common(create_user)
    create_user.add_argument("username", metavar="USERNAME")
    create_user.add_argument(
        "--password-stdin",
        action="store_true",
        help="Passwort als eine Zeile von stdin / read the password as one line from stdin",
    )
    _common(admin.add_parser("list-users", help="Admins zeigen / list admin users"))
    delete_user = admin.add_parser("delete-user", help="Admin löschen / delete an admin user")
    _common(delete_user)
    delete_user.add_argument("username", metavar="USERNAME")

    outbox = _group(commands, "outbox", "Postausgang / outbox")
    _common(outbox.add_parser("list", help="unzustellbare zeigen / list dead letters"))
    for action, text in (
        ("retry", "erneut zustellen / retry a dead letter"),
        ("discard", "verwerfen / discard a dead letter"),
    ):
        sub = outbox.add_parser(action, help=text)
        _common(sub)
        sub.add_argument("id")
