"""Verifying API keys from the per-process memo (domain/use_cases/api_key_gate.py) with a fake key store."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from domain.api_keys import INVALID_KEY, KeyCredential, Scope, mint
from domain.errors import RateLimited, Unauthenticated
from domain.use_cases.access_gate import AccessGate
from domain.use_cases.api_key_gate import ApiKeyGate
from domain.users import Role
from tests.unit.fakes import FakeClock

TTL = 30.0


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeKeyStore:
    """The key repository's `credential`, counting reads; `during_read` runs inside one (a revocation)."""

    def __init__(self) -> None:
        self.credentials: dict[str, KeyCredential] = {}
        self.reads = 0
        self.during_read: Any = None

    async def credential(self, lookup_id: str) -> KeyCredential | None:
        self.reads += 1
        found = self.credentials.get(lookup_id)
        if self.during_read is not None:
            self.during_read()
        return found


class FakeUow:
    def __init__(self, store: FakeKeyStore) -> None:
        self.api_keys = store

    async def __aenter__(self) -> FakeUow:
        return self

    async def __aexit__(self, *args: object) -> None:
        return None


class World:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.ticks = Ticks()
        self.access = AccessGate(
            ttl_seconds=TTL, session_window=timedelta(minutes=16), clock=self.clock, monotonic=self.ticks
        )
        self.gate = ApiKeyGate(
            access=self.access, clock=self.clock, monotonic=self.ticks, ttl_seconds=TTL, max_entries=3
        )
        self.store = FakeKeyStore()
        self.uow: Any = FakeUow(self.store)

    def key(
        self,
        *,
        admin: bool = False,
        expires_in: float | None = None,
        scopes: frozenset[Scope] = frozenset({Scope.READ}),
    ) -> tuple[uuid.UUID, str]:
        expires = self.clock.now() + timedelta(seconds=expires_in) if expires_in is not None else None
        new = mint(
            user_id=uuid.uuid4(),
            name="k",
            scopes=scopes,
            created_at=self.clock.now(),
            expires_at=expires,
        )
        self.store.credentials[new.key.lookup_id] = KeyCredential(new.key, new.secret_hash, admin)
        return new.key.id, new.token

    async def verify(self, token: str) -> Any:
        return await self.gate.verify(token, uow=self.uow)


@pytest.fixture
def world() -> World:
    return World()


async def test_a_key_is_read_once_per_ttl(world: World) -> None:
    key_id, token = world.key(admin=True)
    principal, expires = await world.verify(token)
    assert principal.api_key_id == key_id and principal.scopes == {Scope.READ}
    assert expires is None
    for _ in range(5):
        await world.verify(token)
    assert world.store.reads == 1
    world.ticks.now += TTL
    await world.verify(token)
    assert world.store.reads == 2


@pytest.mark.parametrize(
    ("admin", "scopes", "role", "may_override"),
    [
        (True, {Scope.READ, Scope.GENERATE}, Role.USER, False),  # an administrator's key without an admin scope
        (True, {Scope.READ, Scope.ADMIN_READ}, Role.ADMIN, False),
        (True, {Scope.GENERATE, Scope.ADMIN_READ, Scope.ADMIN_WRITE}, Role.ADMIN, True),
        (False, {Scope.READ, Scope.GENERATE}, Role.USER, False),
    ],
)
async def test_an_administrators_key_is_administrator_only_with_an_admin_scope(
    world: World, admin: bool, scopes: set[Scope], role: Role, may_override: bool
) -> None:
    _, token = world.key(admin=admin, scopes=frozenset(scopes))
    principal, _ = await world.verify(token)
    assert principal.role is role and principal.may_override is may_override


async def test_while_distrusted_a_known_key_is_not_held_to_the_lookup_limit(world: World) -> None:
    # given a key verified once, then the revocation channel down (every verification reads)
    _, token = world.key()
    calls: list[int] = []

    async def budget() -> None:
        calls.append(1)
        if len(calls) > 1:
            raise RateLimited(5)

    await world.gate.verify(token, uow=world.uow, before_read=budget)
    world.access.distrust()
    # when it is used again and again, it still reads each time but is never rate limited
    for _ in range(5):
        await world.gate.verify(token, uow=world.uow, before_read=budget)
    assert len(calls) == 1 and world.store.reads == 6
    # while an id never seen still is
    with pytest.raises(RateLimited):
        await world.gate.verify("ghk_" + "1" * 16 + "_" + "C" * 43, uow=world.uow, before_read=budget)


async def test_a_forgotten_key_is_read_again_and_its_revocation_seen(world: World) -> None:
    key_id, token = world.key()
    await world.verify(token)
    cred = world.store.credentials[token[4:20]]
    world.store.credentials[token[4:20]] = KeyCredential(
        key=_revoked(cred), secret_hash=cred.secret_hash, owner_is_admin=False
    )
    world.gate.forget(key_id)
    with pytest.raises(Unauthenticated, match=INVALID_KEY):
        await world.verify(token)


async def test_a_read_that_overlaps_a_revocation_is_not_remembered(world: World) -> None:
    key_id, token = world.key()
    world.store.during_read = lambda: world.gate.forget(key_id)
    await world.verify(token)
    world.store.during_read = None
    await world.verify(token)
    assert world.store.reads == 2


async def test_unknown_ids_are_remembered_and_bad_keys_all_read_the_same(world: World) -> None:
    _, token = world.key()
    unknown = "ghk_" + "0" * 16 + "_" + token[-43:]
    wrong_secret = token[:-1] + ("A" if token[-1] != "A" else "B")
    for bad in (unknown, unknown, wrong_secret, "ghk_x", "", token + "x"):
        with pytest.raises(Unauthenticated) as refused:
            await world.verify(bad)
        assert str(refused.value) == INVALID_KEY
    assert world.store.reads == 2  # the unknown id once, the known one once


async def test_an_expired_key_is_refused(world: World) -> None:
    _, token = world.key(expires_in=10)
    await world.verify(token)
    world.clock.advance(10)
    with pytest.raises(Unauthenticated):
        await world.verify(token)


async def test_while_distrusted_every_verification_reads(world: World) -> None:
    _, token = world.key()
    await world.verify(token)
    world.access.distrust()
    await world.verify(token)
    await world.verify(token)
    assert world.store.reads == 3
    await world.access.trust()
    await world.verify(token)
    await world.verify(token)
    assert world.store.reads == 4


async def test_the_memo_is_bounded(world: World) -> None:
    tokens = [world.key()[1] for _ in range(5)]
    for token in tokens:
        await world.verify(token)
    assert world.gate.remembered() == 3
    await world.verify(tokens[0])  # evicted: read again
    assert world.store.reads == 6


async def test_before_read_runs_only_for_reads_and_may_refuse(world: World) -> None:
    _, token = world.key()
    calls = []

    async def budget() -> None:
        calls.append(1)
        if len(calls) > 1:
            raise RateLimited(5)

    await world.gate.verify(token, uow=world.uow, before_read=budget)
    await world.gate.verify(token, uow=world.uow, before_read=budget)
    assert len(calls) == 1
    with pytest.raises(RateLimited):
        await world.gate.verify("ghk_" + "1" * 16 + "_" + "C" * 43, uow=world.uow, before_read=budget)


async def test_last_use_is_buffered_until_taken(world: World) -> None:
    key_id, token = world.key()
    await world.verify(token)
    world.clock.advance(5)
    await world.verify(token)
    used = world.gate.take_used()
    assert used == {key_id: world.clock.now()}
    assert world.gate.take_used() == {}
    world.gate.put_back(used)
    world.gate.put_back({key_id: world.clock.now() - timedelta(seconds=60)})
    assert world.gate.take_used() == used


def _revoked(cred: KeyCredential) -> Any:
    import dataclasses

    return dataclasses.replace(cred.key, revoked_at=cred.key.created_at)
