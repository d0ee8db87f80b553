"""The provider fakes of the processing use cases, and `Env`: the shared fakes (tests/unit/fakes.py) set up for them."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any

from domain.credits import CreditBalance, LedgerKind
from domain.generations import Generation, GenerationStatus
from domain.ports import JobSearch, ProviderCallback, ProviderError, ProviderJob, ProviderStatus
from domain.ports import Provider as ProviderPort
from domain.use_cases.processing import ProcessingPolicy, ProcessingPorts
from tests.unit.fakes import (
    T0,
    FakeClock,
    FakeDatabase,
    FakeEventPublisher,
    FakeJobQueue,
    Fakes,
    FakeStorage,
)
from tests.unit.media_fakes import FakeMediaWorkshop

__all__ = ["COST", "T0", "Env", "Listing", "Provider", "Providers", "Registry", "Slow"]

COST = 10


class Provider:
    """Scripted: `submit_errors` are raised first, then task ids are handed out; `statuses` per task."""

    name = "fake"
    supports_cancel = True

    def __init__(self) -> None:
        self.submit_errors: list[ProviderError] = []
        self.jobs: list[ProviderJob] = []
        self.status_of: ProviderStatus = ProviderStatus(state="running", progress=0.5)
        self.status_error: ProviderError | None = None
        self.download_error: ProviderError | None = None
        # What downloading a URL gives (by default a small PNG naming the URL).
        self.bodies: dict[str, bytes] = {}
        self.canceled: list[str] = []
        self.status_calls = 0

    async def submit(self, job: ProviderJob) -> str:
        self.jobs.append(job)
        if self.submit_errors:
            raise self.submit_errors.pop(0)
        return f"task-{len(self.jobs)}"

    async def status(self, external_id: str) -> ProviderStatus:
        self.status_calls += 1
        if self.status_error is not None:
            raise self.status_error
        return self.status_of

    async def cancel(self, external_id: str) -> None:
        self.canceled.append(external_id)

    async def download(self, url: str) -> AsyncIterator[bytes]:
        if self.download_error is not None:
            raise self.download_error
        yield self.bodies.get(url, b"\x89PNG\r\n\x1a\n fake " + url.encode())

    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> ProviderCallback:
        if headers.get("x-sig") != "ok":
            raise PermissionError("bad signature")
        if not body:
            raise ValueError("empty body")
        return ProviderCallback(body.decode(), ProviderStatus(state="succeeded"))


class Listing(Provider):
    """A provider that can list its jobs (`JobLookup`, as Replicate): `found` is what its list says (by default
    that no job matches, the whole list read: the job is absent); `lookups` what it was asked."""

    def __init__(self) -> None:
        super().__init__()
        self.found: JobSearch | ProviderError = JobSearch()
        self.lookups: list[tuple[ProviderJob, datetime]] = []

    async def find_job(self, job: ProviderJob, *, since: datetime) -> JobSearch:
        self.lookups.append((job, since))
        if isinstance(self.found, ProviderError):
            raise self.found
        return self.found


class Registry:
    def __init__(self, provider: Provider) -> None:
        self.provider = provider

    def get(self, name: str) -> Provider:
        if name != self.provider.name:
            raise KeyError(name)
        return self.provider


class Slow(Provider):
    """Takes a while to answer, and counts the submits it runs at once."""

    def __init__(self, name: str, delay: float = 0.02) -> None:
        super().__init__()
        self.name = name  # type: ignore[misc]
        self.delay = delay
        self.in_flight = 0
        self.most_in_flight = 0

    async def submit(self, job: ProviderJob) -> str:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
            return await super().submit(job)
        finally:
            self.in_flight -= 1


class Providers:
    """A registry of several providers, by name."""

    def __init__(self, *providers: ProviderPort) -> None:
        self.providers = {p.name: p for p in providers}

    def get(self, name: str) -> ProviderPort:
        return self.providers[name]


@dataclasses.dataclass
class Env:
    """Everything a processing test needs, plus helpers to set up a generation with a hold."""

    fakes: Fakes = dataclasses.field(default_factory=Fakes)
    provider: Provider = dataclasses.field(default_factory=Provider)
    media: FakeMediaWorkshop = dataclasses.field(default_factory=FakeMediaWorkshop)
    policy: ProcessingPolicy = dataclasses.field(
        default_factory=lambda: ProcessingPolicy(
            max_attempts=3, retry_base_seconds=2.0, retry_max_seconds=30.0, lease_seconds=60.0, jitter=lambda: 0.5
        )
    )

    @property
    def store(self) -> FakeDatabase:
        return self.fakes.db

    @property
    def clock(self) -> FakeClock:
        return self.fakes.clock

    @property
    def storage(self) -> FakeStorage:
        return self.fakes.storage

    @property
    def publisher(self) -> FakeEventPublisher:
        return self.fakes.publisher

    @property
    def jobs(self) -> FakeJobQueue:
        return self.fakes.jobs

    @property
    def ports(self) -> ProcessingPorts:
        return ProcessingPorts(
            uow=self.fakes.uow_factory(),
            providers=Registry(self.provider),
            catalogue=self.fakes.catalogue,
            storage=self.fakes.storage,
            publisher=self.fakes.publisher,
            jobs=self.fakes.jobs,
            limiter=self.fakes.limiter,
            clock=self.fakes.clock,
            media=self.media,
        )

    def generation(self, status: GenerationStatus = GenerationStatus.QUEUED, **fields: Any) -> Generation:
        """A generation of a fresh user (100 credits) holding COST credits while it is active."""
        owner = self.fakes.user(balance=100)
        model = self.fakes.model(cost=COST, providerModel="m1")
        return self.fakes.generation(owner, model, status, **fields)

    def get(self, generation: Generation) -> Generation:
        return self.store.generations[generation.id]

    def kinds(self, generation: Generation) -> list[LedgerKind]:
        return sorted(e.kind for e in self.store.ledger.values() if e.generation_id == generation.id)

    def account(self, generation: Generation) -> CreditBalance:
        return self.store.accounts[generation.user_id]
