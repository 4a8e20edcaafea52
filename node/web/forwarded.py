"""Who is the client, when the node sits behind a reverse proxy.

Behind nginx every TCP connection comes from the proxy, so
``request.remote`` is the proxy's address and a limit per client address
(the admin login's, :mod:`node.ui.login`) would count everyone together.
The proxy names the client in ``X-Forwarded-For``; each proxy on the way
appends the address it saw, so the header reads ``client, proxy1, proxy2``
and the TCP peer is the last proxy.

Anyone can send that header, so it is believed only as far as the chain of
proxies the operator listed in ``trusted_proxies``: if the TCP peer is one
of them, the entries are read from the right, skipping every address that
is itself a trusted proxy, and the first one that is not is the client.
Entries further left were written by the client (or by proxies we know
nothing about) and are never used, so a spoofed ``X-Forwarded-For:
1.2.3.4`` from an untrusted peer, or prepended to the header by the
client, changes nothing.  An entry that is not an address stops the walk
at the nearest trusted hop.  With no ``trusted_proxies`` (the default) the
header is ignored entirely and the TCP peer is the client.

``X-Forwarded-Proto`` and ``Host`` are not needed: the node builds every
URL it signs or hands out from its configured ``base_url``.  The RFC 7239
``Forwarded`` header is not read either; nginx sends ``X-Forwarded-For``.

The address is used for rate limits only.  It is never written to the
node's own access log (:mod:`node.web.access_log`): an IP address is
personal data, and the proxy's log already has it under the operator's
retention rules.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from aiohttp import web

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
UNKNOWN = "unknown"


def parse_address(raw: str) -> Address | None:
    """An address from a header entry or peer name (``1.2.3.4``, ``1.2.3.4:80``, ``[::1]:80``)."""
    text = raw.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: Address, proxies: Sequence[Network]) -> bool:
    return any(address.version == net.version and address in net for net in proxies)


def forwarded_chain(request: web.BaseRequest) -> list[str]:
    """Every ``X-Forwarded-For`` entry, left to right, over all header lines."""
    return [
        part.strip()
        for line in request.headers.getall("X-Forwarded-For", [])
        for part in line.split(",")
        if part.strip()
    ]


def client_address(request: web.BaseRequest, proxies: Sequence[Network]) -> str:
    """The client's address as text: the TCP peer, or whom trusted proxies name."""
    peer = parse_address(request.remote or "")
    if peer is None:
        return request.remote or UNKNOWN
    if not _trusted(peer, proxies):
        return str(peer)
    nearest = peer
    for entry in reversed(forwarded_chain(request)):
        hop = parse_address(entry)
        if hop is None:
            break
        if not _trusted(hop, proxies):
            return str(hop)
        nearest = hop
    return str(nearest)
