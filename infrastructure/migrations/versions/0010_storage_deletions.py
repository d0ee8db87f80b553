"""storage_deletions (the outbox of objects to delete) and users.deleted_at (account tombstones)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 10:20:00

A row deletion that leaves objects without a row (a generation's outputs and thumbnails,
an account's uploads) writes their keys here in the same transaction; a worker deletes the
objects and then the rows, retrying with backoff until storage answers. A deleted account
keeps its users row as a tombstone (the ledger still names it): `deleted_at` marks it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "storage_deletions",
        sa.Column("object_key", sa.String(512), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.String(200), nullable=True),
        sa.PrimaryKeyConstraint("object_key", name=op.f("pk_storage_deletions")),
    )
    op.create_index("ix_storage_deletions_next_attempt_at", "storage_deletions", ["next_attempt_at"])
    op.add_column("users", sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("deleted_at")
    op.drop_index("ix_storage_deletions_next_attempt_at", table_name="storage_deletions")
    op.drop_table("storage_deletions")
