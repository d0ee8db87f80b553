"""data_exports: archives of a user's data, built by a worker, downloadable until they expire

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 11:00:00

One row per requested export (domain/data_exports.py): its status, the archive's key, size
and sha256 once READY, when it expires, and the claim of the worker building it (a token
until `claimed_until`, the database's clock). A partial unique index keeps at most one
export PENDING or BUILDING per user, so concurrent requests get the same one; another
partial index serves the expiry sweep.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "data_exports",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("object_key", sa.String(length=512), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("claim_token", sa.Uuid(), nullable=True),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status in ('pending', 'building', 'ready', 'failed', 'expired')", name=op.f("ck_data_exports_status")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_data_exports_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_exports")),
    )
    op.create_index("ix_data_exports_user_created", "data_exports", ["user_id", "created_at"], unique=False)
    op.create_index(
        "uq_data_exports_user_active",
        "data_exports",
        ["user_id"],
        unique=True,
        postgresql_where=sa.text("status in ('pending', 'building')"),
        sqlite_where=sa.text("status in ('pending', 'building')"),
    )
    op.create_index(
        "ix_data_exports_ready_expires",
        "data_exports",
        ["expires_at"],
        unique=False,
        postgresql_where=sa.text("status = 'ready'"),
        sqlite_where=sa.text("status = 'ready'"),
    )


def downgrade() -> None:
    op.drop_index("ix_data_exports_ready_expires", table_name="data_exports")
    op.drop_index("uq_data_exports_user_active", table_name="data_exports")
    op.drop_index("ix_data_exports_user_created", table_name="data_exports")
    op.drop_table("data_exports")
