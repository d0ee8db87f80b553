"""What the topology scenarios read behind the processes' backs: PostgreSQL rows, the task stream, a socket's queue."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from redis.asyncio import Redis

from domain.credits import BALANCE_KINDS, RESERVED_KINDS
from infrastructure.queue import CONSUMER_GROUP, QUEUE_NAME

# The tasks that work on one generation (the periodic sweeps carry no generation id).
JOB_TASKS = frozenset({"submit_generation", "refresh_generation", "finalize_generation"})


@dataclass(frozen=True)
class CreditAccount:
    user_id: uuid.UUID
    balance: int
    reserved: int
    ledger_balance: int
    ledger_reserved: int


async def accounts(conn: asyncpg.Connection) -> list[CreditAccount]:
    """Every credit account beside the sums of its ledger (balance and reserved, as domain/credits.py defines them)."""
    rows = await conn.fetch(
        """
        SELECT a.user_id, a.balance, a.reserved,
               COALESCE(SUM(l.amount) FILTER (WHERE l.kind = ANY($1::text[])), 0) AS ledger_balance,
               COALESCE(SUM(l.amount) FILTER (WHERE l.kind = ANY($2::text[])), 0) AS ledger_reserved
        FROM credit_accounts a LEFT JOIN credit_ledger l ON l.user_id = a.user_id
        GROUP BY a.user_id, a.balance, a.reserved
        """,
        sorted(BALANCE_KINDS),
        sorted(RESERVED_KINDS),
    )
    return [CreditAccount(**dict(row)) for row in rows]


@dataclass(frozen=True)
class GenerationRecord:
    id: uuid.UUID
    status: str
    charged_credits: int
    reserves: int
    captures: int
    outputs: int
    output_keys: list[str]


async def generations(conn: asyncpg.Connection, ids: list[str]) -> list[GenerationRecord]:
    """Each generation with how often it was reserved and captured, and its output assets."""
    rows = await conn.fetch(
        """
        SELECT g.id, g.status, g.charged_credits,
               (SELECT count(*) FROM credit_ledger l WHERE l.generation_id = g.id AND l.kind = 'reserve') AS reserves,
               (SELECT count(*) FROM credit_ledger l WHERE l.generation_id = g.id AND l.kind = 'capture') AS captures,
               (SELECT count(*) FROM assets a WHERE a.generation_id = g.id AND a.kind = 'output') AS outputs,
               ARRAY(SELECT a.object_key FROM assets a WHERE a.generation_id = g.id AND a.kind = 'output')
                 AS output_keys
        FROM generations g WHERE g.id = ANY($1::uuid[]) ORDER BY g.created_at
        """,
        [uuid.UUID(i) for i in ids],
    )
    return [GenerationRecord(**dict(row)) for row in rows]


async def statuses(conn: asyncpg.Connection, ids: list[str]) -> dict[str, str]:
    rows = await conn.fetch(
        "SELECT id, status FROM generations WHERE id = ANY($1::uuid[])", [uuid.UUID(i) for i in ids]
    )
    return {str(row["id"]): row["status"] for row in rows}


@dataclass(frozen=True)
class HeldJob:
    message_id: bytes | str
    task_name: str
    generation_id: str


async def job_in_hand(redis: Redis, tasks: frozenset[str] = JOB_TASKS) -> HeldJob | None:
    """A message of `tasks` a worker has read and not yet acknowledged: a job mid-run.

    The worker acknowledges only after the task finished (`--ack-type when_saved`), so a
    pending entry of the consumer group is a task still running (or one whose worker died).
    """
    for entry in await redis.xpending_range(QUEUE_NAME, CONSUMER_GROUP, min="-", max="+", count=100):
        for message_id, fields in await redis.xrange(QUEUE_NAME, entry["message_id"], entry["message_id"]) or []:
            if fields is None:  # trimmed from the stream since
                continue
            message = json.loads(fields[b"data"])
            if message_id is not None and message["task_name"] in tasks:
                return HeldJob(message_id, message["task_name"], message["kwargs"]["generation_id"])
    return None


async def still_pending(redis: Redis, message_id: bytes | str) -> bool:
    """Whether the consumer group still waits for an acknowledgement of `message_id`."""
    entries = await redis.xpending_range(QUEUE_NAME, CONSUMER_GROUP, min=message_id, max=message_id, count=1)
    return bool(entries)


def unread_bytes(server_port: int, client_port: int) -> int | None:
    """Bytes the server at `server_port` has not yet read from the loopback connection of `client_port`.

    From /proc/net/tcp (Linux): 0 once the server process read the request off the socket.
    None while the kernel lists no such connection.
    """
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, queues = fields[1], fields[2], fields[4]
        if int(local.split(":")[1], 16) == server_port and int(remote.split(":")[1], 16) == client_port:
            return int(queues.split(":")[1], 16)
    return None
