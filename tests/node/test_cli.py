"""The ``openseats`` command line, run as a user runs it: real processes on loopback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.node.conftest import free_port

OPENSEATS = [sys.executable, "-m", "node.cli"]


def run(
    *args: str, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*OPENSEATS, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"openseats {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        )
    return result


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


class Cli:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.servers: list[subprocess.Popen[str]] = []

    def init(self, name: str) -> tuple[Path, int, str]:
        port = free_port()
        data = self.tmp_path / name
        out = run(
            "init",
            "--data",
            str(data),
            "--node-id",
            f"{name}.cli.test",
            "--url",
            f"http://127.0.0.1:{port}",
            "--display-name",
            name.upper(),
        ).stdout
        fingerprint = out.strip().splitlines()[-1].split(": ")[-1]
        assert run("fingerprint", "--data", str(data)).stdout.strip() == fingerprint
        return data, port, fingerprint

    def serve(self, data: Path, port: int) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [*OPENSEATS, "serve", "--data", str(data)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.servers.append(process)
        wait_for_port(port)
        return process


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    helper = Cli(tmp_path)
    yield helper
    for process in helper.servers:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_two_cli_nodes_peer_with_fingerprints(cli: Cli) -> None:
    lex, lex_port, lex_fp = cli.init("lex")
    datev, datev_port, datev_fp = cli.init("datev")
    cli.serve(lex, lex_port)
    cli.serve(datev, datev_port)

    wrong = run(
        "peer",
        "add",
        f"http://127.0.0.1:{datev_port}",
        "--fingerprint",
        lex_fp,
        "--data",
        str(lex),
        check=False,
    )
    assert wrong.returncode == 1
    assert lex_fp in wrong.stderr
    assert datev_fp in wrong.stderr
    assert run("peer", "list", "--data", str(lex)).stdout == ""

    out = run(
        "peer",
        "add",
        f"http://127.0.0.1:{datev_port}",
        "--fingerprint",
        datev_fp.lower().replace("-", " "),
        "--data",
        str(lex),
    ).stdout
    assert "pending_out" in out
    assert run("peer", "list", "--data", str(lex)).stdout.split("\t")[:3] == [
        "datev.cli.test",
        "pending-out",
        datev_fp,
    ]
    listing = run("peer", "list", "--data", str(datev)).stdout
    assert listing.split("\t")[:3] == ["lex.cli.test", "pending-in", lex_fp]

    run("peer", "accept", "lex.cli.test", "--data", str(datev))
    assert "\tactive\t" in run("peer", "list", "--data", str(datev)).stdout
    assert "\tactive\t" in run("peer", "list", "--data", str(lex)).stdout
    shown = run("peer", "show", "datev.cli.test", "--data", str(lex)).stdout
    assert f"fingerprint: {datev_fp}" in shown

    sid = run(
        "session",
        "add",
        "--data",
        str(lex),
        "--title",
        "Werkstatt: Barrierefreie PDFs",
        "--start",
        "2030-03-04T14:00",
        "--duration",
        "90",
        "--host",
        "Jürgen Weiß",
        "--join-url",
        "https://meet.example.org/lernraum",
        "--format",
        "workshop",
    ).stdout.strip()
    run("session", "open", sid, "--seats", "3", "--audience", "datev.cli.test", "--data", str(lex))
    listed = run("session", "list", "--data", str(lex)).stdout
    assert "3 Plätze/seats → datev.cli.test" in listed
    assert "2030-03-04T13:00:00Z" in listed
    run("session", "close", sid, "--data", str(lex))
    run("session", "cancel", sid, "--data", str(lex))
    assert "\tcancelled\t" in run("session", "list", "--data", str(lex)).stdout


def test_serve_stops_cleanly_on_sigterm(cli: Cli) -> None:
    data, port, _ = cli.init("kiwi")
    process = cli.serve(data, port)
    process.send_signal(signal.SIGTERM)
    assert process.wait(15) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            [
                "session",
                "add",
                "--title",
                "x",
                "--start",
                "2020-01-01T10:00",
                "--duration",
                "60",
                "--host",
                "A",
                "--join-url",
                "https://meet.example.org/lernraum",
            ],
            "Vergangenheit",
        ),
        (
            [
                "session",
                "add",
                "--title",
                "x",
                "--start",
                "2030-01-01T10:00",
                "--duration",
                "0",
                "--host",
                "A",
                "--join-url",
                "https://meet.example.org/lernraum",
            ],
            "duration_minutes",
        ),
        (
            [
                "session",
                "add",
                "--title",
                "x",
                "--start",
                "2030-01-01T10:00",
                "--duration",
                "60",
                "--host",
                "A",
                "--join-url",
                "https://meet.example.org/lernraum",
                "--timezone",
                "Mars/Base",
            ],
            "Zeitzone",
        ),
        (["session", "open", "nope", "--seats", "2"], "not_found"),
        (["session", "open", "nope", "--seats", "-2"], "seats"),
        (["peer", "accept", "nobody.example.org"], "not_found"),
        (["token", "revoke", "99"], "nicht gefunden"),
    ],
)
def test_bad_arguments_give_one_clear_line(cli: Cli, args: list[str], message: str) -> None:
    data, _, _ = cli.init("lex")
    result = run(*args, "--data", str(data), check=False)
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_usage_errors_and_missing_config(tmp_path: Path) -> None:
    assert run("session", "open", check=False).returncode == 2
    result = run("peer", "list", "--data", str(tmp_path / "none"), check=False)
    assert result.returncode == 2  # a configuration problem, like a usage error
    assert "openseats init" in result.stderr
    result = run("fingerprint", check=False, env={"OPENSEATS_DATA": str(tmp_path / "none")})
    assert "none" in result.stderr


def test_bad_config_names_the_setting(cli: Cli) -> None:
    data, _, _ = cli.init("lex")
    result = run(
        "peer",
        "list",
        "--data",
        str(data),
        check=False,
        env={"OPENSEATS_LISTEN_PORT": "not-a-port"},
    )
    assert result.returncode == 2
    assert "listen_port" in result.stderr
    assert "Traceback" not in result.stderr


def test_init_refuses_to_overwrite(cli: Cli) -> None:
    data, _, _ = cli.init("lex")
    result = run(
        "init",
        "--data",
        str(data),
        "--node-id",
        "lex.cli.test",
        "--url",
        "http://127.0.0.1:1",
        check=False,
    )
    assert (result.returncode, "gibt es schon" in result.stderr) == (1, True)
    key_files = list((data / "keys").iterdir())
    assert len(key_files) == 1
    assert oct(key_files[0].stat().st_mode & 0o777) == "0o600"


def test_token_and_db_commands(cli: Cli) -> None:
    data, _, _ = cli.init("lex")
    token = run("token", "create", "--role", "portal", "--label", "Intranet", "--data", str(data))
    assert token.stdout.startswith("os_portal_")
    assert "portal\taktiv/active\tIntranet" in run("token", "list", "--data", str(data)).stdout
    assert "aktuell" in run("db", "upgrade", "--data", str(data)).stdout
    out = run("keys", "rotate", "--data", str(data)).stdout
    assert "fingerprint" in out


def test_import_command(cli: Cli, tmp_path: Path) -> None:
    data, _, _ = cli.init("wdw")
    day = (datetime.now(UTC) + timedelta(days=30)).strftime("%d.%m.%Y")
    csv_file = tmp_path / "sessions.csv"
    csv_file.write_text(
        "Schlüssel;Titel;Beginn;Dauer;Referent(in)\n"
        f"a1;Impuls: KI-Prompting für Einsteiger;{day} 10:00;60;Anna Schmidt\n"
        f"a2;AMA mit der Personalabteilung;{day} 25:00;30;Jonas Müller\n",
        encoding="utf-8",
    )
    out = run("import", str(csv_file), "--data", str(data)).stdout
    assert "importiert/imported 1" in out
    assert "line 3: bad_date" in out
    again = run("import", str(csv_file), "--data", str(data)).stdout
    assert "importiert/imported 0, aktualisiert/updated 0, unverändert/unchanged 1" in again
    missing = run("import", str(tmp_path / "nope.csv"), "--data", str(data), check=False)
    assert (missing.returncode, "nicht gefunden" in missing.stderr) == (1, True)
