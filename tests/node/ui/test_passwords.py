"""scrypt hashes and the account rules (no database needed)."""

from __future__ import annotations

import pytest

from node.ui.accounts import AccountError, check_password, check_username
from node.ui.passwords import hash_password, verify_password


def test_a_hash_describes_itself_and_verifies() -> None:
    stored = hash_password("Lange-sichere-Passphrase-7")
    scheme, params, salt, key = stored.split("$")
    assert (scheme, params) == ("scrypt", "n=32768,r=8,p=1")
    assert len(salt) == 22
    assert len(key) == 43
    assert verify_password("Lange-sichere-Passphrase-7", stored)
    assert not verify_password("lange-sichere-passphrase-7", stored)
    assert hash_password("Lange-sichere-Passphrase-7") != stored  # a fresh salt each time


def test_tampered_and_foreign_hashes_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from node.ui import passwords

    monkeypatch.setattr(passwords, "N", 2**10)
    stored = hash_password("richtig-richtig")
    scheme, params, salt, key = stored.split("$")
    flipped = ("B" if key[0] == "A" else "A") + key[1:]
    assert verify_password("richtig-richtig", stored)
    assert not verify_password("richtig-richtig", "$".join([scheme, params, salt, flipped]))
    assert not verify_password("richtig-richtig", "$".join([scheme, params, "A" * 22, key]))
    # the stored parameters are the ones used, within bounds
    assert not verify_password("richtig-richtig", stored.replace("n=1024", "n=2048"))
    assert not verify_password("richtig-richtig", stored.replace("n=1024", "n=1000"))
    assert not verify_password("richtig-richtig", stored.replace("n=1024", "n=4194304"))
    for broken in ("", "plain", "bcrypt$2b$12$abc", stored + "$x"):
        assert not verify_password("richtig-richtig", broken)
    assert not verify_password("richtig-richtig", None)  # no such user


@pytest.mark.parametrize(
    ("password", "key"),
    [
        ("", "form.required"),
        ("kurz-7", "account.password_short"),
        ("aaaaaaaaaaaaaaaa", "account.password_weak"),
        ("abababababababab", "account.password_weak"),
        ("Passwort1234", "account.password_weak"),
        ("anna-ist-die-beste", "account.password_has_username"),
        ("x" * 1025, "account.password_long"),
    ],
)
def test_weak_passwords_are_refused(password: str, key: str) -> None:
    with pytest.raises(AccountError) as info:
        check_password(password, "anna")
    assert (info.value.field, info.value.message.key) == ("password", key)


def test_good_passwords_and_usernames_pass() -> None:
    check_password("Lange-sichere-Passphrase-7", "anna")
    check_password("vier zufällige wörter hier", "anna")
    assert check_username("  Anna.Schmidt@LEX ") == "anna.schmidt@lex"


@pytest.mark.parametrize("username", ["", " ", "a", "-anna", "anna schmidt", "änna", "x" * 65])
def test_bad_usernames_are_refused(username: str) -> None:
    with pytest.raises(AccountError) as info:
        check_username(username)
    assert info.value.field == "username"
