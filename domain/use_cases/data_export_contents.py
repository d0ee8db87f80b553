"""What a data export archive holds, written through the ArchiveWriter port, one batch of rows at a time.

JSON members use the API's camelCase names. Files follow the JSON that lists them: each
output as `outputs/<generation id>/<n>.<ext>`, each uploaded file as
`uploads/<chunk id>-<sanitised name>`; an object missing from storage is listed with
`"file": null` instead of failing the export.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from domain.boards import BoardRole
from domain.chunks import Chunk, ChunkStatus
from domain.credits import CreditBalance, LedgerEntry
from domain.cursors import Cursor
from domain.data_export_ports import ArchiveWriter, ExportUnitOfWorkFactory
from domain.data_exports import output_member, upload_member
from domain.errors import NotFound
from domain.generations import Generation
from domain.pagination import PageRequest
from domain.ports import ObjectStorage
from domain.repositories import Asset
from domain.users import User
from domain.webhook_endpoints import WebhookEndpoint

README = """\
genhub data export
==================

This archive holds a copy of your genhub account's data as of the time it was built.

account.json      your account: id, e-mail, role, when it was created, credit balance
boards.json       the boards you are a member of, each with your role on it
ledger.json       every credit movement of your account, newest first; the amounts of
                  kinds grant, adjust and capture sum to your balance
chunks.json       the files you uploaded; "file" names the copy in this archive
generations.json  every generation you started, oldest first, with its parameters,
                  status, error, credits, board and outputs (type, size, sha256,
                  geometry); each output's "file" names the copy in this archive
webhooks.json     your webhook endpoints: URL, event types, note, enabled (never
                  their signing secrets)
outputs/<generation id>/<n>.<ext>   the outputs of your generations
uploads/<file id>-<name>            your uploaded files (names made safe for any disk)

A "file" of null means the object was no longer in storage when the archive was built.
All times are UTC (ISO 8601). Ids are UUIDs, as the API shows them.
"""


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _id(value: uuid.UUID | None) -> str | None:
    return str(value) if value is not None else None


def account_record(user: User, balance: CreditBalance) -> dict[str, Any]:
    return {
        "id": str(user.id),
        "email": user.email,
        "role": user.role.value,
        "createdAt": _time(user.created_at),
        "balance": balance.balance,
        "reserved": balance.reserved,
    }


def board_record(board_id: uuid.UUID, name: str, created_at: datetime, role: BoardRole) -> dict[str, Any]:
    return {"id": str(board_id), "name": name, "createdAt": _time(created_at), "role": role.value}


def ledger_record(entry: LedgerEntry) -> dict[str, Any]:
    return {
        "id": str(entry.id),
        "kind": entry.kind.value,
        "amount": entry.amount,
        "generationId": _id(entry.generation_id),
        "reason": entry.reason,
        "createdAt": _time(entry.created_at),
    }


def webhook_record(endpoint: WebhookEndpoint) -> dict[str, Any]:
    """An endpoint as the API shows it; its secrets never leave the database."""
    return {
        "id": str(endpoint.id),
        "url": endpoint.url,
        "events": sorted(e.value for e in endpoint.events),
        "description": endpoint.description,
        "enabled": endpoint.enabled,
        "createdAt": _time(endpoint.created_at),
        "updatedAt": _time(endpoint.updated_at),
    }


def chunk_record(chunk: Chunk, file: str | None) -> dict[str, Any]:
    return {
        "id": str(chunk.id),
        "filename": chunk.filename,
        "contentType": chunk.content_type,
        "size": chunk.size,
        "sha256": chunk.sha256,
        "status": chunk.status.value,
        "createdAt": _time(chunk.created_at),
        "file": file,
    }


def output_record(asset: Asset, file: str | None) -> dict[str, Any]:
    return {
        "position": asset.position,
        "contentType": asset.content_type,
        "size": asset.size,
        "sha256": asset.sha256,
        "width": asset.width,
        "height": asset.height,
        "durationSeconds": asset.duration_seconds,
        "key": asset.object_key,
        "file": file,
    }


def generation_record(
    generation: Generation, inputs: Sequence[uuid.UUID], outputs: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    g = generation
    return {
        "id": str(g.id),
        "modelId": str(g.model_id),
        "presetId": _id(g.preset_id),
        "boardId": _id(g.board_id),
        "prompt": g.prompt,
        "params": g.params,
        "status": g.status.value,
        "errorCode": g.error_code,
        "errorMessage": g.error_message,
        "reservedCredits": g.reserved_credits,
        "chargedCredits": g.charged_credits,
        "createdAt": _time(g.created_at),
        "finishedAt": _time(g.finished_at),
        "inputChunkIds": [str(i) for i in inputs],
        "outputs": list(outputs),
    }


async def _copy(writer: ArchiveWriter, storage: ObjectStorage, name: str, key: str) -> str | None:
    """Copy one stored object into the archive; None when it is gone from storage."""
    try:
        await writer.add_file(name, storage.open_read(key))
    except NotFound:
        return None
    return name


async def write_contents(
    writer: ArchiveWriter, *, user_id: uuid.UUID, uow: ExportUnitOfWorkFactory, storage: ObjectStorage, batch: int
) -> None:
    """Every member of the user's archive. NotFound when the user is gone."""
    async with uow() as u:
        user = await u.users.get(user_id)
        if user is None:
            raise NotFound("user")
        balance = await u.credits.balance(user_id)
        boards = await u.data_exports.board_roles(user_id)
        endpoints = await u.webhooks.endpoints_of(user_id)
    await writer.add_text("README.txt", README)
    await writer.add_json("account.json", account_record(user, balance))
    await writer.add_json("boards.json", [board_record(*board) for board in boards])
    await writer.add_json("webhooks.json", [webhook_record(e) for e in endpoints])
    await _ledger(writer, user_id=user_id, uow=uow, batch=batch)
    await _chunks(writer, user_id=user_id, uow=uow, storage=storage, batch=batch)
    await _generations(writer, user_id=user_id, uow=uow, storage=storage, batch=batch)


async def _ledger(writer: ArchiveWriter, *, user_id: uuid.UUID, uow: ExportUnitOfWorkFactory, batch: int) -> None:
    after: Cursor | None = None
    async with writer.json_list("ledger.json") as ledger:
        while True:
            async with uow() as u:
                page = await u.credits.ledger_page(user_id, PageRequest(batch, after))
            for entry in page.items:
                await ledger.append(ledger_record(entry))
            if not page.has_next or not page.items:
                return
            after = Cursor(page.items[-1].created_at, page.items[-1].id)


async def _chunks(
    writer: ArchiveWriter, *, user_id: uuid.UUID, uow: ExportUnitOfWorkFactory, storage: ObjectStorage, batch: int
) -> None:
    after: Cursor | None = None
    async with writer.json_list("chunks.json") as listed:
        while True:
            async with uow() as u:
                page = await u.chunks.page(user_id, PageRequest(batch, after))
            for chunk in page.items:
                file = None
                if chunk.status is ChunkStatus.READY:
                    file = await _copy(writer, storage, upload_member(chunk.id, chunk.filename), chunk.object_key)
                await listed.append(chunk_record(chunk, file))
            if not page.has_next or not page.items:
                return
            after = Cursor(page.items[-1].created_at, page.items[-1].id)


async def _generations(
    writer: ArchiveWriter, *, user_id: uuid.UUID, uow: ExportUnitOfWorkFactory, storage: ObjectStorage, batch: int
) -> None:
    after: tuple[datetime, uuid.UUID] | None = None
    async with writer.json_list("generations.json") as listed:
        while True:
            async with uow() as u:
                generations = await u.data_exports.generations_of(user_id, after=after, limit=batch)
                ids = [g.id for g in generations]
                assets = await u.generations.assets_of(ids)
                inputs = await u.generations.inputs_of(ids)
            for g in generations:
                outputs = sorted((a for a in assets.get(g.id, []) if a.kind == "output"), key=lambda a: a.position)
                records = []
                for output in outputs:
                    name = output_member(g.id, output.position, output.object_key)
                    records.append(output_record(output, await _copy(writer, storage, name, output.object_key)))
                await listed.append(generation_record(g, inputs.get(g.id, []), records))
            if len(generations) < batch:
                return
            after = (generations[-1].created_at, generations[-1].id)
