"""myDataExports, dataExport."""

from __future__ import annotations

from typing import Annotated

import strawberry

from domain.use_cases.data_exports import MAX_LISTED
from graph.common.ids import lookup_id
from graph.context import Info
from graph.exports.types import DataExport, DataExportResult
from graph.permissions import IsAuthenticated


@strawberry.type
class DataExportQueries:
    @strawberry.field(
        description=f"The viewer's data exports, newest first (`first` <= {MAX_LISTED}).",
        permission_classes=[IsAuthenticated],
    )
    async def my_data_exports(
        self,
        info: Info,
        first: Annotated[int, strawberry.argument(description="How many exports to return, newest first.")] = 10,
    ) -> list[DataExport]:
        found = await info.context.services.data_exports.mine(info.context.require_viewer(), first)
        return [DataExport.from_domain(export) for export in found]

    @strawberry.field(description="One of the viewer's data exports.", permission_classes=[IsAuthenticated])
    async def data_export(
        self, info: Info, id: Annotated[strawberry.ID, strawberry.argument(description="The export's id.")]
    ) -> DataExportResult:
        found = await info.context.services.data_exports.get(
            info.context.require_viewer(), lookup_id(id, "data export")
        )
        return DataExport.from_domain(found)
