"""``openseats reservations``, ``privacy`` and ``outbox``: the reservation desk in a shell.

The same services and rules as ``/admin/api/v1``
(:mod:`node.web.admin_reservations`):

- ``reservations list`` shows, per own session, the partners' reservations
  (seats per partner, caps, the waitlist in order, pending approvals) and
  our employees' reservations at partners (``--outgoing``).
- ``reservations approve|decline|cancel UUID`` decide as the host;
  ``reservations cap SESSION NODE N`` (or ``--remove``) limits one partner.
- ``privacy export REF`` and ``privacy delete REF --yes`` cover everything
  held for a person's ref, on both sides.
- ``outbox list|retry|discard`` handle dead letters.

Every argument is checked before anything changes.  Notices to partners
are queued in the outbox in the same transaction as the change; a running
``openseats serve`` delivers them within seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from node.cli_commands import COMMANDS, CliError, Command, _with_node, command
from node.db import outbox as outbox_repo
from node.db import sessions as session_repo
from node.db.outbox import OutboxRow
from node.db.sessions import SessionRow
from node.db.tables import reservations_in, sessions
from node.federation.outbox import State
from node.reservations.host import UNKNOWN, IncomingRow, ReservationError
from node.reservations.requester import OutgoingRow
from node.runtime import NodeServices
from node.web.portal_reservations import STATES
from protocol.models import format_timestamp

MAX_CAP = 10_000  # as CapInput in the admin API
REF = re.compile(r"^[A-Za-z0-9._~:-]{1,128}$")  # protocol AttendeeRef
ENDED = ("rejected", "cancelled")
SECTIONS = (
    ("Plätze / seats", ("confirmed", "held")),
    ("Warteliste / waitlist (in Reihenfolge / in order)", ("waitlisted",)),
    ("Offene Freigaben / pending approvals", ("pending",)),
    ("Beendet / ended", ENDED),
)


async def _run(args: argparse.Namespace, work: Callable[[NodeServices], Awaitable[int]]) -> int:
    try:
        return await _with_node(args, work)
    except ReservationError as exc:
        raise CliError(f"{exc.code}: {exc.message}") from None


def _ts(value: datetime | None) -> str:
    return format_timestamp(value.replace(microsecond=0)) if value is not None else "–"


def _state(row: IncomingRow | OutgoingRow) -> str:
    """A state with what goes with it: ``waitlisted #2``, ``rejected (full)``."""
    if row.state == "waitlisted" and row.position is not None:
        return f"waitlisted #{row.position}"
    if row.state == "rejected" and row.reason:
        return f"rejected ({row.reason})"
    if row.state == "cancelled" and row.cancelled_by:
        return f"cancelled ({row.cancelled_by})"
    if row.state == "held" and row.hold_expires_at is not None:
        return f"held ({_ts(row.hold_expires_at)})"
    return row.state


def _person(ref: str, name: str, email: str | None) -> str:
    return f"{ref}\t{name}" + (f" <{email}>" if email else "")


def _incoming(row: IncomingRow) -> str:
    person = _person(row.attendee_ref, row.attendee_name, row.attendee_email)
    return f"{row.id}\t{_state(row)}\t{row.requester}\t{row.seats}\t{person}"


def _outgoing(row: OutgoingRow) -> str:
    person = _person(row.attendee_ref, row.attendee_name, row.attendee_email)
    line = (
        f"{row.id}\t{_state(row)}\t{row.entry_id}\t{_ts(row.start_at)}\t{row.seats}\t"
        f"{person}\t{row.title}"
    )
    if row.cancel_requested and row.state not in ENDED:
        line += "\t(Stornierung angefragt / cancel requested)"
    if row.delivery_error:
        line += f"\n    Zustellfehler / delivery error: {row.delivery_error}"
    return line


def _matches(row: IncomingRow, args: argparse.Namespace) -> bool:
    return args.ref in (None, row.attendee_ref) and args.state in (None, row.state)


# --- reservations list ---------------------------------------------------------------


@command("reservations", "list")
async def reservations_list(args: argparse.Namespace) -> int:
    if args.state is not None and args.state not in STATES:
        raise CliError(f"--state: {', '.join(sorted(STATES))}")
    if args.outgoing and (args.session or args.pending):
        raise CliError(
            "--outgoing zeigt unsere Reservierungen bei Partnern, ohne --session/--pending / "
            "--outgoing cannot be combined with --session or --pending"
        )
    if args.pending and args.state not in (None, "pending"):
        raise CliError("--pending und/and --state schließen sich aus / exclude each other")

    async def work(node: NodeServices) -> int:
        if args.pending:
            await _pending(node, args)
        elif args.session:
            session = await node.sessions.get(args.session)
            await _session_view(node, session, args, always=True)
        elif args.outgoing:
            await _outgoing_view(node, args)
        else:
            print("== Eingehend: Partner in unseren Sessions / incoming: partners in our sessions")
            shown = 0
            for session in await _sessions_with_reservations(node):
                shown += await _session_view(node, session, args, always=False)
            if not shown:
                print("Keine Reservierungen / no reservations")
            print()
            print("== Ausgehend: unsere Beschäftigten bei Partnern / outgoing: our employees")
            await _outgoing_view(node, args)
        return 0

    return await _run(args, work)


async def _sessions_with_reservations(node: NodeServices) -> list[SessionRow]:
    async with node.db.read() as conn:
        ids = (
            await conn.execute(
                select(sessions.c.id)
                .where(sessions.c.id.in_(select(reservations_in.c.session_id)))
                .order_by(sessions.c.start_at, sessions.c.id)
            )
        ).scalars()
        found = [await session_repo.get(conn, session_id) for session_id in ids]
    return [row for row in found if row is not None]


async def _session_view(
    node: NodeServices, session: SessionRow, args: argparse.Namespace, *, always: bool
) -> int:
    """Print one session's reservations; return 1 if anything was printed."""
    rows = await node.host.for_session(session.id)
    shown = [row for row in rows if _matches(row, args)]
    if not shown and not always:
        return 0
    status = "" if session.status == "scheduled" else f" [{session.status}]"
    print(f"{session.id}\t{_ts(session.start_at)}\t{session.title}{status}")
    mode = "Freigabe/approval" if session.registration_mode == "approval" else "auto"
    waitlist = "Warteliste/waitlist" if session.waitlist else "ohne Warteliste/no waitlist"
    print(
        f"  Partnerplätze / partner seats: {session.seats_taken} von/of {session.open_seats} "
        f"vergeben/taken ({mode}, {waitlist})"
    )
    for node_id, cap in sorted((await node.host.caps(session.id)).items()):
        print(f"  Obergrenze / cap {node_id}: {cap['taken']} von/of {cap['cap']}")
    partners: dict[str, Counter[str]] = {}
    for row in rows:
        partners.setdefault(row.requester, Counter())[row.state] += row.seats
    for node_id, counts in sorted(partners.items()):
        seats = ", ".join(f"{state} {n}" for state, n in sorted(counts.items()))
        print(f"  Partner {node_id} (Plätze/seats): {seats}")
    for title, states in SECTIONS:
        listed = [row for row in shown if row.state in states]
        if listed:
            print(f"  {title}:")
            for row in listed:
                print(f"    {_incoming(row)}")
    if not shown:
        print(
            "  Keine passenden Reservierungen / no matching reservations"
            if rows
            else "  Keine Reservierungen / no reservations"
        )
    return 1


async def _pending(node: NodeServices, args: argparse.Namespace) -> None:
    if args.session:
        await node.sessions.get(args.session)  # not_found for a typo
    rows = [
        row
        for row in await node.host.pending()
        if _matches(row, args) and (args.session is None or row.session_id == args.session)
    ]
    if not rows:
        print("Keine offenen Freigaben / no pending approvals")
        return
    for row in rows:
        person = _person(row.attendee_ref, row.attendee_name, row.attendee_email)
        print(
            f"{row.id}\t{row.session_id}\t{row.requester}\t{row.seats}\t{person}\t"
            f"{_ts(row.created_at)}"
        )
    print("Freigeben / approve: openseats reservations approve|decline UUID")


async def _outgoing_view(node: NodeServices, args: argparse.Namespace) -> None:
    rows = await node.requests.find(ref=args.ref, state=args.state, limit=100_000)
    if not rows:
        print("Keine Reservierungen / no reservations")
    for row in rows:
        print(_outgoing(row))


# --- approve, decline, cancel, cap ---------------------------------------------------------


def _host_action(action: str, done: str) -> Command:
    async def handler(args: argparse.Namespace) -> int:
        async def work(node: NodeServices) -> int:
            before = await node.host.get(args.uuid)
            if before is None:
                raise UNKNOWN
            if action == "cancel":
                if before.state in ENDED:
                    print(f"{before.id}: schon beendet / already ended: {_state(before)}")
                    return 0
                row = await node.host.cancel_by_host(before.id)
            else:
                row = await node.host.decide(before.id, approve=action == "approve")
            print(f"{row.id}: {done} → {_state(row)}")
            return 0

        return await _run(args, work)

    return handler


for _action, _done in (
    ("approve", "freigegeben / approved"),
    ("decline", "abgelehnt / declined"),
    ("cancel", "storniert / cancelled"),
):
    COMMANDS[("reservations", _action)] = _host_action(_action, _done)


@command("reservations", "cap")
async def reservations_cap(args: argparse.Namespace) -> int:
    if args.remove == (args.n is not None):
        raise CliError("Entweder N oder --remove angeben / give either N or --remove")
    value = None
    if args.n is not None:
        if not (args.n.isascii() and args.n.isdigit()) or int(args.n) > MAX_CAP:
            raise CliError(f"N: ganze Zahl 0..{MAX_CAP} / whole number 0..{MAX_CAP}: {args.n}")
        value = int(args.n)

    async def work(node: NodeServices) -> int:
        session = await node.sessions.get(args.session_id)
        if value is None:
            if args.node_id not in await node.host.caps(session.id):
                raise CliError(f"Keine Obergrenze für / no cap for {args.node_id} in {session.id}")
            await node.host.set_cap(session.id, args.node_id, None)
            print(f"{session.id}: Obergrenze entfernt / cap removed for {args.node_id}")
            return 0
        await node.peering.get(args.node_id)  # not_found for an unknown partner
        await node.host.set_cap(session.id, args.node_id, value)
        cap = (await node.host.caps(session.id))[args.node_id]
        print(
            f"{session.id}: Obergrenze / cap {args.node_id} = {cap['cap']} "
            f"({cap['taken']} vergeben/taken)"
        )
        return 0

    return await _run(args, work)


# --- privacy ------------------------------------------------------------------------------


def _ref(raw: str) -> str:
    if not REF.match(raw):
        raise CliError(
            f"Ungültige ref / invalid ref {raw!r}: 1–128 Zeichen/characters A-Z a-z 0-9 . _ ~ : -"
        )
    return raw


@command("privacy", "export")
async def privacy_export(args: argparse.Namespace) -> int:
    ref = _ref(args.ref)
    output = Path(args.output) if args.output else None
    if output is not None and output.exists():
        raise CliError(f"{output} gibt es schon / already exists")

    async def work(node: NodeServices) -> int:
        data = {
            "ref": ref,
            "exported_at": format_timestamp(node.clock.now()),
            "incoming": await node.host.export(ref),
            "outgoing": await node.requests.export(ref),
        }
        text = json.dumps(data, ensure_ascii=False, indent=2) + "\n"
        if output is None:
            print(text, end="")
            return 0
        try:  # personal data: readable by the owner only, never overwrite
            fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                file.write(text)
        except OSError as exc:
            raise CliError(f"{output}: {exc.strerror}") from None
        print(
            f"{ref}: {len(data['incoming'])} eingehende/incoming, {len(data['outgoing'])} "
            f"ausgehende/outgoing Reservierungen → {output}"
        )
        return 0

    return await _run(args, work)


@command("privacy", "delete")
async def privacy_delete(args: argparse.Namespace) -> int:
    ref = _ref(args.ref)

    async def work(node: NodeServices) -> int:
        if not args.yes:
            incoming = len(await node.host.export(ref))
            outgoing = len(await node.requests.export(ref))
            raise CliError(
                f"nichts gelöscht; für {ref} gibt es {incoming} eingehende und {outgoing} "
                f"ausgehende Reservierungen, zum Löschen --yes angeben / nothing deleted; "
                f"{incoming} incoming and {outgoing} outgoing reservations, add --yes to delete"
            )
        incoming = await node.host.erase(ref)
        outgoing = await node.requests.erase(ref)
        print(
            f"{ref}: gelöscht / deleted: {incoming} eingehende/incoming, "
            f"{outgoing} ausgehende/outgoing Reservierungen"
        )
        return 0

    return await _run(args, work)


# --- outbox (dead letters) ------------------------------------------------------------------


def _message(message: OutboxRow) -> str:
    return (
        f"{message.id}\t{message.peer_node_id}\t{message.kind}\t"
        f"{message.attempts} Versuche/attempts\t{_ts(message.updated_at)}\t"
        f"{message.last_error or '–'}"
    )


async def _dead_letter(node: NodeServices, raw: str) -> OutboxRow:
    async with node.db.read() as conn:
        message = await outbox_repo.get(conn, int(raw)) if raw.isascii() and raw.isdigit() else None
    if message is None or message.state != State.DEAD:
        raise CliError(f"Keine solche unzustellbare Nachricht / no such dead letter: {raw}")
    return message


@command("outbox", "list")
async def outbox_list(args: argparse.Namespace) -> int:
    async def work(node: NodeServices) -> int:
        async with node.db.read() as conn:
            messages = await outbox_repo.list_messages(conn, state=State.DEAD)
        if not messages:
            print("Keine unzustellbaren Nachrichten / no dead letters")
        for message in messages:
            print(_message(message))
        return 0

    return await _run(args, work)


@command("outbox", "retry")
async def outbox_retry(args: argparse.Namespace) -> int:
    async def work(node: NodeServices) -> int:
        message = await _dead_letter(node, args.id)
        await node.deliverer.handle_dead(message)
        await node.deliverer.deliver_peer(message.peer_node_id)
        async with node.db.read() as conn:
            now = await outbox_repo.get(conn, message.id)
        assert now is not None
        if now.state == State.SENT:
            print(f"{now.id}: zugestellt / delivered")
        elif now.state == State.PENDING:
            print(
                f"{now.id}: wartet, nächster Versuch / queued, next attempt "
                f"{_ts(now.next_attempt_at)}: {now.last_error or '–'}"
            )
        else:
            print(f"{now.id}: wieder unzustellbar / dead again: {now.last_error or '–'}")
        return 0

    return await _run(args, work)


@command("outbox", "discard")
async def outbox_discard(args: argparse.Namespace) -> int:
    async def work(node: NodeServices) -> int:
        message = await _dead_letter(node, args.id)
        async with node.db.write() as conn:
            await outbox_repo.discard(conn, message.id)
        print(f"{message.id}: verworfen / discarded ({message.kind} → {message.peer_node_id})")
        return 0

    return await _run(args, work)
