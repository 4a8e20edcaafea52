"""The feed passes ``@openactive/rpde-validator`` (SPEC.md §7).

The validator is a Node.js library.  It is installed with ``npm ci`` from the
pinned ``tests/node/rpde/package.json`` and ``package-lock.json`` into a cache
directory (``$OPENSEATS_NPM_CACHE``, default ``~/.cache/openseats/rpde-validator``),
once per lockfile, so later runs are fast and need no network.  The test is
skipped only when npm is missing, and never in CI (``CI=true``): there a
missing npm is a failure.

The feed only answers requests signed by an accepted peer, so the validator
walks a small signing proxy on 127.0.0.1 instead: it forwards each GET to the
real node's feed, signed by the peer node's key through the node's own
:class:`PeerClient`, passes on the status and the headers the validator checks
(``Content-Type``, ``Cache-Control``), and rewrites ``next`` from the node's
base URL to its own.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from contextvars import ContextVar
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from node.clock import ManualClock
from node.federation.client import DeliveryError, PeerClient
from tests.node.conftest import NodeFactory, RunningNode, peer

RPDE_DIR = Path(__file__).parent / "rpde"
RUNNER = RPDE_DIR / "run_validator.mjs"
PINNED_VERSION = "3.0.3571"  # must match rpde/package.json and rpde/package-lock.json
INSTALL_FILES = ("package.json", "package-lock.json")
STAMP = ".openseats-installed"
DEFAULT_CACHE = "~/.cache/openseats/rpde-validator"
FEED_PATH = "/protocol/v1/feed"
# The validator's last-page check asks for afterChangeNumber=Number.MAX_SAFE_INTEGER.
MAX_SAFE_INTEGER = 2**53 - 1
NPM_TIMEOUT = 300
VALIDATOR_TIMEOUT = 60
# Headers the validator's HTTP rules look at, passed on unchanged by the proxy.
FORWARDED_HEADERS = ("Content-Type", "Cache-Control", "ETag", "Last-Modified")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1")


def _install_digest() -> str:
    sha = hashlib.sha256()
    for name in INSTALL_FILES:
        sha.update(name.encode() + b"\0" + (RPDE_DIR / name).read_bytes() + b"\0")
    return sha.hexdigest()[:16]


@pytest.fixture(scope="session")
def rpde_validator() -> Path:
    """A directory with the pinned validator in node_modules, installed once per lockfile."""
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        message = "npm/node not found: cannot run @openactive/rpde-validator"
        if in_ci():
            pytest.fail(message + " (CI=true: the RPDE check must not be skipped)")
        pytest.skip(message)
    manifest = json.loads((RPDE_DIR / "package.json").read_text())
    assert manifest["dependencies"]["@openactive/rpde-validator"] == PINNED_VERSION

    root = Path(os.environ.get("OPENSEATS_NPM_CACHE") or DEFAULT_CACHE).expanduser()
    target = root / f"{PINNED_VERSION}-{_install_digest()}"
    if (target / STAMP).is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    # Install into a scratch directory and rename it into place, so a run
    # that is interrupted (or racing another run) never leaves a half install.
    scratch = Path(tempfile.mkdtemp(prefix=".install-", dir=root))
    try:
        for name in INSTALL_FILES:
            shutil.copyfile(RPDE_DIR / name, scratch / name)
        try:
            done = subprocess.run(
                [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=scratch,
                capture_output=True,
                text=True,
                timeout=NPM_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"npm ci for @openactive/rpde-validator took over {NPM_TIMEOUT} s")
        if done.returncode != 0:
            pytest.fail(
                f"npm ci for @openactive/rpde-validator@{PINNED_VERSION} failed "
                f"({done.returncode}):\n{done.stdout}\n{done.stderr}"
            )
        (scratch / STAMP).write_text(PINNED_VERSION + "\n")
        if target.exists() and not (target / STAMP).is_file():
            shutil.rmtree(target, ignore_errors=True)  # a broken earlier install
        try:
            scratch.rename(target)
        except OSError:
            if not (target / STAMP).is_file():  # not just another run finishing first
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


# The response headers of the request being forwarded, filled in by the
# client session's trace hook (it runs in the proxy handler's task).
_UPSTREAM_HEADERS: ContextVar[dict[str, Any]] = ContextVar("upstream_headers")


async def _capture_headers(
    session: aiohttp.ClientSession, context: Any, params: aiohttp.TraceRequestEndParams
) -> None:
    box = _UPSTREAM_HEADERS.get(None)
    if box is not None:
        box["headers"] = params.response.headers


class SigningProxy:
    """``GET {proxy}/protocol/v1/feed?...`` = *target*'s feed as read by *reader*."""

    def __init__(self, target: RunningNode, reader: RunningNode) -> None:
        self.upstream = target.url
        self.reader = reader
        # (path and query, status, [(id, state)] of the page's items)
        self.served: list[tuple[str, int, list[tuple[str, str]]]] = []
        self.base = ""

    async def __aenter__(self) -> SigningProxy:
        trace = aiohttp.TraceConfig()
        trace.on_request_end.append(_capture_headers)
        self.http = aiohttp.ClientSession(trace_configs=[trace])
        # The reader node's own client, signing with its key and clock; only
        # the HTTP session differs, to see the response headers.
        own = self.reader.node.client
        self.client = PeerClient(self.http, own.clock, own.key)
        app = web.Application()
        app.router.add_get(FEED_PATH, self.forward)
        self.server = TestServer(app, host="127.0.0.1")
        try:
            await self.server.start_server()
        except BaseException:
            await self.http.close()
            raise
        self.base = f"http://127.0.0.1:{self.server.port}"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await self.server.close()
        finally:
            await self.http.close()

    @property
    def feed_url(self) -> str:
        return self.base + FEED_PATH

    async def forward(self, request: web.Request) -> web.Response:
        box: dict[str, Any] = {}
        token = _UPSTREAM_HEADERS.set(box)
        try:
            response = await self.client.signed("GET", self.upstream + request.path_qs)
            status, body = response.status, response.body
        except DeliveryError as exc:
            status = exc.status or 502
            body = json.dumps({"proxy_error": str(exc)}, ensure_ascii=False).encode()
        finally:
            _UPSTREAM_HEADERS.reset(token)
        upstream = box.get("headers") or {}
        headers = {name: upstream[name] for name in FORWARDED_HEADERS if name in upstream}
        items: list[tuple[str, str]] = []
        if status == 200:
            body, items = self._rewrite(body)
        self.served.append((request.path_qs, status, items))
        return web.Response(status=status, body=body, headers=headers)

    def _rewrite(self, body: bytes) -> tuple[bytes, list[tuple[str, str]]]:
        try:
            page = json.loads(body)
        except ValueError:
            return body, []  # the validator reports it
        if not isinstance(page, dict):
            return body, []
        next_url = page.get("next")
        if isinstance(next_url, str) and next_url.startswith(self.upstream + "/"):
            page["next"] = self.base + next_url[len(self.upstream) :]
        items = [
            (str(item.get("id")), str(item.get("state")))
            for item in page.get("items") or []
            if isinstance(item, dict)
        ]
        return json.dumps(page, ensure_ascii=False).encode(), items


async def run_validator(install: Path, url: str) -> tuple[int, dict[str, Any], str]:
    """Run the validator on *url*; return exit status, JSON summary and its log."""
    node = shutil.which("node")
    assert node is not None
    process = await asyncio.create_subprocess_exec(
        node,
        str(RUNNER),
        str(install),
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout=VALIDATOR_TIMEOUT)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    log = err.decode(errors="replace")
    try:
        summary = json.loads(out)
    except ValueError:
        pytest.fail(
            f"rpde-validator exited {process.returncode} without a summary:\n"
            f"{out.decode(errors='replace')}\n{log[-4000:]}"
        )
    return int(process.returncode or 0), summary, log


def _lines(entries: list[dict[str, Any]]) -> str:
    return (
        "\n".join(
            f"  [{e['severity']}] {e['rule']} ({e['type']}) at {e['url']}: {e['message']}"
            for e in entries
        )
        or "  none"
    )


async def _session(node: RunningNode, clock: ManualClock, title: str, days: int) -> str:
    status, body = await node.admin(
        "POST",
        "/sessions",
        {
            "title": title,
            "start": (clock.now() + timedelta(days=days)).isoformat(),
            "duration_minutes": 60,
            "host_name": "Anna Schröder",
            "format": "impulse",
            "tags": ["KI"],
            "join_url": "https://meet.example.org/ki",
        },
    )
    assert status == 201, body
    sid = str(body["id"])
    opening = {"seats": 5, "audience": "all"}
    status, body = await node.admin("PUT", f"/sessions/{sid}/opening", opening)
    assert status == 200, body
    return sid


@pytest.mark.parametrize("engine", ["sqlite"])
async def test_feed_passes_rpde_validator(
    make_node: NodeFactory, clock: ManualClock, rpde_validator: Path
) -> None:
    lex = await make_node("lex", feed_page_size=2)
    datev = await make_node("datev")
    await peer(datev, lex)

    kept = await _session(lex, clock, "KI-Prompting für Einsteiger", 10)
    closed = await _session(lex, clock, "Datenschutz im Homeoffice", 11)
    cancelled = await _session(lex, clock, "Excel-Pivot kompakt", 12)
    withdrawn = await _session(lex, clock, "Agile Retrospektiven", 13)
    edited = await _session(lex, clock, "Barrierefreie PDFs", 14)
    status, body = await lex.admin("DELETE", f"/sessions/{closed}/opening")
    assert status == 200, body
    status, body = await lex.admin("POST", f"/sessions/{cancelled}/cancel")
    assert status == 200, body
    status, body = await lex.admin("DELETE", f"/sessions/{withdrawn}")
    assert status == 204, body
    status, body = await lex.admin("PATCH", f"/sessions/{edited}", {"duration_minutes": 90})
    assert status == 200, body

    expected = {
        kept: "updated",
        closed: "deleted",
        cancelled: "updated",
        withdrawn: "deleted",
        edited: "updated",
    }
    # Read directly: pages of two items, the first one pointing onwards.
    direct = await lex.feed_as(datev)
    assert len(direct["items"]) == 2
    assert direct["next"].startswith(lex.url + FEED_PATH + "?afterChangeNumber=")

    async with SigningProxy(lex, datev) as proxy:
        code, summary, log = await run_validator(rpde_validator, proxy.feed_url)

    report = (
        f"rpde-validator {summary.get('version')} on {proxy.feed_url} (exit {code})\n"
        f"errors:\n{_lines(summary['errors'])}\n"
        f"warnings:\n{_lines(summary['warnings'])}\n"
        f"notices:\n{_lines(summary['notices'])}\n"
        f"suggestions:\n{_lines(summary['suggestions'])}\n"
        f"requests: {[(path, status) for path, status, _ in proxy.served]}"
    )
    print(report)  # shown with -s, and on failure
    assert summary["version"] == PINNED_VERSION, report
    assert summary["errors"] == [], report
    assert code == 0, report + "\n" + log[-4000:]

    # The validator silently ignores pages it could not fetch, so check that it
    # really walked the whole feed and ran its last-page check.
    assert proxy.served, report
    assert all(status == 200 for _, status, _ in proxy.served), report
    seen = {sid: state for _, _, items in proxy.served for sid, state in items}
    assert seen == expected, report
    assert sum(1 for _, _, items in proxy.served if items) >= 3, report
    assert f"{FEED_PATH}?afterChangeNumber={MAX_SAFE_INTEGER}" in [
        path for path, _, _ in proxy.served
    ], report
