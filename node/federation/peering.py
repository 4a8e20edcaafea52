"""The peering handshake and the life of a peering.

States on our side: ``pending_out`` (we asked), ``pending_in`` (they
asked), ``active``, ``suspended`` (by us or by them), ``declined``.  Only
``active`` peers may read the feed or send notices.  Every answer we owe a
peer goes through the outbox, so an offline partner gets it later.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from node.clock import Clock
from node.db import Database
from node.db import outbox as outbox_repo
from node.db import peers as peer_repo
from node.db.peers import PeerRow
from node.federation.client import DeliveryError, PeerClient
from node.federation.outbox import OutboxDeliverer
from node.identity import NodeIdentity
from protocol.errors import MalformedError, ProtocolError
from protocol.keyring import PinnedKeys, verify_new_descriptor, verify_rotation
from protocol.keys import normalise_fingerprint
from protocol.models import NodeDescriptor, PeeringAnswer, PeeringRequest, format_timestamp


class PeeringError(Exception):
    def __init__(self, code: str, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class AddResult:
    peer: PeerRow
    delivered: bool
    delivery_error: str | None


def _dump(model: Any) -> str:
    return json.dumps(model.to_json_dict(), ensure_ascii=False, separators=(",", ":"))


class PeeringService:
    def __init__(
        self,
        db: Database,
        identity: NodeIdentity,
        client: PeerClient,
        deliverer: OutboxDeliverer,
        clock: Clock,
    ) -> None:
        self.db = db
        self.identity = identity
        self.client = client
        self.deliverer = deliverer
        self.clock = clock
        #: Bumped on every change to peers or their keys; caches compare it.
        self.generation = 0

    async def get(self, node_id: str) -> PeerRow:
        async with self.db.read() as conn:
            peer = await peer_repo.get(conn, node_id)
        if peer is None:
            raise PeeringError(
                "not_found", f"Unbekannter Partner / unknown peer: {node_id}", status=404
            )
        return peer

    async def list(self) -> list[PeerRow]:
        async with self.db.read() as conn:
            return await peer_repo.list_peers(conn)

    # --- our admin's actions --------------------------------------------

    async def add(self, base_url: str, fingerprint: str) -> AddResult:
        """Fetch the partner's descriptor, check the fingerprint, ask to peer."""
        try:
            expected = normalise_fingerprint(fingerprint)
        except MalformedError as exc:
            raise PeeringError("bad_fingerprint", exc.message) from None
        try:
            raw = await self.client.fetch_descriptor(base_url)
        except DeliveryError as exc:
            raise PeeringError(
                "peer_unreachable",
                f"Beschreibung von {base_url} nicht abrufbar / cannot fetch descriptor: {exc}",
                status=502,
            ) from None
        now = self.clock.now()
        try:
            descriptor = verify_new_descriptor(raw, now=now)
        except ProtocolError as exc:
            raise PeeringError("descriptor_rejected", f"{exc.code}: {exc.message}") from None
        pinned = PinnedKeys.from_descriptor(descriptor)
        actual = pinned.fingerprints()
        if expected not in actual:
            raise PeeringError(
                "fingerprint_mismatch",
                f"Fingerabdruck stimmt nicht / fingerprint mismatch: erwartet/expected {expected}, "
                f"erhalten/got {', '.join(actual)}",
            )
        if descriptor.node_id == self.identity.node_id:
            raise PeeringError("self_peering", "Das ist dieser Knoten selbst / this is this node")
        async with self.db.write() as conn:
            peer = await peer_repo.get(conn, descriptor.node_id)
            if peer is not None and peer.state == "active":
                raise PeeringError(
                    "already_peered",
                    f"Bereits Partner / already peered: {peer.node_id}",
                    status=409,
                )
            state = "active" if peer is not None and peer.state == "pending_in" else "pending_out"
            peer_id = await self._store(conn, peer, descriptor, raw, pinned, state)
            if state == "active":
                await self._queue_answer(conn, descriptor, "accepted")
            else:
                request = PeeringRequest(
                    type="peering_request",
                    requester=self.identity.node_id,
                    target=descriptor.node_id,
                    descriptor=self.identity.descriptor(now),
                    issued_at=now,
                )
                await self._queue(conn, descriptor, "peering_request", request)
        delivered, error = await self._deliver_now(descriptor.node_id)
        async with self.db.read() as conn:
            stored = await peer_repo.get_by_id(conn, peer_id)
        assert stored is not None
        return AddResult(stored, delivered, error)

    async def accept(self, node_id: str) -> PeerRow:
        return await self._change(node_id, {"pending_in": "active"}, "accepted")

    async def decline(self, node_id: str) -> PeerRow:
        return await self._change(node_id, {"pending_in": "declined"}, "declined")

    async def suspend(self, node_id: str) -> PeerRow:
        return await self._change(node_id, {"active": "suspended"}, "suspended", by="us")

    async def resume(self, node_id: str) -> PeerRow:
        peer = await self.get(node_id)
        if peer.state == "suspended" and peer.suspended_by != "us":
            raise PeeringError(
                "suspended_by_partner",
                "Der Partner hat ausgesetzt / the partner suspended this peering",
                status=409,
            )
        return await self._change(node_id, {"suspended": "active"}, "accepted")

    async def remove(self, node_id: str) -> None:
        async with self.db.write() as conn:
            peer = await peer_repo.get(conn, node_id)
            if peer is None:
                raise PeeringError(
                    "not_found", f"Unbekannter Partner / unknown peer: {node_id}", status=404
                )
            if peer.state not in ("declined", "pending_in"):
                await self._queue_answer(
                    conn, NodeDescriptor.model_validate_json(peer.descriptor), "removed"
                )
            await peer_repo.remove(conn, peer.id)
        await self._deliver_now(node_id)

    async def _change(
        self, node_id: str, moves: dict[str, str], answer: str, by: str | None = None
    ) -> PeerRow:
        now = self.clock.now()
        async with self.db.write() as conn:
            peer = await peer_repo.get(conn, node_id)
            if peer is None:
                raise PeeringError(
                    "not_found", f"Unbekannter Partner / unknown peer: {node_id}", status=404
                )
            if peer.state not in moves:
                raise PeeringError(
                    "invalid_state",
                    f"Nicht möglich im Zustand / not possible in state {peer.state}",
                    status=409,
                )
            await peer_repo.set_state(conn, peer.id, moves[peer.state], now, suspended_by=by)
            await self._queue_answer(
                conn, NodeDescriptor.model_validate_json(peer.descriptor), answer
            )
        await self._deliver_now(node_id)
        return await self.get(node_id)

    # --- what partners send us --------------------------------------------

    async def receive_request(self, request: PeeringRequest, raw_descriptor: dict[str, Any]) -> str:
        """A verified peering request; return the state to answer with."""
        self.generation += 1
        if request.target != self.identity.node_id:
            raise PeeringError("wrong_target", "Anfrage gilt einem anderen Knoten / wrong target")
        descriptor = request.descriptor
        now = self.clock.now()
        async with self.db.write() as conn:
            peer = await peer_repo.get(conn, descriptor.node_id)
            if peer is None:
                await self._store(
                    conn,
                    None,
                    descriptor,
                    raw_descriptor,
                    PinnedKeys.from_descriptor(descriptor),
                    "pending_in",
                )
                return "pending"
            if peer.fingerprint not in PinnedKeys.from_descriptor(descriptor).fingerprints():
                known = await peer_repo.pinned_keys(conn, peer)
                try:
                    verify_rotation(raw_descriptor, known, now=now)
                except ProtocolError:
                    raise PeeringError(
                        "peering_conflict",
                        "Andere Schlüssel für diesen Knoten / different keys for this node",
                        status=409,
                    ) from None
            if peer.state == "pending_out":
                await peer_repo.set_state(conn, peer.id, "active", now)
                await self._queue_answer(conn, descriptor, "accepted")
                return "accepted"
            return {"active": "accepted", "suspended": "suspended", "declined": "declined"}.get(
                peer.state, "pending"
            )

    async def receive_answer(self, peer: PeerRow, answer: PeeringAnswer) -> None:
        if answer.sender != peer.node_id or answer.recipient != self.identity.node_id:
            raise PeeringError(
                "origin_mismatch", "Absender passt nicht / sender mismatch", status=401
            )
        now = self.clock.now()
        self.generation += 1
        async with self.db.write() as conn:
            if answer.state == "removed":
                await peer_repo.remove(conn, peer.id)
                return
            moves = {
                "accepted": {"pending_out": "active", "suspended": "active"},
                "declined": {"pending_out": "declined"},
                "suspended": {"active": "suspended"},
                "pending": {},
            }[answer.state]
            if (
                peer.state == "suspended"
                and answer.state == "accepted"
                and peer.suspended_by == "us"
            ):
                return
            if peer.state in moves:
                by = "them" if answer.state == "suspended" else None
                await peer_repo.set_state(conn, peer.id, moves[peer.state], now, suspended_by=by)

    async def refresh_descriptor(self, peer: PeerRow) -> PeerRow:
        """Fetch the peer's descriptor again and apply it under the rotation rule."""
        raw = await self.client.fetch_descriptor(peer.base_url)
        now = self.clock.now()
        async with self.db.write() as conn:
            current = await peer_repo.get_by_id(conn, peer.id)
            if current is None:
                raise PeeringError("not_found", "peer removed", status=404)
            pinned = verify_rotation(raw, await peer_repo.pinned_keys(conn, current), now=now)
            descriptor = NodeDescriptor.model_validate(raw)
            await peer_repo.update_descriptor(
                conn,
                current.id,
                base_url=descriptor.base_url,
                display_name=descriptor.display_name,
                fingerprint=pinned.fingerprints()[0],
                descriptor=json.dumps(raw),
                descriptor_issued_at=descriptor.issued_at,
                now=now,
            )
            await peer_repo.pin_keys(conn, current.id, pinned)
        self.generation += 1
        return await self.get(peer.node_id)

    # --- helpers ------------------------------------------------------------

    async def _store(
        self,
        conn: AsyncConnection,
        peer: PeerRow | None,
        descriptor: NodeDescriptor,
        raw: dict[str, Any],
        pinned: PinnedKeys,
        state: str,
    ) -> int:
        now = self.clock.now()
        fields: dict[str, Any] = {
            "base_url": descriptor.base_url,
            "display_name": descriptor.display_name,
            "fingerprint": pinned.fingerprints()[0],
            "descriptor": json.dumps(raw),
            "descriptor_issued_at": descriptor.issued_at,
        }
        if peer is None:
            peer_id = await peer_repo.insert(
                conn, node_id=descriptor.node_id, state=state, now=now, **fields
            )
        else:
            peer_id = peer.id
            await peer_repo.update_descriptor(conn, peer_id, now=now, **fields)
            await peer_repo.set_state(conn, peer_id, state, now)
        await peer_repo.pin_keys(conn, peer_id, pinned)
        return peer_id

    async def _queue_answer(
        self, conn: AsyncConnection, descriptor: NodeDescriptor, state: str
    ) -> None:
        now = self.clock.now()
        answer = PeeringAnswer(
            type="peering_answer",
            sender=self.identity.node_id,
            recipient=descriptor.node_id,
            state=state,  # type: ignore[arg-type]
            issued_at=now,
        )
        await self._queue(conn, descriptor, "peering_answer", answer)

    async def _queue(
        self, conn: AsyncConnection, descriptor: NodeDescriptor, kind: str, message: Any
    ) -> None:
        """Put a message for the peer's peering endpoint into the outbox."""
        await outbox_repo.enqueue(
            conn,
            peer_node_id=descriptor.node_id,
            kind=kind,
            method="POST",
            url=descriptor.endpoints.peering,
            body=_dump(message),
            now=self.clock.now(),
        )

    async def _deliver_now(self, node_id: str) -> tuple[bool, str | None]:
        self.generation += 1
        await self.deliverer.deliver_peer(node_id)
        async with self.db.read() as conn:
            pending = [
                m
                for m in await outbox_repo.list_messages(conn, peer_node_id=node_id)
                if m.state != "sent"
            ]
        if not pending:
            return True, None
        return False, pending[-1].last_error

    def timestamp(self) -> str:
        return format_timestamp(self.clock.now())
