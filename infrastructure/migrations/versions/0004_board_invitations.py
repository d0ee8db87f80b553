"""board_invitations: boards are shared by e-mail invitation, accepted by the invitee

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05 02:00:00

`addBoardMember` no longer adds an account found by its e-mail (which told the inviter
whether the address had one): it records a pending invitation keyed by the board and the
normalised address, whether or not an account uses it, and the invitee accepts or declines
it. The table is written out here (not derived from the models) so the migration keeps its
meaning when the models change; the same DDL serves PostgreSQL and SQLite.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "board_invitations",
        sa.Column("board_id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("email_as_typed", sa.String(length=254), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("invited_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("role in ('owner', 'editor', 'viewer')", name=op.f("ck_board_invitations_role")),
        sa.ForeignKeyConstraint(
            ["board_id"], ["boards.id"], name=op.f("fk_board_invitations_board_id_boards"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["invited_by"], ["users.id"], name=op.f("fk_board_invitations_invited_by_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("board_id", "email", name=op.f("pk_board_invitations")),
    )
    # The invitee's side looks invitations up by address across boards.
    op.create_index("ix_board_invitations_email", "board_invitations", ["email"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_board_invitations_email", table_name="board_invitations")
    op.drop_table("board_invitations")
