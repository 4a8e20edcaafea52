"""Federation: talking to partner nodes.

``client``
    :class:`PeerClient` sends signed requests (RFC 9421, see
    :mod:`protocol.httpsig`) and fetches descriptors, with timeouts and body
    limits; every failure becomes a :class:`DeliveryError` with a kind that
    the outbox classifies.
``outbox``
    Every outbound message is an ``outbox`` row written in the transaction
    of the change that caused it.  The deliverer sends each peer's messages
    in order, one in flight per peer, and classifies failures as Synapse
    does: 401, 429, 5xx, timeouts and connection errors back off
    exponentially with jitter and are retried; any other 4xx goes to the
    dead letters that the admin sees.  A crash loses nothing: a row is
    marked sent only after the peer answered.
``peering``
    The closed-by-default peering handshake: fetch descriptor, compare the
    fingerprint the admin typed, send a signed request, wait for the other
    admin; suspend, resume and remove; descriptor refresh under the
    rotation rule.
"""
