"""``openseats reservations|privacy|outbox``, run as processes against a prepared node.

To stay fast, the node is created and filled in-process (``openseats init``
through :func:`node.cli.main`, reservations through the node's own
services); the commands under test then run as real processes, as an admin
runs them.  The matrix of bad arguments runs through :func:`node.cli.main`
in-process, with two of them also as processes.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from node.cli import main
from node.db import outbox as outbox_repo
from node.db import peers as peer_repo
from node.db.tables import outbox, partner_caps, reservations_in, reservations_out, sessions
from node.publishing.input import OpeningInput, SessionInput
from node.runtime import NodeServices, open_node
from node.settings import load_settings
from protocol.models import ReservationRequest, format_timestamp
from tests.node.conftest import free_port
from tests.node.test_cli import run

HOST = "lex.cli.test"
PARTNER = "datev.cli.test"
OTHER = "kiwi.cli.test"


@dataclass
class Desk:
    """A node with reservations on both sides and two dead letters."""

    data: Path
    auto: str  # 1 partner seat, waitlist
    approval: str  # 2 partner seats, approval needed
    confirmed: str  # emp-1 in auto
    waiting: list[str]  # emp-2, emp-3 in auto, in order
    pending: list[str]  # emp-1, emp-4 in approval
    outgoing: list[str]  # emp-1 and emp-7 at kiwi
    dead: list[int]

    def cli(self, *args: str, check: bool = True) -> Any:
        return run(*args, "--data", str(self.data), check=check)

    def inside(self, *args: str) -> int:
        return main([*args, "--data", str(self.data)])

    def services(self, work: Any) -> Any:
        async def go() -> Any:
            async with open_node(load_settings(self.data)) as node:
                return await work(node)

        return asyncio.run(go())

    def snapshot(self) -> str:
        """A digest of every table the commands may change."""

        async def work(node: NodeServices) -> str:
            digest = hashlib.sha256()
            async with node.db.read() as conn:
                for table in (reservations_in, reservations_out, partner_caps, outbox, sessions):
                    for row in await conn.execute(select(table).order_by(*table.primary_key)):
                        digest.update(repr(tuple(row)).encode())
            return digest.hexdigest()

        result: str = self.services(work)
        return result


async def _open_session(
    node: NodeServices, title: str, seats: int, *, approval: bool, start: str
) -> str:
    data = SessionInput.model_validate(
        {
            "title": title,
            "format": "workshop",
            "languages": ["de"],
            "start": start,
            "timezone": "Europe/Berlin",
            "duration_minutes": 90,
            "host_name": "Jürgen Weiß",
            "join_url": "https://meet.example.org/lernraum",
        },
        context={"now": node.clock.now()},
    )
    row = await node.sessions.create(data)
    mode = "approval" if approval else "auto"
    await node.sessions.open(row.id, OpeningInput(seats=seats, registration_mode=mode))
    return row.id


async def _reserve(node: NodeServices, session_id: str, ref: str, name: str) -> str:
    request = ReservationRequest.model_validate(
        {
            "type": "reservation_request",
            "id": str(uuid.uuid4()),
            "requester": PARTNER,
            "session": {"origin": HOST, "id": session_id},
            "attendee": {"ref": ref, "display_name": name},
            "seats": 1,
            "hold": False,
            "issued_at": format_timestamp(node.clock.now().replace(microsecond=0)),
        }
    )
    answer, created = await node.host.reserve(request, PARTNER)
    assert created
    return str(answer["id"])


async def _fill(node: NodeServices, data: Path) -> Desk:
    now = node.clock.now().replace(microsecond=0)
    nowhere = f"http://127.0.0.1:{free_port()}/protocol/v1"  # nothing listens
    async with node.db.write() as conn:
        await peer_repo.insert(
            conn,
            node_id=PARTNER,
            base_url=nowhere,
            display_name="DATEV",
            state="active",
            fingerprint="AAAA-BBBB-CCCC-DDDD-EEEE-FFFF-GGGG-HHHH",
            descriptor=json.dumps(
                {"endpoints": {"inbox": f"{nowhere}/inbox", "reservations": f"{nowhere}/r"}}
            ),
            descriptor_issued_at=now,
            now=now,
        )
    auto = await _open_session(
        node, "KI-Prompting für Einsteiger", 1, approval=False, start="2030-03-04T10:00"
    )
    approval = await _open_session(
        node, "Werkstatt: Barrierefreie PDFs", 2, approval=True, start="2030-03-05T14:00"
    )
    confirmed = await _reserve(node, auto, "emp-1", "Erika Muster")
    waiting = [await _reserve(node, auto, f"emp-{n}", f"Person {n}") for n in (2, 3)]
    pending = [
        await _reserve(node, approval, "emp-1", "Erika Muster"),
        await _reserve(node, approval, "emp-4", "Person 4"),
    ]
    outgoing = [str(uuid.uuid4()), str(uuid.uuid4())]
    async with node.db.write() as conn:
        for reservation_id, ref, state in zip(
            outgoing, ("emp-1", "emp-7"), ("confirmed", "waitlisted"), strict=True
        ):
            await conn.execute(
                reservations_out.insert().values(
                    id=reservation_id,
                    host=OTHER,
                    session_id="2030-kiwi0001",
                    attendee_ref=ref,
                    attendee_name="Erika Muster" if ref == "emp-1" else "Person 7",
                    seats=1,
                    hold=False,
                    state=state,
                    version=1,
                    position=2 if state == "waitlisted" else None,
                    join_url="https://meet.kiwi.example/raum" if state == "confirmed" else None,
                    cancel_requested=False,
                    request_body="{}",
                    title="Verwaltung digital",
                    org_name="KIWI",
                    start_at=now + timedelta(days=20),
                    end_at=now + timedelta(days=20, hours=1),
                    timezone="Europe/Berlin",
                    ics_sequence=1,
                    created_at=now,
                    updated_at=now,
                )
            )
        dead = []
        for kind in ("reservation_updated", "feed_changed"):
            message_id = await outbox_repo.enqueue(
                conn,
                peer_node_id=PARTNER,
                kind=kind,
                method="POST",
                url=f"{nowhere}/inbox",
                body="{}",
                now=now,
            )
            found = await conn.execute(select(outbox).where(outbox.c.id == message_id))
            queued = outbox_repo.OutboxRow(**found.one()._mapping)
            await outbox_repo.transition(
                conn, queued, state="dead", now=now, error="HTTP 400 schema_violation"
            )
            dead.append(message_id)
    return Desk(data, auto, approval, confirmed, waiting, pending, outgoing, dead)


@pytest.fixture
def desk(tmp_path: Path) -> Desk:
    data = tmp_path / "lex"
    url = f"http://127.0.0.1:{free_port()}"
    assert main(["init", "--data", str(data), "--node-id", HOST, "--url", url]) == 0

    async def fill() -> Desk:
        async with open_node(load_settings(data)) as node:
            return await _fill(node, data)

    return asyncio.run(fill())


async def _states(node: NodeServices) -> dict[str, str]:
    async with node.db.read() as conn:
        rows = await conn.execute(select(reservations_in.c.id, reservations_in.c.state))
        return {row.id: row.state for row in rows}


# --- happy paths ----------------------------------------------------------------------


def test_list_shows_sessions_waitlist_pending_and_outgoing(desk: Desk) -> None:
    everything = desk.cli("reservations", "list").stdout
    assert "Eingehend" in everything
    assert "Ausgehend" in everything
    assert everything.index(desk.auto) < everything.index(desk.approval)
    assert "Partnerplätze / partner seats: 1 von/of 1" in everything
    assert f"Partner {PARTNER} (Plätze/seats): confirmed 1, waitlisted 2" in everything
    assert f"{desk.waiting[0]}\twaitlisted #1\t{PARTNER}\t1\temp-2\tPerson 2" in everything
    assert f"{desk.waiting[1]}\twaitlisted #2" in everything
    assert f"{desk.outgoing[0]}\tconfirmed\t2030-kiwi0001@{OTHER}" in everything
    assert f"{desk.outgoing[1]}\twaitlisted #2" in everything

    one = desk.cli("reservations", "list", "--session", desk.auto).stdout
    assert desk.approval not in one
    assert desk.outgoing[0] not in one
    seated, waitlist = one.split("Plätze / seats:")[1].split("Warteliste / waitlist")
    assert f"{desk.confirmed}\tconfirmed\t{PARTNER}\t1\temp-1\tErika Muster" in seated
    assert waitlist.index(desk.waiting[0]) < waitlist.index(desk.waiting[1])
    assert desk.confirmed not in waitlist

    pending = desk.cli("reservations", "list", "--pending").stdout
    assert [line.split("\t")[0] for line in pending.splitlines()[:2]] == desk.pending
    assert desk.confirmed not in pending

    mine = desk.cli("reservations", "list", "--outgoing", "--ref", "emp-1").stdout
    assert desk.outgoing[0] in mine
    assert desk.outgoing[1] not in mine
    assert desk.confirmed not in mine  # incoming rows are not shown


def test_approve_decline_and_cancel_as_host(desk: Desk) -> None:
    out = desk.cli("reservations", "approve", desk.pending[0]).stdout
    assert out.strip() == f"{desk.pending[0]}: freigegeben / approved → confirmed"
    out = desk.cli("reservations", "decline", desk.pending[1]).stdout
    assert "rejected (declined_by_host)" in out
    out = desk.cli("reservations", "cancel", desk.confirmed).stdout
    assert "cancelled (host)" in out

    async def check(node: NodeServices) -> list[str]:
        states = await _states(node)
        assert states[desk.pending[0]] == "confirmed"
        assert states[desk.pending[1]] == "rejected"
        assert states[desk.confirmed] == "cancelled"
        assert states[desk.waiting[0]] == "confirmed"  # promoted from the waitlist
        assert states[desk.waiting[1]] == "waitlisted"
        async with node.db.read() as conn:
            queued = await outbox_repo.list_messages(conn, state="pending")
        return [message.kind for message in queued]

    # Every change is a notice to the partner, waiting in the outbox for serve.
    assert desk.services(check).count("reservation_updated") == 4


def test_cap_set_and_remove(desk: Desk, capsys: pytest.CaptureFixture[str]) -> None:
    out = desk.cli("reservations", "cap", desk.approval, PARTNER, "1").stdout
    assert out.strip() == f"{desk.approval}: Obergrenze / cap {PARTNER} = 1 (0 vergeben/taken)"
    capsys.readouterr()
    assert desk.inside("reservations", "list", "--session", desk.approval) == 0
    assert f"Obergrenze / cap {PARTNER}: 0 von/of 1" in capsys.readouterr().out

    async def caps(node: NodeServices) -> dict[str, dict[str, int]]:
        return await node.host.caps(desk.approval)

    assert desk.services(caps) == {PARTNER: {"cap": 1, "taken": 0}}
    out = desk.cli("reservations", "cap", desk.approval, PARTNER, "--remove").stdout
    assert "entfernt / cap removed" in out
    assert desk.services(caps) == {}


def test_privacy_export_and_delete(desk: Desk, tmp_path: Path) -> None:
    exported = json.loads(desk.cli("privacy", "export", "emp-1").stdout)
    assert exported["ref"] == "emp-1"
    assert {row["id"] for row in exported["incoming"]} == {desk.confirmed, desk.pending[0]}
    assert {row["attendee"]["display_name"] for row in exported["incoming"]} == {"Erika Muster"}
    assert [row["id"] for row in exported["outgoing"]] == [desk.outgoing[0]]

    target = tmp_path / "auskunft-emp-1.json"
    out = desk.cli("privacy", "export", "emp-1", "--output", str(target)).stdout
    assert "2 eingehende/incoming, 1 ausgehende/outgoing" in out
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    saved = json.loads(target.read_text(encoding="utf-8"))
    assert (saved["incoming"], saved["outgoing"]) == (exported["incoming"], exported["outgoing"])

    before = desk.snapshot()
    refused = desk.cli("privacy", "delete", "emp-1", check=False)
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1
    assert "--yes" in refused.stderr
    assert "2 incoming and 1 outgoing" in refused.stderr
    assert desk.snapshot() == before

    out = desk.cli("privacy", "delete", "emp-1", "--yes").stdout
    assert out.strip() == (
        "emp-1: gelöscht / deleted: 2 eingehende/incoming, 1 ausgehende/outgoing Reservierungen"
    )

    async def left(node: NodeServices) -> tuple[Any, Any, dict[str, str]]:
        return (
            await node.host.export("emp-1"),
            await node.requests.export("emp-1"),
            await _states(node),
        )

    incoming, outgoing, states = desk.services(left)
    assert (incoming, outgoing) == ([], [])
    assert desk.confirmed not in states
    assert states[desk.waiting[0]] == "confirmed"  # the freed seat went to the waitlist
    assert states[desk.pending[1]] == "pending"  # other people are untouched


def test_outbox_list_retry_and_discard(desk: Desk, capsys: pytest.CaptureFixture[str]) -> None:
    listed = desk.cli("outbox", "list").stdout.splitlines()
    assert [line.split("\t")[:3] for line in listed] == [
        [str(desk.dead[0]), PARTNER, "reservation_updated"],
        [str(desk.dead[1]), PARTNER, "feed_changed"],
    ]
    assert "HTTP 400 schema_violation" in listed[0]

    # The partner is unreachable: the retry is queued again with backoff.
    out = desk.cli("outbox", "retry", str(desk.dead[0])).stdout
    assert out.startswith(f"{desk.dead[0]}: wartet, nächster Versuch / queued, next attempt")
    out = desk.cli("outbox", "discard", str(desk.dead[1])).stdout
    assert "verworfen / discarded (feed_changed" in out
    capsys.readouterr()
    assert desk.inside("outbox", "list") == 0
    assert capsys.readouterr().out == "Keine unzustellbaren Nachrichten / no dead letters\n"

    async def states(node: NodeServices) -> dict[int, str]:
        async with node.db.read() as conn:
            return {row.id: row.state for row in await outbox_repo.list_messages(conn)}

    left = desk.services(states)
    assert (left.get(desk.dead[0]), left.get(desk.dead[1])) == ("pending", None)


# --- bad arguments --------------------------------------------------------------------


BAD = [
    (["reservations", "approve", "00000000-0000-4000-8000-000000000000"], "unknown_reservation"),
    (["reservations", "decline", "nope"], "unknown_reservation"),
    (["reservations", "cancel", "nope"], "unknown_reservation"),
    (["reservations", "approve", "{confirmed}"], "not_pending"),
    (["reservations", "cap", "{auto}", PARTNER], "N oder --remove"),
    (["reservations", "cap", "{auto}", PARTNER, "1", "--remove"], "N oder --remove"),
    (["reservations", "cap", "{auto}", PARTNER, "-1"], "N: ganze Zahl 0..10000"),
    (["reservations", "cap", "{auto}", PARTNER, "zwei"], "N: ganze Zahl"),
    (["reservations", "cap", "{auto}", PARTNER, "10001"], "N: ganze Zahl"),
    (["reservations", "cap", "{auto}", PARTNER, "0"], "cap_below_taken"),
    (["reservations", "cap", "2030-nope", PARTNER, "1"], "not_found"),
    (["reservations", "cap", "{auto}", "nobody.example.org", "1"], "unknown peer"),
    (["reservations", "cap", "{auto}", PARTNER, "--remove"], "no cap for"),
    (["reservations", "list", "--session", "2030-nope"], "not_found"),
    (["reservations", "list", "--pending", "--session", "2030-nope"], "not_found"),
    (["reservations", "list", "--state", "booked"], "--state: cancelled, confirmed"),
    (["reservations", "list", "--outgoing", "--pending"], "--outgoing"),
    (["reservations", "list", "--pending", "--state", "confirmed"], "--pending"),
    (["privacy", "export", "erika@example.org"], "invalid ref"),
    (["privacy", "delete", "emp-1"], "add --yes to delete"),
    (["privacy", "delete", "a b", "--yes"], "invalid ref"),
    (["outbox", "retry", "999"], "no such dead letter: 999"),
    (["outbox", "retry", "abc"], "no such dead letter: abc"),
    (["outbox", "discard", "-1"], "no such dead letter"),
]


def test_bad_arguments_change_nothing(desk: Desk, capsys: pytest.CaptureFixture[str]) -> None:
    existing = desk.data / "schon-da.json"
    existing.write_text("{}", encoding="utf-8")
    cases = [*BAD, (["privacy", "export", "emp-1", "--output", str(existing)], "already exists")]
    before = desk.snapshot()
    for args, message in cases:
        filled = [a.format(auto=desk.auto, confirmed=desk.confirmed) for a in args]
        capsys.readouterr()
        assert desk.inside(*filled) == 1, filled
        captured = capsys.readouterr()
        assert captured.out == "", filled
        assert captured.err.startswith("Fehler / error: "), filled
        assert captured.err.count("\n") == 1, (filled, captured.err)
        assert message in captured.err, (filled, captured.err)
    assert desk.snapshot() == before
    assert existing.read_text(encoding="utf-8") == "{}"


def test_bad_arguments_as_a_process(desk: Desk) -> None:
    result = desk.cli("reservations", "approve", "nope", check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Fehler / error: unknown_reservation: Keine solche Reservierung / no such reservation"
    ]
    usage = desk.cli("reservations", "cap", desk.auto, check=False)
    assert usage.returncode == 2
    assert "NODE_ID" in usage.stderr
    assert "Traceback" not in usage.stderr
