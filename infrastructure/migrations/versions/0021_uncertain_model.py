"""generations.uncertain_model: the provider model of an uncertain route

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-05 16:30:00

An uncertain submit's route is found again by its provider (`generations.provider`) and that
provider's model id, not by its index in the model's routes: an admin may insert or reorder
routes meanwhile (domain/use_cases/routed_submission.py `routes_to_try`).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("generations", sa.Column("uncertain_model", sa.String(200), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("generations") as batch:
        batch.drop_column("uncertain_model")
