"""generations.uncertain_since: when the uncertain submit of `uncertain_route` was sent

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-05 17:05:00

A provider's list is read back to the submit that set the uncertain route
(domain/use_cases/uncertain_lookup.py), not to the generation's first failed attempt at that provider,
which may be an older failure that started nothing. NULL on rows from before: those read back to that
first failed attempt, as before.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("generations", sa.Column("uncertain_since", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("generations") as batch:
        batch.drop_column("uncertain_since")
