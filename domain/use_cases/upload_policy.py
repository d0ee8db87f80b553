"""The configured upload limits and the checks against them: a file's metadata, a user's quota."""

from __future__ import annotations

from dataclasses import dataclass

from domain.chunks import normalize_content_type, validate_chunk_metadata
from domain.errors import FieldProblem, Problems, QuotaExceeded
from domain.repositories import UnitOfWork
from domain.users import Principal

DEFAULT_CONTENT_TYPE = "application/octet-stream"


@dataclass(frozen=True, slots=True)
class UploadPolicy:
    """The configured limits: per-file size and types, per-user quota (count and bytes)."""

    max_bytes: int
    allowed_types: frozenset[str]
    quota_count: int
    quota_bytes: int


async def remaining_bytes(uow: UnitOfWork, principal: Principal, policy: UploadPolicy, size: int) -> int:
    """Bytes this user may still store; QuotaExceeded when one more chunk of `size` does not fit.

    Pending chunks count too: a reserved upload slot is a promise of bytes.
    """
    count, used = await uow.chunks.usage(principal.user_id, lock=True)
    if count + 1 > policy.quota_count:
        raise QuotaExceeded(policy.quota_count, f"You can keep at most {policy.quota_count} files.")
    remaining = policy.quota_bytes - used
    if size > remaining:
        raise QuotaExceeded(policy.quota_bytes, f"Your files may take at most {policy.quota_bytes} bytes in total.")
    return remaining


def validated(
    filename: str, content_type: str, size: int, sha256: str | None, policy: UploadPolicy, *, size_field: str = "size"
) -> str:
    """Check the metadata; returns the normalised content type."""
    problems = Problems()
    normalized = normalize_content_type(content_type or DEFAULT_CONTENT_TYPE)
    validate_chunk_metadata(
        filename=filename,
        content_type=normalized,
        size=size,
        sha256=sha256,
        max_size=policy.max_bytes,
        allowed_types=policy.allowed_types,
        problems=problems,
    )
    # Name the field the client actually sent (uploadChunk has `file`, not `size`).
    problems.items = [FieldProblem(size_field, p.message) if p.field == "size" else p for p in problems.items]
    problems.raise_if_any()
    return normalized
