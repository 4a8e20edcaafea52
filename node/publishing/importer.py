"""Applying imports: CSV/ICS files and calendar URLs become local sessions.

The parsers (:mod:`node.imports`) describe a file; this module upserts what
they found by ``(source, key)``: ``"ics"`` + UID for calendars (UIDs are
globally unique, so an uploaded export and a subscribed URL of the same
calendar update the same sessions) and ``"csv"`` + key for lists.  Each
session is written in its own transaction, so one failing record never
rolls back the others, and the report counts what happened.

A calendar URL can be registered to re-sync on a schedule; the scheduler
calls :meth:`Importer.sync_due` every minute.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import aiohttp
from sqlalchemy import delete, select, update

from node.clock import Clock
from node.db import Database
from node.db import sessions as session_repo
from node.db.tables import import_sources
from node.imports import ImportFileError, ImportProblem, ParseResult, parse_csv, parse_ics
from node.publishing.input import SessionInput
from node.publishing.service import SessionService
from node.streams import BodyTooLarge, read_limited

Kind = Literal["csv", "ics"]
MAX_DOWNLOAD = 10 * 1024 * 1024
MIN_INTERVAL_MINUTES = 5


@dataclass
class ImportReport:
    source: str
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    cancelled: int = 0
    rejected: int = 0
    skipped_past: int = 0
    problems: list[ImportProblem] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["problems"] = [asdict(problem) for problem in self.problems]
        return data


@dataclass(frozen=True)
class ImportSource:
    id: int
    url: str
    interval_minutes: int
    last_run_at: datetime | None
    last_report: dict[str, Any] | None


def detect_kind(data: bytes, hint: str | None = None) -> Kind:
    """``csv`` or ``ics`` from a content type, a file name, or the bytes."""
    hint = (hint or "").lower()
    if "calendar" in hint or hint.endswith((".ics", ".ical")):
        return "ics"
    if "csv" in hint or hint.endswith(".csv"):
        return "csv"
    return "ics" if data.lstrip(b"\xef\xbb\xbf \r\n").startswith(b"BEGIN:VCALENDAR") else "csv"


def _same(row: session_repo.SessionRow, data: SessionInput) -> bool:
    return (
        row.title == data.title
        and row.description == data.description
        and row.format == data.format
        and list(row.languages) == list(data.languages)
        and row.start_at == data.start
        and row.timezone == data.timezone
        and row.duration_minutes == data.duration_minutes
        and row.host_name == data.host_name
        and list(row.tags) == list(data.tags)
        and row.join_url == data.join_url
        and row.details_url == data.details_url
    )


class Importer:
    def __init__(
        self, db: Database, sessions: SessionService, clock: Clock, http: aiohttp.ClientSession
    ) -> None:
        self.db = db
        self.sessions = sessions
        self.clock = clock
        self.http = http

    def parse(self, data: bytes, kind: Kind) -> ParseResult:
        now = self.clock.now()
        return parse_ics(data, now=now) if kind == "ics" else parse_csv(data, now=now)

    async def import_bytes(self, data: bytes, kind: Kind) -> ImportReport:
        """Parse and apply; :class:`ImportFileError` if the file is unusable."""
        result = self.parse(data, kind)
        report = ImportReport(
            source=kind,
            rejected=len({problem.where for problem in result.problems}),
            skipped_past=result.skipped_past,
            problems=list(result.problems),
        )
        for item in result.sessions:
            async with self.db.read() as conn:
                existing = await session_repo.get_by_import(conn, kind, item.key)
            if existing is None or existing.withdrawn_at is not None:
                if existing is not None:
                    report.unchanged += 1
                    continue
                await self.sessions.create(
                    item.session,
                    import_source=kind,
                    import_key=item.key,
                    status="cancelled" if item.cancelled else "scheduled",
                )
                report.imported += 1
                if item.cancelled:
                    report.cancelled += 1
                continue
            changed = False
            if not _same(existing, item.session):
                await self.sessions.update(existing.id, item.session)
                report.updated += 1
                changed = True
            if item.cancelled and existing.status != "cancelled":
                await self.sessions.cancel(existing.id)
                report.cancelled += 1
                changed = True
            if not changed:
                report.unchanged += 1
        return report

    async def fetch(self, url: str) -> tuple[bytes, str]:
        if not url.startswith(("https://", "http://")):
            raise ImportFileError("empty", "Nur http(s)-Adressen / only http(s) URLs")
        try:
            async with self.http.get(url, timeout=aiohttp.ClientTimeout(total=30)) as response:
                if response.status != 200:
                    raise ImportFileError(
                        "empty", f"Abruf fehlgeschlagen / download failed: HTTP {response.status}"
                    )
                try:
                    data = await read_limited(response.content, MAX_DOWNLOAD)
                except BodyTooLarge:
                    raise ImportFileError(
                        "empty", "Datei zu groß / file too large (max. 10 MB)"
                    ) from None
                content_type = response.content_type
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ImportFileError(
                "empty", f"Abruf fehlgeschlagen / download failed: {exc or type(exc).__name__}"
            ) from None
        return data, content_type

    async def import_url(self, url: str) -> ImportReport:
        data, content_type = await self.fetch(url)
        return await self.import_bytes(data, detect_kind(data, content_type or url))

    async def register(self, url: str, interval_minutes: int) -> ImportReport:
        """Import a calendar URL now and keep re-syncing it every *interval_minutes*."""
        if interval_minutes < MIN_INTERVAL_MINUTES:
            raise ImportFileError(
                "empty", f"Intervall mindestens / interval at least {MIN_INTERVAL_MINUTES} min"
            )
        report = await self.import_url(url)
        now = self.clock.now()
        async with self.db.write() as conn:
            await conn.execute(delete(import_sources).where(import_sources.c.url == url))
            await conn.execute(
                import_sources.insert().values(
                    url=url,
                    interval_minutes=interval_minutes,
                    last_run_at=now,
                    last_report=report.to_json(),
                    created_at=now,
                )
            )
        return report

    async def sources(self) -> list[ImportSource]:
        async with self.db.read() as conn:
            rows = await conn.execute(select(import_sources).order_by(import_sources.c.id))
            return [
                ImportSource(r.id, r.url, r.interval_minutes, r.last_run_at, r.last_report)
                for r in rows
            ]

    async def unregister(self, source_id: int) -> bool:
        async with self.db.write() as conn:
            result = await conn.execute(
                delete(import_sources).where(import_sources.c.id == source_id)
            )
        return result.rowcount == 1

    async def sync_due(self) -> int:
        """Re-sync every registered URL whose interval has passed."""
        now = self.clock.now()
        done = 0
        for source in await self.sources():
            due = source.last_run_at is None or (
                source.last_run_at + timedelta(minutes=source.interval_minutes) <= now
            )
            if not due:
                continue
            try:
                report = (await self.import_url(source.url)).to_json()
            except ImportFileError as exc:
                report = {"source": source.url, "error": exc.code, "message": exc.message}
            async with self.db.write() as conn:
                await conn.execute(
                    update(import_sources)
                    .where(import_sources.c.id == source.id)
                    .values(last_run_at=now, last_report=report)
                )
            done += 1
        return done
