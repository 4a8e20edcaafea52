"""Incoming protocol requests on two replicas: one nonce store, one rate limit.

PostgreSQL only (``PG_ONLY``): sharing the request bookkeeping between
replicas is the point, and replicas run on PostgreSQL.  The partner signs
each request for the node's public URL, as its outbox does, and the test
sends it to one replica or the other, as a load balancer would.
"""

from __future__ import annotations

import asyncio
from collections import Counter

from node.clock import ManualClock
from protocol.httpsig import sign_request
from tests.node.conftest import NodeFactory, RunningNode, peer
from tests.node.replicas.conftest import PG_ONLY, ReplicaFactory, send_to

FEED = "/protocol/v1/feed"


def signed_feed_request(reader: RunningNode, target: RunningNode) -> list[tuple[str, str]]:
    return sign_request(
        method="GET",
        url=target.url + FEED,
        body=b"",
        key=reader.node.identity.signing_key,
        now=reader.node.clock.now(),
    )


@PG_ONLY
async def test_a_request_replayed_to_the_other_replica_is_refused(
    make_node: NodeFactory, add_replica: ReplicaFactory
) -> None:
    home, partner = await make_node("home"), await make_node("partner")
    await peer(partner, home)
    second = await add_replica(home)
    addresses = [home.url, second.address]

    for first, then in (addresses, addresses[::-1]):
        headers = signed_feed_request(partner, home)
        status, _, _ = await send_to(first, "GET", FEED, headers)
        assert status == 200
        status, _, body = await send_to(then, "GET", FEED, headers)
        assert (status, body["code"]) == (401, "replayed_nonce")

    # The same request at both replicas at the same moment: accepted once.
    for _ in range(5):
        headers = signed_feed_request(partner, home)
        answers = await asyncio.gather(*(send_to(a, "GET", FEED, headers) for a in addresses))
        assert sorted(status for status, _, _ in answers) == [200, 401]
        assert [b["code"] for status, _, b in answers if status == 401] == ["replayed_nonce"]


@PG_ONLY
async def test_the_rate_limit_holds_across_replicas(
    make_node: NodeFactory, add_replica: ReplicaFactory, clock: ManualClock
) -> None:
    """60 a minute: a burst of 6 (a tenth), then one a second, whichever replica answers.

    The clock stands still, so nothing refills between requests: of 6 + k
    requests exactly k are refused, though each replica got only half.
    """
    home, partner = await make_node("home", rate_limit_per_minute=60), await make_node("partner")
    await peer(partner, home)
    second = await add_replica(home)
    addresses = [home.url, second.address]
    clock.advance(minutes=1)  # peering used some of the bucket: full again

    statuses, waits = [], []
    for n in range(6 + 4):
        status, headers, _ = await send_to(
            addresses[n % 2], "GET", FEED, signed_feed_request(partner, home)
        )
        statuses.append(status)
        if status == 429:
            waits.append(int(headers["Retry-After"]))
    assert statuses == [200] * 6 + [429] * 4
    assert waits == [1] * 4  # one token a second

    clock.advance(seconds=1)  # one token more, for whoever asks first
    answers = await asyncio.gather(
        *(send_to(a, "GET", FEED, signed_feed_request(partner, home)) for a in addresses * 2)
    )
    assert Counter(status for status, _, _ in answers) == {200: 1, 429: 3}

    clock.advance(minutes=1)  # full again: a concurrent burst of 10 across both
    answers = await asyncio.gather(
        *(send_to(a, "GET", FEED, signed_feed_request(partner, home)) for a in addresses * 5)
    )
    assert Counter(status for status, _, _ in answers) == {200: 6, 429: 4}
