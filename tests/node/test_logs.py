"""Structured logs: JSON lines with request context, and nothing private in them.

The log handler is the one ``openseats serve`` installs
(:func:`node.observability.logs.configure_logging`), writing to a buffer.
The privacy test runs a full flow between two real nodes at DEBUG level,
with a named attendee who gives an email address, an admin who logs in
with a password, portal, calendar, admin and metrics tokens in use, and
then searches every line for each of those values.
"""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from node.clock import ManualClock
from node.observability import logs
from node.observability.logs import ConsoleFormatter, JsonFormatter, configure_logging
from node.ui.accounts import create_admin
from node.ui.auth import SESSION_COOKIE
from tests.node.conftest import NodeFactory, peer, sync
from tests.node.reservations.helpers import api, open_session, portal_token, state_of
from tests.node.ui.conftest import PASSWORD, USERNAME, Browser

METRICS_TOKEN = "metrics-token-0123456789abcdef"
Lines = Callable[[], list[dict[str, Any]]]


@pytest.fixture
def log_lines() -> Iterator[Lines]:
    """Every log record as the JSON handler wrote it, at DEBUG; restored afterwards."""
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    capped = {name: logging.getLogger(name).level for name in logs.CAPPED_LOGGERS}
    buffer = io.StringIO()
    configure_logging("json", "DEBUG", stream=buffer)

    def read() -> list[dict[str, Any]]:
        return [json.loads(line) for line in buffer.getvalue().splitlines()]

    yield read
    root.handlers[:] = saved[1]
    root.setLevel(saved[0])
    for name, level in capped.items():
        logging.getLogger(name).setLevel(level)


def _record(**extra: Any) -> logging.LogRecord:
    record = logging.LogRecord("node.test", logging.WARNING, __file__, 1, "hello %s", ("x",), None)
    record.__dict__.update(extra)
    return record


def test_json_line_fields_and_context() -> None:
    handler_filter = logs.ContextFilter()
    token = logs.bind(request_id="req-1", route="/api/v1/catalogue", node="lex.example")
    try:
        record = _record(status=200, path="/api/v1/catalogue", odd=object())
        handler_filter.filter(record)
    finally:
        logs.unbind(token)
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "hello x"
    assert (line["level"], line["logger"]) == ("WARNING", "node.test")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["timestamp"])
    assert (line["request_id"], line["route"], line["node"]) == (
        "req-1",
        "/api/v1/catalogue",
        "lex.example",
    )
    assert "peer" not in line  # unknown fields are left out, not null
    assert (line["status"], line["path"]) == (200, "/api/v1/catalogue")
    assert line["odd"].startswith("<object object")
    assert logs.current() == logs.LogContext()  # unbound again


def test_exceptions_stay_inside_one_line() -> None:
    try:
        raise ValueError("kaputt\nzweite Zeile")
    except ValueError:
        record = _record(exc_info=sys.exc_info())
    text = JsonFormatter().format(record)
    assert "\n" not in text
    assert "ValueError: kaputt\nzweite Zeile" in json.loads(text)["exception"]
    console = ConsoleFormatter().format(_record(node="lex", request_id="abcdef0123456789"))
    assert re.fullmatch(
        r"\d\d:\d\d:\d\d WARNING node\.test  hello x  \[node=lex req=abcdef01\]", console
    )


def access_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line["logger"] == "aiohttp.access"]


@pytest.mark.parametrize("engine", ["sqlite"])
async def test_request_id_route_and_peer(
    make_node: NodeFactory, clock: ManualClock, log_lines: Lines
) -> None:
    lex, datev = await make_node("lex"), await make_node("datev")
    await peer(datev, lex)
    token = await portal_token(lex)

    status, _, headers = await lex.portal(
        "/catalogue", token=token, headers={"X-Request-Id": "lb-4f2a.9:x_1"}
    )
    assert (status, headers["X-Request-Id"]) == (200, "lb-4f2a.9:x_1")
    status, _, headers = await lex.portal(
        "/catalogue", token=token, headers={"X-Request-Id": "nicht gut/" + "x" * 10}
    )
    assert status == 200
    generated = headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    status, _, headers = await lex.portal("/sessions/unknown@lex.openseats.test", token=token)
    assert status == 404
    assert re.fullmatch(r"[0-9a-f]{32}", headers["X-Request-Id"])  # error answers too

    async with lex.http.get(f"{lex.url}/readyz") as response:
        assert response.status == 200
    everything = log_lines()
    assert not [line for line in everything if line["message"].startswith("Context impl")]
    assert any(line["message"].startswith("Running upgrade") for line in everything)

    lines = access_lines(everything)
    by_id = {line["request_id"]: line for line in lines}
    given = by_id["lb-4f2a.9:x_1"]
    assert given["route"] == "/api/v1/catalogue"
    assert (given["method"], given["path"], given["status"]) == ("GET", "/api/v1/catalogue", 200)
    assert given["node"] == lex.node_id
    assert given["message"].startswith("GET /api/v1/catalogue 200 ")
    assert by_id[generated]["route"] == "/api/v1/catalogue"
    assert by_id[headers["X-Request-Id"]]["route"] == "/api/v1/sessions/{id}"
    assert by_id[headers["X-Request-Id"]]["status"] == 404

    # A signed protocol request names its peer; so does what the handler logs.
    sid = await open_session(lex, clock, seats=1)
    await sync(lex, datev)
    datev_token = await portal_token(datev)
    body = {"attendee": {"ref": "emp-1", "display_name": "Erika"}}
    status, answer = await api(
        datev, "POST", f"/sessions/{sid}@{lex.node_id}/reservations", datev_token, body
    )
    assert status == 202, answer
    await sync(datev, lex)
    lines = log_lines()
    decided = [line for line in lines if line["message"].startswith(f"reservation {answer['id']}")]
    assert len(decided) == 1
    assert decided[0]["peer"] == datev.node_id
    assert decided[0]["route"] == "/protocol/v1/reservations/{uuid}"
    assert decided[0]["node"] == lex.node_id
    put = [line for line in access_lines(lines) if line["request_id"] == decided[0]["request_id"]]
    assert len(put) == 1
    assert (put[0]["method"], put[0]["peer"], put[0]["node"]) == ("PUT", datev.node_id, lex.node_id)
    feed_reads = [line for line in access_lines(lines) if line["route"] == "/protocol/v1/feed"]
    assert feed_reads
    assert all(line["peer"] == datev.node_id for line in feed_reads)


async def test_a_full_flow_logs_no_personal_data_or_secrets(
    make_node: NodeFactory,
    clock: ManualClock,
    log_lines: Lines,
    fast_scrypt: None,
) -> None:
    lex = await make_node("lex", metrics_token=METRICS_TOKEN)
    datev = await make_node("datev")
    await create_admin(lex.node.db, USERNAME, PASSWORD, clock.now())
    await peer(datev, lex)
    sid = await open_session(lex, clock, seats=1, email_required=True)
    await sync(lex, datev)
    token = await portal_token(datev)
    status, calendar = await lex.admin("POST", "/tokens", {"role": "calendar", "label": "Outlook"})
    assert status == 201, calendar

    name, email, ref = "Zoë Vertraulich-Mustermann", "zoe.vertraulich@datev.example", "emp-93817"
    body = {"attendee": {"ref": ref, "display_name": name, "email": email}}
    status, answer = await api(
        datev, "POST", f"/sessions/{sid}@{lex.node_id}/reservations", token, body
    )
    assert status == 202, answer
    await sync(datev, lex)
    confirmed = await state_of(datev, answer["id"], token)
    assert confirmed["state"] == "confirmed"
    join_url = confirmed["join_url"]
    status, found = await api(datev, "GET", f"/reservations?ref={ref}", token)
    assert status == 200
    assert found
    status, invite = await api(datev, "GET", f"/reservations/{answer['id']}.ics", token)
    assert status == 200
    assert "CONFERENCE" in invite

    # The host's admin: a login with a password, the reservation list, privacy export.
    browser = Browser(lex.url)
    try:
        page = await browser.login()
        assert page.status == 303, page.text
        cookie = browser.cookie(SESSION_COOKIE) or ""
        page = await browser.get(f"/admin/sessions/{sid}")
        assert page.status == 200
        failed = Browser(lex.url)
        assert (await failed.login(password=PASSWORD + "-falsch")).status != 303
        await failed.close()
    finally:
        await browser.close()
    status, listed = await lex.admin("GET", f"/sessions/{sid}/reservations")
    assert status == 200
    assert name in json.dumps(listed, ensure_ascii=False)
    status, exported = await lex.admin("GET", f"/privacy/{ref}")
    assert status == 200
    assert email in json.dumps(exported, ensure_ascii=False)
    async with lex.http.get(
        f"{lex.url}/api/v1/catalogue.ics", params={"token": calendar["token"]}
    ) as response:
        assert response.status == 200
    async with lex.http.get(
        f"{lex.url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
    ) as response:
        assert response.status == 200
    async with lex.http.get(
        f"{lex.url}/metrics", headers={"Authorization": f"Bearer {token}"}
    ) as response:
        assert response.status == 401  # a wrong token is not echoed either
    status, _ = await api(datev, "GET", "/reservations", token + "x")
    assert status == 401

    lines = log_lines()
    assert len(access_lines(lines)) > 20
    assert any(line["path"] == "/admin/api/v1/privacy/…" for line in access_lines(lines))
    text = "\n".join(json.dumps(line, ensure_ascii=False) for line in lines)
    secrets = {
        "attendee name": name,
        "attendee email": email,
        "attendee ref": ref,
        "join url": join_url,
        "portal token": token,
        "calendar token": calendar["token"],
        "admin token (datev)": datev.admin_token,
        "admin token (lex)": lex.admin_token,
        "metrics token": METRICS_TOKEN,
        "admin password": PASSWORD,
        "session cookie": cookie,
    }
    leaked = [what for what, secret in secrets.items() if secret and secret in text]
    assert leaked == []
    assert all(secret for secret in secrets.values())


@pytest.fixture
def fast_scrypt(monkeypatch: pytest.MonkeyPatch) -> None:
    from node.ui import passwords

    monkeypatch.setattr(passwords, "N", 2**10)
