"""Auth use cases (domain/use_cases/auth.py) with in-memory fakes: register, log in, rotate refresh tokens."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.credits import CreditBalance
from domain.errors import EmailTaken, InvalidCredentials, InvalidInput, RateLimited
from domain.use_cases import auth
from domain.use_cases.auth import Session
from domain.use_cases.rate_limits import RateRule
from domain.users import Role, refresh_token_hash
from tests.unit.fakes import Fakes

EMAIL = "Ada@Example.com"
NORMALISED = "ada@example.com"
PASSWORD = "correct horse battery"


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


async def register(fakes: Fakes, email: str = EMAIL, password: str = PASSWORD, **kw: Any) -> Session:
    return await auth.register(
        email=email, password=password, uow=fakes.uow, hasher=fakes.hasher, tokens=fakes.tokens, clock=fakes.clock, **kw
    )


async def login(fakes: Fakes, email: str = EMAIL, password: str = PASSWORD) -> Session:
    return await auth.login(
        email=email, password=password, uow=fakes.uow, hasher=fakes.hasher, tokens=fakes.tokens, clock=fakes.clock
    )


async def refresh(fakes: Fakes, token: str, **kw: Any) -> Session:
    return await auth.refresh(refresh_token=token, uow=fakes.uow, tokens=fakes.tokens, clock=fakes.clock, **kw)


def stored_token(fakes: Fakes, token: str) -> Any:
    [record] = [r for r in fakes.db.refresh_tokens.values() if r.token_hash == refresh_token_hash(token)]
    return record


# ------------------------------------------------------------------ register


async def test_registering_creates_the_user_an_account_and_a_session(fakes: Fakes) -> None:
    session = await register(fakes, email=f"  {EMAIL} ")
    user = fakes.db.users[session.user.id]
    assert (user.email, user.role, user.password_hash) == (NORMALISED, Role.USER, f"hashed:{PASSWORD}")
    assert fakes.db.accounts[user.id] == CreditBalance(0, 0)
    # the access token names its session (the refresh family) and the user's session version
    assert session.access_token == f"access:{user.id}:{Role.USER}:{session.session_id}:0"
    # only the refresh token's hash is stored, valid for the issuer's TTL
    record = stored_token(fakes, session.refresh_token)
    assert record.user_id == user.id and session.refresh_token not in str(record)
    assert record.family_id == session.session_id
    assert (record.expires_at - record.created_at).total_seconds() == fakes.tokens.refresh_ttl


async def test_an_address_registers_once_whatever_its_case(fakes: Fakes) -> None:
    await register(fakes)
    with pytest.raises(EmailTaken):
        await register(fakes, email=NORMALISED.upper())
    assert len(fakes.db.users) == 1 and len(fakes.db.refresh_tokens) == 1


@pytest.mark.parametrize(
    ("email", "password", "fields"),
    [("not-an-email", PASSWORD, ["email"]), (EMAIL, "short", ["password"]), (EMAIL, "aaaaaaaaaaaa", ["password"])],
)
async def test_bad_credentials_are_refused_before_anything_is_stored(
    fakes: Fakes, email: str, password: str, fields: list[str]
) -> None:
    with pytest.raises(InvalidInput) as invalid:
        await register(fakes, email=email, password=password)
    assert [p.field for p in invalid.value.fields] == fields
    assert fakes.db.users == {} and fakes.db.accounts == {}


async def test_a_failed_commit_leaves_no_half_registered_user(fakes: Fakes) -> None:
    fakes.db.fail_next_commit = ConnectionError("database gone")
    with pytest.raises(ConnectionError):
        await register(fakes)
    assert fakes.db.users == {} and fakes.db.accounts == {} and fakes.db.refresh_tokens == {}


# ------------------------------------------------------------------ login


async def test_logging_in_opens_a_new_session_family(fakes: Fakes) -> None:
    first = await register(fakes)
    second = await login(fakes, email=NORMALISED.upper())
    assert second.user.id == first.user.id
    assert stored_token(fakes, second.refresh_token).family_id != stored_token(fakes, first.refresh_token).family_id


@pytest.mark.parametrize(("email", "password"), [(EMAIL, "wrong password!"), ("nobody@example.com", PASSWORD)])
async def test_a_wrong_password_and_an_unknown_address_fail_alike(fakes: Fakes, email: str, password: str) -> None:
    await register(fakes)
    with pytest.raises(InvalidCredentials) as refused:
        await login(fakes, email=email, password=password)
    assert refused.value.message == InvalidCredentials.default_message
    assert len(fakes.db.refresh_tokens) == 1


# ------------------------------------------------------------------ refresh


async def test_a_refresh_spends_the_token_and_continues_the_family(fakes: Fakes) -> None:
    # given a session
    first = await register(fakes)
    fakes.clock.advance(60)
    # when its refresh token is used
    second = await refresh(fakes, first.refresh_token)
    # then the old token is spent, and the new one belongs to the same family
    old, new = stored_token(fakes, first.refresh_token), stored_token(fakes, second.refresh_token)
    assert old.used_at == fakes.clock.now() and new.used_at is None
    assert new.family_id == old.family_id and second.user.id == first.user.id


async def test_reusing_a_spent_token_revokes_the_whole_family(fakes: Fakes) -> None:
    # given a session rotated once, and a second unrelated session
    first = await register(fakes)
    second = await refresh(fakes, first.refresh_token)
    other = await login(fakes)
    # when the spent token is presented again (a stolen copy)
    fakes.clock.advance(5)
    with pytest.raises(InvalidCredentials, match="already used"):
        await refresh(fakes, first.refresh_token)
    # then every token of that family is revoked (committed), so the thief's successor fails too
    assert stored_token(fakes, second.refresh_token).revoked_at == fakes.clock.now()
    with pytest.raises(InvalidCredentials):
        await refresh(fakes, second.refresh_token)
    # and the other sign-in is untouched
    assert stored_token(fakes, other.refresh_token).revoked_at is None
    assert (await refresh(fakes, other.refresh_token)).user.id == first.user.id


@pytest.mark.parametrize("token", ["never-issued", ""])
async def test_an_unknown_token_is_invalid(fakes: Fakes, token: str) -> None:
    await register(fakes)
    with pytest.raises(InvalidCredentials):
        await refresh(fakes, token)


async def test_an_expired_token_is_invalid_and_stays_unused(fakes: Fakes) -> None:
    session = await register(fakes)
    fakes.clock.advance(fakes.tokens.refresh_ttl)
    with pytest.raises(InvalidCredentials, match="expired"):
        await refresh(fakes, session.refresh_token)
    assert stored_token(fakes, session.refresh_token).used_at is None


async def test_the_family_rate_limit_refuses_without_spending_the_token(fakes: Fakes) -> None:
    # given one rotation per minute for a family, already used
    session = await register(fakes)
    rule = RateRule(1, 60)
    rotated = await refresh(fakes, session.refresh_token, limiter=fakes.limiter, family_rate=rule)
    # when the next rotation comes at once, then it is refused and its token is left as it was
    with pytest.raises(RateLimited):
        await refresh(fakes, rotated.refresh_token, limiter=fakes.limiter, family_rate=rule)
    assert stored_token(fakes, rotated.refresh_token).used_at is None
    fakes.clock.advance(60)
    assert (await refresh(fakes, rotated.refresh_token, limiter=fakes.limiter, family_rate=rule)).user.id


async def test_a_token_of_a_deleted_user_is_invalid_and_stays_unspent(fakes: Fakes) -> None:
    session = await register(fakes)
    del fakes.db.users[session.user.id]
    with pytest.raises(InvalidCredentials):
        await refresh(fakes, session.refresh_token)
    assert stored_token(fakes, session.refresh_token).used_at is None


# ------------------------------------------------------------------ ensure_user / find_user


async def test_ensure_admin_creates_or_promotes_and_keeps_the_password(fakes: Fakes) -> None:
    # given an existing plain user
    session = await register(fakes)
    # when the operator ensures an admin with that address and another password
    user, created = await auth.ensure_admin(
        email=EMAIL, password="another password 1", uow=fakes.uow, hasher=fakes.hasher, clock=fakes.clock
    )
    # then the account is promoted, not recreated, and its password stays
    assert (created, user.id, user.role) == (False, session.user.id, Role.ADMIN)
    assert fakes.db.users[user.id].role is Role.ADMIN
    assert fakes.db.users[user.id].password_hash == f"hashed:{PASSWORD}"
    # and a new address is created with an account
    new, created = await auth.ensure_admin(
        email="root@example.com", password=PASSWORD, uow=fakes.uow, hasher=fakes.hasher, clock=fakes.clock
    )
    assert created and fakes.db.users[new.id].role is Role.ADMIN and new.id in fakes.db.accounts


async def test_ensure_user_never_demotes_an_admin(fakes: Fakes) -> None:
    admin, _ = await auth.ensure_admin(
        email=EMAIL, password=PASSWORD, uow=fakes.uow, hasher=fakes.hasher, clock=fakes.clock
    )
    again, created = await auth.ensure_user(
        email=EMAIL, password=PASSWORD, role=Role.USER, uow=fakes.uow, hasher=fakes.hasher, clock=fakes.clock
    )
    assert (created, again.role, fakes.db.users[admin.id].role) == (False, Role.ADMIN, Role.ADMIN)


async def test_find_user_normalises_the_address(fakes: Fakes) -> None:
    session = await register(fakes)
    found = await auth.find_user(email=f" {NORMALISED.upper()} ", uow=fakes.uow)
    assert found is not None and found.id == session.user.id
    assert await auth.find_user(email="nobody@example.com", uow=fakes.uow) is None


# ------------------------------------------------------------------ refresh families, over random histories


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(st.tuples(st.sampled_from(["login", "rotate", "replay"]), st.integers(0, 20)), max_size=15))
async def test_a_family_has_one_live_token_until_a_replay_revokes_all_of_it(steps: list[tuple[str, int]]) -> None:
    # given a registered user, and any history of sign-ins, rotations and replays of spent tokens
    fakes = Fakes()
    families: list[list[str]] = [[(await register(fakes)).refresh_token]]
    for action, n in steps:
        fakes.clock.advance(1)
        family = families[n % len(families)]
        spent = family[n % len(family)]
        if action == "login":
            families.append([(await login(fakes)).refresh_token])
        elif action == "replay" and spent != family[-1]:
            with pytest.raises(InvalidCredentials):  # a spent token never opens a session
                await refresh(fakes, spent)
        else:
            with contextlib.suppress(InvalidCredentials):  # the newest one fails only once its family is revoked
                family.append((await refresh(fakes, family[-1])).refresh_token)
        # then per family: either every token is revoked, or exactly its newest one is live
        for tokens in families:
            records = [stored_token(fakes, t) for t in tokens]
            live = [r for r in records if r.used_at is None and r.revoked_at is None]
            assert {r.family_id for r in records} == {records[0].family_id}
            assert all(r.revoked_at for r in records) or live == [records[-1]]
