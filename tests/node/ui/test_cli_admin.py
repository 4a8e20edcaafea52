"""``openseats admin create-user | list-users | delete-user``, run in-process."""

from __future__ import annotations

import asyncio
import io
import sys
from pathlib import Path

import pytest

from node.cli import main
from node.db import Database
from node.db import admins as admin_repo
from node.settings import load_settings
from node.ui.passwords import verify_password
from tests.node.ui.conftest import PASSWORD


@pytest.fixture
def data(tmp_path: Path, fast_scrypt: None) -> str:
    folder = str(tmp_path / "lex")
    assert main(["init", "--data", folder, "--node-id", "lex.cli.test", "--url",
                 "http://127.0.0.1:8790"]) == 0  # fmt: skip
    return folder


def stored_hash(folder: str, username: str) -> str | None:
    async def read() -> str | None:
        db = Database(load_settings(folder).database)
        try:
            async with db.read() as conn:
                user = await admin_repo.find_user(conn, username)
        finally:
            await db.dispose()
        return user.password_hash if user else None

    return asyncio.run(read())


def create(folder: str, username: str, stdin: str, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    return main(["admin", "create-user", username, "--data", folder, "--password-stdin"])


def test_create_list_and_delete(
    data: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert create(data, "Anna", PASSWORD + "\n", monkeypatch) == 0
    out = capsys.readouterr().out
    assert "Admin anna angelegt / created" in out
    assert "http://127.0.0.1:8790/admin/" in out
    assert verify_password(PASSWORD, stored_hash(data, "anna"))

    assert create(data, "jonas", "Noch-ein-gutes-Passwort\n", monkeypatch) == 0
    capsys.readouterr()
    assert main(["admin", "list-users", "--data", data]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["anna", "jonas"]
    assert lines[0].split("\t")[2] == "-"  # never logged in

    assert main(["admin", "delete-user", "ANNA", "--data", data]) == 0
    assert "Admin anna gelöscht / deleted" in capsys.readouterr().out
    assert stored_hash(data, "anna") is None
    assert main(["admin", "delete-user", "anna", "--data", data]) == 1
    assert capsys.readouterr().err == "Fehler / error: Admin anna nicht gefunden / not found\n"


@pytest.mark.parametrize(
    ("username", "stdin", "message"),
    [
        ("anna", "\n", "Bitte ausfüllen. / Please fill this in."),
        ("anna", "", "Bitte ausfüllen. / Please fill this in."),
        ("anna", "kurz\n", "mindestens 12 Zeichen"),
        ("anna", "aaaaaaaaaaaaaaaa\n", "too easy to guess"),
        ("anna", "Ich-bin-Anna-vom-Team\n", "must not contain the username"),
        ("_anna", PASSWORD + "\n", "Benutzernamen bestehen aus"),
        ("anna schmidt", PASSWORD + "\n", "Usernames have 2 to 64"),
    ],
)
def test_bad_input_is_refused_with_one_line(
    data: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    username: str,
    stdin: str,
    message: str,
) -> None:
    assert create(data, username, stdin, monkeypatch) == 1
    err = capsys.readouterr().err
    assert err.startswith("Fehler / error: ")
    assert message in err
    assert err.count("\n") == 1
    assert "Traceback" not in err
    assert stored_hash(data, username.strip().lower()) is None


def test_a_username_is_taken_once(
    data: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert create(data, "anna", PASSWORD + "\n", monkeypatch) == 0
    first = stored_hash(data, "anna")
    assert create(data, "anna", "Ein-anderes-Passwort\n", monkeypatch) == 1
    assert "Den Benutzer anna gibt es schon." in capsys.readouterr().err
    assert stored_hash(data, "anna") == first


def test_the_interactive_prompt_asks_twice(
    data: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    answers = iter([PASSWORD, PASSWORD + "x", PASSWORD, PASSWORD])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    monkeypatch.setattr(sys, "stdin", Terminal())
    assert main(["admin", "create-user", "anna", "--data", data]) == 1
    assert "stimmen nicht überein / the passwords do not match" in capsys.readouterr().err
    assert main(["admin", "create-user", "anna", "--data", data]) == 0
    assert verify_password(PASSWORD, stored_hash(data, "anna"))

    # no terminal and no --password-stdin: a clear line instead of a hang
    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["admin", "create-user", "jonas", "--data", data]) == 1
    assert "--password-stdin" in capsys.readouterr().err


def test_usage_errors_exit_2(data: str, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["admin"], ["admin", "create-user"], ["admin", "rename-user", "x"]):
        with pytest.raises(SystemExit) as info:
            main([*argv, "--data", data])
        assert info.value.code == 2, argv
    capsys.readouterr()
    assert main(["admin", "list-users", "--data", data]) == 0
    assert capsys.readouterr().out == "Keine Admins / no admin users\n"


def test_without_a_node_the_error_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["admin", "list-users", "--data", str(tmp_path / "none")]) == 2  # config error
    err = capsys.readouterr().err
    assert "openseats init" in err
    assert err.count("\n") == 1
