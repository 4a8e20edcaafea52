"""Published test vectors: RFC 8032 §7.1, RFC 8785, RFC 9421 Appendix B.2.6.

See ``tests/published_vectors/README.md`` for where each file comes from.
"""

from __future__ import annotations

import json
import struct
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from protocol.canonical import canonical_bytes, jcs, loads
from protocol.errors import FloatNotAllowed, MalformedError
from protocol.httpsig import Headers, Message, check_digest, signature_base
from protocol.keys import SigningKey, verify_raw

DATA = Path(__file__).resolve().parents[1] / "published_vectors"


def _load(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


RFC8032 = _load("rfc8032_ed25519.json")
RFC8785 = _load("rfc8785_jcs.json")
B26 = _load("rfc9421_b26.json")


@pytest.mark.parametrize("vector", RFC8032, ids=[v["name"] for v in RFC8032])
def test_rfc8032_ed25519(vector: dict[str, str]) -> None:
    key = SigningKey.from_seed(bytes.fromhex(vector["secret_key"]))
    assert key.public_key.public_bytes_raw().hex() == vector["public_key"]
    message = bytes.fromhex(vector["message"])
    assert key.sign(message).hex() == vector["signature"]
    public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(vector["public_key"]))
    verify_raw(public, bytes.fromhex(vector["signature"]), message)


@pytest.mark.parametrize("vector", RFC8785["objects"], ids=lambda v: v["name"])
def test_rfc8785_objects(vector: dict[str, str]) -> None:
    value = json.loads(vector["input_json"])
    assert jcs(value).hex() == vector["canonical_hex"]
    assert rfc8785.dumps(value).hex() == vector["canonical_hex"]


def test_rfc8785_example_without_numbers_matches_our_fast_path() -> None:
    # Our profile has no floats, so drop the numbers array of the §3.2.2
    # example: the string and literal members must come out byte-identical.
    vector = next(v for v in RFC8785["objects"] if "numbers" in v["input_json"])
    value = json.loads(vector["input_json"])
    del value["numbers"]
    assert canonical_bytes(value) == jcs(value)
    # ... and our strict parser refuses the original, floats and all.
    with pytest.raises(FloatNotAllowed):
        loads(vector["input_json"])


@pytest.mark.parametrize("sample", RFC8785["numbers"], ids=lambda s: s["ieee754_hex"])
def test_rfc8785_numbers(sample: dict[str, str]) -> None:
    (number,) = struct.unpack(">d", bytes.fromhex(sample["ieee754_hex"]))
    assert jcs(number).decode() == sample["expected"]


@pytest.mark.parametrize("bits", RFC8785["invalid_numbers"])
def test_rfc8785_invalid_numbers(bits: str) -> None:
    (number,) = struct.unpack(">d", bytes.fromhex(bits))
    with pytest.raises(MalformedError):
        jcs(number)


def _b26_message() -> Message:
    request = B26["request"]
    message = Message(request["method"], request["url"], Headers(request["headers"]))
    message.headers["Signature-Input"] = B26["signature_input"]
    message.headers["Signature"] = B26["signature"]
    return message


def test_rfc9421_b26_signature_base() -> None:
    member = B26["signature_input"].split("=", 1)[1]
    assert signature_base(_b26_message(), member).decode() == B26["signature_base"]


def test_rfc9421_b26_signature_verifies_and_is_reproduced() -> None:
    public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(B26["public_key_hex"]))
    base = B26["signature_base"].encode("ascii")
    verify_raw(public, bytes.fromhex(B26["signature_hex"]), base)
    key = SigningKey.from_seed(bytes.fromhex(B26["private_key_hex"]))
    assert key.sign(base).hex() == B26["signature_hex"]


def test_rfc9421_b26_content_digest() -> None:
    request = B26["request"]
    check_digest(Headers(request["headers"]), request["body"].encode())


def test_rfc9421_b26_is_not_our_profile() -> None:
    # The RFC's request covers other components and has no nonce or tag; our
    # profile must refuse it rather than accept a weaker signature.
    from protocol.errors import InvalidSignatureParameters
    from protocol.httpsig import parse_signature

    message = _b26_message()
    message.headers["Signature-Input"] = B26["signature_input"].replace("sig-b26", "openseats")
    message.headers["Signature"] = B26["signature"].replace("sig-b26", "openseats")
    with pytest.raises(InvalidSignatureParameters):
        parse_signature(message.headers, has_body=True)
    assert datetime.fromtimestamp(B26["created"], UTC).year == 2021
