"""Admin pages between real nodes: peering by fingerprint, approvals, our people at partners."""

from __future__ import annotations

from node.clock import ManualClock
from tests.node.conftest import NodeFactory, peer, sync
from tests.node.reservations.helpers import open_session, portal_token, reserve, state_of
from tests.node.ui.admin_helpers import in_english, logged_in, node_with_admin
from tests.node.ui.conftest import BrowserFactory

XSS = '<script>alert("x")</script>'


async def test_add_peer_checks_the_fingerprint_then_accept_suspend_remove(
    make_node: NodeFactory, browsers: BrowserFactory, fast_scrypt: None
) -> None:
    lex = await node_with_admin(make_node, "lex")
    datev = await node_with_admin(make_node, "datev")
    at_lex = await logged_in(browsers, lex)
    await at_lex.get("/admin/partners")

    page = await at_lex.post("/admin/partners", {"url": datev.url, "fingerprint": "xyz"})
    assert page.status == 400
    assert "Ein Fingerabdruck hat 32 Zeichen" in page.text

    wrong = lex.fingerprint  # well-formed, but not datev's
    page = await at_lex.post("/admin/partners", {"url": datev.url, "fingerprint": wrong})
    assert page.status == 400
    assert "Der Fingerabdruck stimmt nicht mit dem abgerufenen überein." in page.text
    assert f'value="{wrong}"' in page.text
    assert f'<code class="fingerprint">{datev.fingerprint}</code>' in page.text
    assert await lex.node.peering.list() == []

    await in_english(at_lex, "/admin/partners")
    page = await at_lex.post("/admin/partners", {"url": datev.url, "fingerprint": wrong})
    assert page.status == 400
    assert "The fingerprint does not match the one fetched." in page.text
    await at_lex.get("/lang/de?next=/admin/partners")

    page = await at_lex.post("/admin/partners", {"url": "ftp://x", "fingerprint": wrong})
    assert page.status == 400
    assert 'value="ftp://x"' in page.text

    typed = datev.fingerprint.lower().replace("-", " ")
    page = await at_lex.post("/admin/partners", {"url": datev.url, "fingerprint": typed})
    assert (page.status, page.location) == (303, f"/admin/partners/{datev.node_id}")
    assert (await lex.node.peering.get(datev.node_id)).state == "pending_out"

    at_datev = await logged_in(browsers, datev)
    listing = await at_datev.get("/admin/partners")
    assert f'action="/admin/partners/{lex.node_id}/accept"' in listing.text
    page = await at_datev.post(f"/admin/partners/{lex.node_id}/accept")
    assert page.status == 303
    await sync(lex, datev)
    assert (await lex.node.peering.get(datev.node_id)).state == "active"

    detail = await at_lex.get(f"/admin/partners/{datev.node_id}")
    assert detail.status == 200
    assert datev.fingerprint in detail.text
    assert "Abgleich" in detail.text
    assert "Abgelehnte Einträge" in detail.text

    assert (await at_lex.post(f"/admin/partners/{datev.node_id}/suspend")).status == 303
    assert (await lex.node.peering.get(datev.node_id)).state == "suspended"
    assert (await at_lex.post(f"/admin/partners/{datev.node_id}/resume")).status == 303
    assert (await lex.node.peering.get(datev.node_id)).state == "active"
    page = await at_lex.post(f"/admin/partners/{datev.node_id}/accept")
    assert page.status == 303  # not possible when active: an error message, nothing changes
    shown = await at_lex.get(page.location)
    assert "Das ist im aktuellen Zustand der Partnerschaft nicht möglich." in shown.text

    asked = await at_lex.get(f"/admin/partners/{datev.node_id}/remove")
    assert 'name="confirmed" value="yes"' in asked.text
    assert (await at_lex.post(f"/admin/partners/{datev.node_id}/remove")).status == 200
    assert len(await lex.node.peering.list()) == 1
    page = await at_lex.post(f"/admin/partners/{datev.node_id}/remove", {"confirmed": "yes"})
    assert (page.status, page.location) == (303, "/admin/partners")
    assert await lex.node.peering.list() == []


async def test_approvals_gauge_overview_and_outgoing_with_untrusted_text(
    make_node: NodeFactory, browsers: BrowserFactory, clock: ManualClock, fast_scrypt: None
) -> None:
    lex = await node_with_admin(make_node, "lex", display_name=f"Lex {XSS}")
    datev = await node_with_admin(make_node, "datev")
    await peer(datev, lex)
    token = await portal_token(datev)
    sid = await open_session(lex, clock, seats=1, registration_mode="approval")
    status, _ = await lex.admin("PATCH", f"/sessions/{sid}", {"title": f"Titel {XSS}"})
    assert status == 200
    await sync(lex, datev)
    first = await reserve(datev, lex, sid, token, "emp-1")
    second = await reserve(datev, lex, sid, token, "emp-2")
    await sync(datev, lex)

    at_lex = await logged_in(browsers, lex)
    overview = await at_lex.get("/admin/")
    assert "2 warten auf Freigabe" in overview.text
    assert f'href="/admin/sessions/{sid}"' in overview.text
    detail = await at_lex.get(f"/admin/sessions/{sid}")
    assert detail.status == 200
    assert "Person emp-1" in detail.text
    assert "Person emp-2" in detail.text
    assert f'action="/admin/reservations/{first["id"]}/approve"' in detail.text
    assert XSS not in detail.text

    page = await at_lex.post(f"/admin/reservations/{first['id']}/approve")
    assert (page.status, page.location) == (303, f"/admin/sessions/{sid}")
    page = await at_lex.post(f"/admin/reservations/{second['id']}/decline")
    assert page.status == 303
    page = await at_lex.post(f"/admin/reservations/{second['id']}/approve")
    shown = await at_lex.get(page.location)
    assert "Über diese Reservierung ist schon entschieden." in shown.text
    assert '<meter id="gauge" min="0" max="1" value="1"' in shown.text
    assert "1 von 1 Plätzen vergeben" in shown.text
    overview = await at_lex.get("/admin/")
    assert "Fast voll: 1 von 1" in overview.text

    await sync(lex, datev)
    assert (await state_of(datev, first["id"], token))["state"] == "confirmed"

    at_datev = await logged_in(browsers, datev)
    outgoing = await at_datev.get("/admin/outgoing")
    assert outgoing.status == 200
    assert "Titel &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in outgoing.text
    assert "Bestätigt" in outgoing.text
    assert "Abgelehnt" in outgoing.text
    assert XSS not in outgoing.text
    only = await at_datev.get("/admin/outgoing?state=rejected")
    assert "Person emp-2" in only.text
    assert "Person emp-1" not in only.text

    overview = await at_datev.get("/admin/")
    assert "Lex &lt;script&gt;" in overview.text
    assert XSS not in overview.text
    assert XSS not in (await at_datev.get("/admin/partners")).text
