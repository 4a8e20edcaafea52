"""Object signatures and the announcement ingest pipeline, including tampering."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from protocol.errors import (
    BadSignature,
    FloatNotAllowed,
    InvalidKeyName,
    MalformedSignature,
    MissingSignature,
    OriginMismatch,
    SchemaViolation,
    UnexpectedSigner,
    UnknownField,
    UnknownKey,
)
from protocol.ingest import ingest_announcement, verify_announcement
from protocol.keys import SigningKey
from protocol.signing import SIGNING_PREFIX, sign_object, signing_input, verify_object
from tests.protocol.conftest import NOW, ORIGIN, StaticResolver

Signed = Callable[..., dict[str, Any]]


def test_signed_announcement_verifies(make_signed: Signed, resolver: StaticResolver) -> None:
    raw = make_signed()
    announcement = ingest_announcement(
        json.dumps(raw).encode(), resolver=resolver, expected_origin=ORIGIN
    )
    assert announcement.title == "KI-Prompting für Einsteiger"
    assert announcement.signatures is not None


def test_signing_input_excludes_signatures_and_unsigned(make_signed: Signed) -> None:
    raw = make_signed()
    relayed = dict(raw, unsigned={"relayed_by": "kiwi.example.de"})
    assert signing_input(raw) == signing_input(relayed)
    assert signing_input(raw).startswith(SIGNING_PREFIX + b'{"description":')


def test_relay_data_under_unsigned_keeps_it_valid(
    make_signed: Signed, resolver: StaticResolver
) -> None:
    raw = make_signed()
    raw["unsigned"] = {"relayed_by": "kiwi.example.de", "hops": 2}
    verify_announcement(raw, resolver=resolver, expected_origin=ORIGIN)


def test_several_signers_and_keys(key: SigningKey, other_key: SigningKey) -> None:
    obj = {"type": "note", "text": "hallo"}
    signed = sign_object(obj, "a.example.org", [key, other_key])
    signed = sign_object(signed, "b.example.org", [other_key])
    resolver = StaticResolver(
        {
            ("a.example.org", key.key_id): key.public_key,
            ("a.example.org", other_key.key_id): other_key.public_key,
            ("b.example.org", other_key.key_id): other_key.public_key,
        }
    )
    verified = verify_object(
        signed, signers={"a.example.org", "b.example.org"}, resolver=resolver, at=NOW
    )
    assert len(verified) == 3
    with pytest.raises(MissingSignature):
        verify_object(
            sign_object(obj, "a.example.org", [key]),
            signers={"a.example.org", "b.example.org"},
            resolver=resolver,
            at=NOW,
        )


# --- missing, extra, reordered signatures --------------------------------


def test_missing_signatures_member(make_signed: Signed, resolver: StaticResolver) -> None:
    raw = make_signed()
    del raw["signatures"]
    with pytest.raises(SchemaViolation):
        verify_announcement(raw, resolver=resolver)
    with pytest.raises(MissingSignature):
        verify_object(raw, signers={ORIGIN}, resolver=resolver, at=NOW)


def test_empty_signatures(make_signed: Signed, resolver: StaticResolver) -> None:
    raw = make_signed()
    raw["signatures"] = {}
    with pytest.raises(MalformedSignature):
        verify_object(raw, signers={ORIGIN}, resolver=resolver, at=NOW)


def test_signature_of_the_wrong_length(make_signed: Signed, resolver: StaticResolver) -> None:
    raw = make_signed()
    (key_id,) = raw["signatures"][ORIGIN]
    raw["signatures"][ORIGIN][key_id] = raw["signatures"][ORIGIN][key_id][:-4]
    with pytest.raises(MalformedSignature):
        verify_object(raw, signers={ORIGIN}, resolver=resolver, at=NOW)


def test_extra_signer_is_rejected(
    make_signed: Signed, resolver: StaticResolver, other_key: SigningKey
) -> None:
    raw = sign_object(make_signed(), "evil.example.net", [other_key])
    with pytest.raises(UnexpectedSigner):
        verify_announcement(raw, resolver=resolver)


def test_extra_unknown_key_under_the_right_signer_is_rejected(
    make_signed: Signed, resolver: StaticResolver, other_key: SigningKey
) -> None:
    raw = sign_object(make_signed(), ORIGIN, [other_key])
    with pytest.raises(UnknownKey):
        verify_announcement(raw, resolver=resolver)


def test_reordered_signatures_fail(
    make_signed: Signed, key: SigningKey, other_key: SigningKey
) -> None:
    raw = sign_object(make_signed(), ORIGIN, [other_key])
    sigs = raw["signatures"][ORIGIN]
    first, second = list(sigs)
    sigs[first], sigs[second] = sigs[second], sigs[first]
    resolver = StaticResolver(
        {(ORIGIN, key.key_id): key.public_key, (ORIGIN, other_key.key_id): other_key.public_key}
    )
    with pytest.raises(BadSignature):
        verify_announcement(raw, resolver=resolver)


def test_signature_from_another_object_fails(make_signed: Signed, resolver: StaticResolver) -> None:
    one, two = make_signed(version=1), make_signed(version=2)
    one["signatures"] = two["signatures"]
    with pytest.raises(BadSignature):
        verify_announcement(one, resolver=resolver)


def test_unknown_key_id(make_signed: Signed, other_key: SigningKey) -> None:
    resolver = StaticResolver({(ORIGIN, other_key.key_id): other_key.public_key})
    with pytest.raises(UnknownKey):
        verify_announcement(make_signed(), resolver=resolver)


def test_key_of_the_right_id_but_wrong_material(
    make_signed: Signed, key: SigningKey, other_key: SigningKey
) -> None:
    resolver = StaticResolver({(ORIGIN, key.key_id): other_key.public_key})
    with pytest.raises(BadSignature):
        verify_announcement(make_signed(), resolver=resolver)


# --- tampering: one test per field class ---------------------------------

TAMPERS: dict[str, Callable[[dict[str, Any]], None]] = {
    "string": lambda o: o.__setitem__("title", o["title"] + "!"),
    "unicode": lambda o: o.__setitem__("title", o["title"].replace("ü", "u")),
    "integer": lambda o: o.__setitem__("duration_minutes", 90),
    "version": lambda o: o.__setitem__("version", o["version"] + 1),
    "boolean": lambda o: o["seats"].__setitem__("waitlist", not o["seats"]["waitlist"]),
    "enum": lambda o: o.__setitem__("format", "workshop"),
    "timestamp": lambda o: o.__setitem__("start", "2026-12-03T11:00:00+01:00"),
    "nested": lambda o: o["host"].__setitem__("display_name", "Mallory"),
    "list_item": lambda o: o["tags"].__setitem__(0, "Krypto"),
    "list_order": lambda o: o["tags"].reverse(),
    "list_append": lambda o: o["tags"].append("neu"),
    "optional_added": lambda o: o.__setitem__(
        "links", [{"rel": "details", "href": "https://evil.example.net/"}]
    ),
    "seats": lambda o: o["seats"].__setitem__("remaining", 0),
}


@pytest.mark.parametrize("tamper", sorted(TAMPERS))
def test_tampered_field_fails(tamper: str, make_signed: Signed, resolver: StaticResolver) -> None:
    raw = make_signed()
    tampered = copy.deepcopy(raw)
    TAMPERS[tamper](tampered)
    assert tampered != raw
    with pytest.raises(BadSignature):
        verify_announcement(tampered, resolver=resolver)


def test_whitespace_and_member_order_do_not_matter(
    make_signed: Signed, resolver: StaticResolver
) -> None:
    raw = make_signed()
    reordered = dict(reversed(list(raw.items())))
    data = json.dumps(reordered, indent=4, ensure_ascii=True).encode()
    ingest_announcement(data, resolver=resolver)


# --- origin ---------------------------------------------------------------


def test_origin_must_be_the_peer_we_fetched_from(
    make_signed: Signed, resolver: StaticResolver
) -> None:
    with pytest.raises(OriginMismatch):
        verify_announcement(make_signed(), resolver=resolver, expected_origin="kiwi.example.de")


def test_signer_must_equal_origin(key: SigningKey, make_signed: Signed) -> None:
    # kiwi signs an announcement claiming lex as origin: the signature is valid
    # for kiwi's key, but kiwi is not an allowed signer of a lex session.
    raw = make_signed()
    del raw["signatures"]
    forged = sign_object(raw, "kiwi.example.de", [key])
    resolver = StaticResolver({("kiwi.example.de", key.key_id): key.public_key})
    with pytest.raises(UnexpectedSigner):
        verify_announcement(forged, resolver=resolver)


# --- profile violations inside signed objects ----------------------------


def test_float_inside_a_signed_object(make_signed: Signed, resolver: StaticResolver) -> None:
    raw = make_signed()
    data = json.dumps(raw).replace('"duration_minutes": 60', '"duration_minutes": 60.0')
    with pytest.raises(FloatNotAllowed):
        ingest_announcement(data.encode(), resolver=resolver)


def test_non_snake_case_key_cannot_be_signed(key: SigningKey) -> None:
    with pytest.raises(InvalidKeyName):
        sign_object({"sessionTitle": "x"}, ORIGIN, [key])


def test_unknown_field_is_rejected_before_verification(
    make_signed: Signed, resolver: StaticResolver
) -> None:
    raw = make_signed()
    raw["join_url"] = "https://meet.example.org/secret"
    with pytest.raises(UnknownField) as info:
        verify_announcement(raw, resolver=resolver)
    assert info.value.field == "join_url"


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("duration_minutes", "60"),
        ("duration_minutes", True),
        ("duration_minutes", 0),
        ("duration_minutes", 481),
        ("version", 0),
        ("languages", "de"),
        ("timezone", "Europe/Bärlin"),
        ("timezone", "Mars/Olympus_Mons"),
        ("start", "2026-12-03 10:00"),
        ("start", "2026-12-03T10:00:00"),
        ("status", "maybe"),
        ("title", ""),
    ],
)
def test_wrong_types_and_values(
    member: str, value: Any, make_signed: Signed, resolver: StaticResolver
) -> None:
    raw = make_signed()
    raw[member] = value
    with pytest.raises(SchemaViolation) as info:
        verify_announcement(raw, resolver=resolver)
    assert str(info.value.field).startswith(member)


def test_remaining_cannot_exceed_open(make_signed: Signed, resolver: StaticResolver) -> None:
    raw = make_signed()
    raw["seats"] = dict(raw["seats"], remaining=11)
    with pytest.raises(SchemaViolation):
        verify_announcement(raw, resolver=resolver)


def _open_objects(schema: Any, path: str = "") -> list[str]:
    """Paths of schema objects that admit members they do not declare."""
    found = []
    if isinstance(schema, dict):
        if schema.get("type") == "object" and schema.get("additionalProperties") is not False:
            found.append(path)
        for name, child in schema.items():
            found.extend(_open_objects(child, f"{path}/{name}"))
    elif isinstance(schema, list):
        for index, child in enumerate(schema):
            found.extend(_open_objects(child, f"{path}/{index}"))
    return found


def test_wire_parsed_announcements_need_no_second_profile_walk() -> None:
    # ingest skips check_signable for objects from the strict parser. That is
    # sound only while every object in the signed part is closed (no free-form
    # member names); only "unsigned" and the signature map may be open.
    from protocol.models import Announcement, NodeDescriptor

    for model in (Announcement, NodeDescriptor):
        schema = model.model_json_schema()
        open_paths = _open_objects(schema)
        assert all("/signatures" in p or "/unsigned" in p for p in open_paths), open_paths


def test_feed_item_id_must_equal_data_id(make_signed: Signed) -> None:
    from protocol.models import FeedPage, parse

    item = {"state": "updated", "kind": "OpenSeatsSession", "id": "other", "modified": 1}
    page = {"items": [dict(item, data=make_signed())], "next": "https://a.example.org/f"}
    with pytest.raises(SchemaViolation):
        parse(FeedPage, page)


def test_peering_request_requester_must_be_the_descriptor_node() -> None:
    import json as _json
    from pathlib import Path

    from protocol.models import PeeringRequest, parse

    path = Path(__file__).resolve().parents[2] / "schemas/examples/peering_request"
    request = _json.loads((path / "valid-datev-to-lex.json").read_text())
    parse(PeeringRequest, request)
    request["requester"] = "kiwi.example.de"
    with pytest.raises(SchemaViolation):
        parse(PeeringRequest, request)
