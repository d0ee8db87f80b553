"""Boards do not tell an inviter which e-mail addresses have accounts (security #15, point 7).

The rule: `addBoardMember` by a board's OWNER records (or refreshes) a pending invitation
for any address that no member of the board uses, whether or not an account uses it, and
answers with the board as it is; only whoever signs in with the address can accept it.

Through the real ASGI app, on PostgreSQL and on SQLite: with generated addresses (existing
accounts of both roles, their case and whitespace variants, unknown addresses), the whole
HTTP answer (status, headers, JSON) of addBoardMember is the same as for a fresh unknown
address once the values that are unique by nature are set aside (request id, date, the
board's id, timestamps, the address echoed as typed); so is everything else the inviter
can read afterwards, the SQL the server ran, the rate limit and the per-board cap. Then
the invitation flow's own unhappy paths: wrong caller, missing object, expired, replay,
malformed input, concurrent accepts.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import event

from domain.boards import BoardRole
from domain.invitations import BoardInvitation
from tests.fixtures.app import QUIET_SWEEPS, GraphQLClient, app_settings, register_user, running_app
from tests.integration.board_world import (
    ACCEPT_INVITATION,
    PASSWORD,
    World,
    build_personas,
    module_world,
    world_settings,
)

TTL_SECONDS = 14 * 24 * 3600
BOARD_FIELDS = """
  id name myRole
  members { role user { id email role } }
  invitations { boardId boardName email role createdAt expiresAt }
"""
CREATE = f"""
mutation Create($name: String!) {{ createBoard(input: {{name: $name}}) {{
  ... on BoardSuccess {{ board {{ {BOARD_FIELDS} }} }} }} }}
"""
INVITE = f"""
mutation Invite($boardId: ID!, $email: String!, $role: BoardRole!) {{
  addBoardMember(input: {{boardId: $boardId, email: $email, role: $role}}) {{
    __typename
    ... on BoardSuccess {{ board {{ {BOARD_FIELDS} }} }}
    ... on Error {{ code message }}
    ... on InvalidInput {{ fields {{ field message }} }}
    ... on RateLimited {{ retryAfterSeconds }}
    ... on QuotaExceeded {{ limit }}
  }}
}}
"""
INVITER_VIEW = f"""
query InviterView($boardId: ID!) {{
  board(id: $boardId) {{ {BOARD_FIELDS} }}
  boards {{ id name myRole }}
  myBoardInvitations {{ boardId }}
  me {{ id email role }}
}}
"""
MY_INVITATIONS = "query Mine { myBoardInvitations { boardId boardName email role createdAt expiresAt } }"
DECLINE = """
mutation Decline($boardId: ID!) { declineBoardInvitation(boardId: $boardId) {
  __typename ... on DeclineBoardInvitationSuccess { boardId } ... on Error { code message } } }
"""
REVOKE = f"""
mutation Revoke($boardId: ID!, $email: String!) {{ revokeBoardInvitation(input: {{boardId: $boardId, email: $email}}) {{
  __typename
  ... on BoardSuccess {{ board {{ {BOARD_FIELDS} }} }}
  ... on Error {{ code message }}
  ... on InvalidInput {{ fields {{ field message }} }}
}} }}
"""
BACKENDS = [pytest.param("postgresql", marks=pytest.mark.postgres), "sqlite"]
#: Headers whose values are unique by nature (or follow from the address's length).
UNIQUE_HEADERS = {"x-request-id", "date", "content-length"}


# ---------------------------------------------------------------- the app, on each backend


@contextlib.asynccontextmanager
async def app_on(backend: str, request: pytest.FixtureRequest, tmp: Any, **overrides: Any) -> AsyncIterator[World]:
    """Personas (owner, editor, viewer, other; admin has role ADMIN) on a running app of `backend`."""
    values = {"simulated_mode": "hang", **QUIET_SWEEPS, **overrides}
    if backend == "postgresql":
        async with module_world(request.getfixturevalue("postgres_dsn"), tmp, **values) as world:
            yield world
    else:
        sqlite = app_settings(tmp, rate_limit_register=10_000, rate_limit_login=10_000, **values)
        async with running_app(sqlite) as client:
            yield await build_personas(client)


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if name == "postgresql":
        request.getfixturevalue("postgres_dsn")  # resolved before the event loop runs the async fixtures
    return name


@pytest.fixture(scope="module")
async def world(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    limits = {"rate_limit_invite": 100_000, "board_invitation_max_pending": 100_000}
    async with app_on(backend, request, tmp_path_factory.mktemp(f"enumeration-{backend}"), **limits) as w:
        yield w


# ---------------------------------------------------------------- helpers


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: dict[str, Any]


async def post(world: World, persona: str, query: str, variables: dict[str, Any]) -> Answer:
    response = await world.client.http.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {world.tokens[persona]}"},
    )
    return Answer(response.status_code, dict(response.headers), response.json())


async def fresh_board(world: World, persona: str = "owner") -> str:
    body = await world.data(persona, CREATE, {"name": "Probe"})
    board_id: str = body["createBoard"]["board"]["id"]
    return board_id


def redacted(value: Any, *, board_id: str, typed: str, same: dict[str, str] | None = None) -> Any:
    """`value` with what is unique by nature replaced, after checking each replaced value is what it must be.

    `same` names further values that differ by construction (an inviter of its own) and their stand-ins.
    """
    if isinstance(value, str) and same and value in same:
        return same[value]
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key in ("id", "boardId") and item == board_id:
                item = "<board>"
            elif key == "email" and "expiresAt" in value:
                assert item == typed.strip(), (item, typed)  # the address as typed, never an account's
                item = "<typed>"
            elif key in ("createdAt", "expiresAt"):
                item = "<time>"
            out[key] = redacted(item, board_id=board_id, typed=typed, same=same)
        if "expiresAt" in value:
            created, expires = (datetime.fromisoformat(value[k]) for k in ("createdAt", "expiresAt"))
            assert expires - created == timedelta(seconds=TTL_SECONDS)
        return out
    if isinstance(value, list):
        return [redacted(item, board_id=board_id, typed=typed, same=same) for item in value]
    return value


@contextlib.contextmanager
def statements(world: World) -> Iterator[list[str]]:
    """The SQL the app runs meanwhile (its background sweeps, which read generations and chunks, aside)."""
    seen: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if not any(t in statement for t in ("generations", "chunks", "provider_tasks", "credit_", "models", "presets")):
            seen.append(" ".join(statement.split()))

    engine = world.client.container.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def everything_the_inviter_sees(world: World, email: str, role: str) -> dict[str, Any]:
    """On a fresh board: the invitation's whole answer, the inviter's reads after it and the SQL run."""
    board_id = await fresh_board(world)
    with statements(world) as sql:
        answer = await post(world, "owner", INVITE, {"boardId": board_id, "email": email, "role": role})
    after = await post(world, "owner", INVITER_VIEW, {"boardId": board_id})
    after.body["data"]["boards"] = [b for b in after.body["data"]["boards"] if b["id"] == board_id]
    return {
        "status": answer.status,
        "headers": {k: v for k, v in answer.headers.items() if k not in UNIQUE_HEADERS},
        "answer": redacted(answer.body, board_id=board_id, typed=email),
        "after": redacted(after.body, board_id=board_id, typed=email),
        # as a multiset: the payload's loaders take turns on the request's connection in whatever
        # order they become ready, which says nothing about the address
        "sql": sorted(sql),
    }


def unknown_address() -> str:
    return f"nobody-{uuid.uuid4().hex[:12]}@example.net"


# ---------------------------------------------------------------- addresses

NON_MEMBERS = ("editor", "viewer", "other", "admin")  # accounts, none a member of a fresh board; admin is ADMIN


def variant(email: str) -> st.SearchStrategy[str]:
    """The same address as a person might type it: any letter's case, blanks around it."""
    blanks = st.sampled_from(["", " ", "  ", "\t", " \n"])
    cases = st.lists(st.booleans(), min_size=len(email), max_size=len(email))
    return st.tuples(blanks, cases, blanks).map(
        lambda t: t[0] + "".join(c.upper() if up else c for c, up in zip(email, t[1], strict=True)) + t[2]
    )


LOCAL = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789._+-", min_size=1, max_size=24).filter(
    lambda s: not s.startswith(".")
)
UNKNOWN = st.builds(lambda local, domain: f"{local}@{domain}", LOCAL, st.sampled_from(["example.com", "mail.test"]))
ADDRESSES = st.one_of(
    st.sampled_from(NON_MEMBERS).map(lambda p: f"{p}@example.com").flatmap(variant),
    UNKNOWN.filter(lambda a: a not in {f"{p}@example.com" for p in ("owner", *NON_MEMBERS)}),
)
ROLES = st.sampled_from(["OWNER", "EDITOR", "VIEWER"])
EXAMPLES = settings(  # no shrinking: an example is a dozen requests, and its failure shows the address
    max_examples=30,
    phases=[Phase.explicit, Phase.generate],
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# ---------------------------------------------------------------- indistinguishable answers


@EXAMPLES
@given(email=ADDRESSES, role=ROLES)
async def test_an_invitation_answers_the_same_for_accounts_and_unknown_addresses(
    world: World, email: str, role: str
) -> None:
    # given an address (an account's, a variant of one, or nobody's) and one nobody uses
    # when the owner invites each to a fresh board of its own
    probed = await everything_the_inviter_sees(world, email, role)
    baseline = await everything_the_inviter_sees(world, unknown_address(), role)
    # then every answer, everything readable after it, and the SQL run are the same
    assert probed == baseline
    assert probed["answer"]["data"]["addBoardMember"]["__typename"] == "BoardSuccess"
    # (members unchanged: an invitation is not a membership; the account table is never searched by address)
    assert [m["user"]["email"] for m in probed["answer"]["data"]["addBoardMember"]["board"]["members"]] == [
        "owner@example.com"
    ]
    assert not [s for s in probed["sql"] if "WHERE users.email" in s]


async def test_refreshing_an_invitation_answers_the_same_for_accounts_and_unknown_addresses(world: World) -> None:
    # when the owner invites twice, changing the role, an account's address and an unknown one
    answers = []
    for email in ("other@example.com", unknown_address()):
        board_id = await fresh_board(world)
        await post(world, "owner", INVITE, {"boardId": board_id, "email": email, "role": "VIEWER"})
        again = await post(world, "owner", INVITE, {"boardId": board_id, "email": email.upper(), "role": "EDITOR"})
        answers.append(redacted(again.body, board_id=board_id, typed=email.upper()))
    # then the answers are the same: one invitation, refreshed with the new role
    assert answers[0] == answers[1]
    (invitation,) = answers[0]["data"]["addBoardMember"]["board"]["invitations"]
    assert invitation["role"] == "EDITOR"


@pytest.mark.parametrize(
    "bad", ["", "   ", "not an e-mail", "a@b", "a\x00b@example.com", "@example.com", "x" * 250 + "@example.com"]
)
async def test_malformed_addresses_are_invalid_input_whatever_the_board_holds(world: World, bad: str) -> None:
    board_id = await fresh_board(world)
    answer = await post(world, "owner", INVITE, {"boardId": board_id, "email": bad, "role": "VIEWER"})
    result = answer.body["data"]["addBoardMember"]
    assert result["__typename"] == "InvalidInput"
    assert [f["field"] for f in result["fields"]] == ["email"]
    assert (await world.data("owner", INVITER_VIEW, {"boardId": board_id}))["board"]["invitations"] == []


@pytest.mark.parametrize(
    ("persona", "expected"),
    [("editor", "Forbidden"), ("viewer", "Forbidden"), ("other", "NotFound"), ("admin", "NotFound")],
)
async def test_only_an_owner_invites(world: World, persona: str, expected: str) -> None:
    # given a board with an editor and a viewer
    board_id = await shared_board(world)
    # when someone else invites, an account's address and an unknown one
    results = [
        (await world.data(persona, INVITE, {"boardId": board_id, "email": email, "role": "VIEWER"}))["addBoardMember"]
        for email in ("outsider@example.com", unknown_address())
    ]
    # then both are refused alike, and nothing was recorded
    assert results[0] == results[1]
    assert results[0]["__typename"] == expected
    assert (await world.data("owner", INVITER_VIEW, {"boardId": board_id}))["board"]["invitations"] == []


# ---------------------------------------------------------------- limits: the same for every address


RATE, CAP = 8, 3


@pytest.fixture(scope="module")
async def tight(
    world: World, backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    """A second app of the same backend with a small invitation rate and cap (after `world`, which empties
    the PostgreSQL tables). The limit per IP is out of the way (a large multiplier): the per-user one is tested.
    """
    limits = {"rate_limit_invite": RATE, "board_invitation_max_pending": CAP, "rate_limit_ip_multiplier": 1000}
    tmp = tmp_path_factory.mktemp(f"tight-{backend}")
    if backend == "postgresql":  # the same database as `world`: no truncation, users of its own
        settings_ = world_settings(request.getfixturevalue("postgres_dsn"), tmp, simulated_mode="hang", **limits)
        async with running_app(settings_) as client:
            yield World(client)
    else:
        async with app_on(backend, request, tmp, **limits) as w:
            yield w


async def inviter(world: World, name: str) -> str:
    persona = f"{name}-{uuid.uuid4().hex[:8]}"
    session = await register_user(world.client, f"{persona}@example.com", PASSWORD)
    world.tokens[persona] = session["accessToken"]
    world.emails[persona] = f"{persona}@example.com"
    world.user_ids[persona] = session["user"]["id"]
    return persona


def shape(answer: Answer, board_id: str, email: str, inviter: tuple[str, str]) -> Any:
    body = redacted(
        answer.body,
        board_id=board_id,
        typed=email,
        same=dict(zip(inviter, ("<inviter id>", "<inviter email>"), strict=True)),
    )
    result = body["data"]["addBoardMember"]
    if result["__typename"] == "RateLimited":
        assert 1 <= result["retryAfterSeconds"] <= 60
        result["retryAfterSeconds"] = "<wait>"
        result["message"] = "<wait>"  # names the same wait
    return answer.status, body


async def test_the_rate_limit_counts_every_address_alike(tight: World) -> None:
    # given three inviters: one invites accounts, one unknown addresses, one both in turn
    accounts = [await account(tight) for _ in range(RATE + 2)]
    plans = {
        "accounts": accounts,
        "unknown": [unknown_address() for _ in accounts],
        "mixed": [a if i % 2 else unknown_address() for i, a in enumerate(accounts)],
    }
    outcomes = {}
    for name, addresses in plans.items():
        persona = await inviter(tight, name)
        who = (tight.user_ids[persona], tight.emails[persona])
        # when each sends two invitations more than the limit (each to a board of its own: the cap stays away)
        answers = []
        for i, email in enumerate(addresses):
            board_id = await fresh_board(tight, persona)
            answer = await post(tight, persona, INVITE, {"boardId": board_id, "email": email, "role": "VIEWER"})
            answers.append(shape(answer, board_id, email, who))
            assert answer.body["data"]["addBoardMember"]["__typename"] == (
                "BoardSuccess" if i < RATE else "RateLimited"
            )
        outcomes[name] = answers
    # then all three are limited at the same count with the same refusal
    assert outcomes["accounts"] == outcomes["unknown"] == outcomes["mixed"]


async def account(world: World) -> str:
    email = f"acct-{uuid.uuid4().hex[:8]}@example.com"
    await register_user(world.client, email, PASSWORD)
    return email


async def test_the_cap_of_pending_invitations_counts_every_address_alike(tight: World) -> None:
    persona = await inviter(tight, "capped")
    board_id = await fresh_board(tight, persona)
    known, unknown = await account(tight), unknown_address()

    async def invite(email: str) -> dict[str, Any]:
        answer = await post(tight, persona, INVITE, {"boardId": board_id, "email": email, "role": "VIEWER"})
        result: dict[str, Any] = answer.body["data"]["addBoardMember"]
        return result

    # given a board with three pending invitations (the cap), of an account and of unknown addresses
    first = [await invite(email) for email in (known, unknown_address(), unknown)]
    assert [r["__typename"] for r in first] == ["BoardSuccess"] * CAP
    # when one more account and one more unknown address are invited
    over = [await invite(await account(tight)), await invite(unknown_address())]
    # then both are refused alike, while refreshing a pending one still works
    assert over[0] == over[1]
    assert over[0]["__typename"] == "QuotaExceeded" and over[0]["limit"] == CAP
    assert (await invite(known.upper()))["__typename"] == "BoardSuccess"
    # and once one is revoked there is room again
    revoked = (await tight.data(persona, REVOKE, {"boardId": board_id, "email": unknown}))["revokeBoardInvitation"]
    assert revoked["__typename"] == "BoardSuccess"
    assert (await invite(unknown_address()))["__typename"] == "BoardSuccess"


# ---------------------------------------------------------------- the invitee's side


async def shared_board(world: World) -> str:
    """A fresh board of the owner with the editor and viewer as members (invited, then accepted)."""
    board_id = await fresh_board(world)
    for persona, role in (("editor", "EDITOR"), ("viewer", "VIEWER")):
        await world.data("owner", INVITE, {"boardId": board_id, "email": world.emails[persona], "role": role})
        accepted = await world.data(persona, ACCEPT_INVITATION, {"boardId": board_id})
        assert accepted["acceptBoardInvitation"]["__typename"] == "BoardSuccess", accepted
    return board_id


async def invite(world: World, board_id: str, email: str, role: str = "EDITOR") -> None:
    result = (await world.data("owner", INVITE, {"boardId": board_id, "email": email, "role": role}))["addBoardMember"]
    assert result["__typename"] == "BoardSuccess", result


def mine(body: dict[str, Any], board_id: str) -> list[dict[str, Any]]:
    return [i for i in body["myBoardInvitations"] if i["boardId"] == board_id]


async def test_the_invitee_sees_accepts_and_gets_the_role(world: World) -> None:
    # given an invitation typed with other capitals and blanks
    board_id = await fresh_board(world)
    await invite(world, board_id, "  Other@Example.COM ", "EDITOR")
    # when the invitee lists their invitations
    (pending,) = mine(await world.data("other", MY_INVITATIONS), board_id)
    # then they see the board's name and the role, not the board itself
    assert pending["boardName"] == "Probe" and pending["role"] == "EDITOR"
    assert pending["email"] == "Other@Example.COM"
    assert (await world.data("other", INVITER_VIEW, {"boardId": board_id}))["board"] is None
    # when they accept
    accepted = (await world.data("other", ACCEPT_INVITATION, {"boardId": board_id}))["acceptBoardInvitation"]
    # then they are a member with the invited role and the invitation is gone
    assert accepted["__typename"] == "BoardSuccess"
    assert accepted["board"]["myRole"] == "EDITOR"
    assert {"role": "EDITOR", "user": {"email": "other@example.com"}} in accepted["board"]["members"]
    assert mine(await world.data("other", MY_INVITATIONS), board_id) == []
    assert (await world.data("owner", INVITER_VIEW, {"boardId": board_id}))["board"]["invitations"] == []


async def test_an_account_registered_later_sees_the_invitation(world: World) -> None:
    # given an invitation to an address nobody uses yet
    board_id = await fresh_board(world)
    email = unknown_address()
    await invite(world, board_id, email, "VIEWER")
    # when someone registers with it
    session = await register_user(world.client, email.upper(), PASSWORD)
    newcomer = GraphQLClient(world.client.http, world.client.app, session["accessToken"])
    # then they see the invitation and can accept it
    listed = (await newcomer.execute(MY_INVITATIONS))["data"]
    assert [i["role"] for i in mine(listed, board_id)] == ["VIEWER"]
    accepted = (await newcomer.execute(ACCEPT_INVITATION, {"boardId": board_id}))["data"]["acceptBoardInvitation"]
    assert accepted["__typename"] == "BoardSuccess" and accepted["board"]["myRole"] == "VIEWER"


async def test_only_owners_see_a_boards_invitations(world: World) -> None:
    board_id = await shared_board(world)
    await invite(world, board_id, "outsider@example.com")
    seen = {
        p: (await world.data(p, INVITER_VIEW, {"boardId": board_id}))["board"]["invitations"]
        for p in ("owner", "editor", "viewer")
    }
    assert [i["email"] for i in seen["owner"]] == ["outsider@example.com"]
    assert seen["editor"] == seen["viewer"] == []


async def test_declining_removes_the_invitation(world: World) -> None:
    board_id = await fresh_board(world)
    await invite(world, board_id, world.emails["other"])
    declined = (await world.data("other", DECLINE, {"boardId": board_id}))["declineBoardInvitation"]
    assert declined == {"__typename": "DeclineBoardInvitationSuccess", "boardId": board_id}
    assert (await world.data("owner", INVITER_VIEW, {"boardId": board_id}))["board"]["invitations"] == []
    assert mine(await world.data("other", MY_INVITATIONS), board_id) == []


async def test_accepting_keeps_the_role_of_someone_already_a_member(world: World) -> None:
    # given an invitation as OWNER for someone who became a VIEWER meanwhile (set up in the store:
    # addBoardMember changes a member's role instead of inviting them)
    board_id = await fresh_board(world)
    await invite(world, board_id, world.emails["other"], "OWNER")
    async with world.client.container.uow() as uow:
        await uow.boards.set_member(uuid.UUID(board_id), uuid.UUID(world.user_ids["other"]), BoardRole.VIEWER, now())
        await uow.commit()
    # when they accept
    accepted = (await world.data("other", ACCEPT_INVITATION, {"boardId": board_id}))["acceptBoardInvitation"]
    # then the invitation is used up and they keep their role (an invitation never changes a member's)
    assert accepted["__typename"] == "BoardSuccess" and accepted["board"]["myRole"] == "VIEWER"
    assert (await world.data("owner", INVITER_VIEW, {"boardId": board_id}))["board"]["invitations"] == []


# ---------------------------------------------------------------- unhappy paths of the new mutations


def now() -> datetime:
    return datetime.now(UTC)


@pytest.mark.parametrize(
    ("persona", "board", "expected"),
    [
        ("viewer", "own", "NotFound"),  # a member, but not the invitee
        ("owner", "own", "NotFound"),  # the inviter is not the invitee
        ("admin", "own", "NotFound"),
        ("other", "missing", "NotFound"),
        ("other", "not-a-uuid", "NotFound"),
    ],
)
async def test_accept_and_decline_refuse_whoever_is_not_invited(
    world: World, persona: str, board: str, expected: str
) -> None:
    # given an invitation for `other`
    board_id = await shared_board(world)
    await invite(world, board_id, world.emails["other"])
    target = {"own": board_id, "missing": str(uuid.uuid4())}.get(board, board)
    # when someone else accepts or declines it (or `other` names no board)
    for query, field in ((ACCEPT_INVITATION, "acceptBoardInvitation"), (DECLINE, "declineBoardInvitation")):
        result = (await world.data(persona, query, {"boardId": target}))[field]
        assert result["__typename"] == expected, result
        assert result["code"] == "NOT_FOUND"
    # then the invitation is still there for `other`, and no membership changed
    assert [
        i["email"] for i in (await world.data("owner", INVITER_VIEW, {"boardId": board_id}))["board"]["invitations"]
    ] == [world.emails["other"]]
    members = (await world.data("owner", INVITER_VIEW, {"boardId": board_id}))["board"]["members"]
    assert sorted(m["user"]["email"] for m in members) == [
        "editor@example.com",
        "owner@example.com",
        "viewer@example.com",
    ]


async def test_accepting_twice_is_not_found_and_makes_one_membership(world: World) -> None:
    board_id = await fresh_board(world)
    await invite(world, board_id, world.emails["other"], "VIEWER")
    first = (await world.data("other", ACCEPT_INVITATION, {"boardId": board_id}))["acceptBoardInvitation"]
    replay = (await world.data("other", ACCEPT_INVITATION, {"boardId": board_id}))["acceptBoardInvitation"]
    declined_after = (await world.data("other", DECLINE, {"boardId": board_id}))["declineBoardInvitation"]
    assert first["__typename"] == "BoardSuccess"
    assert replay["__typename"] == declined_after["__typename"] == "NotFound"
    members = (await world.data("owner", INVITER_VIEW, {"boardId": board_id}))["board"]["members"]
    assert [m["user"]["email"] for m in members].count("other@example.com") == 1


async def test_concurrent_accepts_make_one_membership(world: World) -> None:
    for _ in range(4):
        # given an invitation
        board_id = await fresh_board(world)
        await invite(world, board_id, world.emails["other"], "EDITOR")
        # when the invitee accepts it twice at once (and declines it at the same moment)
        results = await asyncio.gather(
            world.data("other", ACCEPT_INVITATION, {"boardId": board_id}),
            world.data("other", ACCEPT_INVITATION, {"boardId": board_id}),
            world.data("other", DECLINE, {"boardId": board_id}),
        )
        kinds = sorted(next(iter(r.values()))["__typename"] for r in results)
        # then exactly one of them used the invitation, and there is at most one membership
        assert kinds.count("NotFound") == 2, kinds
        members = (await world.data("owner", INVITER_VIEW, {"boardId": board_id}))["board"]["members"]
        joined = [m for m in members if m["user"]["email"] == "other@example.com"]
        assert len(joined) == (1 if "BoardSuccess" in kinds else 0)
        assert (await world.data("owner", INVITER_VIEW, {"boardId": board_id}))["board"]["invitations"] == []


async def test_an_expired_invitation_cannot_be_accepted_and_is_not_listed(world: World) -> None:
    # given an invitation whose time is up
    board_id = await fresh_board(world)
    past = now() - timedelta(days=30)
    async with world.client.container.uow() as uow:
        await uow.invitations.put(
            BoardInvitation(
                board_id=uuid.UUID(board_id),
                email="other@example.com",
                email_as_typed="other@example.com",
                role=BoardRole.EDITOR,
                invited_by=uuid.UUID(world.user_ids["owner"]),
                created_at=past,
                expires_at=past + timedelta(days=14),
            )
        )
        await uow.commit()
    # then nobody sees it, and neither accepting nor revoking finds it
    assert mine(await world.data("other", MY_INVITATIONS), board_id) == []
    assert (await world.data("owner", INVITER_VIEW, {"boardId": board_id}))["board"]["invitations"] == []
    accepted = (await world.data("other", ACCEPT_INVITATION, {"boardId": board_id}))["acceptBoardInvitation"]
    assert accepted["__typename"] == "NotFound"
    revoked = await world.data("owner", REVOKE, {"boardId": board_id, "email": "other@example.com"})
    assert revoked["revokeBoardInvitation"]["__typename"] == "NotFound"
    # and inviting again opens a new one
    await invite(world, board_id, "other@example.com")
    assert [i["role"] for i in mine(await world.data("other", MY_INVITATIONS), board_id)] == ["EDITOR"]


@pytest.mark.parametrize(
    ("persona", "board", "email", "expected"),
    [
        ("editor", "own", "invited", "Forbidden"),
        ("viewer", "own", "invited", "Forbidden"),
        ("other", "own", "invited", "NotFound"),  # the invitee cannot revoke; they decline
        ("admin", "own", "invited", "NotFound"),
        ("owner", "own", "nobody@example.com", "NotFound"),
        ("owner", "own", "not an e-mail", "InvalidInput"),
        ("owner", "missing", "invited", "NotFound"),
        ("owner", "not-a-uuid", "invited", "NotFound"),
    ],
)
async def test_revoke_unhappy_paths(world: World, persona: str, board: str, email: str, expected: str) -> None:
    board_id = await shared_board(world)
    await invite(world, board_id, world.emails["other"])
    variables = {
        "boardId": {"own": board_id, "missing": str(uuid.uuid4())}.get(board, board),
        "email": world.emails["other"] if email == "invited" else email,
    }
    result = (await world.data(persona, REVOKE, variables))["revokeBoardInvitation"]
    assert result["__typename"] == expected, result
    assert result["code"]
    listed = (await world.data("owner", INVITER_VIEW, {"boardId": board_id}))["board"]["invitations"]
    assert [i["email"] for i in listed] == [world.emails["other"]]


async def test_a_revoked_invitation_cannot_be_accepted(world: World) -> None:
    board_id = await fresh_board(world)
    await invite(world, board_id, world.emails["other"])
    revoked = await world.data("owner", REVOKE, {"boardId": board_id, "email": " OTHER@example.com"})
    assert revoked["revokeBoardInvitation"]["__typename"] == "BoardSuccess"
    assert revoked["revokeBoardInvitation"]["board"]["invitations"] == []
    accepted = (await world.data("other", ACCEPT_INVITATION, {"boardId": board_id}))["acceptBoardInvitation"]
    assert accepted["__typename"] == "NotFound"


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        (MY_INVITATIONS, {}),
        (ACCEPT_INVITATION, {"boardId": str(uuid.uuid4())}),
        (DECLINE, {"boardId": str(uuid.uuid4())}),
        (REVOKE, {"boardId": str(uuid.uuid4()), "email": "a@example.com"}),
    ],
)
async def test_the_invitation_fields_need_a_signed_in_user(world: World, query: str, variables: dict[str, Any]) -> None:
    body = await world.run("anonymous", query, variables)
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
