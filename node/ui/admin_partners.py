"""``/admin/partners``: peering with other nodes, and how each peer is doing.

Adding a peer goes through :meth:`~node.federation.peering.PeeringService.add`,
which fetches the partner's descriptor and refuses a fingerprint that is
not among its keys.  When it refuses, the page shows the fingerprint the
node fetched next to the one the admin typed (a second, read-only fetch
of the descriptor, only for that message), so the two can be compared
over the phone.  Accept, decline, suspend, resume and remove are the
service's own transitions; removing asks first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from aiohttp import web
from pydantic import ValidationError

from node.db import outbox as outbox_repo
from node.db import sync as sync_repo
from node.db.peers import PeerRow
from node.federation.client import DeliveryError
from node.federation.peering import PeeringError
from node.ui.admin_common import LABELS, node_of, not_found_for, when_for
from node.ui.auth import require_admin
from node.ui.forms import FieldErrors, confirmed, read_form
from node.ui.i18n import Message
from node.ui.render import add_admin_nav, redirect, render
from node.web.admin_api import AddPeer
from protocol.errors import ProtocolError
from protocol.keyring import PinnedKeys, verify_new_descriptor

PATH = "/admin/partners"
ACTIONS = {
    "accept": "admin.partner_accepted",
    "decline": "admin.partner_declined",
    "suspend": "admin.partner_suspended",
    "resume": "admin.partner_resumed",
}


@dataclass(frozen=True)
class PeerStatus:
    """A peer with its sync state and the counts an admin watches."""

    peer: PeerRow
    sync: sync_repo.SyncState
    rejected: int
    pending: int
    dead_letters: int

    @property
    def backing_off(self) -> bool:
        return self.sync.failures > 0 and self.sync.next_attempt_at is not None


async def peer_statuses(request: web.Request) -> list[PeerStatus]:
    node = node_of(request)
    peers = await node.peering.list()
    found: list[PeerStatus] = []
    async with node.db.read() as conn:
        for peer in peers:
            messages = await outbox_repo.list_messages(conn, peer_node_id=peer.node_id)
            found.append(
                PeerStatus(
                    peer,
                    await sync_repo.load(conn, peer.id),
                    len(await sync_repo.rejections(conn, peer.node_id)),
                    sum(1 for m in messages if m.state == "pending"),
                    sum(1 for m in messages if m.state == "dead"),
                )
            )
    return found


async def _list(
    request: web.Request,
    *,
    values: dict[str, str] | None = None,
    errors: FieldErrors | None = None,
    fetched: list[str] | None = None,
    status: int = 200,
) -> web.Response:
    context = {
        "statuses": await peer_statuses(request),
        "values": values or {"url": "", "fingerprint": ""},
        "errors": errors or {},
        "fetched": fetched or [],
        "when": when_for(request),
        "labels": LABELS,
    }
    return await render(request, "admin/partners.html", context, status=status)


async def list_page(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    return await _list(request)


async def _fetched_fingerprints(request: web.Request, url: str) -> list[str]:
    """What the partner's descriptor says, for showing next to the typed fingerprint."""
    node = node_of(request)
    try:
        raw = await node.peering.client.fetch_descriptor(url)
        descriptor = verify_new_descriptor(raw, now=node.clock.now())
    except (DeliveryError, ProtocolError):
        return []
    return PinnedKeys.from_descriptor(descriptor).fingerprints()


_ADD_ERRORS = {
    "bad_fingerprint": ("fingerprint", "admin.err_fingerprint_format"),
    "fingerprint_mismatch": ("fingerprint", "admin.err_fingerprint_mismatch"),
    "peer_unreachable": ("url", "admin.err_peer_unreachable"),
    "descriptor_rejected": ("url", "admin.err_descriptor_rejected"),
    "self_peering": ("url", "admin.err_self_peering"),
    "already_peered": ("url", "admin.err_already_peered"),
}


async def add(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    form = await read_form(request)
    values = {"url": form.get("url", ""), "fingerprint": form.get("fingerprint", "")}
    errors: FieldErrors = {name: Message("form.required") for name, v in values.items() if not v}
    if not errors:
        try:
            AddPeer(**values)
        except ValidationError:
            errors["url"] = Message("admin.err_peer_url")
    if errors:
        return await _list(request, values=values, errors=errors, status=400)
    try:
        result = await node_of(request).peering.add(values["url"], values["fingerprint"])
    except PeeringError as exc:
        where, key = _ADD_ERRORS.get(exc.code, ("url", "admin.err_invalid"))
        fetched = []
        if exc.code == "fingerprint_mismatch":
            fetched = await _fetched_fingerprints(request, values["url"])
        return await _list(
            request,
            values=values,
            errors={where: Message(key)},
            fetched=fetched,
            status=400,
        )
    if result.peer.state == "active":
        flash = ("success", "admin.partner_active")
    elif result.delivered:
        flash = ("success", "admin.partner_requested")
    else:
        flash = ("info", "admin.partner_request_queued")
    return redirect(request, f"{PATH}/{result.peer.node_id}", flash=flash)


async def act(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    node_id, action = request.match_info["node_id"], request.match_info["action"]
    service = node_of(request).peering
    try:
        await getattr(service, action)(node_id)
    except PeeringError as exc:
        if exc.status == 404:
            raise not_found_for(exc) from None
        key = (
            "admin.err_suspended_by_partner"
            if exc.code == "suspended_by_partner"
            else "admin.err_peer_state"
        )
        return redirect(request, f"{PATH}/{node_id}", flash=("error", key))
    return redirect(request, f"{PATH}/{node_id}", flash=("success", ACTIONS[action]))


async def remove(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    service = node_of(request).peering
    try:
        peer = await service.get(request.match_info["node_id"])
    except PeeringError as exc:
        raise not_found_for(exc) from None
    if request.method == "POST" and confirmed(await read_form(request)):
        await service.remove(peer.node_id)
        return redirect(request, PATH, flash=("success", "admin.partner_removed"))
    return await render(request, "admin/partner_remove.html", {"peer": peer})


@dataclass(frozen=True)
class DeadLetter:
    id: int
    kind: str
    error: str | None
    created_at: datetime


async def detail_page(request: web.Request) -> web.StreamResponse:
    await require_admin(request)
    node = node_of(request)
    try:
        peer = await node.peering.get(request.match_info["node_id"])
    except PeeringError as exc:
        raise not_found_for(exc) from None
    async with node.db.read() as conn:
        messages = await outbox_repo.list_messages(conn, peer_node_id=peer.node_id)
        sync = await sync_repo.load(conn, peer.id)
        rejected = await sync_repo.rejections(conn, peer.node_id)
    dead = [
        DeadLetter(m.id, m.kind, m.last_error, m.created_at) for m in messages if m.state == "dead"
    ]
    context = {
        "peer": peer,
        "sync": sync,
        "rejected": rejected,
        "pending": sum(1 for m in messages if m.state == "pending"),
        "dead": dead,
        "when": when_for(request),
        "labels": LABELS,
    }
    return await render(request, "admin/partner_detail.html", context)


def setup(app: web.Application) -> None:
    r = app.router
    r.add_get(PATH, list_page)
    r.add_post(PATH, add)
    r.add_get(f"{PATH}/{{node_id}}", detail_page)
    r.add_post(f"{PATH}/{{node_id}}/{{action:{'|'.join(ACTIONS)}}}", act)
    r.add_get(f"{PATH}/{{node_id}}/remove", remove)
    r.add_post(f"{PATH}/{{node_id}}/remove", remove)
    add_admin_nav(app, PATH, "nav.partners")
