"""Rows of the generation tables (Core rows, by column name) as domain objects."""

from __future__ import annotations

from domain.generations import Generation, GenerationStatus
from domain.repositories import Asset
from infrastructure.db.repositories.base import AnyRow, aware, aware_opt


def generation_of(row: AnyRow) -> Generation:
    """A row of the generations table's columns (extra columns, such as a union's part number, are ignored)."""
    return Generation(
        id=row.id,
        user_id=row.user_id,
        model_id=row.model_id,
        prompt=row.prompt,
        status=GenerationStatus(row.status),
        created_at=aware(row.created_at),
        updated_at=aware(row.updated_at),
        params=dict(row.params or {}),
        board_id=row.board_id,
        preset_id=row.preset_id,
        progress=row.progress,
        error_code=row.error_code,
        error_message=row.error_message,
        reserved_credits=row.reserved_credits,
        charged_credits=row.charged_credits,
        provider_task_id=row.provider_task_id,
        provider=row.provider,
        uncertain_route=row.uncertain_route,
        uncertain_model=row.uncertain_model,
        uncertain_since=aware_opt(row.uncertain_since),
        idempotency_key=row.idempotency_key,
        finished_at=aware_opt(row.finished_at),
        deadline_at=aware_opt(row.deadline_at),
        submit_attempts=row.submit_attempts,
        next_attempt_at=aware_opt(row.next_attempt_at),
        lease_token=row.lease_token,
        thumbnails_pending=row.thumbnails_pending,
    )


def asset_of(row: AnyRow) -> Asset:
    return Asset(
        id=row.id,
        generation_id=row.generation_id,
        kind=row.kind,
        position=row.position,
        object_key=row.object_key,
        content_type=row.content_type,
        size=row.size,
        created_at=aware(row.created_at),
        sha256=row.sha256,
        width=row.width,
        height=row.height,
        duration_seconds=row.duration_seconds,
        source_id=row.source_id,
        thumbnail_state=row.thumbnail_state,
        thumbnail_attempts=row.thumbnail_attempts,
        thumbnail_error=row.thumbnail_error,
    )
