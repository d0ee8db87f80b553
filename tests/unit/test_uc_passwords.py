"""Changing and resetting passwords (domain/use_cases/passwords.py, password_reset.py) with fakes."""

from __future__ import annotations

import dataclasses
import re
import uuid
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.emails import EmailMessage
from domain.errors import InvalidCredentials, InvalidInput
from domain.use_cases import auth, password_reset, passwords
from domain.use_cases.auth import Session
from domain.use_cases.password_reset import SEND_RESET_TASK, ResetPolicy
from domain.users import Principal, Role, User
from infrastructure.security.reset_tokens import HmacResetTokens
from tests.unit.fakes import Fakes

PASSWORD = "correct horse battery"
NEW = "a brand new passphrase"
POLICY = ResetPolicy(ttl=timedelta(minutes=30), link_template="https://app.example/reset#token={token}")
RESET_TOKENS = HmacResetTokens("unit-test secret")


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


def account(fakes: Fakes) -> User:
    user = fakes.user()
    fakes.db.users[user.id] = dataclasses.replace(user, password_hash=f"hashed:{PASSWORD}")
    return fakes.db.users[user.id]


async def sign_in(fakes: Fakes, user: User) -> Session:
    return await auth.login(
        email=user.email, password=PASSWORD, uow=fakes.uow, hasher=fakes.hasher, tokens=fakes.tokens, clock=fakes.clock
    )


def principal(user: User, session: Session, version: int = 0) -> Principal:
    return Principal(user.id, Role.USER, session_id=session.session_id, session_version=version)


async def change(fakes: Fakes, who: Principal, current: str = PASSWORD, new: str = NEW) -> object:
    return await passwords.change_password(
        who,
        current_password=current,
        new_password=new,
        uow=fakes.uow_factory(),
        hasher=fakes.hasher,
        tokens=fakes.tokens,
        clock=fakes.clock,
        revocations=fakes.revocations,
    )


async def request(fakes: Fakes, email: str) -> list[EmailMessage]:
    """Ask for a reset, then run the mail task it queued as the worker would: the e-mails it sends."""
    already = len(fakes.jobs.kicked)
    await password_reset.request_password_reset(
        email, uow=fakes.uow, jobs=fakes.jobs, clock=fakes.clock, policy=POLICY, tokens=RESET_TOKENS
    )
    mails = []
    for name, args in fakes.jobs.kicked[already:]:
        assert name == SEND_RESET_TASK and set(args) == {"reset_id"}  # no token, no address in the queue
        reset_id = uuid.UUID(args["reset_id"])
        mail = await password_reset.reset_email(
            reset_id, uow=fakes.uow, clock=fakes.clock, policy=POLICY, tokens=RESET_TOKENS
        )
        mails += [mail] if mail is not None else []
    return mails


async def reset(fakes: Fakes, token: str, new: str = NEW) -> User:
    return await password_reset.reset_password(
        token, new, uow=fakes.uow, hasher=fakes.hasher, clock=fakes.clock, revocations=fakes.revocations
    )


def tokens_in(mails: list[EmailMessage]) -> list[str]:
    return [t for mail in mails for t in re.findall(r"#token=([A-Za-z0-9_-]+)", mail.text)]


# ------------------------------------------------------------------ change


async def test_a_change_ends_the_other_sessions_and_issues_this_one_a_token_of_the_new_version(fakes: Fakes) -> None:
    user = account(fakes)
    this, other = await sign_in(fakes, user), await sign_in(fakes, user)
    access = await change(fakes, principal(user, this))
    assert fakes.db.users[user.id].password_hash == f"hashed:{NEW}"
    assert fakes.db.users[user.id].session_version == 1
    assert access.token == f"access:{user.id}:{Role.USER}:{this.session_id}:1"  # type: ignore[attr-defined]
    revoked = {r.family_id: r.revoked_at is not None for r in fakes.db.refresh_tokens.values()}
    assert revoked == {this.session_id: False, other.session_id: True}
    assert fakes.revocations.announced == [user.id]


@pytest.mark.parametrize(("current", "new", "error"), [
    ("wrong password!", NEW, InvalidCredentials),
    (PASSWORD, PASSWORD, InvalidInput),
    (PASSWORD, "short", InvalidInput),
])  # fmt: skip
async def test_a_refused_change_changes_nothing(fakes: Fakes, current: str, new: str, error: type[Exception]) -> None:
    user = account(fakes)
    session = await sign_in(fakes, user)
    with pytest.raises(error):
        await change(fakes, principal(user, session), current, new)
    assert fakes.db.users[user.id] == user
    assert fakes.revocations.announced == []


# ------------------------------------------------------------------ reset


async def test_a_request_for_an_unknown_address_queues_as_much_but_sends_and_stores_nothing(fakes: Fakes) -> None:
    user = account(fakes)
    assert await request(fakes, "nobody@example.com") == [] and fakes.db.password_resets == {}
    assert len(await request(fakes, user.email)) == 1
    # the queue saw one message each time, of the same shape
    assert [(name, set(args)) for name, args in fakes.jobs.kicked] == [(SEND_RESET_TASK, {"reset_id"})] * 2


async def test_a_reset_link_works_once_and_ends_every_session(fakes: Fakes) -> None:
    user = account(fakes)
    session = await sign_in(fakes, user)
    [mail] = await request(fakes, f"  {user.email.upper()} ")
    [token] = tokens_in([mail])
    assert mail.to == user.email and token not in str(fakes.db.password_resets)  # only its hash is kept
    done = await reset(fakes, token)
    assert done.id == user.id and fakes.db.users[user.id].password_hash == f"hashed:{NEW}"
    assert fakes.db.users[user.id].session_version == 1
    assert all(r.revoked_at is not None for r in fakes.db.refresh_tokens.values())
    with pytest.raises(InvalidCredentials):
        await reset(fakes, token, "yet another passphrase")
    assert fakes.db.users[user.id].password_hash == f"hashed:{NEW}"
    assert session.session_id is not None


async def test_a_newer_request_uses_up_the_older_link(fakes: Fakes) -> None:
    user = account(fakes)
    [first] = tokens_in(await request(fakes, user.email))
    [second] = tokens_in(await request(fakes, user.email))
    with pytest.raises(InvalidCredentials):
        await reset(fakes, first)
    await reset(fakes, second)


async def test_an_expired_link_changes_nothing(fakes: Fakes) -> None:
    user = account(fakes)
    [token] = tokens_in(await request(fakes, user.email))
    fakes.clock.advance(30 * 60)
    with pytest.raises(InvalidCredentials):
        await reset(fakes, token)
    assert fakes.db.users[user.id].password_hash == f"hashed:{PASSWORD}"


async def test_a_deleted_accounts_link_is_dead(fakes: Fakes) -> None:
    user = account(fakes)
    [token] = tokens_in(await request(fakes, user.email))
    fakes.db.users[user.id] = dataclasses.replace(user, deleted_at=fakes.clock.now())
    with pytest.raises(InvalidCredentials):
        await reset(fakes, token)


async def test_a_refused_new_password_does_not_use_the_link_up(fakes: Fakes) -> None:
    user = account(fakes)
    [token] = tokens_in(await request(fakes, user.email))
    with pytest.raises(InvalidInput):
        await reset(fakes, token, "short")
    await reset(fakes, token)


@settings(max_examples=60, deadline=None)
@given(token=st.text(max_size=400))
async def test_any_other_token_is_refused_and_changes_nothing(token: str) -> None:
    fakes = Fakes()
    user = account(fakes)
    [real] = tokens_in(await request(fakes, user.email))
    if token.strip() == real:
        return
    with pytest.raises(InvalidCredentials):
        await reset(fakes, token)
    assert fakes.db.users[user.id].password_hash == f"hashed:{PASSWORD}"


async def test_a_mail_queue_that_is_down_is_not_told_to_the_caller(fakes: Fakes) -> None:
    # an error here would answer differently for existing addresses: logged instead, the reset kept
    user = account(fakes)
    fakes.jobs.failure = ConnectionError("redis down")
    await request(fakes, user.email)
    assert len(fakes.db.password_resets) == 1
