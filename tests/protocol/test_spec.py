"""SPEC.md agrees with the code: error table, worked examples, enums, schema list.

The worked examples are fenced code blocks preceded by an HTML comment
``<!-- vector:NAME -->``; the error table lies between
``<!-- error-table:start -->`` and ``<!-- error-table:end -->``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, get_args

import pytest

from protocol.canonical import canonical_bytes
from protocol.errors import ProtocolError, all_error_classes
from protocol.keys import SigningKey, b64url_decode, public_key_from_b64, verify_raw
from protocol.models.reservation import RejectReason
from protocol.signing import SIGNING_PREFIX

ROOT = Path(__file__).resolve().parents[2]
SPEC_PATH = ROOT / "protocol" / "SPEC.md"
VECTORS = ROOT / "schemas" / "vectors"

#: Codes a node answers with that the protocol library does not raise (SPEC.md §10).
NODE_CODES = {
    "invalid_query": 400,
    "not_peer": 403,
    "peer_suspended": 403,
    "not_found": 404,
    "unknown_reservation": 404,
    "reservation_conflict": 409,
    "peering_conflict": 409,
    "stale_version": 409,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "rate_limited": 429,
    "internal_error": 500,
    "unavailable": 503,
}
LIBRARY_CODES = {cls.code: cls.status for cls in all_error_classes()}

_TABLE = re.compile(r"<!-- error-table:start -->\n(.*?)<!-- error-table:end -->", re.S)
_ROW = re.compile(r"^\|\s*`([a-z][a-z0-9_]*)`\s*\|\s*(\d{3})\s*\|")


@pytest.fixture(scope="module")
def spec() -> str:
    return SPEC_PATH.read_text(encoding="utf-8")


def _vector(name: str) -> Any:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


def marked_block(text: str, name: str) -> str:
    """The content of the one fenced block right after ``<!-- vector:NAME -->``."""
    pattern = re.compile(rf"<!-- vector:{re.escape(name)} -->\n```[^\n]*\n(.*?)\n```\n", re.S)
    found = pattern.findall(text)
    assert len(found) == 1, f"expected one block marked vector:{name}, found {len(found)}"
    return str(found[0])


def error_table(text: str) -> dict[str, int]:
    """Code -> status from SPEC.md's error table; a code listed twice is an error."""
    match = _TABLE.search(text)
    assert match, "SPEC.md has no error table between error-table markers"
    table: dict[str, int] = {}
    for line in match.group(1).splitlines():
        row = _ROW.match(line)
        if row:
            code, status = row.group(1), int(row.group(2))
            assert code not in table, f"{code} appears twice in the error table"
            table[code] = status
    return table


def table_problems(text: str, expected: dict[str, int]) -> list[str]:
    table = error_table(text)
    problems = [
        f"{code}: missing" if code not in table else f"{code}: {table[code]} != {status}"
        for code, status in expected.items()
        if table.get(code) != status
    ]
    problems += [f"{code}: not a known code" for code in table.keys() - expected.keys()]
    return problems


def section(text: str, number: int) -> str:
    match = re.search(rf"^## {number}\. .*?(?=^## {number + 1}\. |\Z)", text, re.S | re.M)
    assert match, f"SPEC.md has no section {number}"
    return match.group(0)


# --- structure ----------------------------------------------------------------


def test_sections_are_numbered_one_to_fourteen(spec: str) -> None:
    numbers = [int(n) for n in re.findall(r"^## (\d+)\. ", spec, re.M)]
    assert numbers == list(range(1, 15))


# --- error table ----------------------------------------------------------------


@pytest.mark.parametrize("cls", all_error_classes(), ids=lambda cls: cls.code)
def test_every_library_error_is_in_the_table(spec: str, cls: type[ProtocolError]) -> None:
    assert error_table(spec).get(cls.code) == cls.status, f"{cls.code} missing or wrong"


@pytest.mark.parametrize(("code", "status"), sorted(NODE_CODES.items()))
def test_every_node_error_is_in_the_table(spec: str, code: str, status: int) -> None:
    assert error_table(spec).get(code) == status


def test_the_table_lists_no_other_codes(spec: str) -> None:
    assert table_problems(spec, LIBRARY_CODES | NODE_CODES) == []


def test_the_table_check_notices_a_missing_or_wrong_row(spec: str) -> None:
    without = re.sub(r"^\| `bad_signature` \|.*\n", "", spec, flags=re.M)
    assert table_problems(without, LIBRARY_CODES | NODE_CODES) == ["bad_signature: missing"]
    wrong = spec.replace("| `unknown_key` | 401 |", "| `unknown_key` | 403 |")
    assert table_problems(wrong, LIBRARY_CODES | NODE_CODES) == ["unknown_key: 403 != 401"]


def test_node_codes_do_not_shadow_library_codes() -> None:
    assert not NODE_CODES.keys() & LIBRARY_CODES.keys()


# --- worked example of §2 and §3 ------------------------------------------------


def test_example_key_matches_key_vector(spec: str) -> None:
    key = _vector("key.json")
    lines = dict(line.split(maxsplit=1) for line in marked_block(spec, "key").splitlines())
    derived = SigningKey.from_seed(bytes.fromhex(lines["seed_hex"]))
    assert lines["seed_hex"] == key["seed_hex"]
    assert lines["public_key"] == key["public_key"] == derived.public_key_b64
    assert lines["key_id"] == key["key_id"] == derived.key_id
    assert lines["fingerprint"] == key["fingerprint"] == derived.fingerprint


def test_example_object_matches_vector(spec: str) -> None:
    vector = _vector("announcements.json")[0]
    assert json.loads(marked_block(spec, "object")) == vector["object"]


def test_example_canonical_text_matches_vector(spec: str) -> None:
    vector = _vector("announcements.json")[0]
    text = marked_block(spec, "canonical")
    assert text == vector["canonical"]
    assert text.encode("utf-8") == canonical_bytes(vector["object"])


def test_example_signing_input_matches_vector(spec: str) -> None:
    vector = _vector("announcements.json")[0]
    joined = "".join(marked_block(spec, "signing-input-hex").split())
    assert joined == vector["signing_input_hex"]
    assert bytes.fromhex(joined) == SIGNING_PREFIX + vector["canonical"].encode("utf-8")


def test_example_signature_matches_vector_and_verifies(spec: str) -> None:
    vector = _vector("announcements.json")[0]
    key = _vector("key.json")
    signature = marked_block(spec, "signature").strip()
    assert signature == vector["signature"]
    assert vector["signed_object"]["signatures"][key["node_id"]][key["key_id"]] == signature
    verify_raw(
        public_key_from_b64(key["public_key"]),
        b64url_decode(signature, length=64),
        bytes.fromhex(vector["signing_input_hex"]),
    )


# --- worked example of §4 ---------------------------------------------------------


def test_request_signature_base_matches_vector(spec: str) -> None:
    vector = _vector("requests.json")[0]
    assert vector["method"] == "POST"
    assert marked_block(spec, "signature-base") == vector["signature_base"]


def test_get_request_signature_base_matches_vector(spec: str) -> None:
    vector = _vector("requests.json")[1]
    assert vector["method"] == "GET"
    assert marked_block(spec, "signature-base-get") == vector["signature_base"]


def test_request_example_carries_the_vector_headers_and_body(spec: str) -> None:
    vector = _vector("requests.json")[0]
    lines = marked_block(spec, "request").split("\n")
    for name, value in vector["headers"]:
        assert f"{name}: {value}" in lines
    assert lines[-1] == vector["body"]


# --- enums and files named in the text ---------------------------------------------


@pytest.mark.parametrize("reason", get_args(RejectReason))
def test_every_reject_reason_is_explained(spec: str, reason: str) -> None:
    assert re.search(rf"^\| `{reason}` \| ", section(spec, 9), re.M), reason


@pytest.mark.parametrize("path", sorted((ROOT / "schemas").glob("*.schema.json")), ids=str)
def test_every_schema_file_is_listed(spec: str, path: Path) -> None:
    schema_id = json.loads(path.read_text(encoding="utf-8"))["$id"]
    listing = section(spec, 14)
    assert f"`{path.name}`" in listing
    assert f"`{schema_id}`" in listing
