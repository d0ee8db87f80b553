"""genhub_start_generation() re-checks the board membership inside the start

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 13:30:00

`generate` checks the board before the start for precise errors, but a member removed (or
made a VIEWER) between that check and the start could still land a generation in the
board. The start now takes the membership row FOR SHARE and refuses ('board') unless the
starter is still an OWNER or EDITOR: a concurrent removal or role change (which locks the
row for update) either commits first and is seen, or waits until the start committed.
SQLite has no stored functions: its unit-of-work starter does the same check.
"""

import importlib
from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PREVIOUS = importlib.import_module("infrastructure.migrations.versions.0002_start_generation_function")
BEFORE_INSERT = "    INSERT INTO generations ("
BOARD_CHECK = """    IF p_board_id IS NOT NULL THEN
        -- Still a member who may generate there; FOR SHARE holds the membership until this
        -- commits (a removal or role change waits, or has committed and is seen here).
        PERFORM 1 FROM board_members m
          WHERE m.board_id = p_board_id AND m.user_id = p_user_id AND m.role IN ('owner', 'editor')
          FOR SHARE;
        IF NOT FOUND THEN
            RETURN QUERY SELECT 'board'::text, NULL::uuid, v_balance, v_reserved;
            RETURN;
        END IF;
    END IF;

"""


def start_generation_sql() -> str:
    previous: str = PREVIOUS.START_GENERATION
    assert previous.count(BEFORE_INSERT) == 1, "migration 0002's function changed shape"
    return previous.replace(BEFORE_INSERT, BOARD_CHECK + BEFORE_INSERT)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(start_generation_sql())


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PREVIOUS.START_GENERATION)
