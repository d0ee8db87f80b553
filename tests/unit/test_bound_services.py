"""The bound services (domain/services/) apply the policy they were bound with, on fakes.

The use cases themselves are tested in tests/unit/test_uc_*.py; these check that binding
once keeps what each call site used to spell out: the rate rules, the upload policy and
URL lifetimes, the invitation rules, the providers an admin may name.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.boards import BoardRole
from domain.catalogue import ModelKind
from domain.errors import InvalidInput, QuotaExceeded, RateLimited
from domain.invitations import InvitationRules
from domain.ports import RateBucket
from domain.services.boards import Boards
from domain.services.catalogue import Catalogue
from domain.services.chunks import Chunks
from domain.services.credits import Credits
from domain.services.generations import Generations
from domain.use_cases.chunks import UploadPolicy
from domain.use_cases.generations import GenerateRequest
from domain.use_cases.rate_limits import RateRule
from domain.users import Role
from tests.unit.fakes import Fakes, principal_of

POLICY = UploadPolicy(max_bytes=1000, allowed_types=frozenset({"image/*"}), quota_count=10, quota_bytes=10_000)


def generations_of(fakes: Fakes, rate: RateRule) -> Generations:
    return Generations(
        uow=fakes.uow_factory(),
        reads=fakes.uow_factory(),
        starter=fakes.starter,
        catalogue=fakes.catalogue,
        jobs=fakes.jobs,
        publisher=fakes.publisher,
        clock=fakes.clock,
        limiter=fakes.limiter,
        rate=rate,
    )


def chunks_of(fakes: Fakes, *, url_seconds: int, pending_ttl_seconds: int) -> Chunks:
    return Chunks(
        uow=fakes.uow_factory(),
        reads=fakes.uow_factory(),
        storage=fakes.storage,
        clock=fakes.clock,
        limiter=fakes.limiter,
        policy=POLICY,
        rate=RateRule(100, 60),
        url_seconds=url_seconds,
        pending_ttl_seconds=pending_ttl_seconds,
    )


async def test_generate_counts_the_bound_per_user_rule() -> None:
    # given a service bound with one generation per minute per user
    fakes = Fakes()
    user, model = fakes.user(balance=100), fakes.model(cost=1)
    service = generations_of(fakes, RateRule(1, 60))
    await service.generate(principal_of(user), GenerateRequest(model.id, "first"))
    # when the same user starts a second one in the window
    with pytest.raises(RateLimited):
        await service.generate(principal_of(user), GenerateRequest(model.id, "second"))
    # then only the first was started
    assert len(fakes.db.generations) == 1


async def test_generate_counts_the_transports_buckets_in_the_same_hit() -> None:
    # given a full address bucket of the transport's
    fakes = Fakes()
    user, model = fakes.user(balance=100), fakes.model(cost=1)
    service = generations_of(fakes, RateRule(100, 60))
    full = RateBucket("generate:ip:192.0.2.1", 1, 60)
    await service.generate(principal_of(user), GenerateRequest(model.id, "first"), also_limit=[full])
    # when the next request from that address comes
    with pytest.raises(RateLimited):
        await service.generate(principal_of(user), GenerateRequest(model.id, "second"), also_limit=[full])
    # then nothing was started and no credit held for it
    assert len(fakes.db.generations) == 1


@settings(max_examples=40, deadline=None)
@given(url_seconds=st.integers(60, 7 * 24 * 3600), pending_ttl_seconds=st.integers(60, 7 * 24 * 3600))
async def test_an_upload_url_never_outlives_its_pending_chunk(url_seconds: int, pending_ttl_seconds: int) -> None:
    # given chunks bound with any URL lifetime and any pending TTL
    fakes = Fakes()
    service = chunks_of(fakes, url_seconds=url_seconds, pending_ttl_seconds=pending_ttl_seconds)
    user = fakes.user()
    # when an upload is requested
    ticket = await service.request_upload(
        principal_of(user), filename="a.png", content_type="image/png", size=10, sha256=None
    )
    # then its URL expires with the shorter of the two
    lifetime = ticket.request.expires_at - fakes.clock.now()
    assert lifetime == timedelta(seconds=min(url_seconds, pending_ttl_seconds))


async def test_the_bound_upload_policy_refuses_what_it_does_not_allow() -> None:
    fakes = Fakes()
    service = chunks_of(fakes, url_seconds=900, pending_ttl_seconds=3600)
    user = fakes.user()
    with pytest.raises(InvalidInput):
        await service.request_upload(
            principal_of(user), filename="a.exe", content_type="application/x-msdownload", size=10, sha256=None
        )
    with pytest.raises(InvalidInput):
        await service.request_upload(
            principal_of(user), filename="big.png", content_type="image/png", size=POLICY.max_bytes + 1, sha256=None
        )


async def test_invitations_follow_the_bound_rules() -> None:
    # given boards bound with at most one pending invitation per board
    fakes = Fakes()
    owner = fakes.user()
    board = fakes.board(owner)
    service = Boards(
        uow=fakes.uow_factory(),
        reads=fakes.uow_factory(),
        clock=fakes.clock,
        limiter=fakes.limiter,
        invitation_rules=InvitationRules(ttl=timedelta(days=1), max_pending_per_board=1),
        invite_rate=RateRule(100, 60),
    )
    await service.invite(principal_of(owner), board.id, "first@example.com", BoardRole.VIEWER)
    # when a second address is invited
    with pytest.raises(QuotaExceeded):
        await service.invite(principal_of(owner), board.id, "second@example.com", BoardRole.VIEWER)


async def test_an_admin_may_only_name_a_provider_the_process_knows() -> None:
    fakes = Fakes()
    admin = fakes.user(role=Role.ADMIN)
    service = Catalogue(
        uow=fakes.uow_factory(),
        reads=fakes.uow_factory(),
        cache=fakes.catalogue,
        known_providers=frozenset({"fake"}),
        clock=fakes.clock,
    )
    with pytest.raises(InvalidInput):
        await service.upsert_model(
            principal_of(admin),
            slug="m",
            name="M",
            provider="elsewhere",
            kind=ModelKind.IMAGE,
            cost_credits=1,
            capabilities={},
            is_active=True,
        )


async def test_an_operator_grant_is_replayed_by_its_key() -> None:
    # given credits bound to the fakes, and the operator (no actor) granting with a key
    fakes = Fakes()
    user = fakes.user(balance=0)
    service = Credits(uow=fakes.uow_factory(), reads=fakes.uow_factory(), publisher=fakes.publisher, clock=fakes.clock)
    first = await service.grant(None, user.id, 50, "welcome", "key-1")
    # when the same grant is sent again
    again = await service.grant(None, user.id, 50, "welcome", "key-1")
    # then it is the same entry and the balance moved once
    assert again.entry == first.entry
    assert (await service.balance(user.id)).balance == 50
