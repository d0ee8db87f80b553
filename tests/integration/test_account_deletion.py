"""deleteAccount on PostgreSQL through the real app (embedded worker, local storage): everything the user
owned goes (rows and, through the outbox, objects), the ledger stays and still sums, the e-mail is free."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from domain.errors import Unauthenticated
from domain.users import Principal, Role
from tests.fixtures.app import register_user
from tests.fixtures.waiting import eventually
from tests.integration.board_world import (
    ADD_MEMBER,
    CREATE_BOARD,
    GENERATE,
    PASSWORD,
    World,
    grant,
    join,
    module_world,
    sign_in,
)
from tests.integration.test_generation_deletion import finished, hanging
from tests.integration.user_references import rows_naming_user

pytestmark = pytest.mark.postgres

DELETE_ACCOUNT = """
mutation DeleteAccount($password: String!) {
  deleteAccount(input: {password: $password}) {
    __typename
    ... on DeleteAccountSuccess { userId }
    ... on RateLimited { retryAfterSeconds }
    ... on Error { code message }
  }
}
"""
ME = "query { me { id email } }"
EXPORT = "mutation { requestDataExport { __typename } }"


@pytest.fixture(scope="module")
async def personas(postgres_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    async with module_world(postgres_dsn, tmp_path_factory.mktemp("accounts"), rate_limit_generate=10_000) as world:
        yield world


async def newcomer(world: World, credits: int = 1000) -> str:
    """A fresh persona (its own e-mail, signed in, with credits); returns its name in `world`."""
    name = f"u{uuid.uuid4().hex[:8]}"
    session = await register_user(world.client, f"{name}@example.com", PASSWORD)
    world.tokens[name], world.user_ids[name], world.emails[name] = (
        session["accessToken"],
        session["user"]["id"],
        f"{name}@example.com",
    )
    await grant(world.client, session["user"]["id"], credits)
    return name


async def scalar(world: World, sql: str, **params: Any) -> Any:
    async with world.client.container.engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar_one()


async def object_keys_of(world: World, user_id: str) -> list[str]:
    async with world.client.container.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT a.object_key FROM assets a JOIN generations g ON g.id = a.generation_id WHERE g.user_id = :u "
                "UNION ALL SELECT object_key FROM chunks WHERE user_id = :u"
            ),
            {"u": uuid.UUID(user_id)},
        )
        return [r[0] for r in rows]


async def upload(world: World, persona: str) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"\x89PNG\r\n\x1a\n" + b"x" * 64

    principal = Principal(uuid.UUID(world.user_ids[persona]), Role.USER)
    await world.client.services.chunks.upload(
        principal, filename="mine.png", content_type="image/png", data=body(), declared_size=None
    )


async def board_of(world: World, owner: str, name: str) -> str:
    created = (await world.data(owner, CREATE_BOARD, {"name": name}))["createBoard"]
    board_id: str = created["board"]["id"]
    return board_id


async def test_deleting_an_account_leaves_nothing_of_it_but_an_anonymous_ledger(personas: World) -> None:
    # given a user with a finished and a running generation, an upload, a data export, a board it alone owns
    # (with a member's generation in it), a board it co-owns, a board it is an editor of, and an invitation
    world = personas
    me = await newcomer(world)
    user_id = world.user_ids[me]
    await finished(world, me)
    running = await hanging(world, me)
    await upload(world, me)
    assert (await world.data(me, EXPORT))["requestDataExport"]["__typename"] == "RequestDataExportSuccess"
    own = await board_of(world, me, "Mine alone")
    joined = World(world.client, world.tokens, world.user_ids, world.emails, world.model_id, board_id=own)
    await join(joined, "editor", "EDITOR", inviter=me)
    members_generation = (await world.data("editor", GENERATE, {"modelId": world.model_id, "boardId": own}))[
        "generate"
    ]["generation"]["id"]
    shared = await board_of(world, me, "Co-owned")
    co = World(world.client, world.tokens, world.user_ids, world.emails, world.model_id, board_id=shared)
    await join(co, "owner", "OWNER", inviter=me)
    theirs = await board_of(world, "owner", "Theirs")
    await join(
        World(world.client, world.tokens, world.user_ids, world.emails, world.model_id, board_id=theirs), me, "EDITOR"
    )
    invited = await world.data("owner", ADD_MEMBER, {"boardId": shared, "email": world.emails[me], "role": "OWNER"})
    assert invited["addBoardMember"]["__typename"] == "BoardSuccess"
    keys = await object_keys_of(world, user_id)
    assert len(keys) >= 3  # an output, its thumbnail, the upload
    asked = await world.client.execute(
        "mutation R($e: String!) { requestPasswordReset(email: $e) { __typename } }", {"e": world.emails[me]}
    )
    assert "errors" not in asked
    resets = "SELECT count(*) FROM password_resets WHERE user_id = :u"
    assert await scalar(world, resets, u=uuid.UUID(user_id)) == 1
    mail = "SELECT count(*) FROM outbound_emails WHERE lower(recipient) = lower(:e)"

    async def mail_recorded() -> bool:
        return bool(await scalar(world, mail, e=world.emails[me]))

    await eventually(mail_recorded, what="the reset e-mail to be recorded")
    ledger_rows = await scalar(world, "SELECT count(*) FROM credit_ledger WHERE user_id = :u", u=uuid.UUID(user_id))

    # when the user deletes the account with its password
    body = (await world.data(me, DELETE_ACCOUNT, {"password": PASSWORD}))["deleteAccount"]

    # then no row of any table names the user, but the ledger's, the credit account's and a tombstone
    assert body == {"__typename": "DeleteAccountSuccess", "userId": user_id}
    async with world.client.container.engine.connect() as conn:
        left = await rows_naming_user(conn, uuid.UUID(user_id))
    assert {"generations.user_id", "chunks.user_id", "board_invitations.invited_by"} <= set(left)
    assert left == dict.fromkeys(left, 0), left
    assert await scalar(world, "SELECT count(*) FROM board_invitations WHERE email = :e", e=world.emails[me]) == 0
    # and no e-mail waits or stays for its address (a pending one could carry an export link)
    assert await scalar(world, mail, e=world.emails[me]) == 0
    tombstone = await scalar(
        world, "SELECT email || '|' || password_hash FROM users WHERE id = :u", u=uuid.UUID(user_id)
    )
    assert tombstone == f"deleted:{user_id}|"
    # the board it alone owned is gone (the member's generation stays the member's, detached); the others stay
    assert await scalar(world, "SELECT count(*) FROM boards WHERE id = :b", b=uuid.UUID(own)) == 0
    assert (
        await scalar(
            world, "SELECT count(*) FROM boards WHERE id IN (:a, :b)", a=uuid.UUID(shared), b=uuid.UUID(theirs)
        )
        == 2
    )
    detached = await scalar(
        world, "SELECT board_id IS NULL FROM generations WHERE id = :g", g=uuid.UUID(members_generation)
    )
    assert detached is True
    # the running generation was canceled before it went: its reservation released in the ledger
    release = "SELECT count(*) FROM credit_ledger WHERE idempotency_key LIKE :k AND kind = 'release'"
    assert await scalar(world, release, k=f"%{running}%") == 1
    # and the ledger keeps every row (one more: that release), anonymised, still summing to the balance
    after = await scalar(world, "SELECT count(*) FROM credit_ledger WHERE user_id = :u", u=uuid.UUID(user_id))
    assert after == ledger_rows + 1
    async with world.client.container.uow() as uow:
        account = await uow.credits.balance(uuid.UUID(user_id))
        assert account == await uow.credits.ledger_totals(uuid.UUID(user_id))
        assert account.reserved == 0
    # and the objects are deleted by the outbox
    storage = world.client.container.storage

    async def gone() -> bool:
        return all([await storage.head(k) is None for k in keys])

    await eventually(gone, what="the account's objects to be deleted", timeout=10)

    # and the old token is refused, the password no longer signs in, the address registers anew
    refused = await world.run(me, ME)
    assert refused["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    login = await world.client.execute(
        "mutation L($e: String!, $p: String!) { login(input: {email: $e, password: $p}) { __typename } }",
        {"e": world.emails[me], "p": PASSWORD},
    )
    assert login["data"]["login"]["__typename"] == "InvalidCredentials"
    again = await register_user(world.client, world.emails[me], PASSWORD)
    assert again["user"]["id"] != user_id
    mine = (await world.client.execute(ME, token=again["accessToken"]))["data"]["me"]
    assert mine == {"id": again["user"]["id"], "email": world.emails[me]}
    assert (
        await world.data("owner", "query B($id: ID!) { board(id: $id) { members { user { email } } } }", {"id": shared})
    )["board"]["members"] == [{"user": {"email": "owner@example.com"}}]


async def test_a_wrong_password_deletes_nothing(personas: World) -> None:
    world = personas
    me = await newcomer(world)
    await finished(world, me)
    body = (await world.data(me, DELETE_ACCOUNT, {"password": "not the password"}))["deleteAccount"]
    assert body["__typename"] == "InvalidCredentials"
    assert (await world.data(me, ME))["me"]["id"] == world.user_ids[me]
    count = "SELECT count(*) FROM generations WHERE user_id = :u"
    assert await scalar(world, count, u=uuid.UUID(world.user_ids[me])) == 1


async def test_password_guesses_are_rate_limited_per_user(personas: World) -> None:
    world = personas
    me = await newcomer(world)
    kinds = [
        (await world.data(me, DELETE_ACCOUNT, {"password": f"guess number {i}"}))["deleteAccount"]["__typename"]
        for i in range(12)
    ]
    assert kinds[:10] == ["InvalidCredentials"] * 10
    assert kinds[10:] == ["RateLimited"] * 2
    # and even the right password waits
    body = (await world.data(me, DELETE_ACCOUNT, {"password": PASSWORD}))["deleteAccount"]
    assert body["__typename"] == "RateLimited"


async def test_concurrent_deletions_delete_once(personas: World) -> None:
    # given a user with a running generation
    world = personas
    me = await newcomer(world)
    running = await hanging(world, me)
    # when the account is deleted by several requests at once
    bodies = await asyncio.gather(*[world.run(me, DELETE_ACCOUNT, {"password": PASSWORD}) for _ in range(5)])
    # then each answers success, or (once the deletion is seen) that the token's account is gone
    for body in bodies:
        if "errors" in body:
            assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED", body
        else:
            assert body["data"]["deleteAccount"]["__typename"] == "DeleteAccountSuccess", body
    assert any("errors" not in b for b in bodies)
    # and the reservation was released once, the balance still the ledger's
    release = "SELECT count(*) FROM credit_ledger WHERE idempotency_key LIKE :k AND kind = 'release'"
    assert await scalar(world, release, k=f"%{running}%") == 1
    user = uuid.UUID(world.user_ids[me])
    async with world.client.container.uow() as uow:
        assert await uow.credits.balance(user) == await uow.credits.ledger_totals(user)


async def test_a_retry_after_success_is_success(personas: World) -> None:
    # given an account deleted through the use case (a reply the client never got)
    world = personas
    me = await newcomer(world)
    principal = Principal(uuid.UUID(world.user_ids[me]), Role.USER)
    services = world.client.services
    assert await services.account_deletion.delete(principal, PASSWORD) is True
    # when it is asked again
    again = await services.account_deletion.delete(principal, PASSWORD)
    # then it answers that it is deleted (nothing left to do)
    assert again is False


async def test_an_admin_token_signed_in_again_works_after_a_user_is_deleted(personas: World) -> None:
    # the other personas are untouched by someone else's deletion
    world = personas
    me = await newcomer(world)
    await world.data(me, DELETE_ACCOUNT, {"password": PASSWORD})
    world.tokens["owner"] = await sign_in(world.client, world.emails["owner"])
    assert (await world.data("owner", ME))["me"]["email"] == "owner@example.com"


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(password=st.text(max_size=300))
async def test_hostile_passwords_never_delete(personas: World, password: str) -> None:
    world = personas
    if "hostile" not in world.tokens:
        world.tokens["hostile"] = (await register_user(world.client, "hostile@example.com", PASSWORD))["accessToken"]
        world.user_ids["hostile"] = (await world.data("hostile", ME))["me"]["id"]
    if password == PASSWORD:
        return
    body = await world.run("hostile", DELETE_ACCOUNT, {"password": password})
    if "errors" in body:
        assert all(e["extensions"]["code"] == "INVALID_INPUT" for e in body["errors"]), body
    else:
        assert body["data"]["deleteAccount"]["__typename"] in ("InvalidCredentials", "RateLimited")
    assert (await world.data("hostile", ME))["me"] is not None


async def test_generates_racing_the_deletion_neither_deadlock_nor_break_the_ledger(personas: World) -> None:
    # given a user with a running generation
    world = personas
    me = await newcomer(world)
    await hanging(world, me)
    # when generations are started while the account is deleted
    racing = [world.run(me, GENERATE, {"modelId": world.model_id}) for _ in range(10)]
    deleting = world.run(me, DELETE_ACCOUNT, {"password": PASSWORD})
    bodies = await asyncio.gather(deleting, *racing)
    # then the deletion succeeds, each start either ran before it (and went with the account) or was refused
    assert bodies[0]["data"]["deleteAccount"]["__typename"] == "DeleteAccountSuccess", bodies[0]
    for body in bodies[1:]:
        if "errors" in body:
            assert {e["extensions"]["code"] for e in body["errors"]} == {"UNAUTHENTICATED"}, body
        else:
            assert body["data"]["generate"]["__typename"] == "GenerateSuccess", body
    # and nothing is left for the tombstone: no generation, so nothing reserved, and the ledger sums to the balance
    user = uuid.UUID(world.user_ids[me])
    async with world.client.container.uow() as uow:
        account = await uow.credits.balance(user)
        assert account == await uow.credits.ledger_totals(user)
        assert await uow.generations.ids_of_user(user) == []
    assert account.reserved == 0


async def waiting_for_a_lock(world: World, statement: str) -> bool:
    """Whether a backend runs a statement containing `statement` and waits for a lock."""
    sql = (
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE wait_event_type = 'Lock' AND datname = current_database() AND query LIKE :q"
    )
    return bool(await scalar(world, sql, q=f"%{statement}%"))


async def test_a_generate_admitted_before_the_deletion_commits_after_it_writes_nothing(personas: World) -> None:
    # given a deletion held open after its tombstone: its last steps wait for the refresh token locked here
    world = personas
    me = await newcomer(world)
    user = uuid.UUID(world.user_ids[me])
    async with world.client.container.engine.connect() as holder:
        held = await holder.execute(text("SELECT id FROM refresh_tokens WHERE user_id = :u FOR SHARE"), {"u": user})
        assert len(held.all()) >= 1
        deleting = asyncio.ensure_future(world.run(me, DELETE_ACCOUNT, {"password": PASSWORD}))
        await eventually(lambda: waiting_for_a_lock(world, "DELETE FROM refresh_tokens"), what="the deletion held")
        # when a generate admitted before the deletion commits runs into it
        generating = asyncio.ensure_future(world.run(me, GENERATE, {"modelId": world.model_id}))
        await eventually(lambda: waiting_for_a_lock(world, "genhub_start_generation"), what="the start waiting")
        await holder.rollback()  # the deletion goes on and commits
    deleted, generated = await asyncio.gather(deleting, generating)
    # then the deletion succeeded and the start was refused, writing nothing for the tombstone
    assert deleted["data"]["deleteAccount"]["__typename"] == "DeleteAccountSuccess", deleted
    assert {e["extensions"]["code"] for e in generated.get("errors", [])} == {"UNAUTHENTICATED"}, generated
    assert await scalar(world, "SELECT count(*) FROM generations WHERE user_id = :u", u=user) == 0
    ledger = "SELECT count(*) FROM credit_ledger WHERE user_id = :u AND kind = 'reserve'"
    assert await scalar(world, ledger, u=user) == 0
    async with world.client.container.uow() as uow:
        account = await uow.credits.balance(user)
        assert account == await uow.credits.ledger_totals(user)
    assert account.reserved == 0


async def test_a_start_waits_for_the_deletions_first_lock_so_both_lock_in_one_order(personas: World) -> None:
    # given the users row locked as a deletion locks it first (FOR NO KEY UPDATE), before any tombstone;
    # FOR KEY SHARE would not wait here, and a start holding the account row while a deletion releases holds
    # on it and then waits for the start at the tombstone would deadlock
    world = personas
    me = await newcomer(world)
    user = uuid.UUID(world.user_ids[me])
    async with world.client.container.engine.connect() as holder:
        await holder.execute(text("SELECT id FROM users WHERE id = :u FOR NO KEY UPDATE"), {"u": user})
        holder_pid = (await holder.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        # when the user starts a generation
        generating = asyncio.ensure_future(world.run(me, GENERATE, {"modelId": world.model_id}))
        # then the start waits for that lock (and so before it locks the credit account)
        await eventually(lambda: waiting_for_a_lock(world, "genhub_start_generation"), what="the start waiting")
        starter_pids = (
            "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
            " AND query LIKE '%genhub_start_generation%'"
        )
        # only this test's own backends count: another backend of the database may lock credit accounts
        account_locks = (
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
            " WHERE c.relname = 'credit_accounts' AND l.mode = 'RowShareLock' AND l.granted"
            f" AND (l.pid = :holder OR l.pid IN ({starter_pids}))"
        )
        assert await scalar(world, f"SELECT count(*) FROM ({starter_pids}) s") == 1
        assert await scalar(world, account_locks, holder=holder_pid) == 0
        await holder.rollback()
    # and starts once it is released, the account being live
    assert (await generating)["data"]["generate"]["__typename"] == "GenerateSuccess"


REQUEST_UPLOAD = (
    'mutation { requestChunkUpload(input: {filename: "a.png", contentType: "image/png", size: 5}) { __typename } }'
)
#: Writes that insert a row naming their user, each as a request admitted before the deletion committed.
LATE_WRITES = {
    "createBoard": (CREATE_BOARD, {"name": "Late"}),
    "requestDataExport": (EXPORT, None),
    "requestChunkUpload": (REQUEST_UPLOAD, None),
}


async def more_than_one_waiter(world: World) -> bool:
    """The deletion and one more backend of this database wait for a lock."""
    sql = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
    return int(await scalar(world, sql)) >= 2


@pytest.mark.parametrize("write", sorted(LATE_WRITES))
async def test_a_write_admitted_before_the_deletion_commits_after_it_leaves_nothing(
    personas: World, write: str
) -> None:
    # given a deletion held open after its tombstone (its last steps wait for the refresh token locked here)
    world = personas
    me = await newcomer(world)
    user = uuid.UUID(world.user_ids[me])
    query, variables = LATE_WRITES[write]
    async with world.client.container.engine.connect() as holder:
        await holder.execute(text("SELECT id FROM refresh_tokens WHERE user_id = :u FOR SHARE"), {"u": user})
        deleting = asyncio.ensure_future(world.run(me, DELETE_ACCOUNT, {"password": PASSWORD}))
        await eventually(lambda: waiting_for_a_lock(world, "DELETE FROM refresh_tokens"), what="the deletion held")
        # when the write, admitted by the gate before the commit, runs into it
        writing = asyncio.ensure_future(world.run(me, query, variables))
        await eventually(lambda: more_than_one_waiter(world), what="the write waiting")
        await holder.rollback()
    deleted, written = await asyncio.gather(deleting, writing)
    # then the write was refused and nothing of it names the tombstone
    assert deleted["data"]["deleteAccount"]["__typename"] == "DeleteAccountSuccess", deleted
    assert {e["extensions"]["code"] for e in written.get("errors", [])} == {"UNAUTHENTICATED"}, written
    async with world.client.container.engine.connect() as conn:
        left = await rows_naming_user(conn, user)
    assert left == dict.fromkeys(left, 0), left
    assert await scalar(world, "SELECT count(*) FROM boards WHERE created_by = :u", u=user) == 0


async def test_a_streamed_upload_admitted_before_the_deletion_commits_after_it_leaves_nothing(personas: World) -> None:
    # given a deletion held open after its tombstone, as above
    world = personas
    me = await newcomer(world)
    user = uuid.UUID(world.user_ids[me])
    async with world.client.container.engine.connect() as holder:
        await holder.execute(text("SELECT id FROM refresh_tokens WHERE user_id = :u FOR SHARE"), {"u": user})
        deleting = asyncio.ensure_future(world.run(me, DELETE_ACCOUNT, {"password": PASSWORD}))
        await eventually(lambda: waiting_for_a_lock(world, "DELETE FROM refresh_tokens"), what="the deletion held")
        # when an upload streamed by a request admitted before the commit records its chunk
        uploading = asyncio.ensure_future(upload(world, me))
        await eventually(lambda: more_than_one_waiter(world), what="the upload waiting")
        await holder.rollback()
    deleted = await deleting
    # then it is refused, and neither its row nor its object stays
    with pytest.raises(Unauthenticated):
        await uploading
    assert deleted["data"]["deleteAccount"]["__typename"] == "DeleteAccountSuccess", deleted
    assert await scalar(world, "SELECT count(*) FROM chunks WHERE user_id = :u", u=user) == 0
    left = [o async for o in world.client.container.storage.list_keys(f"user_chunks/{user}/")]
    assert left == []
