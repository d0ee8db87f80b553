"""Ids of admin mutations, parsed so that a malformed one is audited like any other refusal."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from domain.audit import AuditAction
from domain.errors import DomainError
from graph.context import Info
from graph.request_origin import origin_of


async def audited_id(info: Info, action: AuditAction, value: str, parse: Callable[[str], uuid.UUID]) -> uuid.UUID:
    """`parse(value)`; when it refuses (InvalidInput, NotFound), the admin's attempt is recorded first."""
    try:
        return parse(value)
    except DomainError as exc:
        viewer = info.context.require_viewer()
        await info.context.services.admin.refused_before(viewer, action, str(value), exc, origin_of(info))
        raise
