"""generations.provider and provider_attempts: which route runs a generation, and every route tried

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05 13:30:00

A model may name several provider routes (domain/provider_routes.py); the submitter
tries them in order and records each try here. The provider whose submit succeeded is
kept on the generation, so polls, callbacks and cancels go to it and not to the model's
first route. Generations submitted before this revision have no provider: their model's
provider runs them, as before.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("generations", sa.Column("provider", sa.String(length=32), nullable=True))
    op.create_table(
        "provider_attempts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("generation_id", sa.Uuid(), nullable=False),
        sa.Column("submit_attempt", sa.Integer(), nullable=False),
        sa.Column("route_index", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.CheckConstraint("outcome in ('submitted', 'failed', 'skipped')", name=op.f("ck_provider_attempts_outcome")),
        sa.ForeignKeyConstraint(
            ["generation_id"],
            ["generations.id"],
            name=op.f("fk_provider_attempts_generation_id_generations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_attempts")),
    )
    op.create_index(op.f("ix_provider_attempts_generation_id"), "provider_attempts", ["generation_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_provider_attempts_generation_id"), table_name="provider_attempts")
    op.drop_table("provider_attempts")
    with op.batch_alter_table("generations") as batch:
        batch.drop_column("provider")
