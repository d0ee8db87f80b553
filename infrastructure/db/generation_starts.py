"""GenerationStarter: a new generation and its credit reservation, written atomically.

PostgreSQL: one call of `genhub_start_generation()` (migrations 0002, 0003, 0006, 0015) on a connection of
a plain asyncpg pool, in autocommit, so starting a generation costs one round trip
instead of BEGIN, three statements and COMMIT. Other databases (SQLite, the embedded default):
the same steps in one unit of work.

When the connection breaks after the call was sent, the start may have committed: the
generation is looked up by its id (chosen before the call) on another connection, and the
start's outcome is what that finds; when it cannot be found out, OutcomeUnknown.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any, Protocol

from domain.chunks import ChunkStatus
from domain.credits import CreditBalance, LedgerEntry, LedgerKind
from domain.errors import OutcomeUnknown
from domain.generations import Generation
from domain.repositories import StartOutcome, StartStatus, UnitOfWorkFactory
from infrastructure.ledger_metrics import count_ledger_move
from infrastructure.outages import DATABASE, dependency_down, translating

START_GENERATION_SQL = (
    "SELECT * FROM genhub_start_generation($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
)

#: The start (by its id) or the generation the user's key already names; the account beside it.
FIND_START_SQL = (
    "SELECT g.id, a.balance, a.reserved FROM generations g"
    " LEFT JOIN credit_accounts a ON a.user_id = g.user_id"
    " WHERE g.user_id = $2 AND (g.id = $1 OR g.idempotency_key = $3)"
    " ORDER BY g.id = $1 DESC LIMIT 1"
)
#: Looking a start up after its reply was lost: a few tries, within a bound short enough for a request.
FIND_ATTEMPTS = 4
FIND_PAUSE_SECONDS = 0.2
FIND_BOUND_SECONDS = 3.0

log = logging.getLogger("genhub.generations")


def _reserved_amount(reservation: LedgerEntry | None) -> int:
    if reservation is None:
        return 0
    if reservation.kind is not LedgerKind.RESERVE or reservation.amount <= 0:
        raise ValueError(f"a start reserves a positive amount, not a {reservation.kind.value} of {reservation.amount}")
    return reservation.amount


class DriverPool(Protocol):
    """What the starter needs of a driver-level pool (infrastructure/db/driver_pool.py FairPool)."""

    async def acquire(self) -> Any: ...
    async def release(self, connection: Any) -> None: ...
    async def fetchrow(self, query: str, *args: Any) -> Any: ...


class PgGenerationStarter:
    def __init__(self, pool: DriverPool) -> None:
        self._pool = pool

    async def start(self, generation: Generation, reservation: LedgerEntry | None) -> StartOutcome:
        g = generation
        cost = _reserved_amount(reservation)
        args: tuple[Any, ...] = (
            g.id,
            g.user_id,
            g.board_id,
            g.model_id,
            g.preset_id,
            g.prompt,
            json.dumps(g.params, separators=(",", ":")),
            cost,
            g.idempotency_key,
            g.deadline_at,
            g.created_at,
            reservation.id if reservation else None,
            reservation.idempotency_key if reservation else None,
            list(g.input_chunk_ids),
        )
        with translating(DATABASE):  # no connection: nothing was sent, nothing reserved
            connection = await self._pool.acquire()
        lost: OutcomeUnknown | None = None
        try:
            # The function call is its own (autocommit) transaction: one round trip.
            with translating(DATABASE, sends_write=True):
                row = await connection.fetchrow(START_GENERATION_SQL, *args)
        except OutcomeUnknown as exc:
            lost = exc
        finally:
            await self._pool.release(connection)  # a broken one is discarded by the pool
        if lost is not None:
            found = await self._find(g)
            if found is None:
                log.warning("the start of generation %s was sent; whether it was stored is unknown", g.id)
                raise lost
            log.warning("the reply to the start of generation %s was lost; found it %s", g.id, found.status.value)
            outcome = found
        else:
            status = StartStatus(row[0])
            account = CreditBalance(int(row[2]), int(row[3])) if row[2] is not None else None
            outcome = StartOutcome(status, uuid.UUID(str(row[1])) if row[1] is not None else None, account)
        if outcome.status is StartStatus.STARTED and reservation is not None:
            count_ledger_move(reservation.kind.value, reservation.amount)
        return outcome

    async def _find(self, g: Generation) -> StartOutcome | None:
        """STARTED when the generation `g` exists, REPLAYED when its key names an earlier one; None
        when neither could be read (or it is not there: the start may still be on its way)."""
        try:
            async with asyncio.timeout(FIND_BOUND_SECONDS):
                for _ in range(FIND_ATTEMPTS):
                    try:
                        row = await self._pool.fetchrow(FIND_START_SQL, g.id, g.user_id, g.idempotency_key)
                    except Exception as exc:
                        if dependency_down(exc) is None:
                            raise
                        row = None
                    if row is not None:
                        found = uuid.UUID(str(row[0]))
                        account = CreditBalance(int(row[1]), int(row[2])) if row[1] is not None else None
                        return StartOutcome(
                            StartStatus.STARTED if found == g.id else StartStatus.REPLAYED, found, account
                        )
                    await asyncio.sleep(FIND_PAUSE_SECONDS)
        except TimeoutError:
            pass
        return None


class SqlGenerationStarter:
    """The same steps as the PostgreSQL function, in one unit of work (SQLite allows one writer)."""

    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def start(self, generation: Generation, reservation: LedgerEntry | None) -> StartOutcome:
        g = generation
        cost = _reserved_amount(reservation)
        async with self._uow() as uow:
            user = await uow.users.get(g.user_id)
            if user is None or user.deleted_at is not None:
                return StartOutcome(StartStatus.ACCOUNT_GONE)
            if g.idempotency_key is not None:
                existing = await uow.generations.get_by_idempotency_key(g.user_id, g.idempotency_key)
                if existing is not None:
                    return StartOutcome(StartStatus.REPLAYED, existing.id)
            model = await uow.catalogue.get_model(g.model_id)
            if model is None or not model.is_active or model.cost_credits != cost:
                return StartOutcome(StartStatus.MODEL_CHANGED)
            if cost:
                seen = await uow.credits.balance(g.user_id)
                if seen.available < cost:
                    return StartOutcome(StartStatus.INSUFFICIENT, account=seen)
            if g.input_chunk_ids:
                chunks = await uow.chunks.get_many(g.input_chunk_ids)
                ready = {c.id for c in chunks if c.user_id == g.user_id and c.status is ChunkStatus.READY}
                if ready != set(g.input_chunk_ids):
                    return StartOutcome(StartStatus.INPUTS_CHANGED)
            if g.board_id is not None:
                role = await uow.boards.role_of(g.board_id, g.user_id)
                if role is None or not role.can_generate:
                    return StartOutcome(StartStatus.BOARD_CHANGED)
            if not await uow.generations.add(g):
                assert g.idempotency_key is not None  # only a keyed insert can conflict
                existing = await uow.generations.get_by_idempotency_key(g.user_id, g.idempotency_key)
                return StartOutcome(StartStatus.REPLAYED, existing.id if existing else None)
            await uow.generations.add_inputs(g.id, g.input_chunk_ids)
            after = None
            if reservation is not None:
                await uow.credits.add_entry(reservation)
                after = await uow.credits.change(g.user_id, balance_delta=0, reserved_delta=cost)
                if after is None:  # the cover was spent since the check above: write nothing
                    return StartOutcome(StartStatus.INSUFFICIENT, account=await uow.credits.balance(g.user_id))
            await uow.commit()
        return StartOutcome(StartStatus.STARTED, g.id, after)
