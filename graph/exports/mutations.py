"""requestDataExport."""

from __future__ import annotations

import strawberry

from graph.context import Info
from graph.exports.types import DataExport, RequestDataExportResult, RequestDataExportSuccess
from graph.permissions import IsAuthenticated


@strawberry.type
class DataExportMutations:
    @strawberry.mutation(
        description="Queue an archive of the viewer's data; while one is PENDING or BUILDING, that one is "
        "returned. Its link is e-mailed when READY. A few per day (RateLimited).",
        permission_classes=[IsAuthenticated],
    )
    async def request_data_export(self, info: Info) -> RequestDataExportResult:
        export = await info.context.services.data_exports.request(info.context.require_viewer())
        return RequestDataExportSuccess(export=DataExport.from_domain(export))
