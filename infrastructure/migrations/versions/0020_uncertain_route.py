"""generations.uncertain_route: the route of a submit whose outcome is unknown

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-05 16:00:00

A submit that failed after its request may have reached the provider (a read timeout, an
answer that does not parse) may have left a job there. The generation remembers that
route (and its provider in `generations.provider`), and its later submit attempts go to
that route only instead of starting again from the first (domain/use_cases/routed_submission.py).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("generations", sa.Column("uncertain_route", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("generations") as batch:
        batch.drop_column("uncertain_route")
