"""deploy/compose.yaml without containers: two replicas on one PostgreSQL behind nginx.

What compose runs as containers runs here as processes on loopback: a
fresh PostgreSQL database, ``openseats init`` once, two ``openseats serve``
processes (the installed console script) on their own ports with the same
data dir (keys) and the same ``database_url``, and nginx with the shipped
site template (:mod:`tests.deploy.proxy`) terminating TLS in front of them.
The stack starts once for the module; every test leaves it running as it
found it.  Everything a client does goes through nginx over HTTPS unless
a test means one replica.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest

from tests.deploy import proxy
from tests.node.conftest import PG_URL, free_port

OPENSEATS = str(Path(sys.executable).parent / "openseats")
NODE_ID = "lex.deploy.test"
START_TIMEOUT = 60.0  # only how long to wait before calling a start failed


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Replica:
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@dataclass
class Stack:
    data: Path
    prefix: Path
    base_url: str
    http_port: int
    replicas: list[Replica]
    env: dict[str, str]
    admin_token: str = ""
    portal_token: str = ""
    nginx: subprocess.Popen[bytes] | None = None
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def request(
        self,
        url: str,
        method: str = "GET",
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        parts = urlsplit(url)
        assert parts.hostname is not None
        if parts.scheme == "https":
            context = proxy.trusting(self.prefix / "openseats.crt")
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                parts.hostname, parts.port, context=context, timeout=30
            )
        else:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        sent = dict(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        try:
            conn.request(
                method, parts.path + (f"?{parts.query}" if parts.query else ""), data, sent
            )
            response = conn.getresponse()
            return Answer(response.status, dict(response.getheaders()), response.read())
        finally:
            conn.close()

    def admin(self, url: str, method: str = "GET", body: Any = None) -> Answer:
        return self.request(url, method, body, {"Authorization": f"Bearer {self.admin_token}"})

    def start(self, replica: Replica) -> None:
        with replica.log.open("ab") as log:
            replica.process = subprocess.Popen(
                [OPENSEATS, "serve", "--data", str(self.data), "--port", str(replica.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
            )
        self.started.append(replica.process)
        wait_until_ready(replica)

    def wait_until_proxied(self, replica: Replica) -> None:
        """Until nginx sends requests to *replica* again (after its fail_timeout).

        A rolling restart has to wait for this before it stops the next
        replica, or nginx has no live replica left.
        """
        deadline = time.monotonic() + START_TIMEOUT
        offset = len(replica.log_text())
        while not _access_lines(replica, "/healthz", offset):
            assert time.monotonic() < deadline, "nginx never went back to the replica"
            assert self.request(f"{self.base_url}/healthz").status == 200
            time.sleep(0.05)

    def stop(self, replica: Replica) -> None:
        assert replica.process is not None
        replica.process.send_signal(signal.SIGTERM)
        assert replica.process.wait(30) == 0
        replica.process = None


def wait_until_ready(replica: Replica) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        assert replica.process is not None
        if replica.process.poll() is not None:
            raise AssertionError(f"replica on {replica.port} exited:\n{replica.log_text()}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", replica.port, timeout=5)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            conn.close()
        time.sleep(0.1)
    raise AssertionError(f"replica on {replica.port} not ready:\n{replica.log_text()}")


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(log.read_text(errors="replace"))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nginx does not listen on {port}")


async def _database(statement: str) -> None:
    conn = await asyncpg.connect(PG_URL)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def _cli(*args: str, env: dict[str, str]) -> str:
    result = subprocess.run(
        [OPENSEATS, *args], capture_output=True, text=True, timeout=120, env=env, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if proxy.NGINX is None:
        if os.environ.get("CI") == "true":
            pytest.fail("nginx is missing; .ci/run installs it from apt")
        pytest.skip("nginx is not installed (apt-get install nginx)")
    root = tmp_path_factory.mktemp("replicas")
    database = f"openseats_deploy_{uuid.uuid4().hex[:12]}"
    database_url = PG_URL.rsplit("/", 1)[0] + f"/{database}"
    http_port, https_port = free_port(), free_port()
    replicas = [Replica(free_port(), root / f"replica-{n}.log") for n in (1, 2)]
    prefix = root / "nginx"
    prefix.mkdir()
    env = {
        **os.environ,
        "OPENSEATS_DATABASE_URL": database_url,
        "OPENSEATS_TRUSTED_PROXIES": "127.0.0.1",
        "OPENSEATS_LOG_FORMAT": "json",
    }
    env.pop("OPENSEATS_DATA", None)
    current = Stack(
        data=root / "data",
        prefix=prefix,
        base_url=f"https://127.0.0.1:{https_port}",
        http_port=http_port,
        replicas=replicas,
        env=env,
    )
    asyncio.run(_database(f'CREATE DATABASE "{database}"'))
    try:
        data = ["--data", str(current.data)]
        _cli(
            "init",
            *data,
            "--node-id",
            NODE_ID,
            "--url",
            current.base_url,
            "--display-name",
            "LEX",
            env=env,
        )
        current.admin_token = _cli("token", "create", "--role", "admin", *data, env=env).strip()
        current.portal_token = _cli("token", "create", "--role", "portal", *data, env=env).strip()
        for replica in replicas:
            current.start(replica)
        values = proxy.site_values(
            prefix=prefix,
            http=http_port,
            https=https_port,
            replicas=(replicas[0].port, replicas[1].port),
        )
        config = proxy.write_config(prefix, values)
        nginx_log = prefix / "nginx.out"
        with nginx_log.open("wb") as out:
            current.nginx = subprocess.Popen(
                proxy.command(prefix, config), stdout=out, stderr=subprocess.STDOUT
            )
        current.started.append(current.nginx)
        wait_for_port(https_port, current.nginx, nginx_log)
        yield current
    finally:
        for process in current.started:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(10)
        asyncio.run(_database(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


def test_health_and_readiness_through_nginx(stack: Stack) -> None:
    live = stack.request(f"{stack.base_url}/healthz")
    assert live.status == 200
    assert live.json()["status"] == "ok"
    ready = stack.request(f"{stack.base_url}/readyz")
    assert ready.status == 200, ready.body
    assert ready.json()["status"] == "ready"
    assert {name for name, check in ready.json()["checks"].items() if check["ok"]} == {
        "database",
        "migrations",
        "keys",
    }
    # Per-process metrics are never served through the load balancer.
    assert stack.request(f"{stack.base_url}/metrics").status == 404


def test_plain_http_is_redirected_to_the_base_url(stack: Stack) -> None:
    answer = stack.request(f"http://127.0.0.1:{stack.http_port}/api/v1/catalogue?q=ki")
    assert answer.status == 301
    assert answer.headers["Location"] == f"{stack.base_url}/api/v1/catalogue?q=ki"


def test_descriptor_and_catalogue_through_nginx(stack: Stack) -> None:
    descriptor = stack.request(f"{stack.base_url}/.well-known/openseats")
    assert descriptor.status == 200
    body = descriptor.json()
    assert body["node_id"] == NODE_ID
    assert body["base_url"] == stack.base_url
    catalogue = stack.request(
        f"{stack.base_url}/api/v1/catalogue",
        headers={"Authorization": f"Bearer {stack.portal_token}"},
    )
    assert catalogue.status == 200
    assert isinstance(catalogue.json()["items"], list)
    assert stack.request(f"{stack.base_url}/api/v1/catalogue").status == 401


def test_a_write_through_one_replica_is_seen_by_the_other(stack: Stack) -> None:
    one, two = stack.replicas
    created = stack.admin(
        f"{one.url}/admin/api/v1/sessions",
        "POST",
        {
            "title": "Werkstatt: Betrieb mit zwei Replikaten",
            "start": "2031-03-04T10:00:00+01:00",
            "duration_minutes": 60,
            "host_name": "Jonas Müller",
            "format": "workshop",
        },
    )
    assert created.status == 201, created.body
    session_id = created.json()["id"]
    seen = stack.admin(f"{two.url}/admin/api/v1/sessions/{session_id}")
    assert seen.status == 200
    assert seen.json()["title"] == "Werkstatt: Betrieb mit zwei Replikaten"
    for _ in range(2):  # through nginx: one request lands on each replica
        assert stack.admin(f"{stack.base_url}/admin/api/v1/sessions/{session_id}").status == 200


def _access_lines(replica: Replica, path: str, since: int) -> list[dict[str, Any]]:
    lines = replica.log_text()[since:].splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    return [r for r in records if r.get("path") == path and r.get("method") == "GET"]


def test_nginx_sends_requests_to_both_replicas(stack: Stack) -> None:
    offsets = [len(replica.log_text()) for replica in stack.replicas]
    for _ in range(4):
        assert stack.request(f"{stack.base_url}/.well-known/openseats").status == 200
    # A replica writes its access line just after the answer has left it.
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        seen = [
            _access_lines(replica, "/.well-known/openseats", offset)
            for replica, offset in zip(stack.replicas, offsets, strict=True)
        ]
        if sum(len(lines) for lines in seen) >= 4 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert [len(lines) for lines in seen] == [2, 2]  # round robin
    assert all(line["status"] == 200 for lines in seen for line in lines)


@pytest.mark.parametrize("down", [0, 1])
def test_nginx_answers_while_one_replica_is_down(stack: Stack, down: int) -> None:
    replica = stack.replicas[down]
    stack.stop(replica)
    try:
        for _ in range(4):
            assert stack.request(f"{stack.base_url}/.well-known/openseats").status == 200
        # A write that could not reach the stopped replica goes to the other one.
        for n in range(2):
            answer = stack.admin(
                f"{stack.base_url}/admin/api/v1/tokens",
                "POST",
                {"role": "calendar", "label": f"while {down} is down, {n}"},
            )
            assert answer.status == 201, answer.body
    finally:
        stack.start(replica)
        stack.wait_until_proxied(replica)
    listed = stack.admin(f"{stack.base_url}/admin/api/v1/tokens").json()
    labels = {token["label"] for token in listed["tokens"]}
    assert {f"while {down} is down, 0", f"while {down} is down, 1"} <= labels
