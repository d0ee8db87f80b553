"""assets.thumbnail_claimed_until: which output a worker is thumbnailing right now

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 10:30:00

A worker that starts an output's thumbnail claims it until this time (the database's
clock, one compare-and-set like a generation's lease): a second delivery of the task,
or the sweep's re-queue, leaves a claimed output alone until the claim runs out. A
failed attempt pushes it forward by a retry delay. Only an optimisation: the thumbnail's
own write is conditional on the output still being pending, so two workers that both
made it record one thumbnail.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("assets", sa.Column("thumbnail_claimed_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("assets") as batch:
        batch.drop_column("thumbnail_claimed_until")
