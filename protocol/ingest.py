"""The hot path for received announcements.

One call takes what a partner sent and returns a verified
:class:`~protocol.models.Announcement`, or raises a typed error:

1. strict parse (bytes only): UTF-8, no duplicate keys, no floats;
2. pydantic validation (strict mode, frozen models);
3. the origin must be the node we are talking to: a node never accepts,
   even relayed, another origin's session from a third party;
4. canonical bytes and Ed25519 verification with the origin as the only
   allowed signer, its key resolved as of ``issued_at``.

jsonschema is deliberately absent here: it is about twenty times slower
than pydantic and the test suite proves both agree on the contract.
"""

from __future__ import annotations

from typing import Any

from protocol.canonical import loads_object
from protocol.errors import OriginMismatch
from protocol.models import Announcement, parse
from protocol.signing import KeyResolver, verify_object


def verify_announcement(
    raw: dict[str, Any],
    *,
    resolver: KeyResolver,
    expected_origin: str | None = None,
    from_wire: bool = False,
) -> Announcement:
    """Validate and verify an already parsed announcement object.

    *from_wire* says that *raw* came from :func:`protocol.canonical.loads`,
    so it holds no floats or huge integers; with the model's closed member
    set, that is the whole signed-object profile and need not be re-checked.
    """
    announcement = parse(Announcement, raw)
    if expected_origin is not None and announcement.origin != expected_origin:
        raise OriginMismatch(
            f"announcement from {announcement.origin!r} arrived from {expected_origin!r}",
            field="origin",
        )
    verify_object(
        raw,
        signers={announcement.origin},
        resolver=resolver,
        at=announcement.issued_at,
        profile_checked=from_wire,
    )
    return announcement


def ingest_announcement(
    data: bytes, *, resolver: KeyResolver, expected_origin: str | None = None
) -> Announcement:
    """Parse, validate, canonicalise and verify one announcement from raw bytes."""
    return verify_announcement(
        loads_object(data), resolver=resolver, expected_origin=expected_origin, from_wire=True
    )
