"""Reservations between real nodes under random interleavings (hypothesis).

One host and three partners run as full nodes on loopback, on SQLite and on
PostgreSQL.  A state machine books through the partners' portal APIs,
retries (the same ``Idempotency-Key``; the stored request resent as a
signed ``PUT``, as after a crash between sending and recording), cancels
(the portal, and the host admin), confirms holds, lets holds expire,
approves and declines, changes the quota and per-partner caps, cancels the
session, and delivers the outboxes one message or one peer at a time, so
requests, answers and notices interleave.  After every step it checks, at the host:

* seats taken equal the seated rows and never exceed the partner quota;
* seats per partner never exceed that partner's cap;
* the waitlist is strictly FIFO (SPEC.md §9.6): from one look at the host
  to the next (after every single decision), nobody got a seat while
  somebody who came earlier waited all along and is first in line or
  behind it without being held back by its own partner's cap; and the
  first in line waits only while its seats do not fit;
* retries never create a second reservation or seat, and no attendee of a
  partner holds two active reservations;
* every reservation is the one a portal asked for, and every one a portal
  got a 202 for is kept by its requester.

Once everything is delivered (a rule, and at the end of each example) each
reservation exists at the host and its requester, and both tell the same
state (``session_cancelled`` carries no versions: then state and
``cancelled_by`` agree).

Starting nodes is slow, so they start once per engine; each example gets
a new session on the host.  Hypothesis drives the machine from a worker
thread and each step runs on the test's event loop, where the nodes live.
Nothing runs in the background on its own: the scheduler is off, and the
hooks that would wake deliveries after a commit are unset, so only the
machine's delivery steps move messages.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections import Counter
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select

from node.clock import ManualClock
from node.db.tables import outbox, partner_caps, reservations_in, reservations_out, sessions
from node.reservations.ledger import ACTIVE, SEATED
from tests.node.conftest import NodeFactory, RunningNode, peer, sync
from tests.node.reservations.helpers import open_session, portal_token

PARTNERS = ("datev", "kiwi", "bosch")
REFS = ("a", "b", "c", "d", "e")
STEP_TIMEOUT = 120.0
RATE_LIMIT = 1_000_000
EXAMPLES = {"sqlite": 16, "postgresql": 12}
STEPS = 50
PARTNER = st.integers(0, len(PARTNERS) - 1)
REF = st.sampled_from(REFS)


@dataclass
class Federation:
    """The running nodes, shared by every example of one engine."""

    loop: asyncio.AbstractEventLoop
    clock: ManualClock
    host: RunningNode
    partners: list[RunningNode]
    tokens: list[str]

    @property
    def nodes(self) -> list[RunningNode]:
        return [self.host, *self.partners]


@dataclass(frozen=True)
class Asked:
    """A reservation a portal got a 202 for."""

    id: str
    partner: int
    key: str
    body: dict[str, Any]


class FederationMachine(RuleBasedStateMachine):
    fed: ClassVar[Federation]
    reservations = Bundle("reservations")

    def __init__(self) -> None:
        super().__init__()
        self.sid = ""
        self.mode = "auto"
        self.waitlist = True
        self.asked: dict[str, Asked] = {}
        self.last_seen: dict[str, str] = {}  # reservation id -> state at the last look
        self.session_cancelled = False

    # --- running steps on the nodes' loop ------------------------------------------------

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        async def step() -> Any:
            result = await coro
            for node in self.fed.nodes:  # e.g. a pull started by a feed notice
                await node.settle()
            return result

        return asyncio.run_coroutine_threadsafe(step(), self.fed.loop).result(STEP_TIMEOUT)

    @property
    def host(self) -> RunningNode:
        return self.fed.host

    async def portal(
        self,
        partner: int,
        method: str,
        path: str,
        body: Any = None,
        key: str | None = None,
    ) -> tuple[int, Any, dict[str, str]]:
        node = self.fed.partners[partner]
        headers = {"Authorization": f"Bearer {self.fed.tokens[partner]}"}
        if key is not None:
            headers["Idempotency-Key"] = key
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        async with node.http.request(
            method, f"{node.url}/api/v1{path}", data=data, headers=headers
        ) as response:
            return response.status, await response.json(), dict(response.headers)

    # --- the session of this example -------------------------------------------------------

    @initialize(
        seats=st.integers(1, 3),
        mode=st.sampled_from(["auto", "auto", "approval"]),
        waitlist=st.sampled_from([True, True, False]),
        caps=st.lists(st.sampled_from([None, None, 1, 2]), min_size=3, max_size=3),
    )
    def new_session(self, seats: int, mode: str, waitlist: bool, caps: list[int | None]) -> None:
        self.mode = mode
        self.waitlist = waitlist

        async def go() -> str:
            sid = await open_session(
                self.host,
                self.fed.clock,
                seats=seats,
                registration_mode=self.mode,
                waitlist=waitlist,
            )
            for partner, cap in zip(self.fed.partners, caps, strict=True):
                if cap is not None:
                    status, body = await self.host.admin(
                        "PUT", f"/sessions/{sid}/caps/{partner.node_id}", {"cap": cap}
                    )
                    assert status == 200, body
            await drain(self.fed.nodes)  # the partners' catalogues know the session
            return sid

        self.sid = self.run(go())

    # --- the portals ---------------------------------------------------------------------

    # Three rules book, so that about a fifth of all steps do; with
    # ``send``, the partner's outbox goes to the host at once.
    @rule(target=reservations, partner=PARTNER, ref=REF, send=st.booleans())
    def reserve(self, partner: int, ref: str, send: bool) -> str:
        return self.book(partner, ref, {}, send)

    @rule(target=reservations, partner=PARTNER, ref=REF, send=st.booleans())
    def reserve_with_hold(self, partner: int, ref: str, send: bool) -> str:
        return self.book(partner, ref, {"hold": True}, send)

    @rule(target=reservations, partner=PARTNER, ref=REF, hold=st.booleans(), send=st.booleans())
    def reserve_two_seats(self, partner: int, ref: str, hold: bool, send: bool) -> str:
        return self.book(partner, ref, {"seats": 2, "hold": hold}, send)

    def book(self, partner: int, ref: str, extra: dict[str, Any], send: bool) -> str:
        body = {"attendee": {"ref": ref, "display_name": f"Person {ref}"}, **extra}
        key = str(uuid.uuid4())

        async def go() -> tuple[int, Any, Any]:
            found = await self.portal(
                partner,
                "POST",
                f"/sessions/{self.sid}@{self.host.node_id}/reservations",
                body,
                key,
            )
            if send:
                await self.deliver_from(self.fed.partners[partner], drain=True)
            return found

        status, answer, _ = self.run(go())
        assert status == 202, answer
        assert answer["state"] == "requested"
        assert answer["id"] not in self.asked
        self.asked[answer["id"]] = Asked(answer["id"], partner, key, body)
        return str(answer["id"])

    @rule(reservation=reservations)
    def retry_with_key(self, reservation: str) -> None:
        """The portal repeats its POST: the same reservation, nothing queued again."""
        asked = self.asked[reservation]
        partner = self.fed.partners[asked.partner]

        async def go() -> tuple[int, Any, dict[str, str], int, int]:
            before = await _queued(partner)
            found = await self.portal(
                asked.partner,
                "POST",
                f"/sessions/{self.sid}@{self.host.node_id}/reservations",
                asked.body,
                asked.key,
            )
            return (*found, before, await _queued(partner))

        status, answer, headers, before, after = self.run(go())
        assert status == 202, answer
        assert answer["id"] == reservation
        assert headers.get("Idempotent-Replayed") == "true"
        assert after == before

    @rule(reservation=reservations)
    def resend_put(self, reservation: str) -> None:
        """The partner crashed after sending its PUT: the same bytes go again.

        New to the host (the outbox has not sent it yet) it is decided (201);
        otherwise the host answers what it holds (200) and changes nothing.
        """
        asked = self.asked[reservation]
        partner = self.fed.partners[asked.partner]

        async def go() -> tuple[Any, ...]:
            async with partner.node.db.read() as conn:
                body = (
                    await conn.execute(
                        select(reservations_out.c.request_body).where(
                            reservations_out.c.id == reservation
                        )
                    )
                ).scalar_one()
            before = await self.host_view()
            response = await partner.node.client.signed(
                "PUT",
                f"{self.host.url}/protocol/v1/reservations/{reservation}",
                body.encode(),
            )
            after = await self.host_view()
            return response.status, response.json(), before, after

        status, answer, before, after = self.run(go())
        known = {row.id for row in before[0]}
        assert status == (200 if reservation in known else 201), answer
        if status == 200:
            assert (after[0], after[1].seats_taken) == (before[0], before[1].seats_taken)
        stored = {row.id: row for row in after[0]}[reservation]
        assert (answer["id"], answer["state"], answer["version"]) == (
            reservation,
            stored.state,
            stored.version,
        )

    @rule(reservation=reservations)
    def cancel(self, reservation: str) -> None:
        asked = self.asked[reservation]
        status, answer, _ = self.run(
            self.portal(asked.partner, "DELETE", f"/reservations/{reservation}")
        )
        assert status == 202, answer

    @rule(reservation=reservations)
    def confirm_hold(self, reservation: str) -> None:
        asked = self.asked[reservation]
        status, answer, _ = self.run(
            self.portal(asked.partner, "POST", f"/reservations/{reservation}/confirm")
        )
        if status == 409:
            assert answer["code"] == "not_held"
        else:
            assert status == 202, answer

    # --- the host ------------------------------------------------------------------------

    @precondition(lambda self: any(a.body.get("hold") for a in self.asked.values()))
    @rule()
    def holds_expire(self) -> None:
        self.fed.clock.advance(minutes=6)
        self.run(self.host.node.host.expire_holds())

    @rule(reservation=reservations)
    def host_cancels(self, reservation: str) -> None:
        """The host admin cancels one reservation (unknown until it arrived)."""

        async def go() -> tuple[Any, int, Any]:
            before = await self.host.node.host.get(reservation)
            status, body = await self.host.admin(
                "POST", f"/reservations/incoming/{reservation}/cancel"
            )
            return before, status, body

        before, status, body = self.run(go())
        if before is None:
            assert status == 404, body
            return
        assert status == 200, body
        if before.state in ACTIVE:
            assert (body["state"], body["cancelled_by"]) == ("cancelled", "host")
        else:  # final already: nothing changes
            assert (body["state"], body["version"]) == (before.state, before.version)

    @precondition(lambda self: self.mode == "approval")
    @rule(approvals=st.lists(st.booleans(), min_size=1, max_size=3))
    def decide(self, approvals: list[bool]) -> None:
        """The host admin approves or declines the oldest pending reservations."""

        async def go() -> None:
            rows = await self.host.node.host.for_session(self.sid)
            pending = [r.id for r in rows if r.state == "pending"]
            for target, approve in zip(pending, approvals, strict=False):
                action = "approve" if approve else "decline"
                status, body = await self.host.admin(
                    "POST", f"/reservations/incoming/{target}/{action}"
                )
                assert status == 200, body
                assert body["state"] != "pending"
                await self.look()

        self.run(go())

    @precondition(lambda self: self.asked and not self.session_cancelled)
    @rule(seats=st.integers(1, 6))
    def change_quota(self, seats: int) -> None:
        async def go() -> None:
            taken = (await self.host_view())[1].seats_taken
            status, body = await self.host.admin(
                "PUT",
                f"/sessions/{self.sid}/opening",
                {
                    "seats": seats,
                    "audience": "all",
                    "registration_mode": self.mode,
                    "waitlist": self.waitlist,
                },
            )
            if seats < taken:
                assert (status, body["code"]) == (409, "quota_below_taken"), body
            else:
                assert status == 200, body

        self.run(go())

    @precondition(lambda self: self.asked)
    @rule(partner=PARTNER, cap=st.integers(0, 3))
    def change_cap(self, partner: int, cap: int) -> None:
        node_id = self.fed.partners[partner].node_id

        async def go() -> None:
            rows = (await self.host_view())[0]
            seated = sum(r.seats for r in rows if r.requester == node_id and r.state in SEATED)
            status, body = await self.host.admin(
                "PUT", f"/sessions/{self.sid}/caps/{node_id}", {"cap": cap}
            )
            if cap < seated:
                assert (status, body["code"]) == (409, "cap_below_taken"), body
            else:
                assert status == 200, body

        self.run(go())

    @precondition(lambda self: not self.session_cancelled and len(self.asked) >= 5)
    @rule(compare_first=st.booleans())
    def cancel_session(self, compare_first: bool) -> None:
        """The host cancels the session, maybe while messages are in flight.

        Cancelling ends every reservation, and the comparison afterwards can
        only look at states; comparing first keeps the versions checked.
        """
        if compare_first:
            self.everything_delivered()
        status, body = self.run(self.host.admin("POST", f"/sessions/{self.sid}/cancel"))
        assert status == 200, body
        self.session_cancelled = True

    # --- delivery, a piece at a time -----------------------------------------------------

    @rule(partner=st.none() | PARTNER, drain=st.booleans())
    def partner_delivers(self, partner: int | None, drain: bool) -> None:
        """One request (or all due) from a partner's outbox, or from every partner."""
        chosen = self.fed.partners if partner is None else [self.fed.partners[partner]]

        async def go() -> None:
            for node in chosen:
                await self.deliver_from(node, drain=drain)

        self.run(go())

    @rule(partner=st.none() | PARTNER, drain=st.booleans())
    def host_delivers(self, partner: int | None, drain: bool) -> None:
        """One notice (or all due) to one partner, or everything due to all."""
        deliverer = self.host.node.deliverer
        if partner is None:
            self.run(deliverer.deliver_due())
        else:
            target = self.fed.partners[partner].node_id
            self.run(deliverer.deliver_peer(target, drain=drain))

    @precondition(lambda self: self.asked)
    @rule()
    def everything_delivered(self) -> None:
        self.run(self.deliver_everything())
        self.check_agreement()

    async def deliver_from(self, partner: RunningNode, *, drain: bool) -> None:
        """A partner's requests to the host one by one, looking after each.

        Each request is one decision of the ledger, so the FIFO check sees
        every change of the waitlist on its own.
        """
        while await partner.node.deliverer.deliver_peer(self.host.node_id, drain=False):
            await self.look()
            if not drain:
                return

    async def deliver_everything(self) -> None:
        for partner in self.fed.partners:
            await self.deliver_from(partner, drain=True)
        await drain(self.fed.nodes)

    async def look(self) -> None:
        """Check the FIFO order against the last look (one ledger decision ago)."""
        rows, session, caps = await self.host_view()
        limits = {cap.requester: [cap.cap, cap.taken] for cap in caps}
        waiting = [r for r in rows if r.state == "waitlisted"]
        in_line = list(_not_held_back(waiting, limits))
        seated_now = [
            r for r in rows if r.state in SEATED and self.last_seen.get(r.id) not in SEATED
        ]
        waited = [r for r in in_line if self.last_seen.get(r.id) == "waitlisted"]
        for seated in seated_now:
            overtaken = [r.id for r in waited if r.seq < seated.seq]
            assert not overtaken, f"{seated.id} got a seat before {overtaken}, who waited"
        if in_line and session.status != "cancelled":
            first = in_line[0]
            free = session.open_seats - session.seats_taken
            assert first.seats > free, "seats free, and the first in line still waits"
        self.last_seen = {r.id: r.state for r in rows}

    # --- what must always hold -------------------------------------------------------------

    async def host_view(self) -> tuple[list[Any], Any, list[Any]]:
        async with self.host.node.db.read() as conn:
            rows = list(
                await conn.execute(
                    select(reservations_in)
                    .where(reservations_in.c.session_id == self.sid)
                    .order_by(reservations_in.c.seq)
                )
            )
            session = (await conn.execute(select(sessions).where(sessions.c.id == self.sid))).one()
            caps = list(
                await conn.execute(
                    select(partner_caps).where(partner_caps.c.session_id == self.sid)
                )
            )
        return rows, session, caps

    async def requester_view(self, partner: RunningNode) -> list[Any]:
        async with partner.node.db.read() as conn:
            return list(
                await conn.execute(
                    select(reservations_out).where(reservations_out.c.session_id == self.sid)
                )
            )

    def observe(self) -> tuple[list[Any], Any, list[Any], dict[str, Any]]:
        """The host's rows, session and caps, and every requester's rows (by id)."""

        async def read() -> tuple[Any, ...]:
            return await asyncio.gather(
                self.host_view(), *(self.requester_view(p) for p in self.fed.partners)
            )

        (rows, session, caps), *theirs = self.run(read())
        at_requesters: dict[str, Any] = {}
        for index, partner_rows in enumerate(theirs):
            for row in partner_rows:
                assert row.id not in at_requesters
                assert self.asked[row.id].partner == index, row.id
                at_requesters[row.id] = row
        return rows, session, caps, at_requesters

    @invariant()
    def seats_caps_fifo_and_nothing_doubled(self) -> None:
        rows, session, caps, at_requesters = self.observe()
        seated = sum(r.seats for r in rows if r.state in SEATED)
        assert seated == session.seats_taken
        assert seated <= session.open_seats
        for cap in caps:
            mine = sum(r.seats for r in rows if r.state in SEATED and r.requester == cap.requester)
            assert mine == cap.taken
            assert mine <= cap.cap
        # Every row at the host is one a portal asked for, from that partner, once.
        partner_ids = [p.node_id for p in self.fed.partners]
        for row in rows:
            assert row.id in self.asked, row.id
            assert partner_ids[self.asked[row.id].partner] == row.requester
        active = Counter((r.requester, r.attendee_ref) for r in rows if r.state in ACTIVE)
        assert all(count == 1 for count in active.values()), "an attendee got a second seat"
        self.run(self.look())
        # Every 202 is kept by its requester, and only once.
        assert set(at_requesters) == set(self.asked)

    def check_agreement(self) -> None:
        """Everything is delivered: host and requesters tell the same story."""
        rows, session, _, at_requesters = self.observe()
        at_host = {row.id: row for row in rows}
        assert set(at_host) == set(self.asked), "a reservation was lost on the way"
        assert set(at_requesters) == set(self.asked)
        for rid, theirs in at_host.items():
            ours = at_requesters[rid]
            if session.status == "cancelled" and theirs.cancelled_by == "host":
                # session_cancelled carries no version
                assert (ours.state, ours.cancelled_by) == ("cancelled", "host"), rid
                continue
            assert (ours.state, ours.version, ours.seats) == (
                theirs.state,
                theirs.version,
                theirs.seats,
            ), rid
            assert ours.reason == theirs.reason, rid
            assert ours.cancelled_by == theirs.cancelled_by, rid
            assert not ours.cancel_requested or ours.state in ("cancelled", "rejected"), rid
        # The partners' requests all got through (the host may hold dead
        # letters: notices older than an answer the partner already had).
        for partner in self.fed.partners:
            assert self.run(_undelivered(partner)) == [], partner.name

    def teardown(self) -> None:
        if not self.sid:
            return
        if sys.exc_info()[0] is None:  # a failed step is reported as it is
            self.run(self.deliver_everything())
            self.check_agreement()
        # Leave nothing active for the next example (its set-up delivers the notices).
        if not self.session_cancelled:
            self.run(self.host.admin("POST", f"/sessions/{self.sid}/cancel"))


async def drain(nodes: list[RunningNode]) -> None:
    """Like ``sync``, but until nothing is due any more (fewer rounds as a rule)."""
    for node in nodes:
        await node.node.notifier.changed()
    moved = True
    while moved:
        moved = False
        for node in nodes:
            moved = bool(await node.node.deliverer.deliver_due()) or moved
            await node.settle()


def _not_held_back(waiting: list[Any], caps: dict[str, list[int]]) -> Iterator[Any]:
    """The waiting rows in line: not held back by their partner's cap (§9.6).

    Written apart from the ledger's own ``first_in_line`` on purpose: the
    test states the rule again instead of trusting the code it checks.
    """
    held_back: set[str] = set()
    for row in waiting:
        limit = caps.get(row.requester)
        if row.requester in held_back or (limit and limit[1] + row.seats > limit[0]):
            held_back.add(row.requester)
            continue
        yield row


async def _queued(node: RunningNode) -> int:
    async with node.node.db.read() as conn:
        found = await conn.execute(select(func.count()).select_from(outbox))
        return int(found.scalar_one())


async def _undelivered(node: RunningNode) -> list[tuple[str, str]]:
    async with node.node.db.read() as conn:
        rows = await conn.execute(
            select(outbox.c.kind, outbox.c.state).where(outbox.c.state != "sent")
        )
        return [(row.kind, row.state) for row in rows]


async def test_federated_invariants(
    engine: str, make_node: NodeFactory, clock: ManualClock
) -> None:
    # No 429s: a fast machine sends more than the default per peer and minute,
    # and a retry would wait for a clock that only the machine moves.
    host = await make_node("host", rate_limit_per_minute=RATE_LIMIT)
    partners = [await make_node(name, rate_limit_per_minute=RATE_LIMIT) for name in PARTNERS]
    for partner in partners:
        await peer(partner, host)
    tokens = [await portal_token(partner) for partner in partners]
    await sync(host, *partners)
    for node in (host, *partners):
        # Only the machine's steps deliver; nothing is woken after a commit.
        node.node.requests.on_queued = None
        node.node.notifier.on_queued = None
        node.node.host.on_changed = None
    fed = Federation(asyncio.get_running_loop(), clock, host, partners, tokens)
    machine = type(f"FederationMachine_{engine}", (FederationMachine,), {"fed": fed})
    await asyncio.to_thread(
        run_state_machine_as_test,
        machine,
        settings=settings(
            max_examples=EXAMPLES[engine],
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
