"""several replicas: job ticks, outbox claims, shared rate buckets

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import node.db.tables

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    when = node.db.tables.UTCDateTime(timezone=True)
    op.create_table(
        "job_ticks",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("tick", sa.BigInteger(), nullable=False),
        sa.Column("holder", sa.String(length=64), nullable=False),
        sa.Column("lease_until", when, nullable=True),
        sa.Column("runs", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_job_ticks")),
    )
    op.create_table(
        "outbox_claims",
        sa.Column("peer_node_id", sa.String(length=253), nullable=False),
        sa.Column("holder", sa.String(length=64), nullable=False),
        sa.Column("lease_until", when, nullable=False),
        sa.PrimaryKeyConstraint("peer_node_id", name=op.f("pk_outbox_claims")),
    )
    op.create_table(
        "rate_buckets",
        sa.Column("peer", sa.String(length=253), nullable=False),
        sa.Column("tokens", sa.Float(), nullable=False),
        sa.Column("updated_at", when, nullable=False),
        sa.Column("granted", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("peer", name=op.f("pk_rate_buckets")),
    )
    with op.batch_alter_table("rate_buckets", schema=None) as batch_op:
        batch_op.create_index("ix_rate_buckets_updated_at", ["updated_at"], unique=False)


def downgrade() -> None:
    op.drop_table("rate_buckets")
    op.drop_table("outbox_claims")
    op.drop_table("job_ticks")
