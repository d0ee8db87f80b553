"""Thumbnails: what the workers run after a generation SUCCEEDED (make them; queue again what waits too long)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from domain.use_cases import thumbnails
from domain.use_cases.thumbnails import ThumbnailPolicy, ThumbnailPorts


@dataclass(frozen=True, slots=True)
class Thumbnails:
    ports: ThumbnailPorts
    policy: ThumbnailPolicy

    async def make(self, generation_id: uuid.UUID) -> int:
        """Thumbnail the generation's pending outputs; how many were settled (ready or failed) by this call."""
        return await thumbnails.make_thumbnails(generation_id, ports=self.ports, policy=self.policy)

    async def requeue_pending(self) -> int:
        """Queue the task again for outputs still pending after the grace period; how many generations."""
        return await thumbnails.requeue_pending(ports=self.ports, policy=self.policy)
