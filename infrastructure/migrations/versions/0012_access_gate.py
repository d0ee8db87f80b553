"""users.session_version, sessions_valid_after and suspended_at: access tokens that stop working at once

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 10:20:00

An access token carries the `session_version` of its user at issue (claim `sv`); every
process's access gate refuses a token whose version is below the user's, or any token of
a suspended user (docs/security.md, "Ending sessions"). `sessions_valid_after` records
when the version was last bumped, for people (admins, the audit log) to read; the
comparison is on the counter, which no clock skew between replicas can fool.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("session_version", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("sessions_valid_after", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("suspended_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("suspended_at")
        batch.drop_column("sessions_valid_after")
        batch.drop_column("session_version")
