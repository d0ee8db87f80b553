"""generations.lease_token: which worker holds a generation while it submits or finalizes it

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05 07:00:00

A worker that submits a generation, or copies its outputs, holds it under a short lease
(`next_attempt_at`) that it renews while it works. The token says whose lease it is: a
renewal, or the final write, that finds another token (or none) learns that its lease
ran out and another worker took the generation over. Null when nobody holds it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("generations", sa.Column("lease_token", sa.Uuid(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("generations") as batch:
        batch.drop_column("lease_token")
