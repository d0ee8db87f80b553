"""Data exports: the owner's requests and reads, and what the workers run (build, sweep)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from domain.data_exports import DataExport, ExportStatus
from domain.ports import PresignedRequest
from domain.use_cases import data_export_builds as builds
from domain.use_cases import data_exports
from domain.use_cases.data_export_builds import SweepReport
from domain.use_cases.data_exports import ExportPolicy, ExportPorts
from domain.users import Principal


@dataclass(frozen=True, slots=True)
class DataExports:
    ports: ExportPorts
    policy: ExportPolicy

    async def request(self, principal: Principal) -> DataExport:
        return await data_exports.request_export(principal=principal, ports=self.ports, policy=self.policy)

    async def get(self, principal: Principal, export_id: uuid.UUID) -> DataExport:
        return await data_exports.get_export(principal=principal, export_id=export_id, ports=self.ports)

    async def mine(self, principal: Principal, limit: int) -> list[DataExport]:
        return await data_exports.list_exports(principal=principal, ports=self.ports, limit=limit)

    async def download_url(
        self, principal: Principal, export_id: uuid.UUID, expires_in: int
    ) -> PresignedRequest | None:
        return await data_exports.download_url(
            principal=principal, export_id=export_id, expires_in=expires_in, ports=self.ports
        )

    async def url_of(self, principal: Principal, export: DataExport, expires_in: int) -> PresignedRequest | None:
        """A signed URL of an export already read (`get`, `mine`); None unless the viewer's and READY."""
        if export.user_id != principal.user_id:
            return None
        return await data_exports.sign(export, requested=expires_in, ports=self.ports)

    async def build(self, export_id: uuid.UUID) -> ExportStatus | None:
        return await builds.build_export(export_id, ports=self.ports, policy=self.policy)

    async def sweep(self) -> SweepReport:
        return await builds.sweep_exports(ports=self.ports, policy=self.policy)
