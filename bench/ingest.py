"""Benchmark: merging a partner's feed, and querying the merged catalogue.

Measures, in one run:

* ``ingest_per_s``: a partner node ("lex", a real node in its own process)
  serves a feed of signed announcements (20,000, pre-signed while seeding);
  the reader node ("datev", lex peered as an active partner with its keys
  pinned) pulls it into an empty catalogue through the real path,
  :meth:`Subscriber.pull` over loopback HTTP in pages of 500: signed feed
  requests, per-item verification, the version check, the catalogue row
  and its search terms, one transaction per page.  The ratio to
  ``verify_per_s``, raw Ed25519 verifications of one of those announcements
  measured on the same core in the same run (as ``bench/verify.py`` does),
  has the target ``>= 0.5``.
  ``merge_per_s`` is the same merge without HTTP: each page is fetched
  (not timed), then given to the subscriber's per-page merge (timed) into
  another empty catalogue, so the difference is the cost of the feed
  requests;
  ``pipeline_per_s`` is ``verify_announcement`` alone (parse, validate,
  verify), the part of a merge that is not the database.
* ``query_*``: ``GET /api/v1/catalogue`` on the reader with 100,000 merged
  sessions (the pulled ones plus the feeds of four more peered partners,
  merged in process by the same per-page merge, so entries and search index
  are the real ones; on PostgreSQL the tables are then vacuumed and
  analysed, as autovacuum would), under a fixed mix of portal queries: the
  upcoming sessions, full text, full text with a format, a two-week window
  in one language, free seats at one partner, two words with a smaller
  page, and full text with language and free seats.  ``query_p50_ms``/``_p95``/``_p99``
  are client-side latencies with one request in flight (target: p95 <= 20
  ms); ``query_rps`` is the throughput with 16 in flight, as a ratio to
  ``ceiling_rps``, an aiohttp trivial handler served and loaded the same
  way (target ``>= 0.3``).  Requests carry a portal token.
* ``peak_rss_mb``: the reader server process's peak resident set size
  (VmHWM) after the query load, with every session in its database.

Servers run in their own processes, pinned to one core when the machine
has two or more, and the bench process (the subscriber during the ingest,
the load generator after) on another.  Nodes use a real database: SQLite
files in a temporary directory, or PostgreSQL with ``--database-url`` (one
fresh schema per node, dropped afterwards).  Missed targets are reported,
not fatal; a failed request or a wrong merge count is (exit code 1).

The last line printed is one JSON object with the figures.

Usage: ``python bench/ingest.py [--smoke] [--database-url URL] [--ingest N]
[--sessions N] [--page N] [--profile DIR] [--explain]`` (``--smoke``: tiny
sizes for CI; ``--profile``: cProfile the in-process merge and the reader
server into DIR, figures then include the profiler's overhead;
``--explain``: print the database's plan of each query of the mix, with
``EXPLAIN QUERY PLAN`` on SQLite and ``EXPLAIN (ANALYZE, BUFFERS)`` on
PostgreSQL, and its median in-process time).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as day_time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode
from zoneinfo import ZoneInfo

from _common import (
    BenchError,
    Request,
    ServerProcess,
    ServerSpec,
    World,
    bench_parser,
    fetch_once,
    free_port,
    measure,
    percentile,
    pick_cpus,
    publish_rows,
    register_peer,
    signed_descriptor,
    stop_all,
)
from sqlalchemy import event, func, select, text

from node.catalogue.search import query_words
from node.clock import SystemClock
from node.db import Database
from node.db import catalogue as catalogue_repo
from node.db import peers as peer_repo
from node.db import sync as sync_repo
from node.db import tokens as token_repo
from node.db.sessions import SessionRow
from node.db.tables import catalogue, catalogue_terms
from node.federation.subscription import PullResult, Subscriber
from node.identity import NodeIdentity
from node.runtime import open_node
from protocol.canonical import canonical_bytes, signable_part
from protocol.ingest import verify_announcement
from protocol.keys import SigningKey, decode_signature
from protocol.models import (
    Announcement,
    AnnouncementBody,
    Host,
    Link,
    Seats,
    seal,
)
from protocol.signing import SIGNING_PREFIX

TARGET_INGEST_RATIO = 0.5
TARGET_P95_MS = 20.0
TARGET_QUERY_RATIO = 0.3
CATALOGUE_PATH = "/api/v1/catalogue"
CEILING_BODY = b'{"items":[],"next_cursor":null}'
LOCAL_ZONE = ZoneInfo("Europe/Berlin")
LEX = ("lex", "lex.openseats.test", "LEX Lernwerkstatt")
DATEV = ("datev", "datev.openseats.test", "DATEV")
# Further partners whose announcements fill the catalogue up to --sessions.
OTHERS = [
    ("kiwi.openseats.test", "KIWI Kommunal"),
    ("stawa.openseats.test", "Stadtwerke Nord"),
    ("hansa.openseats.test", "Hansa Versicherung"),
    ("bkg.openseats.test", "Bundesamt für Kartographie"),
]


# --- realistic content -------------------------------------------------------------

TOPICS: list[tuple[str, list[str]]] = [
    ("KI-Prompting", ["KI", "Prompting"]),
    ("KI-Werkzeuge im Arbeitsalltag", ["KI", "Werkzeuge"]),
    ("Führung auf Distanz", ["Führung", "Remote"]),
    ("Gesunde Führung", ["Führung", "Gesundheit"]),
    ("Agiles Arbeiten in der Verwaltung", ["Agilität", "Verwaltung"]),
    ("Scrum und Kanban im Team", ["Agilität", "Scrum", "Kanban"]),
    ("Barrierefreie PDFs erstellen", ["Barrierefreiheit", "PDF"]),
    ("Datenschutz im Arbeitsalltag", ["Datenschutz", "DSGVO"]),
    ("Excel: Pivot-Tabellen", ["Excel", "Daten"]),
    ("Python für Fachabteilungen", ["Python", "Programmieren"]),
    ("Moderation hybrider Meetings", ["Moderation", "Hybrid"]),
    ("Resilienz und Selbstorganisation", ["Resilienz", "Selbstorganisation"]),
    ("Feedback geben und nehmen", ["Feedback", "Kommunikation"]),
    ("Präsentieren mit Wirkung", ["Präsentation", "Kommunikation"]),
    ("Wissensmanagement mit Wikis", ["Wissensmanagement", "Wiki"]),
    ("Nachhaltigkeit im Einkauf", ["Nachhaltigkeit", "Einkauf"]),
    ("Design Thinking", ["Innovation", "Design Thinking"]),
    ("Verhandlungsführung", ["Verhandlung", "Kommunikation"]),
    ("Change-Management", ["Veränderung", "Führung"]),
    ("Informationssicherheit: Phishing erkennen", ["Sicherheit", "Phishing"]),
    ("Onboarding neuer Kolleginnen und Kollegen", ["Onboarding", "Personal"]),
    ("Projektmanagement kompakt", ["Projektmanagement"]),
    ("Power BI für Einsteiger", ["Daten", "Power BI"]),
    ("Interkulturelle Zusammenarbeit", ["Kultur", "Zusammenarbeit"]),
    ("Zeitmanagement und Fokus", ["Zeitmanagement", "Fokus"]),
    ("Mentoring-Programme aufbauen", ["Mentoring", "Personal"]),
    ("Straßenbau und Verkehrsplanung", ["Planung", "Verkehr"]),
    ("Digitale Signaturen und E-Akte", ["Digitalisierung", "E-Akte"]),
    ("Leichte Sprache", ["Barrierefreiheit", "Sprache"]),
    ("Konfliktlösung im Team", ["Konflikt", "Team"]),
]
KINDS = {
    "impulse": "Impuls",
    "ama": "AMA",
    "exchange": "Erfahrungsaustausch",
    "workshop": "Werkstatt",
    "open_group": "Offene Runde",
    "other": "Lernsession",
}
FORMATS = ["impulse"] * 4 + ["workshop"] * 3 + ["exchange"] * 2 + ["ama", "open_group", "other"]
SUFFIXES = [
    "",
    "",
    " für Einsteiger",
    " für Fortgeschrittene",
    " in der Praxis",
    " – Fragen und Antworten",
    " kompakt",
    ": Erfahrungen aus {org}",
    " (Teil {n})",
]
SENTENCES = [
    "Wir schauen uns gemeinsam an, wie {topic} im Alltag gelingt.",
    "Ein kurzer Impuls mit Beispielen aus der Praxis und viel Zeit für Fragen.",
    "Bringen Sie gern eigene Fälle mit; wir besprechen sie in kleinen Gruppen.",
    "Keine Vorkenntnisse nötig – Neugier reicht.",
    "Die Teilnehmenden tauschen Erfahrungen aus und nehmen konkrete Ideen mit.",
    "Im Mittelpunkt stehen Werkzeuge, Methoden und typische Stolpersteine.",
    "Wir arbeiten mit Übungen, Checklisten und einem kurzen Quiz.",
    "Die Folien und Materialien gibt es im Anschluss zum Nachlesen.",
    "Geeignet für Führungskräfte, Projektleitungen und alle Interessierten.",
    "Der Austausch ist vertraulich; Kameras dürfen aus bleiben.",
    "{host} berichtet aus mehreren Jahren Erfahrung in der Verwaltung.",
    "Anschließend vertiefen wir das Thema in Breakout-Räumen.",
    "Wie messen wir Erfolg, und woran merken wir, dass es funktioniert?",
    "Es geht um Prompts, Kontext und den verantwortungsvollen Umgang mit generativer KI.",
    "Agile Methoden wie Scrum und Kanban helfen, Prioritäten sichtbar zu machen.",
    "Gute Führung beginnt mit Zuhören, Vertrauen und klaren Erwartungen.",
    "Wir üben, schwierige Gespräche ruhig und wertschätzend zu führen.",
    "Datenschutz und Informationssicherheit sind dabei immer mitgedacht.",
    "Barrierefreiheit nützt allen: Kontraste, Struktur und Alternativtexte.",
    "Mit Python, Excel und Power BI werten wir echte Beispieldaten aus.",
    "Nachhaltige Beschaffung spart Kosten und schont Ressourcen.",
    "The session is held in German; questions in English are welcome.",
    "Slides are available in English after the session.",
    "Wir starten pünktlich und enden mit einer kurzen Feedbackrunde.",
    "Bitte melden Sie sich bis zwei Tage vorher an, damit wir planen können.",
    "Höchstens {seats} Plätze, damit jede Stimme Raum bekommt.",
    "Hybrid: vor Ort im Lernraum {room} und online.",
    "Zielgruppe: Sachbearbeitung, Teamleitungen und Auszubildende.",
    "Ein Praxisbericht über Erfolge, Fehler und überraschende Erkenntnisse.",
    "Wir vergleichen Werkzeuge, Lizenzmodelle und Kosten.",
    "Dazu gibt es Tipps für Homeoffice, Großraumbüro und unterwegs.",
    "Fragen können vorab anonym eingereicht werden.",
    "Themen: {word}, {word} und {word}.",
    "Außerdem sprechen wir über {word} und {word}.",
]
WORDS = [
    "Abstimmung",
    "Aktenführung",
    "Arbeitsschutz",
    "Ausschreibung",
    "Automatisierung",
    "Beschaffung",
    "Bürgerdienste",
    "Chatbots",
    "Cloud",
    "Controlling",
    "Dashboards",
    "Datenqualität",
    "Dienstreisen",
    "Dokumentation",
    "Effizienz",
    "Energiewende",
    "Entscheidungen",
    "Ergonomie",
    "Fachkräfte",
    "Fehlerkultur",
    "Förderanträge",
    "Fortbildung",
    "Gleichstellung",
    "Haushalt",
    "Inklusion",
    "Kennzahlen",
    "Klimaschutz",
    "Kundenservice",
    "Lernpfade",
    "Lizenzen",
    "Meetingkultur",
    "Mobilität",
    "Netzwerke",
    "Normen",
    "Open-Source",
    "Organisationsentwicklung",
    "Personalplanung",
    "Priorisierung",
    "Prozesse",
    "Prüfung",
    "Qualitätssicherung",
    "Rechnungswesen",
    "Recht",
    "Reporting",
    "Rollen",
    "Schnittstellen",
    "Schulungen",
    "Selbstführung",
    "Software",
    "Sprachmodelle",
    "Stakeholder",
    "Steuerung",
    "Strategie",
    "Teamarbeit",
    "Terminplanung",
    "Transparenz",
    "Umweltschutz",
    "Vergabe",
    "Vertrauen",
    "Videokonferenzen",
    "Visualisierung",
    "Vorlagen",
    "Wartung",
    "Webanwendungen",
    "Weiterbildung",
    "Wirkung",
    "Workflows",
    "Zertifizierung",
    "Ziele",
    "Zufriedenheit",
]
HOSTS = [
    "Anna Schröder",
    "Jörg Weiß",
    "Fatma Yılmaz",
    "Lukas Müller",
    "Sophie Becker",
    "Mehmet Öztürk",
    "Claire Dubois",
    "Henrik Sørensen",
    "Katarzyna Nowak",
    "Paul Krüger",
    "Lena Hoffmann",
    "Jürgen Maaß",
    "Marta García",
    "Tobias Schäfer",
    "Ines Günther",
    "Ole Jansen",
]
LANGUAGES = [["de"]] * 11 + [["de", "en"]] * 5 + [["en"]] * 2 + [["de", "en", "fr"], ["de", "pl"]]
STATUSES = ["scheduled"] * 46 + ["cancelled", "cancelled", "postponed", "rescheduled"]
TIMEZONES = ["Europe/Berlin"] * 8 + ["Europe/Vienna", "Europe/Zurich"]


@dataclass(frozen=True)
class Content:
    title: str
    description: str
    format: str
    languages: list[str]
    tags: list[str]
    start_at: datetime  # UTC
    timezone: str
    duration_minutes: int
    host_name: str
    status: str
    seats_open: int
    seats_taken: int


def make_content(rng: random.Random, now: datetime, org: str) -> Content:
    """One session: German title and description, 1-3 languages, within 12 months."""
    topic, topic_tags = rng.choice(TOPICS)
    fmt = rng.choice(FORMATS)
    suffix = rng.choice(SUFFIXES).format(org=org, n=rng.randint(1, 4))
    host = rng.choice(HOSTS)
    seats_open = rng.randint(4, 30)
    text_parts = [f"In dieser {KINDS[fmt]} geht es um {topic}."]
    for sentence in rng.sample(SENTENCES, rng.randint(3, 6)):
        text_parts.append(
            sentence.replace("{word}", "{}").format(
                *rng.sample(WORDS, 3),
                topic=topic,
                host=host,
                seats=seats_open,
                room=rng.randint(1, 12),
            )
        )
    description = " ".join(text_parts)
    zone = ZoneInfo(rng.choice(TIMEZONES))
    day = (now + timedelta(days=rng.randint(1, 365))).astimezone(zone).date()
    local = datetime.combine(day, day_time(rng.randint(8, 17), rng.choice((0, 30))), zone)
    extra_tags = rng.sample(["Einsteiger", "Praxis", "Online", "Hybrid", "Austausch"], 1)
    return Content(
        title=f"{KINDS[fmt]}: {topic}{suffix}",
        description=description,
        format=fmt,
        languages=list(rng.choice(LANGUAGES)),
        tags=[*topic_tags, *extra_tags],
        start_at=local.astimezone(UTC),
        timezone=zone.key,
        duration_minutes=rng.choice((30, 45, 60, 60, 90, 120, 180)),
        host_name=host,
        status=rng.choice(STATUSES),
        seats_open=seats_open,
        seats_taken=seats_open if rng.random() < 0.1 else rng.randint(0, seats_open - 1),
    )


def lex_row(index: int, made: Content, now: datetime) -> SessionRow:
    session_id = f"lex-{index:07d}"
    return SessionRow(
        id=session_id,
        title=made.title,
        description=made.description,
        format=made.format,
        languages=made.languages,
        start_at=made.start_at,
        timezone=made.timezone,
        duration_minutes=made.duration_minutes,
        host_name=made.host_name,
        tags=made.tags,
        status=made.status,
        join_url=None,
        details_url=f"https://lex.example.org/sessions/{session_id}",
        import_source=None,
        import_key=None,
        open_seats=made.seats_open,
        audience_all=True,
        registration_mode="auto",
        waitlist=True,
        email_required=False,
        seats_taken=made.seats_taken,
        version=1,
        announcement=None,
        created_at=now,
        updated_at=now,
        withdrawn_at=None,
        ended_published=False,
    )


def partner_announcement(
    origin: str, key: SigningKey, session_id: str, made: Content, now: datetime
) -> tuple[Announcement, dict[str, Any]]:
    body = AnnouncementBody(
        type="session_announcement",
        origin=origin,
        id=session_id,
        version=1,
        issued_at=now,
        title=made.title,
        description=made.description,
        format=made.format,  # type: ignore[arg-type]
        languages=made.languages,
        start=made.start_at.astimezone(ZoneInfo(made.timezone)),
        timezone=made.timezone,
        duration_minutes=made.duration_minutes,
        host=Host(display_name=made.host_name),
        tags=made.tags,
        seats=Seats(
            open=made.seats_open,
            remaining=made.seats_open - made.seats_taken,
            registration_mode="auto",
            waitlist=True,
            email_required=False,
        ),
        status=made.status,  # type: ignore[arg-type]
        links=[Link(rel="details", href=f"https://{origin}/sessions/{session_id}")],
    )
    signed = seal(body, Announcement, origin, [key])
    return signed, signed.to_json_dict()


# --- sizes and helpers -------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    ingest: int
    sessions: int
    page: int  # the partner's feed page size
    verify: int  # Ed25519 verifications per round
    verify_rounds: int
    sequential: int  # requests per round with one in flight
    load: int  # requests per round with `concurrency` in flight
    ceiling: int
    rounds: int
    concurrency: int


SMOKE = Sizes(
    ingest=300,
    sessions=2000,
    page=100,
    verify=300,
    verify_rounds=3,
    sequential=70,
    load=140,
    ceiling=1000,
    rounds=1,
    concurrency=16,
)
FULL = Sizes(
    ingest=20_000,
    sessions=100_000,
    page=500,
    verify=5000,
    verify_rounds=7,
    sequential=700,
    load=1400,
    ceiling=20_000,
    rounds=3,
    concurrency=16,
)


def _rate(action: Callable[[], object], count: int, rounds: int) -> list[float]:
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(count):
            action()
        rates.append(count / (time.perf_counter() - start))
    return rates


# --- the run -------------------------------------------------------------------------


async def prepare(world: World, sizes: Sizes, now: datetime) -> str:
    """Make lex, datev and a spare reader; seed lex's feed.  Returns a portal token."""
    await world.create_schemas()
    lex, datev, spare = world.nodes["lex"], world.nodes["datev"], world.nodes["spare"]
    databases = {name: config.database() for name, config in world.nodes.items()}
    try:
        for database in databases.values():
            await database.upgrade()
        lex_identity = NodeIdentity(lex.settings(), databases["lex"])
        await lex_identity.create_first_key(now)
        datev_identity = NodeIdentity(datev.settings(), databases["datev"])
        await datev_identity.create_first_key(now)
        await register_peer(databases["lex"], datev_identity.descriptor(now), now)
        await register_peer(databases["datev"], lex_identity.descriptor(now), now)
        await register_peer(databases["spare"], lex_identity.descriptor(now), now)
        async with databases["datev"].write() as conn:
            token = await token_repo.create(conn, "portal", "bench", now)

        started = time.perf_counter()
        rng = random.Random(20261123)
        rows = (
            lex_row(index, make_content(rng, now, lex.display_name), now)
            for index in range(sizes.ingest)
        )
        await publish_rows(databases["lex"], lex_identity, rows, now)
        print(
            f"partner {lex.node_id}: {sizes.ingest} signed announcements in its feed "
            f"(seeded in {time.perf_counter() - started:.1f} s)",
            flush=True,
        )
        del spare
        return token
    finally:
        for database in databases.values():
            await database.dispose()


@dataclass
class IngestFigures:
    items: int
    pages: int
    seconds: float
    merge_seconds: float
    fetch_seconds: float
    verify_rates: list[float]
    pipeline_rates: list[float]
    announcement_bytes: int

    @property
    def ingest_per_s(self) -> float:
        return self.items / self.seconds

    @property
    def merge_per_s(self) -> float:
        return self.items / self.merge_seconds

    @property
    def verify_per_s(self) -> float:
        return statistics.median(self.verify_rates)

    @property
    def pipeline_per_s(self) -> float:
        return statistics.median(self.pipeline_rates)


async def _catalogue_count(database: Database) -> int:
    async with database.read() as conn:
        count = await conn.execute(select(func.count()).select_from(catalogue))
        return int(count.scalar_one())


async def ingest_phase(world: World, sizes: Sizes, profile: Path | None) -> IngestFigures:
    datev, spare = world.nodes["datev"], world.nodes["spare"]
    lex_id = world.nodes["lex"].node_id
    datev_db, spare_db = datev.database(), spare.database()
    try:
        async with open_node(datev.settings(), db=datev_db, migrate=False) as node:
            async with datev_db.read() as conn:
                peer = await peer_repo.get(conn, lex_id)
                assert peer is not None
                pinned = await peer_repo.pinned_keys(conn, peer)
            feed_url = json.loads(peer.descriptor)["endpoints"]["feed"]

            # The ceiling: raw Ed25519 verification of one of the feed's announcements.
            first = await node.client.signed_json("GET", f"{feed_url}?afterChangeNumber=0&limit=1")
            data = first["items"][0]["data"]
            message = SIGNING_PREFIX + canonical_bytes(signable_part(data))
            ((key_id, signature_text),) = data["signatures"][lex_id].items()
            signature = decode_signature(signature_text)
            public_key = pinned.current[key_id]

            def verify() -> None:
                public_key.verify(signature, message)

            def pipeline() -> None:
                verify_announcement(data, resolver=pinned, expected_origin=lex_id, from_wire=True)

            half = max(sizes.verify_rounds // 2, 1)
            verify_rates = _rate(verify, sizes.verify, half)
            pipeline_rates = _rate(pipeline, max(sizes.verify // 5, 20), half)

            # The real path: Subscriber.pull over HTTP into the empty catalogue.
            gc.collect()
            started = time.perf_counter()
            pulled = await node.subscriber.pull(lex_id, force=True)
            seconds = time.perf_counter() - started
            async with datev_db.read() as conn:
                state = await sync_repo.load(conn, peer.id)
            if pulled is None or state.last_error is not None:
                raise BenchError(f"the pull failed: {state.last_error}")
            if (pulled.merged, pulled.rejected, pulled.deleted) != (sizes.ingest, 0, 0):
                raise BenchError(f"the pull merged {pulled}, expected {sizes.ingest} merged")
            if await _catalogue_count(datev_db) != sizes.ingest:
                raise BenchError("the catalogue does not hold every pulled announcement")
            print(
                f"pulled {pulled.merged} announcements in {pulled.pages} pages "
                f"over HTTP in {seconds:.2f} s",
                flush=True,
            )

            # The same merge without HTTP, into another empty catalogue: each page
            # is fetched (not timed), then given to the subscriber's per-page merge
            # (timed), so no more than one page is held at a time, as in a pull.
            async with spare_db.read() as conn:
                spare_peer = await peer_repo.get(conn, lex_id)
                assert spare_peer is not None
                spare_pinned = await peer_repo.pinned_keys(conn, spare_peer)
            spare_subscriber = Subscriber(spare_db, node.client, node.clock)
            merged = PullResult()
            profiler = cProfile.Profile() if profile else None
            merge_seconds = fetch_seconds = 0.0
            url = f"{feed_url}?afterChangeNumber=0"
            gc.collect()
            while True:
                fetch_started = time.perf_counter()
                page = await node.client.signed_json("GET", url)
                merge_started = time.perf_counter()
                fetch_seconds += merge_started - fetch_started
                if profiler is not None:
                    profiler.enable()
                url, done = await spare_subscriber._merge_page(  # the merge of Subscriber.pull
                    spare_peer, spare_pinned, page, url, feed_url, merged
                )
                if profiler is not None:
                    profiler.disable()
                merge_seconds += time.perf_counter() - merge_started
                if done:
                    break
            if profiler is not None and profile is not None:
                profiler.dump_stats(profile)
            if (merged.merged, merged.rejected) != (sizes.ingest, 0):
                raise BenchError(f"the in-process merge gave {merged}")
            if await _catalogue_count(spare_db) != sizes.ingest:
                raise BenchError("the spare catalogue does not hold every announcement")
            print(
                f"merged the same {merged.merged} in process in {merge_seconds:.2f} s "
                f"(fetching the pages: {fetch_seconds:.2f} s)",
                flush=True,
            )

            verify_rates += _rate(verify, sizes.verify, sizes.verify_rounds - half)
            pipeline_rates += _rate(
                pipeline, max(sizes.verify // 5, 20), sizes.verify_rounds - half
            )
            return IngestFigures(
                items=pulled.merged,
                pages=pulled.pages,
                seconds=seconds,
                merge_seconds=merge_seconds,
                fetch_seconds=fetch_seconds,
                verify_rates=verify_rates,
                pipeline_rates=pipeline_rates,
                announcement_bytes=len(json.dumps(data, ensure_ascii=False).encode()),
            )
    finally:
        await datev_db.dispose()
        await spare_db.dispose()


async def fill_catalogue(world: World, sizes: Sizes, now: datetime) -> None:
    """Merge further partners' feeds up to ``sizes.sessions`` catalogue entries.

    Four more partners are peered (keys pinned) and their signed
    announcements, in feed pages of 500, go through the subscriber's
    per-page merge in process: the entries and search index are the ones a
    pull makes, without waiting for HTTP.  On PostgreSQL the catalogue
    tables are then vacuumed and analysed, as autovacuum would do on a
    production server (it may be off on a test server, leaving the planner
    without statistics and index-only scans without a visibility map).
    """
    extra = max(sizes.sessions - sizes.ingest, 0)
    database = world.nodes["datev"].database()
    started = time.perf_counter()
    rng = random.Random(4711)
    try:
        subscriber = Subscriber(database, None, SystemClock())  # type: ignore[arg-type]
        for number, (origin, org_name) in enumerate(OTHERS):
            count = extra // len(OTHERS) + (number < extra % len(OTHERS))
            if not count:
                continue
            key = SigningKey.generate()
            descriptor = signed_descriptor(origin, org_name, f"https://{origin}", key, now)
            await register_peer(database, descriptor, now)
            async with database.read() as conn:
                peer = await peer_repo.get(conn, origin)
                assert peer is not None
                pinned = await peer_repo.pinned_keys(conn, peer)
            feed_url = descriptor.endpoints.feed
            result = PullResult()
            for first in range(0, count, 500):
                items = []
                for index in range(first, min(first + 500, count)):
                    session_id = f"{origin.split('.')[0]}-{index:07d}"
                    _, raw = partner_announcement(
                        origin, key, session_id, make_content(rng, now, org_name), now
                    )
                    items.append(
                        {
                            "state": "updated",
                            "kind": "OpenSeatsSession",
                            "id": session_id,
                            "modified": index + 1,
                            "data": raw,
                        }
                    )
                page = {
                    "items": items,
                    "next": f"{feed_url}?afterChangeNumber={items[-1]['modified']}",
                }
                url = f"{feed_url}?afterChangeNumber={first}"
                await subscriber._merge_page(peer, pinned, page, url, feed_url, result)
            if (result.merged, result.rejected) != (count, 0):
                raise BenchError(f"merging {origin} gave {result}, expected {count} merged")
        if not database.is_sqlite:
            async with database.read_engine.connect() as conn:
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(text("VACUUM ANALYZE catalogue"))
                await conn.execute(text("VACUUM ANALYZE catalogue_terms"))
        async with database.read() as conn:
            terms = await conn.execute(select(func.count()).select_from(catalogue_terms))
            term_rows = int(terms.scalar_one())
            origins = await conn.execute(select(func.count(catalogue.c.origin.distinct())))
            partners = int(origins.scalar_one())
        total = await _catalogue_count(database)
    finally:
        await database.dispose()
    if total != sizes.ingest + extra:
        raise BenchError(f"the catalogue holds {total} entries, expected {sizes.ingest + extra}")
    print(
        f"catalogue: {total} sessions from {partners} partners, "
        f"{term_rows} search-index rows (filled in {time.perf_counter() - started:.1f} s)",
        flush=True,
    )


# --- the query mix -------------------------------------------------------------------

Template = Callable[[random.Random, date], dict[str, str]]

SINGLE = ["prompting", "datenschutz", "moderation", "excel", "resilienz", "python", "feedback"]
WITH_FORMAT = [
    ("führung", "workshop"),
    ("agil", "exchange"),
    ("ki", "impulse"),
    ("präsentation", "workshop"),
]
TWO_WORDS = ["ki agil", "führung distanz", "excel pivot", "barrierefrei pdf", "scrum kanban"]
WITH_LANGUAGE = ["kommunikation", "sicherheit", "daten", "team"]

MIX: list[tuple[str, Template]] = [
    ("upcoming", lambda rng, today: {}),
    ("q", lambda rng, today: {"q": rng.choice(SINGLE)}),
    (
        "q+format",
        lambda rng, today: dict(zip(("q", "format"), rng.choice(WITH_FORMAT), strict=True)),
    ),
    (
        "from+to+language",
        lambda rng, today: {
            "from": (start := today + timedelta(days=rng.randint(1, 340))).isoformat(),
            "to": (start + timedelta(days=14)).isoformat(),
            "language": "en",
        },
    ),
    (
        "open_seats+org",
        lambda rng, today: {"open_seats": "true", "org": rng.choice([*OTHERS, LEX[1:]])[0]},
    ),
    ("q2+limit", lambda rng, today: {"q": rng.choice(TWO_WORDS), "limit": "20"}),
    (
        "q+language+open_seats",
        lambda rng, today: {
            "q": rng.choice(WITH_LANGUAGE),
            "language": "de",
            "open_seats": "true",
        },
    ),
]


def query_requests(rng: random.Random, count: int, token: str, today: date) -> list[Request]:
    """*count* requests cycling through the mix, each template with its own values."""
    headers = (("Authorization", f"Bearer {token}"), ("Accept", "application/json"))
    made = []
    for index in range(count):
        label, template = MIX[index % len(MIX)]
        params = template(rng, today)
        path = CATALOGUE_PATH + ("?" + urlencode(params, quote_via=quote) if params else "")
        made.append(Request(path, headers, label))
    return made


@dataclass
class QueryFigures:
    latencies: list[float] = field(default_factory=list)  # seconds, one in flight
    by_label: dict[str, list[float]] = field(default_factory=dict)
    server_ms: list[float] = field(default_factory=list)
    rps: list[float] = field(default_factory=list)
    ceiling_rps: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    ceiling_cpu_ms: list[float] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    body_bytes: int = 0


async def query_phase(
    sizes: Sizes, node_port: int, ceiling_port: int, token: str, today: date
) -> QueryFigures:
    rng = random.Random(1999)
    figures = QueryFigures()
    # Check every template answers 200 with items, and warm both servers up.
    sizes_seen = []
    for request in query_requests(rng, len(MIX) * 3, token, today):
        status, body = await fetch_once(node_port, request)
        if status != 200:
            raise BenchError(f"{request.path}: HTTP {status}: {body[:500]!r}")
        items = json.loads(body)["items"]
        figures.counts[request.label] = min(figures.counts.get(request.label, 10**9), len(items))
        sizes_seen.append(len(body))
    figures.body_bytes = round(statistics.median(sizes_seen))
    for label, count in figures.counts.items():
        if count == 0:
            print(f"warning: the query {label!r} found nothing", flush=True)
    warm = query_requests(rng, len(MIX) * 10, token, today)
    await measure(ceiling_port, warm, sizes.concurrency)
    await measure(node_port, warm, sizes.concurrency)

    for number in range(1, sizes.rounds + 1):
        sequential = query_requests(rng, sizes.sequential, token, today)
        loaded = query_requests(rng, sizes.load, token, today)
        repeated = (loaded * (sizes.ceiling // len(loaded) + 1))[: sizes.ceiling]
        one = await measure(node_port, sequential, 1)
        ceiling = await measure(ceiling_port, repeated, sizes.concurrency)
        load = await measure(node_port, loaded, sizes.concurrency)
        figures.latencies += one.load.latencies
        figures.server_ms += one.server_ms
        for request, latency in zip(sequential, one.load.latencies, strict=True):
            figures.by_label.setdefault(request.label, []).append(latency)
        figures.rps.append(load.load.rps)
        figures.ceiling_rps.append(ceiling.load.rps)
        figures.cpu_ms.append(load.cpu_ms)
        figures.ceiling_cpu_ms.append(ceiling.cpu_ms)
        print(
            f"  round {number}/{sizes.rounds}: one in flight p50 "
            f"{percentile(one.load.latencies, 0.5) * 1000:.2f} ms, p95 "
            f"{percentile(one.load.latencies, 0.95) * 1000:.2f} ms; "
            f"{sizes.concurrency} in flight {load.load.rps:.0f}/s; "
            f"ceiling {ceiling.load.rps:.0f}/s",
            flush=True,
        )
    return figures


def _query_of(params: dict[str, str], now: datetime) -> catalogue_repo.Query:
    """The repository query the portal handler builds from *params* (plus one row)."""

    def when(name: str) -> datetime | None:
        raw = params.get(name)
        return datetime.combine(date.fromisoformat(raw), day_time(), LOCAL_ZONE) if raw else None

    return catalogue_repo.Query(
        start_from=when("from") or now,
        start_to=when("to"),
        words=tuple(query_words(params.get("q", ""))),
        format=params.get("format"),
        language=params.get("language"),
        org=params.get("org"),
        open_seats=params.get("open_seats") == "true",
        limit=int(params.get("limit", "50")) + 1,
    )


async def explain(world: World, token: str, today: date) -> None:
    """Print each query template's plan and its median in-process search time."""
    database = world.nodes["datev"].database()
    captured: list[tuple[str, Any]] = []

    def capture(*args: Any) -> None:
        captured.append((args[2], args[3]))

    event.listen(database.read_engine.sync_engine, "before_cursor_execute", capture)
    rng = random.Random(7)
    now = datetime.now(UTC)
    try:
        for request in query_requests(rng, len(MIX), token, today):
            params = dict(parse_qsl(request.path.partition("?")[2]))
            query = _query_of(params, now)
            timings = []
            async with database.read() as conn:
                for _ in range(10):
                    captured.clear()
                    started = time.perf_counter()
                    found = await catalogue_repo.search(conn, query, "{id}")
                    timings.append((time.perf_counter() - started) * 1000)
                statement, parameters = captured[-1]
                prefix = (
                    "EXPLAIN QUERY PLAN " if database.is_sqlite else "EXPLAIN (ANALYZE, BUFFERS) "
                )
                plan = list(await conn.exec_driver_sql(prefix + statement, parameters))
            print(
                f"plan of {request.label} {request.path.partition('?')[2] or '(no filter)'}: "
                f"{len(found)} rows, search {statistics.median(timings):.2f} ms in process"
            )
            for row in plan:
                print("    " + (str(row[-1]) if database.is_sqlite else str(row[0])))
    finally:
        event.remove(database.read_engine.sync_engine, "before_cursor_execute", capture)
        await database.dispose()


@dataclass
class Outcome:
    ingest: IngestFigures
    queries: QueryFigures
    peak_rss_kb: int
    start_rss_kb: int


def run(
    args: argparse.Namespace, sizes: Sizes, server_cpu: int | None, client_cpu: int | None
) -> Outcome:
    """Seed, pull, fill, serve and measure; always stop servers and clean up."""
    now = datetime.now(UTC).replace(microsecond=0)
    today = now.astimezone(LOCAL_ZONE).date()
    profile_dir = Path(args.profile).resolve() if args.profile else None
    if profile_dir is not None:
        profile_dir.mkdir(parents=True, exist_ok=True)
    servers: list[ServerProcess] = []
    world: World | None = None
    try:
        with tempfile.TemporaryDirectory(prefix="openseats-bench-ingest-") as tmp:
            world = World(Path(tmp), args.database_url)
            lex = world.add(*LEX, feed_page_size=sizes.page)
            datev = world.add(*DATEV, feed_page_size=sizes.page)
            world.add("spare", "spare.openseats.test", "Spare reader", feed_page_size=sizes.page)
            token = asyncio.run(prepare(world, sizes, now))

            servers.append(ServerProcess(ServerSpec.for_node(lex, server_cpu)))
            servers[-1].start()
            if client_cpu is not None:
                os.sched_setaffinity(0, {client_cpu})
            ingest = asyncio.run(
                ingest_phase(world, sizes, profile_dir / "ingest.prof" if profile_dir else None)
            )
            servers.pop().stop()

            asyncio.run(fill_catalogue(world, sizes, now))
            ceiling = ServerProcess(
                ServerSpec.for_ceiling(free_port(), server_cpu, CATALOGUE_PATH, CEILING_BODY)
            )
            reader = ServerProcess(
                ServerSpec.for_node(
                    datev,
                    server_cpu,
                    profile=str(profile_dir / "query.prof") if profile_dir else None,
                )
            )
            for server in (ceiling, reader):
                servers.append(server)
                server.start()
            start_rss = reader.memory_kb()["VmRSS"]
            queries = asyncio.run(query_phase(sizes, datev.port, ceiling.spec.port, token, today))
            peak_rss = reader.memory_kb()["VmHWM"]
            while servers:
                servers.pop().stop()
            if args.explain:
                asyncio.run(explain(world, token, today))
            return Outcome(ingest, queries, peak_rss, start_rss)
    finally:
        stop_all(servers)
        if world is not None:
            world.drop_schemas()


def main() -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--ingest", type=int, help="announcements in the partner's feed")
    parser.add_argument("--sessions", type=int, help="sessions in the catalogue for queries")
    parser.add_argument("--page", type=int, help="the partner's feed page size (1..1000)")
    parser.add_argument("--profile", metavar="DIR", help="cProfile the merge and the server")
    parser.add_argument("--explain", action="store_true", help="print the queries' plans")
    args = parser.parse_args()
    base = SMOKE if args.smoke else FULL
    sizes = Sizes(
        **{
            **base.__dict__,
            **{
                name: getattr(args, name)
                for name in ("ingest", "sessions", "page")
                if getattr(args, name) is not None
            },
        }
    )
    if sizes.ingest < 1 or not 1 <= sizes.page <= 1000:
        parser.error("--ingest must be >= 1 and --page 1..1000")
    engine = "postgresql" if args.database_url else "sqlite"
    server_cpu, client_cpu = pick_cpus()
    try:
        outcome = run(args, sizes, server_cpu, client_cpu)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    ingest, queries = outcome.ingest, outcome.queries
    ingest_ratio = ingest.ingest_per_s / ingest.verify_per_s
    merge_ratio = ingest.merge_per_s / ingest.verify_per_s
    p50, p95, p99 = (percentile(queries.latencies, f) * 1000 for f in (0.5, 0.95, 0.99))
    rps, ceiling_rps = statistics.median(queries.rps), statistics.median(queries.ceiling_rps)
    query_ratio = rps / ceiling_rps
    peak_mb, start_mb = outcome.peak_rss_kb / 1024, outcome.start_rss_kb / 1024
    pinned = (
        f"servers on cpu {server_cpu}, subscriber and load generator on cpu {client_cpu}"
        if server_cpu is not None
        else "unpinned"
    )
    print(f"engine {engine}; {pinned}")
    print(f"announcement size                  {ingest.announcement_bytes:8d} bytes")
    print(f"raw Ed25519 verify                 {ingest.verify_per_s:8.0f} /s")
    print(f"verify_announcement (parse+verify) {ingest.pipeline_per_s:8.0f} /s")
    print(
        f"ingest over HTTP ({ingest.items} items, {ingest.pages} pages of {sizes.page})"
        f" {ingest.ingest_per_s:8.0f} /s  {ingest_ratio:5.3f} x verify "
        f"(target >= {TARGET_INGEST_RATIO})"
    )
    print(
        f"merge in process (no HTTP)         {ingest.merge_per_s:8.0f} /s  "
        f"{merge_ratio:5.3f} x verify"
    )
    print(f"feed fetch alone (all pages)       {ingest.items / ingest.fetch_seconds:8.0f} items/s")
    print(
        f"catalogue queries over {sizes.sessions} sessions, body ~{queries.body_bytes} bytes "
        f"(one in flight, {len(queries.latencies)} requests):"
    )
    print(f"  latency p50 {p50:.2f} ms, p95 {p95:.2f} ms, p99 {p99:.2f} ms (target p95 <= 20)")
    print(f"  server time p50 {percentile(queries.server_ms, 0.5):.2f} ms")
    for label, _ in MIX:
        values = queries.by_label.get(label, [])
        if values:
            print(
                f"  {label:24s} p50 {percentile(values, 0.5) * 1000:7.2f} ms  "
                f"p95 {percentile(values, 0.95) * 1000:7.2f} ms  "
                f"(>= {queries.counts.get(label, 0)} items)"
            )
    print(
        f"throughput ({sizes.concurrency} in flight)  {rps:8.0f} req/s  "
        f"{query_ratio:6.4f} x ceiling (target >= {TARGET_QUERY_RATIO})"
    )
    print(f"aiohttp trivial handler (ceiling)  {ceiling_rps:8.0f} req/s")
    print(
        f"server CPU per request             query {statistics.median(queries.cpu_ms):.2f} ms, "
        f"ceiling {statistics.median(queries.ceiling_cpu_ms):.3f} ms"
    )
    print(f"reader peak RSS                    {peak_mb:8.1f} MB (at start {start_mb:.1f} MB)")
    result = {
        "engine": engine,
        "ingest_items": ingest.items,
        "ingest_pages": ingest.pages,
        "feed_page_size": sizes.page,
        "announcement_bytes": ingest.announcement_bytes,
        "ingest_per_s": round(ingest.ingest_per_s, 1),
        "merge_per_s": round(ingest.merge_per_s, 1),
        "pipeline_per_s": round(ingest.pipeline_per_s),
        "verify_per_s": round(ingest.verify_per_s),
        "ingest_to_verify_ratio": round(ingest_ratio, 4),
        "merge_to_verify_ratio": round(merge_ratio, 4),
        "sessions": sizes.sessions,
        "query_requests": len(queries.latencies),
        "query_p50_ms": round(p50, 3),
        "query_p95_ms": round(p95, 3),
        "query_p99_ms": round(p99, 3),
        "query_server_ms_p50": round(percentile(queries.server_ms, 0.5), 3),
        "query_ms_p50_by_query": {
            label: round(percentile(values, 0.5) * 1000, 3)
            for label, values in queries.by_label.items()
        },
        "query_body_bytes": queries.body_bytes,
        "concurrency": sizes.concurrency,
        "query_rps": round(rps, 1),
        "ceiling_rps": round(ceiling_rps),
        "query_ratio": round(query_ratio, 4),
        "query_server_cpu_ms": round(statistics.median(queries.cpu_ms), 3),
        "peak_rss_mb": round(peak_mb, 1),
        "start_rss_mb": round(start_mb, 1),
        "target_ingest_ratio": TARGET_INGEST_RATIO,
        "target_p95_ms": TARGET_P95_MS,
        "target_query_ratio": TARGET_QUERY_RATIO,
        "meets_ingest_target": ingest_ratio >= TARGET_INGEST_RATIO,
        "meets_p95_target": p95 <= TARGET_P95_MS,
        "meets_ratio_target": query_ratio >= TARGET_QUERY_RATIO,
        "rounds": sizes.rounds,
        "profile": args.profile,
        "smoke": args.smoke,
    }
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
