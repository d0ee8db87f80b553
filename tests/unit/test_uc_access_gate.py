"""The access gate (domain/use_cases/access_gate.py) and ending sessions (domain/use_cases/sessions.py) with fakes."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.errors import AccountSuspended, NotFound
from domain.use_cases import auth, sessions
from domain.use_cases.access_gate import GONE, AccessGate
from domain.users import AccessState, Principal, Role, User
from tests.unit.fakes import Fakes

TTL = 30.0
PASSWORD = "correct horse battery"


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


@pytest.fixture
def ticks() -> Ticks:
    return Ticks()


@pytest.fixture
def gate(fakes: Fakes, ticks: Ticks) -> AccessGate:
    gate = AccessGate(ttl_seconds=TTL, session_window=timedelta(minutes=16), clock=fakes.clock, monotonic=ticks)
    fakes.revocations.gate = gate
    return gate


def token_of(user: User, *, session: uuid.UUID | None = None, version: int = 0) -> Principal:
    return Principal(user.id, user.role, session_id=session, session_version=version)


# ------------------------------------------------------------------ AccessState.refusal


@given(
    version=st.integers(min_value=0, max_value=5),
    current=st.integers(min_value=0, max_value=5),
    suspended=st.booleans(),
    ended=st.booleans(),
)
def test_a_token_is_admitted_only_when_current_unsuspended_and_its_session_alive(
    version: int, current: int, suspended: bool, ended: bool
) -> None:
    session = uuid.uuid4()
    state = AccessState(current, suspended, frozenset({session}) if ended else frozenset())
    principal = Principal(uuid.uuid4(), Role.USER, session_id=session, session_version=version)
    admitted = state.refusal(principal) is None
    assert admitted == (not suspended and version >= current and not ended)


# ------------------------------------------------------------------ the memo


async def test_a_state_is_read_once_per_ttl(fakes: Fakes, gate: AccessGate, ticks: Ticks) -> None:
    # given an admitted token, then its user suspended behind the gate's back (no announcement)
    user = fakes.user()
    assert await gate.refusal(token_of(user), uow=fakes.uow) is None
    fakes.db.users[user.id] = dataclasses.replace(user, suspended_at=fakes.clock.now())
    # then within the TTL the memo answers, and after it the database does
    ticks.now = TTL - 0.1
    assert await gate.refusal(token_of(user), uow=fakes.uow) is None
    ticks.now = TTL
    assert await gate.refusal(token_of(user), uow=fakes.uow) == "The account is suspended."
    assert gate.reads == 2


async def test_an_announcement_is_effective_at_once(fakes: Fakes, gate: AccessGate) -> None:
    user = fakes.user()
    assert await gate.refusal(token_of(user), uow=fakes.uow) is None
    await sessions.set_suspended(user.id, True, uow=fakes.uow, clock=fakes.clock, revocations=fakes.revocations)
    assert await gate.refusal(token_of(user), uow=fakes.uow) == "The account is suspended."


async def test_an_account_that_is_gone_is_refused_and_never_remembered(fakes: Fakes, gate: AccessGate) -> None:
    missing = uuid.uuid4()
    principal = Principal(missing, Role.USER)
    assert await gate.refusal(principal, uow=fakes.uow) == GONE
    fakes.db.users[missing] = dataclasses.replace(fakes.user(), id=missing)  # created since
    assert await gate.refusal(principal, uow=fakes.uow) is None


async def test_an_untrusted_gate_reads_every_time_and_remembers_nothing(fakes: Fakes, gate: AccessGate) -> None:
    # given a gate that cannot hear announcements
    user = fakes.user()
    gate.distrust()
    for _ in range(3):
        assert await gate.refusal(token_of(user), uow=fakes.uow) is None
    assert gate.reads == 3
    # when the user is suspended without any announcement reaching it, then the next check sees it
    fakes.db.users[user.id] = dataclasses.replace(user, suspended_at=fakes.clock.now())
    assert await gate.refusal(token_of(user), uow=fakes.uow) == "The account is suspended."


async def test_a_read_that_overlaps_an_announcement_is_not_remembered(fakes: Fakes, gate: AccessGate) -> None:
    # given a read that is slow: an announcement lands while it is in flight (its result may predate the commit)
    user = fakes.user()
    real_state = fakes.uow.users.access_state

    async def slow_state(user_id: uuid.UUID, **kw: object) -> AccessState | None:
        state = await real_state(user_id, **kw)  # type: ignore[arg-type]
        gate.forget(user_id)  # the announcement arrives now
        return state

    fakes.uow.users.access_state = slow_state  # type: ignore[method-assign]
    assert await gate.refusal(token_of(user), uow=fakes.uow) is None
    fakes.uow.users.access_state = real_state  # type: ignore[method-assign]
    # then the next check reads again
    assert await gate.refusal(token_of(user), uow=fakes.uow) is None
    assert gate.reads == 2


async def test_the_memo_keeps_the_most_recently_read_states(fakes: Fakes, ticks: Ticks) -> None:
    gate = AccessGate(
        ttl_seconds=TTL, session_window=timedelta(minutes=16), clock=fakes.clock, monotonic=ticks, max_entries=2
    )
    first, second, third = fakes.user(), fakes.user(), fakes.user()
    for user in (first, second, third):
        await gate.refusal(token_of(user), uow=fakes.uow)
    reads = gate.reads
    await gate.refusal(token_of(third), uow=fakes.uow)
    await gate.refusal(token_of(second), uow=fakes.uow)
    assert gate.reads == reads  # both remembered
    await gate.refusal(token_of(first), uow=fakes.uow)
    assert gate.reads == reads + 1  # pushed out


# ------------------------------------------------------------------ watchers (open connections)


async def test_an_announcement_checks_the_users_open_connections_only(fakes: Fakes, gate: AccessGate) -> None:
    alice, bob = fakes.user(), fakes.user()
    checked: list[str] = []

    async def check_alice() -> None:
        checked.append("alice")

    async def check_bob() -> None:
        checked.append("bob")

    stop = gate.watch(alice.id, check_alice)
    gate.watch(bob.id, check_bob)
    await fakes.revocations.announce(alice.id)
    assert checked == ["alice"]
    await gate.recheck_all()
    assert sorted(checked) == ["alice", "alice", "bob"]
    stop()
    assert gate.watched() == 1


async def test_trust_coming_back_forgets_everything_and_checks_every_connection(fakes: Fakes, gate: AccessGate) -> None:
    user = fakes.user()
    await gate.refusal(token_of(user), uow=fakes.uow)
    checked: list[uuid.UUID] = []

    async def check() -> None:
        checked.append(user.id)

    gate.watch(user.id, check)
    gate.distrust()
    await gate.trust()
    assert checked == [user.id]
    reads = gate.reads
    await gate.refusal(token_of(user), uow=fakes.uow)
    assert gate.reads == reads + 1


async def test_a_failing_check_does_not_spare_the_other_connections(fakes: Fakes, gate: AccessGate) -> None:
    user = fakes.user()
    checked: list[int] = []

    async def broken() -> None:
        raise RuntimeError("database down")

    async def fine() -> None:
        checked.append(1)

    gate.watch(user.id, broken)
    gate.watch(user.id, fine)
    await gate.revoked(user.id)
    assert checked == [1]


# ------------------------------------------------------------------ ending sessions, suspending


async def test_ending_all_sessions_refuses_older_tokens_and_admits_newer_ones(fakes: Fakes, gate: AccessGate) -> None:
    # given two sign-ins of one user
    user = fakes.user()
    fakes.db.users[user.id] = dataclasses.replace(user, password_hash=f"hashed:{PASSWORD}")
    first = await auth.login(
        email=user.email, password=PASSWORD, uow=fakes.uow, hasher=fakes.hasher, tokens=fakes.tokens, clock=fakes.clock
    )
    # when every session ends (keeping none), within the same instant as the sign-in
    version = await sessions.end_all_sessions(user.id, uow=fakes.uow, clock=fakes.clock, revocations=fakes.revocations)
    # then a token of the old version is refused, one of the new version admitted: no clock involved
    assert version == 1
    assert await gate.refusal(token_of(user, session=first.session_id, version=0), uow=fakes.uow) is not None
    assert await gate.refusal(token_of(user, version=1), uow=fakes.uow) is None
    assert all(r.revoked_at is not None for r in fakes.db.refresh_tokens.values())
    assert fakes.db.sessions_valid_after[user.id] == fakes.clock.now()
    assert fakes.revocations.announced == [user.id]


async def test_ending_all_sessions_but_one_keeps_that_refresh_family(fakes: Fakes, gate: AccessGate) -> None:
    user = fakes.user()
    fakes.db.users[user.id] = dataclasses.replace(user, password_hash=f"hashed:{PASSWORD}")
    kept, other = [
        await auth.login(
            email=user.email,
            password=PASSWORD,
            uow=fakes.uow,
            hasher=fakes.hasher,
            tokens=fakes.tokens,
            clock=fakes.clock,
        )
        for _ in range(2)
    ]
    await sessions.end_all_sessions(
        user.id, uow=fakes.uow, clock=fakes.clock, revocations=fakes.revocations, keep_session=kept.session_id
    )
    revoked = {r.family_id: r.revoked_at is not None for r in fakes.db.refresh_tokens.values()}
    assert revoked == {kept.session_id: False, other.session_id: True}


async def test_ending_one_session_refuses_its_tokens_only(fakes: Fakes, gate: AccessGate) -> None:
    user = fakes.user()
    fakes.db.users[user.id] = dataclasses.replace(user, password_hash=f"hashed:{PASSWORD}")
    this, other = [
        await auth.login(
            email=user.email,
            password=PASSWORD,
            uow=fakes.uow,
            hasher=fakes.hasher,
            tokens=fakes.tokens,
            clock=fakes.clock,
        )
        for _ in range(2)
    ]
    assert this.session_id is not None
    await sessions.end_session(
        user.id, this.session_id, uow=fakes.uow, clock=fakes.clock, revocations=fakes.revocations
    )
    assert await gate.refusal(token_of(user, session=this.session_id), uow=fakes.uow) is not None
    assert await gate.refusal(token_of(user, session=other.session_id), uow=fakes.uow) is None
    # a session ended longer ago than an access token lives is no longer listed
    fakes.clock.advance(17 * 60)
    gate.forget_all()
    state = await gate.state(user.id, uow=fakes.uow)
    assert state is not None and state.ended_sessions == frozenset()


async def test_ending_someone_elses_session_changes_nothing(fakes: Fakes, gate: AccessGate) -> None:
    alice, mallory = fakes.user(), fakes.user()
    fakes.db.users[alice.id] = dataclasses.replace(alice, password_hash=f"hashed:{PASSWORD}")
    session = await auth.login(
        email=alice.email, password=PASSWORD, uow=fakes.uow, hasher=fakes.hasher, tokens=fakes.tokens, clock=fakes.clock
    )
    assert session.session_id is not None
    await sessions.end_session(
        mallory.id, session.session_id, uow=fakes.uow, clock=fakes.clock, revocations=fakes.revocations
    )
    assert all(r.revoked_at is None for r in fakes.db.refresh_tokens.values())


async def test_a_suspended_user_cannot_sign_in_or_refresh_until_reinstated(fakes: Fakes, gate: AccessGate) -> None:
    # given a signed-in user
    user = fakes.user()
    fakes.db.users[user.id] = dataclasses.replace(user, password_hash=f"hashed:{PASSWORD}")
    session = await auth.login(
        email=user.email, password=PASSWORD, uow=fakes.uow, hasher=fakes.hasher, tokens=fakes.tokens, clock=fakes.clock
    )
    # when suspended (twice: idempotent, the first moment kept)
    suspended = await sessions.set_suspended(
        user.id, True, uow=fakes.uow, clock=fakes.clock, revocations=fakes.revocations
    )
    since = suspended.suspended_at
    fakes.clock.advance(5)
    again = await sessions.set_suspended(user.id, True, uow=fakes.uow, clock=fakes.clock, revocations=fakes.revocations)
    assert again.suspended_at == since
    # then signing in with the right password says so, and a wrong one says nothing of it
    with pytest.raises(AccountSuspended):
        await auth.login(
            email=user.email,
            password=PASSWORD,
            uow=fakes.uow,
            hasher=fakes.hasher,
            tokens=fakes.tokens,
            clock=fakes.clock,
        )
    with pytest.raises(auth.InvalidCredentials):
        await auth.login(
            email=user.email,
            password="wrong one!!",
            uow=fakes.uow,
            hasher=fakes.hasher,
            tokens=fakes.tokens,
            clock=fakes.clock,
        )
    # and the refresh token was revoked with every session
    with pytest.raises(auth.InvalidCredentials):
        await auth.refresh(refresh_token=session.refresh_token, uow=fakes.uow, tokens=fakes.tokens, clock=fakes.clock)
    # when reinstated, signing in works again, and the old token stays refused
    reinstated = await sessions.set_suspended(
        user.id, False, uow=fakes.uow, clock=fakes.clock, revocations=fakes.revocations
    )
    assert reinstated.suspended_at is None
    await auth.login(
        email=user.email, password=PASSWORD, uow=fakes.uow, hasher=fakes.hasher, tokens=fakes.tokens, clock=fakes.clock
    )
    assert await gate.refusal(token_of(user, session=session.session_id), uow=fakes.uow) is not None


async def test_a_refresh_of_a_suspended_user_spends_nothing(fakes: Fakes) -> None:
    # given a live refresh token whose user is suspended behind its back (no revocation of the family)
    user = fakes.user()
    fakes.db.users[user.id] = dataclasses.replace(user, password_hash=f"hashed:{PASSWORD}")
    session = await auth.login(
        email=user.email, password=PASSWORD, uow=fakes.uow, hasher=fakes.hasher, tokens=fakes.tokens, clock=fakes.clock
    )
    fakes.db.users[user.id] = dataclasses.replace(fakes.db.users[user.id], suspended_at=fakes.clock.now())
    with pytest.raises(AccountSuspended):
        await auth.refresh(refresh_token=session.refresh_token, uow=fakes.uow, tokens=fakes.tokens, clock=fakes.clock)
    assert all(r.used_at is None for r in fakes.db.refresh_tokens.values())


@pytest.mark.parametrize("suspend", [True, False])
async def test_suspending_or_reinstating_nobody_is_not_found(fakes: Fakes, suspend: bool) -> None:
    with pytest.raises(NotFound):
        await sessions.set_suspended(
            uuid.uuid4(), suspend, uow=fakes.uow, clock=fakes.clock, revocations=fakes.revocations
        )
    with pytest.raises(NotFound):
        await sessions.end_all_sessions(uuid.uuid4(), uow=fakes.uow, clock=fakes.clock, revocations=fakes.revocations)
    assert fakes.revocations.announced == []
