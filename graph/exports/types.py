"""GraphQL types of the data exports area."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from domain import data_exports as de
from graph.chunks.types import DownloadUrl
from graph.common.node import Node
from graph.common.types import NotFound, RateLimited
from graph.context import Info

strawberry.enum(
    de.ExportStatus,
    name="DataExportStatus",
    description="PENDING (queued), BUILDING, READY (downloadable until expiresAt), FAILED (see errorCode), "
    "EXPIRED (the archive was deleted).",
)
DataExportStatus = de.ExportStatus

#: Default lifetime of a URL the API signs for an archive.
DEFAULT_URL_SECONDS = 900


@strawberry.type(description="An archive of the viewer's data (account, generations, ledger, boards, files).")
class DataExport(Node):
    status: DataExportStatus
    created_at: datetime
    expires_at: datetime | None = strawberry.field(description="When the READY archive is deleted.")
    size: float | None = strawberry.field(description="The archive's size in bytes (a Float: it may pass 2^31).")
    sha256: str | None = strawberry.field(description="Hex SHA-256 of the archive.")
    error_code: str | None = strawberry.field(description="Why it FAILED: EXPORT_TOO_LARGE or EXPORT_FAILED.")
    domain: strawberry.Private[de.DataExport]

    @classmethod
    def from_domain(cls, export: de.DataExport) -> DataExport:
        return cls(
            id=strawberry.ID(str(export.id)),
            status=export.status,
            created_at=export.created_at,
            expires_at=export.expires_at,
            size=float(export.size) if export.size is not None else None,
            sha256=export.sha256,
            error_code=export.error_code,
            domain=export,
        )

    @strawberry.field(
        description="A signed URL of the archive while it is READY (null otherwise), valid for "
        "`expiresInSeconds` (1 .. 604800 accepted; at most 900 granted, see the URL's expiresAt) "
        "but never past expiresAt."
    )
    async def url(
        self,
        info: Info,
        expires_in_seconds: Annotated[
            int, strawberry.argument(description="How long the URL should stay valid, in seconds.")
        ] = DEFAULT_URL_SECONDS,
    ) -> DownloadUrl | None:
        signed = await info.context.services.data_exports.url_of(
            info.context.require_viewer(), self.domain, expires_in_seconds
        )
        return DownloadUrl(url=signed.url, expires_at=signed.expires_at) if signed is not None else None


@strawberry.type
class RequestDataExportSuccess:
    export: DataExport = strawberry.field(description="The new export, or the one already on its way.")


RequestDataExportResult = Annotated[RequestDataExportSuccess | RateLimited, strawberry.union("RequestDataExportResult")]
DataExportResult = Annotated[DataExport | NotFound, strawberry.union("DataExportResult")]
