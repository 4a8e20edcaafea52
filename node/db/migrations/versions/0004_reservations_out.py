"""requester-side reservations, published seat counts

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import node.db.tables

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    when = node.db.tables.UTCDateTime(timezone=True)
    op.create_table(
        "reservations_out",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("host", sa.String(length=253), nullable=False),
        sa.Column("session_id", sa.String(length=128), nullable=False),
        sa.Column("attendee_ref", sa.String(length=128), nullable=False),
        sa.Column("attendee_name", sa.String(length=120), nullable=False),
        sa.Column("attendee_email", sa.String(length=254), nullable=True),
        sa.Column("seats", sa.Integer(), nullable=False),
        sa.Column("hold", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("cancelled_by", sa.String(length=16), nullable=True),
        sa.Column("join_url", sa.String(length=2048), nullable=True),
        sa.Column("hold_expires_at", when, nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("delivery_error", sa.Text(), nullable=True),
        sa.Column("request_body", sa.Text(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("idempotency_hash", sa.String(length=64), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("org_name", sa.String(length=120), nullable=False),
        sa.Column("start_at", when, nullable=False),
        sa.Column("end_at", when, nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("ics_sequence", sa.Integer(), nullable=False),
        sa.Column("created_at", when, nullable=False),
        sa.Column("updated_at", when, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reservations_out")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_reservations_out_idempotency_key")),
    )
    with op.batch_alter_table("reservations_out", schema=None) as batch_op:
        batch_op.create_index("ix_reservations_out_attendee", ["attendee_ref"], unique=False)
        batch_op.create_index("ix_reservations_out_end", ["end_at"], unique=False)
        batch_op.create_index("ix_reservations_out_session", ["host", "session_id"], unique=False)
    with op.batch_alter_table("reservations_in", schema=None) as batch_op:
        batch_op.create_index("ix_reservations_in_attendee", ["attendee_ref"], unique=False)
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seats_published", sa.Integer(), nullable=True))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # Batch mode would copy and drop "sessions", and dropping it cascades into
        # session_audience (foreign keys are on); SQLite >= 3.35 drops a column in place.
        op.execute("ALTER TABLE sessions DROP COLUMN seats_published")
    else:
        op.drop_column("sessions", "seats_published")
    with op.batch_alter_table("reservations_in", schema=None) as batch_op:
        batch_op.drop_index("ix_reservations_in_attendee")
    with op.batch_alter_table("reservations_out", schema=None) as batch_op:
        batch_op.drop_index("ix_reservations_out_session")
        batch_op.drop_index("ix_reservations_out_end")
        batch_op.drop_index("ix_reservations_out_attendee")
    op.drop_table("reservations_out")
