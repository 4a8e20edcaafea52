"""The OpenSeats wire protocol as a pure library.

``protocol`` is everything two OpenSeats nodes must agree on, and nothing
else: it imports neither aiohttp nor SQLAlchemy nor ``node`` (a test scans
the imports), so any tool or other implementation can reuse it.

Layers, from the bytes up:

``canonical``
    Strict JSON parsing (UTF-8, no duplicate keys, no floats, integers
    within ±(2^53-1)) and RFC 8785 canonical bytes.
``keys``
    Ed25519 keys, key ids, fingerprints people can read aloud, PEM files.
``signing``
    Object signatures: ``prefix || JCS(object minus signatures/unsigned)``,
    several signers and key ids, verification through an injected
    :class:`~protocol.signing.KeyResolver`.
``keyring``
    A peer's pinned keys, and the rules by which a new descriptor may
    change them (rotation needs a signature by a pinned key).
``httpsig``
    Request signatures: our RFC 9421 + RFC 9530 profile on top of the
    ``http-message-signatures`` library, with a replay-check hook.
``models``
    Frozen pydantic models of every message; ``schemas/`` is generated from
    them by ``python -m protocol.schemagen``.
``ingest``
    The hot path for received announcements: parse, validate, canonicalise,
    verify, in one call.
``errors``
    One typed exception per failure, each with a stable wire code:
    malformed input is 400, failed authentication is 401.

The normative text is ``protocol/SPEC.md``.
"""
