"""Table definitions (SQLAlchemy Core).  Only ``node.db`` imports SQLAlchemy.

Times are stored as UTC.  :class:`UTCDateTime` turns them back into aware
datetimes on both engines (SQLite keeps no offset of its own).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime on every engine."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        stored: datetime = value
        if stored.tzinfo is None:
            return stored.replace(tzinfo=UTC)
        return stored.astimezone(UTC)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

node_keys = Table(
    "node_keys",
    metadata,
    Column("key_id", String(32), primary_key=True),
    Column("public_key", String(64), nullable=False),
    Column("state", String(16), nullable=False),  # current | old | revoked
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime),
    Column("revoked_at", UTCDateTime),
)

peers = Table(
    "peers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("node_id", String(253), nullable=False, unique=True),
    Column("base_url", String(2048), nullable=False),
    Column("display_name", String(120), nullable=False),
    # pending_in | pending_out | active | suspended | declined
    Column("state", String(16), nullable=False),
    Column("fingerprint", String(40), nullable=False),
    Column("descriptor", Text, nullable=False),
    Column("descriptor_issued_at", UTCDateTime, nullable=False),
    Column("suspended_by", String(8)),  # us | them
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

peer_keys = Table(
    "peer_keys",
    metadata,
    Column("peer_id", Integer, ForeignKey("peers.id", ondelete="CASCADE"), primary_key=True),
    Column("key_id", String(32), primary_key=True),
    Column("public_key", String(64), nullable=False),
    Column("state", String(16), nullable=False),  # current | old | revoked
    Column("expires_at", UTCDateTime),
    Column("revoked_at", UTCDateTime),
    Index("ix_peer_keys_key_id", "key_id"),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("format", String(16), nullable=False),
    Column("languages", JSON, nullable=False),
    Column("start_at", UTCDateTime, nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("duration_minutes", Integer, nullable=False),
    Column("host_name", String(120), nullable=False),
    Column("tags", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("join_url", String(2048)),
    Column("details_url", String(2048)),
    Column("import_source", String(2048)),
    Column("import_key", String(512)),
    # Opening to partners: open_seats = 0 means closed.
    Column("open_seats", Integer, nullable=False, default=0),
    Column("audience_all", Boolean, nullable=False, default=True),
    Column("registration_mode", String(16), nullable=False, default="auto"),
    Column("waitlist", Boolean, nullable=False, default=True),
    Column("email_required", Boolean, nullable=False, default=False),
    Column("seats_taken", Integer, nullable=False, default=0),
    # The newest signed announcement, exactly as served.
    Column("version", Integer, nullable=False, default=0),
    Column("announcement", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("withdrawn_at", UTCDateTime),
    Column("ended_published", Boolean, nullable=False, default=False),
    # seats_taken when the newest announcement was signed; differs while the
    # feed does not yet show the current remaining seats.
    Column("seats_published", Integer),
    UniqueConstraint("import_source", "import_key", name="uq_sessions_import"),
    Index("ix_sessions_start_at", "start_at"),
)

session_audience = Table(
    "session_audience",
    metadata,
    Column(
        "session_id", String(128), ForeignKey("sessions.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("peer_id", Integer, ForeignKey("peers.id", ondelete="CASCADE"), primary_key=True),
)

# One row per session ever published.  change_number is NULL while a change
# waits for the stamper, which numbers rows after their transaction committed.
feed_items = Table(
    "feed_items",
    metadata,
    Column("session_id", String(128), primary_key=True),
    Column("change_number", BigInteger, unique=True),
    Column("changed_at", UTCDateTime, nullable=False),
    Column("deleted_at", UTCDateTime),
)

feed_counter = Table(
    "feed_counter",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("value", BigInteger, nullable=False),
)

request_nonces = Table(
    "request_nonces",
    metadata,
    Column("key_id", String(32), primary_key=True),
    Column("nonce", String(64), primary_key=True),
    Column("expires_at", UTCDateTime, nullable=False),
    Index("ix_request_nonces_expires_at", "expires_at"),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),  # admin | portal | calendar
    Column("label", String(200), nullable=False, default=""),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
)

import_sources = Table(
    "import_sources",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("url", String(2048), nullable=False, unique=True),
    Column("interval_minutes", Integer, nullable=False),
    Column("last_run_at", UTCDateTime),
    Column("last_report", JSON),
    Column("created_at", UTCDateTime, nullable=False),
)

# Every outbound protocol message is a row, written in the transaction of
# the change that caused it (see node.federation.outbox).
outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("peer_node_id", String(253), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("method", String(8), nullable=False),
    Column("url", String(2048), nullable=False),
    Column("body", Text, nullable=False),
    Column("state", String(16), nullable=False),  # pending | sent | dead
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("last_error", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_outbox_peer_state", "peer_node_id", "state", "id"),
)

# --- the merged catalogue (local sessions and partners' announcements) -------

catalogue = Table(
    "catalogue",
    metadata,
    Column("origin", String(253), primary_key=True),
    Column("session_id", String(128), primary_key=True),
    Column("is_local", Boolean, nullable=False),
    Column("version", Integer, nullable=False),
    Column("announcement", Text),  # a partner's signed announcement, as received
    Column("org_name", String(120), nullable=False),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("format", String(16), nullable=False),
    Column("languages", JSON, nullable=False),
    Column("languages_key", String(200), nullable=False),  # ",de,en," for filtering
    Column("start_at", UTCDateTime, nullable=False),
    Column("end_at", UTCDateTime, nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("duration_minutes", Integer, nullable=False),
    Column("host_name", String(120), nullable=False),
    Column("tags", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("seats_open", Integer, nullable=False),
    Column("seats_remaining", Integer, nullable=False),
    Column("registration_mode", String(16), nullable=False),
    Column("waitlist", Boolean, nullable=False),
    Column("email_required", Boolean, nullable=False),
    Column("details_url", String(2048)),
    Column("sequence", Integer, nullable=False),
    Column("modified_at", UTCDateTime, nullable=False),
    Column("deleted_at", UTCDateTime),
    Index("ix_catalogue_start", "start_at", "origin", "session_id"),
    Index("ix_catalogue_origin", "origin"),
)

# Word index for full-text search that behaves the same on both engines:
# casefolded words of title, description and tags (and their ae/oe/ue/ss
# spellings), matched by prefix with a range scan on the primary key.
catalogue_terms = Table(
    "catalogue_terms",
    metadata,
    Column("term", String(64), primary_key=True),
    Column("origin", String(253), primary_key=True),
    Column("session_id", String(128), primary_key=True),
    Index("ix_catalogue_terms_session", "origin", "session_id"),
)

peer_sync = Table(
    "peer_sync",
    metadata,
    Column("peer_id", Integer, ForeignKey("peers.id", ondelete="CASCADE"), primary_key=True),
    Column("cursor", BigInteger, nullable=False, default=0),
    Column("last_attempt_at", UTCDateTime),
    Column("last_success_at", UTCDateTime),
    Column("last_error", Text),
    Column("failures", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime),
)

feed_rejections = Table(
    "feed_rejections",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("peer_node_id", String(253), nullable=False),
    Column("item_id", String(200), nullable=False),
    Column("reason", String(64), nullable=False),
    Column("detail", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_feed_rejections_peer", "peer_node_id", "id"),
)

# --- reservations (host side: the seat ledger) --------------------------------

# seq orders the waitlist (FIFO); id is the requester's uuid.
reservations_in = Table(
    "reservations_in",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(36), nullable=False, unique=True),
    Column("requester", String(253), nullable=False),
    Column("session_id", String(128), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("attendee_ref", String(128), nullable=False),
    Column("attendee_name", String(120), nullable=False),
    Column("attendee_email", String(254)),
    Column("seats", Integer, nullable=False),
    Column("state", String(16), nullable=False),
    Column("reason", String(32)),
    Column("cancelled_by", String(16)),
    Column("version", Integer, nullable=False),
    Column("hold_expires_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_reservations_in_session", "session_id", "state", "seq"),
    Index("ix_reservations_in_attendee", "attendee_ref"),
)

# Optional per-partner caps within a session's partner quota.
partner_caps = Table(
    "partner_caps",
    metadata,
    Column("session_id", String(128), primary_key=True),
    Column("requester", String(253), primary_key=True),
    Column("cap", Integer, nullable=False),
    Column("taken", Integer, nullable=False, default=0),
)


# --- reservations (requester side: our employees' seats at partners) ---------

# id is the uuid this node chose and sent to the host.  state is the host's
# latest answer ("requested" until the first one), applied by version.
reservations_out = Table(
    "reservations_out",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("host", String(253), nullable=False),
    Column("session_id", String(128), nullable=False),
    Column("attendee_ref", String(128), nullable=False),
    Column("attendee_name", String(120), nullable=False),
    Column("attendee_email", String(254)),
    Column("seats", Integer, nullable=False),
    Column("hold", Boolean, nullable=False, default=False),
    Column("state", String(16), nullable=False),
    Column("version", Integer, nullable=False, default=0),
    Column("position", Integer),
    Column("reason", String(32)),
    Column("cancelled_by", String(16)),
    Column("join_url", String(2048)),
    Column("hold_expires_at", UTCDateTime),
    Column("cancel_requested", Boolean, nullable=False, default=False),
    Column("delivery_error", Text),
    # The exact request body sent; retries resend these bytes.
    Column("request_body", Text, nullable=False),
    Column("idempotency_key", String(200), unique=True),
    Column("idempotency_hash", String(64)),
    # What the personal invitation needs, kept when the catalogue forgets.
    Column("title", String(200), nullable=False),
    Column("org_name", String(120), nullable=False),
    Column("start_at", UTCDateTime, nullable=False),
    Column("end_at", UTCDateTime, nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("ics_sequence", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_reservations_out_attendee", "attendee_ref"),
    Index("ix_reservations_out_end", "end_at"),
    Index("ix_reservations_out_session", "host", "session_id"),
)


# --- admin web UI (node.ui) ----------------------------------------------------

# password_hash is self-describing: "scrypt$n=..,r=..,p=..$<salt>$<hash>".
admin_users = Table(
    "admin_users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_login_at", UTCDateTime),
)

# Only the SHA-256 of the session cookie is stored; csrf_token is per session.
ui_sessions = Table(
    "ui_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("admin_users.id", ondelete="CASCADE"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Index("ix_ui_sessions_user_id", "user_id"),
    Index("ix_ui_sessions_expires_at", "expires_at"),
)

# Failed logins, counted per username and per client IP (all replicas share them).
login_failures = Table(
    "login_failures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False),
    Column("client_ip", String(64), nullable=False),
    Column("failed_at", UTCDateTime, nullable=False),
    Index("ix_login_failures_username", "username", "failed_at"),
    Index("ix_login_failures_client_ip", "client_ip", "failed_at"),
    Index("ix_login_failures_failed_at", "failed_at"),
)


# --- several replicas on one database (node.db.leases, node.db.rate_limits) -------

# One row per scheduled job: the last tick some replica claimed, who runs it
# and until when (NULL once finished); runs counts every claimed tick.
job_ticks = Table(
    "job_ticks",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("tick", BigInteger, nullable=False),
    Column("holder", String(64), nullable=False),
    Column("lease_until", UTCDateTime),
    Column("runs", BigInteger, nullable=False),
)

# The replica delivering a peer's outbox right now; deleted when it is done.
outbox_claims = Table(
    "outbox_claims",
    metadata,
    Column("peer_node_id", String(253), primary_key=True),
    Column("holder", String(64), nullable=False),
    Column("lease_until", UTCDateTime, nullable=False),
)

# The per-peer token bucket shared by replicas (PostgreSQL only; SQLite keeps
# it in memory).  granted says whether the last request took a token.
rate_buckets = Table(
    "rate_buckets",
    metadata,
    Column("peer", String(253), primary_key=True),
    Column("tokens", Float, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("granted", Boolean, nullable=False),
    Index("ix_rate_buckets_updated_at", "updated_at"),
)
