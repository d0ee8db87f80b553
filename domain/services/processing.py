"""Processing: what the workers run (submit, refresh, callbacks, cancel at the provider, the sweeps),
and the provider callback's receipt on the API side."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from domain.use_cases import finalization, provider_slots, submission, sweeps
from domain.use_cases.callbacks import receive_callback
from domain.use_cases.processing import ProcessingPolicy, ProcessingPorts
from domain.use_cases.sweeps import PollReport


@dataclass(frozen=True, slots=True)
class Processing:
    ports: ProcessingPorts
    policy: ProcessingPolicy

    async def submit(self, generation_id: uuid.UUID) -> None:
        await submission.submit(generation_id, ports=self.ports, policy=self.policy)

    async def refresh(self, generation_id: uuid.UUID) -> None:
        """Ask the provider and apply its answer; a finalize takes this same path (only one wins)."""
        await finalization.refresh(generation_id, ports=self.ports, policy=self.policy)

    async def handle_callback(self, provider: str, external_id: str, generation_id: uuid.UUID | None = None) -> None:
        await finalization.handle_callback(
            provider, external_id, ports=self.ports, policy=self.policy, generation_id=generation_id
        )

    async def cancel_remote(
        self,
        generation_id: uuid.UUID,
        *,
        model_id: uuid.UUID | None = None,
        external_id: str | None = None,
        provider: str | None = None,
    ) -> None:
        await sweeps.cancel_remote(
            generation_id, ports=self.ports, model_id=model_id, external_id=external_id, provider_name=provider
        )

    async def poll_active(self) -> PollReport:
        return await sweeps.poll_active(ports=self.ports, policy=self.policy)

    async def expire_stuck(self) -> int:
        return await sweeps.expire_stuck(ports=self.ports, policy=self.policy)

    async def reconcile_slots(self) -> int:
        """Repair the providers' in-flight slots from the database; how many were freed."""
        return await provider_slots.reconcile_slots(ports=self.ports, policy=self.policy)

    async def receive_callback(
        self, provider: str, headers: Mapping[str, str], body: bytes, query: Mapping[str, str] | None = None
    ) -> str:
        """Verify a provider's callback and queue its handling; returns the provider's task id."""
        return await receive_callback(
            provider,
            headers,
            body,
            providers=self.ports.providers,
            jobs=self.ports.jobs,
            uow=self.ports.uow,
            query=query,
            callback_key=self.policy.callback_key,
            previous_keys=self.policy.callback_previous_keys,
        )
