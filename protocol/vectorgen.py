"""Generate the protocol's own test vectors in ``schemas/vectors/``.

Usage::

    python -m protocol.vectorgen            # write schemas/vectors/
    python -m protocol.vectorgen --check    # exit 1 if they differ

Everything is deterministic: the key comes from a published seed (it is a
test key, like the RFC 8032 ones, and must never sign anything real),
Ed25519 signatures are deterministic, and the request nonce and clock are
fixed.  Other implementations check their signing code against these files.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from protocol.canonical import canonical_bytes, signable_part
from protocol.httpsig import Message, sign_request, signature_base
from protocol.keyring import sign_descriptor
from protocol.keys import SigningKey
from protocol.models import (
    Announcement,
    AnnouncementBody,
    CurrentKey,
    Endpoints,
    Host,
    Link,
    NodeDescriptorBody,
    Seats,
    seal,
)
from protocol.signing import SIGNING_PREFIX

DEFAULT_DIR = Path(__file__).resolve().parent.parent / "schemas" / "vectors"
TEST_SEED = hashlib.sha256(b"OpenSeats test vector key 1 - never use for real").digest()
NODE_ID = "lex.example.org"
BASE_URL = "https://openseats.lex.example.org"
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def test_key() -> SigningKey:
    return SigningKey.from_seed(TEST_SEED)


def _announcement_bodies() -> list[AnnouncementBody]:
    seats = Seats(
        open=12, remaining=9, registration_mode="auto", waitlist=True, email_required=False
    )
    first = AnnouncementBody(
        type="session_announcement",
        origin=NODE_ID,
        id="lex-2026-0815",
        version=3,
        issued_at=NOW,
        title="KI-Prompting für Einsteiger",
        description="Ein 60-minütiger Impuls: Wie formuliere ich gute Prompts? "
        "Mit Beispielen aus dem Alltag, \"Do's & Don'ts\" und Zeit für Fragen.",
        format="impulse",
        languages=["de"],
        start=datetime.fromisoformat("2026-12-03T10:00:00+01:00"),
        timezone="Europe/Berlin",
        duration_minutes=60,
        host=Host(display_name="Anna Schröder"),
        tags=["KI", "Prompting", "Einsteiger"],
        seats=seats,
        status="scheduled",
        links=[Link(rel="details", href=f"{BASE_URL}/sessions/lex-2026-0815")],
    )
    second = AnnouncementBody(
        type="session_announcement",
        origin=NODE_ID,
        id="lex-2026-0901",
        version=1,
        issued_at=NOW,
        title="AMA: Agiles Arbeiten in der Verwaltung",
        description="Zeilen\nmit Umbruch, Tab\t und Steuerzeichen \u0001 sowie Emoji 🎓.",
        format="ama",
        languages=["de", "en"],
        start=datetime.fromisoformat("2027-01-14T15:30:00+01:00"),
        timezone="Europe/Berlin",
        duration_minutes=30,
        host=Host(display_name="Dr. Jürgen Weiß"),
        seats=Seats(
            open=5, remaining=0, registration_mode="approval", waitlist=False, email_required=True
        ),
        status="cancelled",
    )
    return [first, second]


def announcement_vectors(key: SigningKey) -> list[dict[str, Any]]:
    vectors = []
    for body in _announcement_bodies():
        signed = seal(body, Announcement, NODE_ID, [key]).to_json_dict()
        canonical = canonical_bytes(signable_part(signed))
        vectors.append(
            {
                "object": body.to_json_dict(),
                "canonical": canonical.decode("utf-8"),
                "signing_input_hex": (SIGNING_PREFIX + canonical).hex(),
                "signature": signed["signatures"][NODE_ID][key.key_id],
                "signed_object": signed,
            }
        )
    return vectors


def descriptor_vector(key: SigningKey) -> dict[str, Any]:
    body = NodeDescriptorBody(
        type="node_descriptor",
        protocol="openseats/1",
        node_id=NODE_ID,
        display_name="LEX – Lernen im Netzwerk",
        base_url=BASE_URL,
        endpoints=Endpoints(
            feed=f"{BASE_URL}/protocol/v1/feed",
            inbox=f"{BASE_URL}/protocol/v1/inbox",
            peering=f"{BASE_URL}/protocol/v1/peering",
            reservations=f"{BASE_URL}/protocol/v1/reservations",
        ),
        keys=[CurrentKey(key_id=key.key_id, public_key=key.public_key_b64)],
        issued_at=NOW,
        valid_until=NOW + timedelta(days=7),
    )
    return sign_descriptor(body, [key]).to_json_dict()


def request_vectors(key: SigningKey) -> list[dict[str, Any]]:
    body = json.dumps(
        {
            "type": "feed_changed",
            "sender": NODE_ID,
            "issued_at": "2026-11-23T09:00:00Z",
            "change": 42,
        },
        separators=(",", ":"),
    ).encode()
    cases = [
        (
            "POST",
            "https://openseats.datev.example.com/protocol/v1/inbox",
            body,
            "nonce-vector-0001",
        ),
        (
            "GET",
            "https://openseats.datev.example.com/protocol/v1/feed?afterChangeNumber=41",
            b"",
            "nonce-vector-0002",
        ),
    ]
    vectors = []
    for method, url, content, nonce in cases:
        headers = sign_request(method=method, url=url, body=content, key=key, now=NOW, nonce=nonce)
        message = Message(method, url)
        for name, value in headers:
            message.headers[name] = value
        member = dict(headers)["Signature-Input"].removeprefix("openseats=")
        base = signature_base(message, member)
        vectors.append(
            {
                "method": method,
                "url": url,
                "body": content.decode("utf-8"),
                "created": int(NOW.timestamp()),
                "nonce": nonce,
                "headers": [list(pair) for pair in headers],
                "signature_base": base.decode("ascii"),
            }
        )
    return vectors


def render_all() -> dict[str, str]:
    key = test_key()
    files = {
        "key.json": {
            "warning": "TEST KEY - published on purpose; never use it for a real node",
            "seed_hex": TEST_SEED.hex(),
            "public_key": key.public_key_b64,
            "key_id": key.key_id,
            "fingerprint": key.fingerprint,
            "node_id": NODE_ID,
        },
        "announcements.json": announcement_vectors(key),
        "descriptor.json": descriptor_vector(key),
        "requests.json": request_vectors(key),
    }
    return {
        name: json.dumps(content, indent=2, ensure_ascii=False) + "\n"
        for name, content in files.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m protocol.vectorgen", description=__doc__)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    args = parser.parse_args(argv)
    stale = []
    args.dir.mkdir(parents=True, exist_ok=True)
    for name, text in render_all().items():
        path = args.dir / name
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print("vectors out of date: " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
