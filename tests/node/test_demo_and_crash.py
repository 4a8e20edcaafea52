"""Whole processes: ``openseats demo``, and a node killed with notices in its outbox."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

import icalendar
import vobject

from tests.node.conftest import free_port
from tests.node.test_cli import OPENSEATS, Cli, cli, run, wait_for_port

__all__ = ["cli"]  # the fixture, re-exported for pytest


def get_json(url: str, token: str | None = None) -> Any:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def admin_login(base: str, username: str, password: str) -> str:
    """Log into the admin UI as a browser does (cookies, CSRF field); the page after."""
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    with browser.open(f"{base}/admin/", timeout=5) as response:  # redirected to the login
        form = response.read().decode()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert csrf, form
    body = urllib.parse.urlencode(
        {"csrf_token": csrf.group(1), "username": username, "password": password, "next": "/admin/"}
    ).encode()
    with browser.open(f"{base}/admin/login", data=body, timeout=10) as response:
        return str(response.read().decode())


def titles(base: str, token: str | None = None) -> set[str]:
    return {item["title"] for item in get_json(f"{base}/api/v1/catalogue", token)["items"]}


def wait_until(check: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


def test_demo_brings_up_three_federated_catalogues(tmp_path: Path) -> None:
    port = free_port()
    while any(free_port() == port + n for n in (1, 2)):
        port = free_port()
    started = time.monotonic()
    demo = subprocess.Popen(
        [*OPENSEATS, "demo", "--base-port", str(port), "--data", str(tmp_path / "demo")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for n in range(3):
            wait_for_port(port + n, timeout=30)
        lex, lernwelt, kiwi = (f"http://127.0.0.1:{port + n}" for n in range(3))
        expected = {
            lex: {
                "KI-Prompting für Einsteiger",
                "Impuls: Agile Methoden in Behörden",
                "Impuls: Feedbackkultur im Team",
            },
            lernwelt: {
                "KI-Prompting für Einsteiger",
                "AMA: Wie arbeitet ein Konzern-Lernnetzwerk?",
            },
            kiwi: {"KI-Prompting für Einsteiger", "Impuls: Barrierefreie PDFs in 30 Minuten"},
        }
        never = {
            lex: "Impuls: Barrierefreie PDFs in 30 Minuten",
            lernwelt: "Impuls: Agile Methoden in Behörden",
            kiwi: "AMA: Wie arbeitet ein Konzern-Lernnetzwerk?",
        }
        for base, wanted in expected.items():
            seen = wait_until(lambda base=base, wanted=wanted: wanted <= titles(base), 10)
            assert seen, (base, titles(base))
            assert never[base] not in titles(base)
        assert time.monotonic() - started < 40

        def cancelled() -> list[str]:
            items = get_json(f"{kiwi}/api/v1/catalogue")["items"]
            return [i["title"] for i in items if i["status"] == "cancelled"]

        # The cancellation is a later version of that session: it may come a pull later.
        assert wait_until(cancelled, 10) == ["Werkstatt: Eine Prompt-Bibliothek fürs Team"]

        with urllib.request.urlopen(f"{lernwelt}/api/v1/catalogue.ics", timeout=5) as response:
            ics = response.read()
        assert len(icalendar.Calendar.from_ical(ics).walk("VEVENT")) >= 5
        assert len(vobject.readOne(ics.decode()).vevent_list) >= 5

        # An employee of Lernwelt takes a seat in a LEX session, as the banner shows.
        token = (tmp_path / "demo" / "lernwelt" / "admin-token.txt").read_text().strip()
        entry = next(
            i
            for i in get_json(f"{lernwelt}/api/v1/catalogue?open_seats=true")["items"]
            if i["organisation"]["node_id"].startswith("lex.")
        )
        request = urllib.request.Request(
            f"{lernwelt}/api/v1/sessions/{entry['id']}/reservations",
            data=json.dumps({"attendee": {"ref": "demo-1", "display_name": "Mia"}}).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 202
            reservation = json.loads(response.read())
        url = f"{lernwelt}/api/v1/reservations/{reservation['id']}"
        assert wait_until(lambda: get_json(url, token)["state"] == "confirmed", 15)
        assert get_json(url, token)["join_url"].startswith("https://")

        # A newcomer logs into LEX's admin UI with the credentials the banner shows.
        password = (tmp_path / "demo" / "lex" / "admin-password.txt").read_text().strip()
        assert "Angemeldet als admin." in admin_login(lex, "admin", password)
    finally:
        demo.send_signal(signal.SIGINT)
        out, err = demo.communicate(timeout=30)
    assert demo.returncode == 0, err
    assert "Admin-Token" in out
    assert "reserve a seat" in out
    assert f"{lex}/admin/" in out
    assert f"Passwort / password:  {password}" in out
    assert "Traceback" not in err
    for n in range(3):  # nothing is left listening
        import socket

        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port + n)) != 0


def test_notices_survive_a_killed_node(cli: Cli) -> None:
    env = {"OPENSEATS_POLL_INTERVAL_SECONDS": "3600", "OPENSEATS_PUBLIC_CATALOGUE": "true"}
    os.environ.update(env)
    try:
        lex, lex_port, _ = cli.init("lex")
        datev, datev_port, datev_fp = cli.init("datev")
        lex_server = cli.serve(lex, lex_port)
        datev_server = cli.serve(datev, datev_port)
        run(
            "peer",
            "add",
            f"http://127.0.0.1:{datev_port}",
            "--fingerprint",
            datev_fp,
            "--data",
            str(lex),
        )
        run("peer", "accept", "lex.cli.test", "--data", str(datev))
        datev_url = f"http://127.0.0.1:{datev_port}"

        first = run(
            "session",
            "add",
            "--data",
            str(lex),
            "--title",
            "Vorher",
            "--start",
            "2031-01-01T10:00",
            "--duration",
            "60",
            "--host",
            "A",
            "--join-url",
            "https://meet.example.org/lernraum",
        ).stdout.strip()
        run("session", "open", first, "--seats", "2", "--data", str(lex))
        assert wait_until(lambda: "Vorher" in titles(datev_url), 30), "first notice not seen"

        # datev goes down; lex queues a notice for it, then lex is killed too.
        datev_server.kill()
        datev_server.wait(10)
        second = run(
            "session",
            "add",
            "--data",
            str(lex),
            "--title",
            "Währenddessen",
            "--start",
            "2031-01-02T10:00",
            "--duration",
            "60",
            "--host",
            "B",
            "--join-url",
            "https://meet.example.org/lernraum",
        ).stdout
        run("session", "open", second.strip(), "--seats", "2", "--data", str(lex))
        time.sleep(1)  # let lex's scheduler try (and fail) at least once
        lex_server.send_signal(signal.SIGKILL)
        lex_server.wait(10)

        # Both come back; the stored notice is delivered, datev pulls.
        cli.serve(datev, datev_port)
        assert "Währenddessen" not in titles(datev_url)
        cli.serve(lex, lex_port)
        assert wait_until(lambda: "Währenddessen" in titles(datev_url), 60), titles(datev_url)
    finally:
        for name in env:
            os.environ.pop(name, None)
