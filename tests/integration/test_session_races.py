"""Sign-in and refresh-token rotation racing the revocations on PostgreSQL (READ COMMITTED): no
refresh family survives a password reset, a password change, signing out everywhere or signing out.

The interleavings are forced, not hoped for: a second connection holds an uncommitted refresh
token with the hash the rotation is about to insert, so the rotation stops after it spent the old
token; the revocation then starts, and the test waits until PostgreSQL shows both waiting on locks.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from domain.errors import InvalidCredentials
from domain.use_cases.auth import Session, login, refresh, register
from domain.use_cases.password_reset import reset_password
from domain.use_cases.passwords import change_password
from domain.use_cases.sessions import end_all_sessions, end_session
from domain.users import Principal, Role, refresh_token_hash
from infrastructure.clock import SystemClock
from infrastructure.db.engine import create_engine, create_session_factory
from infrastructure.db.uow import SqlUnitOfWorkFactory
from infrastructure.security.passwords import Argon2PasswordHasher
from infrastructure.security.tokens import TokenService
from infrastructure.settings import Settings
from tests.unit.fakes import FakeRevocations

pytestmark = pytest.mark.postgres

PASSWORD = "correct horse battery"
NEW_PASSWORD = "a brand new passphrase"
EMAIL = "victim@example.com"
CLOCK = SystemClock()


class PickedTokens(TokenService):
    """The real token service, but the next refresh token is one the test chose (to collide with)."""

    next_refresh: str | None = None

    def new_refresh_token(self) -> tuple[str, str]:  # type: ignore[override]
        if self.next_refresh is None:
            return TokenService.new_refresh_token()
        token, self.next_refresh = self.next_refresh, None
        return token, refresh_token_hash(token)


class GatedHasher(Argon2PasswordHasher):
    """Argon2, but `verify` returns only once the test opens the gate (a slow hash, made deterministic)."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024)
        self.verifying = asyncio.Event()
        self.gate = asyncio.Event()
        self.gate.set()

    async def verify(self, password_hash: str | None, password: str) -> bool:
        valid = await super().verify(password_hash, password)
        self.verifying.set()
        await self.gate.wait()
        return valid


@pytest.fixture
async def uow(clean_postgres: str, tmp_path: Path) -> AsyncIterator[SqlUnitOfWorkFactory]:
    engine = create_engine(Settings(_env_file=None, database_url=clean_postgres, data_dir=tmp_path))  # type: ignore[call-arg]
    yield SqlUnitOfWorkFactory(create_session_factory(engine))
    await engine.dispose()


@pytest.fixture
def tokens() -> PickedTokens:
    return PickedTokens(
        algorithm="HS256",
        signing_key="s" * 32,
        verifying_key="s" * 32,
        issuer="genhub",
        access_ttl=900,
        refresh_ttl=3600,
    )


@pytest.fixture
async def blocker(postgres_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(postgres_dsn)
    yield conn
    await conn.close()


async def waiting_on_locks(conn: asyncpg.Connection, count: int) -> None:
    """Until `count` other sessions of this database wait for a lock."""
    for _ in range(500):
        await conn.execute("SELECT pg_stat_clear_snapshot()")  # else a transaction sees its first snapshot
        waiting = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        if waiting >= count:
            return
        await asyncio.sleep(0.01)
    activity = await conn.fetch(
        "SELECT state, wait_event_type, wait_event, query FROM pg_stat_activity WHERE datname = current_database()"
    )
    raise AssertionError(f"{count} sessions never waited for a lock: {[dict(a) for a in activity]}")


async def held_rotation(
    blocker: asyncpg.Connection, tokens: PickedTokens, uow: SqlUnitOfWorkFactory, user_id: uuid.UUID, token: str
) -> asyncio.Task[Session]:
    """A rotation of `token` started and stopped after it spent the token: its new token's insert waits
    for the blocker's uncommitted row with the same hash. The blocker's transaction stays open."""
    next_token = f"picked-{uuid.uuid4().hex}"
    tokens.next_refresh = next_token
    now = datetime.now(UTC)
    await blocker.execute("BEGIN")
    await blocker.execute(
        "INSERT INTO refresh_tokens (id, user_id, family_id, token_hash, expires_at, created_at) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        uuid.uuid4(),
        user_id,
        uuid.uuid4(),
        refresh_token_hash(next_token),
        now + timedelta(hours=1),
        now,
    )
    rotation = asyncio.create_task(refresh(refresh_token=token, uow=uow(), tokens=tokens, clock=CLOCK))
    await waiting_on_locks(blocker, 1)
    return rotation


Revocation = Callable[[SqlUnitOfWorkFactory, PickedTokens, Session, Session], Awaitable[object]]


async def reset_by_link(uow: SqlUnitOfWorkFactory) -> object:
    """The victim asks for a reset link and uses it."""
    link = f"reset-{uuid.uuid4().hex}"
    now = datetime.now(UTC)
    async with uow() as tx:
        await tx.password_resets.issue(
            EMAIL,
            reset_id=uuid.uuid4(),
            token_hash=refresh_token_hash(link),
            at=now,
            expires_at=now + timedelta(hours=1),
        )
        await tx.commit()
    hasher = Argon2PasswordHasher(time_cost=1, memory_cost=1024)
    return await reset_password(
        link, NEW_PASSWORD, uow=uow(), hasher=hasher, clock=CLOCK, revocations=FakeRevocations()
    )


async def _reset(uow: SqlUnitOfWorkFactory, tokens: PickedTokens, victim: Session, attacker: Session) -> object:
    return await reset_by_link(uow)


async def _change(uow: SqlUnitOfWorkFactory, tokens: PickedTokens, victim: Session, attacker: Session) -> object:
    principal = Principal(victim.user.id, Role.USER, session_id=victim.session_id, session_version=0)
    hasher = Argon2PasswordHasher(time_cost=1, memory_cost=1024)
    return await change_password(
        principal,
        current_password=PASSWORD,
        new_password=NEW_PASSWORD,
        uow=uow,
        hasher=hasher,
        tokens=tokens,
        clock=CLOCK,
        revocations=FakeRevocations(),
    )


async def _everywhere(uow: SqlUnitOfWorkFactory, tokens: PickedTokens, victim: Session, attacker: Session) -> object:
    return await end_all_sessions(
        victim.user.id, uow=uow(), clock=CLOCK, revocations=FakeRevocations(), keep_session=victim.session_id
    )


async def _sign_out(uow: SqlUnitOfWorkFactory, tokens: PickedTokens, victim: Session, attacker: Session) -> object:
    # the session signed out is the one being rotated
    assert attacker.session_id is not None
    return await end_session(
        attacker.user.id, attacker.session_id, uow=uow(), clock=CLOCK, revocations=FakeRevocations()
    )


@pytest.mark.parametrize(
    "revoke", [_reset, _change, _everywhere, _sign_out], ids=["reset", "change", "everywhere", "logout"]
)
async def test_a_rotation_in_flight_does_not_outlive_a_revocation(
    revoke: Revocation, uow: SqlUnitOfWorkFactory, tokens: PickedTokens, blocker: asyncpg.Connection
) -> None:
    # given the victim's session and a stolen one (its own family), whose rotation is in flight:
    # the old token spent, the new one not yet inserted
    hasher = Argon2PasswordHasher(time_cost=1, memory_cost=1024)
    victim = await register(email=EMAIL, password=PASSWORD, uow=uow(), hasher=hasher, tokens=tokens, clock=CLOCK)
    attacker = await login(email=EMAIL, password=PASSWORD, uow=uow(), hasher=hasher, tokens=tokens, clock=CLOCK)
    rotation = await held_rotation(blocker, tokens, uow, victim.user.id, attacker.refresh_token)
    # when the revocation starts meanwhile, and waits for a lock the rotation holds
    revocation = asyncio.create_task(revoke(uow, tokens, victim, attacker))
    await waiting_on_locks(blocker, 2)
    # and the rotation then completes (before the revocation)
    await blocker.execute("ROLLBACK")
    rotated = await rotation
    await revocation
    # then the token the rotation handed out is revoked too
    with pytest.raises(InvalidCredentials):
        await refresh(refresh_token=rotated.refresh_token, uow=uow(), tokens=tokens, clock=CLOCK)


async def test_a_revocation_in_flight_stops_a_rotation_that_waited_for_it(
    uow: SqlUnitOfWorkFactory, tokens: PickedTokens, blocker: asyncpg.Connection
) -> None:
    # given a session, and a sign-out everywhere holding the user's row (a second connection keeps one of
    # the user's refresh tokens locked, so the revocation stops inside)
    hasher = Argon2PasswordHasher(time_cost=1, memory_cost=1024)
    victim = await register(email=EMAIL, password=PASSWORD, uow=uow(), hasher=hasher, tokens=tokens, clock=CLOCK)
    await blocker.execute("BEGIN")
    await blocker.execute("SELECT 1 FROM refresh_tokens WHERE user_id = $1 FOR UPDATE", victim.user.id)
    revocation = asyncio.create_task(
        end_all_sessions(victim.user.id, uow=uow(), clock=CLOCK, revocations=FakeRevocations())
    )
    await waiting_on_locks(blocker, 1)
    # when the session rotates meanwhile
    rotation = asyncio.create_task(refresh(refresh_token=victim.refresh_token, uow=uow(), tokens=tokens, clock=CLOCK))
    await waiting_on_locks(blocker, 2)
    await blocker.execute("ROLLBACK")
    await revocation
    # then the rotation waited for the revocation, and is refused
    with pytest.raises(InvalidCredentials):
        await rotation


async def test_a_sign_in_verified_before_a_reset_is_refused_after_it(
    uow: SqlUnitOfWorkFactory, tokens: PickedTokens
) -> None:
    # given an account, and a sign-in with its password that has read and verified the old hash
    hasher = GatedHasher()
    await register(email=EMAIL, password=PASSWORD, uow=uow(), hasher=hasher, tokens=tokens, clock=CLOCK)
    hasher.gate.clear()
    hasher.verifying.clear()
    signing_in = asyncio.create_task(
        login(email=EMAIL, password=PASSWORD, uow=uow(), hasher=hasher, tokens=tokens, clock=CLOCK)
    )
    await hasher.verifying.wait()
    # when the password is reset meanwhile
    await reset_by_link(uow)
    hasher.gate.set()
    # then the sign-in with the old password is refused: no family outlives the reset
    with pytest.raises(InvalidCredentials):
        await signing_in
    async with uow() as tx:
        user = await tx.users.get_by_email(EMAIL)
        assert user is not None
        assert await tx.refresh_tokens.revoke_all(user.id, datetime.now(UTC)) == 0
