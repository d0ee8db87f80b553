"""genhub_start_generation() re-checks that the model is active at the reserved cost

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 08:15:00

`generate` prices a start from the process's catalogue snapshot. A replica whose snapshot
predates a deactivation or a new cost (its invalidation message lost, or not read yet) could
start the model, or start it at the old cost. The start now refuses ('model') unless the
model is active and its cost is the reserved amount; `generate` then reads the catalogue
again and answers from it. SQLite has no stored functions: its unit-of-work starter does
the same check.
"""

import importlib
from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The function in force after this migration, written out whole (0003's, with the model
# check after the idempotency replay); a later change writes its own version out again.
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
        # 0003's function, as 0003 wrote it
        previous = importlib.import_module("infrastructure.migrations.versions.0003_start_checks_board_membership")
        op.execute(previous.START_GENERATION)
