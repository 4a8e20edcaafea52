"""Peering between real nodes on loopback: fingerprints, states, refusal."""

from __future__ import annotations

import pytest

from tests.node.conftest import NodeFactory, peer


async def test_peering_request_then_accept(make_node: NodeFactory) -> None:
    lex, datev = await make_node("lex"), await make_node("datev")
    status, body = await lex.admin(
        "POST", "/peers", {"url": datev.url, "fingerprint": datev.fingerprint.lower()}
    )
    assert status == 201, body
    assert body["state"] == "pending_out"
    assert body["request_delivered"] is True
    status, listing = await datev.admin("GET", "/peers")
    assert [(p["node_id"], p["state"], p["fingerprint"]) for p in listing["peers"]] == [
        (lex.node_id, "pending_in", lex.fingerprint)
    ]
    status, body = await datev.admin("POST", f"/peers/{lex.node_id}/accept")
    assert (status, body["state"]) == (200, "active")
    status, body = await lex.admin("GET", f"/peers/{datev.node_id}")
    assert body["state"] == "active"
    assert body["outbox"] == {"pending": 0, "dead_letters": []}


async def test_wrong_fingerprint_is_a_hard_error_naming_both(make_node: NodeFactory) -> None:
    lex, datev, kiwi = await make_node("lex"), await make_node("datev"), await make_node("kiwi")
    status, body = await lex.admin(
        "POST", "/peers", {"url": datev.url, "fingerprint": kiwi.fingerprint}
    )
    assert status == 400
    assert body["code"] == "fingerprint_mismatch"
    assert kiwi.fingerprint in body["message"]
    assert datev.fingerprint in body["message"]
    assert (await lex.admin("GET", "/peers"))[1]["peers"] == []
    assert (await datev.admin("GET", "/peers"))[1]["peers"] == []


@pytest.mark.parametrize("fingerprint", ["", "nonsense", "0000-0000"])
async def test_malformed_fingerprint(make_node: NodeFactory, fingerprint: str) -> None:
    lex, datev = await make_node("lex"), await make_node("datev")
    status, body = await lex.admin("POST", "/peers", {"url": datev.url, "fingerprint": fingerprint})
    assert status == 400
    assert body["code"] in ("bad_fingerprint", "invalid_field")
    assert (await lex.admin("GET", "/peers"))[1]["peers"] == []


async def test_unreachable_partner(make_node: NodeFactory) -> None:
    from tests.node.conftest import free_port

    lex = await make_node("lex")
    status, body = await lex.admin(
        "POST",
        "/peers",
        {"url": f"http://127.0.0.1:{free_port()}", "fingerprint": lex.fingerprint},
    )
    assert (status, body["code"]) == (502, "peer_unreachable")


async def test_suspend_and_remove_close_the_feed(make_node: NodeFactory) -> None:
    lex, datev = await make_node("lex"), await make_node("datev")
    await peer(lex, datev)
    await lex.feed_as(datev)
    await datev.feed_as(lex)

    status, body = await lex.admin("POST", f"/peers/{datev.node_id}/suspend")
    assert (status, body["state"]) == (200, "suspended")
    from node.federation.client import DeliveryError

    with pytest.raises(DeliveryError) as info:
        await lex.feed_as(datev)
    assert info.value.status == 403
    assert "peer_suspended" in str(info.value)
    # The partner heard about it and treats the peering as suspended too.
    assert (await datev.admin("GET", f"/peers/{lex.node_id}"))[1]["state"] == "suspended"
    # Only the side that suspended can resume.
    status, body = await datev.admin("POST", f"/peers/{lex.node_id}/resume")
    assert (status, body["code"]) == (409, "suspended_by_partner")
    status, body = await lex.admin("POST", f"/peers/{datev.node_id}/resume")
    assert (status, body["state"]) == (200, "active")
    await lex.feed_as(datev)

    status, _ = await lex.admin("DELETE", f"/peers/{datev.node_id}")
    assert status == 204
    with pytest.raises(DeliveryError) as info:
        await lex.feed_as(datev)
    assert info.value.status == 401
    assert (await datev.admin("GET", "/peers"))[1]["peers"] == []


async def test_a_pending_peer_sees_nothing(make_node: NodeFactory) -> None:
    from node.federation.client import DeliveryError

    lex, datev = await make_node("lex"), await make_node("datev")
    await lex.admin("POST", "/peers", {"url": datev.url, "fingerprint": datev.fingerprint})
    with pytest.raises(DeliveryError) as info:
        await datev.feed_as(lex)
    assert (info.value.status, "not_peer" in str(info.value)) == (403, True)
