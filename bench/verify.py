"""Benchmark: the announcement ingest pipeline against raw Ed25519 verification.

Measures, in one run and on one core:

* ``verify_per_s``: raw Ed25519 verifications of a typical signing input
  (the ceiling: no pipeline can be faster than its signature check);
* ``pipeline_per_s``: :func:`protocol.ingest.ingest_announcement` on the
  raw bytes of one signed announcement: strict parse, pydantic validation,
  canonicalisation and verification;
* ``jsonschema_per_s``: jsonschema 2020-12 on the same object, for
  comparison only (it is not on the hot path).

Each figure is the median of several rounds.  The last line printed is one
JSON object with the figures; ``pipeline_to_verify_ratio`` has the target
``>= 0.6``.

Usage: ``python bench/verify.py [--smoke]`` (``--smoke``: a tiny size for CI).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema

from protocol.canonical import canonical_bytes, signable_part
from protocol.ingest import ingest_announcement
from protocol.keyring import PinnedKeys
from protocol.keys import SigningKey, decode_signature
from protocol.models import (
    Announcement,
    AnnouncementBody,
    CurrentKey,
    Endpoints,
    Host,
    Link,
    NodeDescriptor,
    NodeDescriptorBody,
    Seats,
    seal,
)
from protocol.signing import SIGNING_PREFIX

TARGET_RATIO = 0.6
ORIGIN = "lex.example.org"
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
SCHEMA = Path(__file__).resolve().parent.parent / "schemas" / "session_announcement.schema.json"


def _fixture() -> tuple[bytes, PinnedKeys, dict[str, object]]:
    key = SigningKey.generate()
    body = AnnouncementBody(
        type="session_announcement",
        origin=ORIGIN,
        id="lex-2026-0815",
        version=7,
        issued_at=NOW,
        title="KI-Prompting für Einsteiger",
        description="Wie formuliere ich gute Prompts? " * 25,
        format="impulse",
        languages=["de", "en"],
        start=NOW + timedelta(days=10),
        timezone="Europe/Berlin",
        duration_minutes=60,
        host=Host(display_name="Anna Schröder"),
        tags=["KI", "Prompting", "Einsteiger", "Werkzeuge"],
        seats=Seats(
            open=12, remaining=9, registration_mode="auto", waitlist=True, email_required=False
        ),
        status="scheduled",
        links=[
            Link(rel="details", href="https://openseats.lex.example.org/sessions/lex-2026-0815")
        ],
    )
    signed = seal(body, Announcement, ORIGIN, [key]).to_json_dict()
    descriptor = NodeDescriptor.model_validate(
        {
            **NodeDescriptorBody(
                type="node_descriptor",
                protocol="openseats/1",
                node_id=ORIGIN,
                display_name="LEX",
                base_url="https://openseats.lex.example.org",
                endpoints=Endpoints(
                    feed="https://openseats.lex.example.org/f",
                    inbox="https://openseats.lex.example.org/i",
                    peering="https://openseats.lex.example.org/p",
                    reservations="https://openseats.lex.example.org/r",
                ),
                keys=[CurrentKey(key_id=key.key_id, public_key=key.public_key_b64)],
                issued_at=NOW,
                valid_until=NOW + timedelta(days=7),
            ).to_json_dict(),
            "signatures": {ORIGIN: {key.key_id: "A" * 86}},
        }
    )
    return (
        json.dumps(signed, ensure_ascii=False).encode(),
        PinnedKeys.from_descriptor(descriptor),
        signed,
    )


def _rate(action: Callable[[], object], count: int, rounds: int) -> float:
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(count):
            action()
        rates.append(count / (time.perf_counter() - start))
    return statistics.median(rates)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny size, for CI")
    args = parser.parse_args()
    count, rounds = (200, 3) if args.smoke else (5000, 7)

    data, pinned, signed = _fixture()
    key = next(iter(pinned.current.values()))
    message = SIGNING_PREFIX + canonical_bytes(signable_part(signed))
    (signature_text,) = signed["signatures"][ORIGIN].values()  # type: ignore[index]
    signature = decode_signature(signature_text)
    validator = jsonschema.Draft202012Validator(
        json.loads(SCHEMA.read_text()),
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )

    ingest_announcement(
        data, resolver=pinned, expected_origin=ORIGIN
    )  # warm up, and check it works
    verify = _rate(lambda: key.verify(signature, message), count, rounds)
    pipeline = _rate(
        lambda: ingest_announcement(data, resolver=pinned, expected_origin=ORIGIN), count, rounds
    )
    schema_rate = _rate(lambda: validator.validate(signed), max(count // 10, 20), rounds)
    ratio = pipeline / verify
    print(f"announcement size          {len(data)} bytes")
    print(f"raw Ed25519 verify         {verify:10.0f} /s")
    print(f"ingest pipeline            {pipeline:10.0f} /s")
    print(f"jsonschema (not hot path)  {schema_rate:10.0f} /s")
    print(f"pipeline / verify          {ratio:10.2f}  (target >= {TARGET_RATIO})")
    result = {
        "announcement_bytes": len(data),
        "verify_per_s": round(verify),
        "pipeline_per_s": round(pipeline),
        "jsonschema_per_s": round(schema_rate),
        "pipeline_to_verify_ratio": round(ratio, 3),
        "target_ratio": TARGET_RATIO,
        "meets_target": ratio >= TARGET_RATIO,
        "smoke": args.smoke,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
