"""assets.thumbnail_claim_token: which worker holds an output's thumbnail claim

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 11:40:00

A claim (0008) ran out and was taken by a second worker, yet the first kept renewing it
alongside the new claimant: renewal checked only that the output was still pending, so the
first never learned it had lost the claim. Each claim now draws a token, stored here;
renewing, releasing and settling an output's thumbnail under a claim compare it, as data
export builds do (`data_exports.claim_token`).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("assets", sa.Column("thumbnail_claim_token", sa.Uuid(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("assets") as batch:
        batch.drop_column("thumbnail_claim_token")
