"""assets: verified media (geometry, duration) and thumbnails linked to their outputs

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 10:00:00

Outputs are verified before they are stored: what probing found (width, height, a video's
duration) is recorded on the asset. Each output gets a thumbnail, a THUMBNAIL asset whose
`source_id` is the output; the output's `thumbnail_state` says where it stands (pending,
ready, failed) and `thumbnail_attempts`/`thumbnail_error` how it went. A generation counts
its outputs still pending (`thumbnails_pending`): its watchers stay until that is 0.

Outputs stored before this revision are marked pending, so the thumbnail sweep derives
their thumbnails too, and their generations count them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("assets") as batch:
        batch.add_column(sa.Column("width", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("height", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("duration_seconds", sa.Float(), nullable=True))
        batch.add_column(sa.Column("source_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("thumbnail_state", sa.String(length=16), nullable=True))
        batch.add_column(sa.Column("thumbnail_attempts", sa.Integer(), server_default=sa.text("0"), nullable=False))
        batch.add_column(sa.Column("thumbnail_error", sa.String(length=64), nullable=True))
        batch.create_foreign_key(
            batch.f("fk_assets_source_id_assets"), "assets", ["source_id"], ["id"], ondelete="CASCADE"
        )
        batch.create_check_constraint(
            batch.f("ck_assets_thumbnail_state"), "thumbnail_state in ('pending', 'ready', 'failed')"
        )
        batch.create_index(batch.f("ix_assets_source_id"), ["source_id"], unique=False)
        batch.create_index(
            "ix_assets_thumbnail_pending",
            ["created_at"],
            unique=False,
            postgresql_where=sa.text("thumbnail_state = 'pending'"),
            sqlite_where=sa.text("thumbnail_state = 'pending'"),
        )
    with op.batch_alter_table("generations") as batch:
        batch.add_column(sa.Column("thumbnails_pending", sa.Integer(), server_default=sa.text("0"), nullable=False))
    op.execute("UPDATE assets SET thumbnail_state = 'pending' WHERE kind = 'output'")
    op.execute(
        "UPDATE generations SET thumbnails_pending = "
        "(SELECT count(*) FROM assets WHERE assets.generation_id = generations.id AND assets.kind = 'output') "
        "WHERE EXISTS (SELECT 1 FROM assets WHERE assets.generation_id = generations.id AND assets.kind = 'output')"
    )


def downgrade() -> None:
    with op.batch_alter_table("generations") as batch:
        batch.drop_column("thumbnails_pending")
    op.execute("DELETE FROM assets WHERE kind = 'thumbnail'")
    with op.batch_alter_table("assets") as batch:
        batch.drop_index("ix_assets_thumbnail_pending")
        batch.drop_index(batch.f("ix_assets_source_id"))
        batch.drop_constraint(batch.f("ck_assets_thumbnail_state"), type_="check")
        batch.drop_constraint(batch.f("fk_assets_source_id_assets"), type_="foreignkey")
        for column in (
            "thumbnail_error",
            "thumbnail_attempts",
            "thumbnail_state",
            "source_id",
            "duration_seconds",
            "height",
            "width",
        ):
            batch.drop_column(column)
