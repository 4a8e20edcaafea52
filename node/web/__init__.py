"""HTTP interfaces of the node.

``errors``
    One middleware turns every expected failure into the JSON error body of
    SPEC.md §10 (``{"code", "message", "field"}``) with its status; nothing
    expected ever reaches the client as a stack trace or an HTML page.  A
    second one refuses NUL characters in API paths and queries.
``protocol_auth``
    Verifies the RFC 9421 signature of every ``/protocol/v1/*`` request
    against pinned peer keys, stores its nonce, enforces the body limit and
    a per-peer rate limit, and checks the peering state.
``protocol_routes``
    What partners call: the descriptor, the RPDE feed, peering.
``admin_api``
    ``/admin/api/v1``: sessions, opening, imports, peers, tokens; bearer
    tokens with the ``admin`` role.
``openapi_route``
    ``GET /api/v1/openapi.yaml``: the contract of ``/api/v1`` and
    ``/admin/api/v1`` (``openapi.yaml`` beside it, linked from ``docs/``),
    which tests check against the routes and fuzz a running node with.
"""
