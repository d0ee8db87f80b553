"""genhub_start_generation() refuses ('account') unless the starter's account is live

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 11:00:00

A start admitted just before `deleteAccount` could commit just after it: the foreign key
check waits for the tombstone's update, then passes (the users row stays as the tombstone),
and the generation landed for a deleted account, its worker capturing credits from it. The
start now takes the users row FOR SHARE first and refuses ('account') when `deleted_at` is
set. SQLite has no stored functions: its unit-of-work starter does the same check.
"""

import importlib
from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The function in force after this migration, written out whole (0006's, with the account
# check first); a later change writes its own version out again.
START_GENERATION = """
CREATE OR REPLACE FUNCTION genhub_start_generation(
    p_id uuid,
    p_user_id uuid,
    p_board_id uuid,
    p_model_id uuid,
    p_preset_id uuid,
    p_prompt text,
    p_params text,
    p_cost bigint,
    p_idempotency_key text,
    p_deadline_at timestamptz,
    p_at timestamptz,
    p_ledger_id uuid,
    p_ledger_key text,
    p_inputs uuid[]
) RETURNS TABLE (outcome text, started_id uuid, account_balance bigint, account_reserved bigint)
LANGUAGE plpgsql
VOLATILE
AS $fn$
#variable_conflict use_column
DECLARE
    v_balance bigint;
    v_reserved bigint;
    v_existing uuid;
    v_ready integer;
BEGIN
    -- The account must be live, checked before anything else is locked. FOR SHARE conflicts with
    -- the deletion's users-row lock (FOR NO KEY UPDATE, taken first in its transaction; FOR KEY SHARE
    -- would not): a start either holds this before the deletion begins (the deletion waits, then
    -- deletes what the start wrote), or waits until the deletion committed and, reading the row
    -- again, finds the tombstone and writes nothing. Taken before the account row below, so a start
    -- and a deletion (users row, then the account row as it releases holds) lock in the same order.
    PERFORM 1 FROM users u WHERE u.id = p_user_id AND u.deleted_at IS NULL FOR SHARE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'account'::text, NULL::uuid, NULL::bigint, NULL::bigint;
        RETURN;
    END IF;

    -- Every start of a user takes the account row lock first, so the starts of one user
    -- are serialised: the idempotency check below (a new snapshot, READ COMMITTED) sees
    -- every start that committed before, and the cover check cannot race a reservation.
    SELECT a.balance, a.reserved INTO v_balance, v_reserved
      FROM credit_accounts a WHERE a.user_id = p_user_id FOR UPDATE;

    IF p_idempotency_key IS NOT NULL THEN
        SELECT g.id INTO v_existing FROM generations g
         WHERE g.user_id = p_user_id AND g.idempotency_key = p_idempotency_key;
        IF FOUND THEN
            RETURN QUERY SELECT 'replayed'::text, v_existing, v_balance, v_reserved;
            RETURN;
        END IF;
    END IF;

    -- The model must still be active at the price the caller reserves: a replica whose
    -- catalogue snapshot predates a deactivation or a new cost cannot start it at the old one.
    PERFORM 1 FROM models m WHERE m.id = p_model_id AND m.is_active AND m.cost_credits = p_cost;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'model'::text, NULL::uuid, v_balance, v_reserved;
        RETURN;
    END IF;

    IF p_cost > 0 AND (v_balance IS NULL OR v_balance - v_reserved < p_cost) THEN
        RETURN QUERY SELECT 'insufficient'::text, NULL::uuid, coalesce(v_balance, 0), coalesce(v_reserved, 0);
        RETURN;
    END IF;

    IF cardinality(p_inputs) > 0 THEN
        -- The inputs must still be the user's READY chunks; FOR SHARE keeps them from
        -- being deleted until this commits.
        PERFORM 1 FROM chunks c
          WHERE c.id = ANY (p_inputs) AND c.user_id = p_user_id AND c.status = 'ready'
          FOR SHARE;
        GET DIAGNOSTICS v_ready = ROW_COUNT;
        IF v_ready <> cardinality(p_inputs) THEN
            RETURN QUERY SELECT 'inputs'::text, NULL::uuid, v_balance, v_reserved;
            RETURN;
        END IF;
    END IF;

    IF p_board_id IS NOT NULL THEN
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

    INSERT INTO generations (
        id, user_id, board_id, model_id, preset_id, prompt, params, status, progress,
        reserved_credits, charged_credits, idempotency_key, deadline_at, submit_attempts,
        created_at, updated_at
    ) VALUES (
        p_id, p_user_id, p_board_id, p_model_id, p_preset_id, p_prompt, p_params::jsonb, 'queued', 0,
        p_cost, 0, p_idempotency_key, p_deadline_at, 0,
        p_at, p_at
    )
    ON CONFLICT (user_id, idempotency_key) DO NOTHING;
    IF NOT FOUND THEN
        -- Only reachable without an account row (no lock was taken, so the cost is 0):
        -- a concurrent start with the same key inserted first.
        SELECT g.id INTO v_existing FROM generations g
         WHERE g.user_id = p_user_id AND g.idempotency_key = p_idempotency_key;
        RETURN QUERY SELECT 'replayed'::text, v_existing, v_balance, v_reserved;
        RETURN;
    END IF;

    IF cardinality(p_inputs) > 0 THEN
        INSERT INTO generation_inputs (generation_id, position, chunk_id)
        SELECT p_id, (i.ord - 1)::integer, i.chunk
          FROM unnest(p_inputs) WITH ORDINALITY AS i (chunk, ord);
    END IF;

    IF p_cost > 0 THEN
        INSERT INTO credit_ledger (id, user_id, kind, amount, generation_id, idempotency_key, created_at)
        VALUES (p_ledger_id, p_user_id, 'reserve', p_cost, p_id, p_ledger_key, p_at);
        UPDATE credit_accounts a
           SET reserved = a.reserved + p_cost, version = a.version + 1
         WHERE a.user_id = p_user_id
        RETURNING a.balance, a.reserved INTO v_balance, v_reserved;
    END IF;

    RETURN QUERY SELECT 'started'::text, p_id, v_balance, v_reserved;
END;
$fn$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(START_GENERATION)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # 0006's function, as 0006 wrote it
        previous = importlib.import_module("infrastructure.migrations.versions.0006_start_checks_model_price")
        op.execute(previous.START_GENERATION)
