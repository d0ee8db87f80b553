"""Watching use cases (domain/use_cases/watching.py) with in-memory fakes: order, access, expiry, the end of a watch."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncGenerator
from datetime import datetime, timedelta
from typing import Any, TypeVar

import pytest

from domain.boards import BoardRole
from domain.credits import CreditBalance
from domain.errors import NotFound, Unauthenticated
from domain.events import CreditsChanged, GenerationChanged
from domain.generations import Generation, GenerationStatus
from domain.use_cases import watching
from domain.use_cases.watching import FeedClosed, GenerationUpdate
from domain.users import User
from tests.unit.fakes import Fakes, principal_of

S = GenerationStatus
T = TypeVar("T")
TOKEN_LIFETIME = timedelta(minutes=5)


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


def moved(fakes: Fakes, before: Generation | None, status: S, progress: float = 0.0) -> GenerationChanged:
    """The event a publisher sends when it moved `before` to `status` (one second later on the clock)."""
    assert before is not None
    fakes.clock.advance(1)
    after = dataclasses.replace(before, status=status, progress=progress, updated_at=fakes.clock.now())
    return GenerationChanged.of(after, before.status, fakes.clock.now())


def commit(fakes: Fakes, event: GenerationChanged) -> None:
    assert event.generation is not None
    fakes.db.generations[event.generation_id] = event.generation


async def drain(updates: AsyncGenerator[T, None]) -> tuple[list[T], Exception | None]:
    """Everything the watch yields, and the error it ended with (None when it ended by itself)."""
    seen: list[T] = []
    try:
        async for update in updates:
            seen.append(update)
    except Exception as ended:
        return seen, ended
    return seen, None


def watch(fakes: Fakes, who: User, generation_id: uuid.UUID, expires_at: datetime | None = None) -> Any:
    return watching.watch_generation(
        principal=principal_of(who),
        generation_id=generation_id,
        uow=fakes.uow_factory(),
        feed=fakes.feed,
        clock=fakes.clock,
        expires_at=expires_at,
    )


def shown(updates: list[GenerationUpdate]) -> list[tuple[S | None, S, float]]:
    return [(u.previous_status, u.generation.status, u.generation.progress) for u in updates]


# ------------------------------------------------------------------ watch_generation


async def test_the_current_state_comes_first_then_each_change_until_the_end(fakes: Fakes) -> None:
    # given a queued generation and the changes its publishers announce
    user = fakes.user(balance=100)
    g = fakes.generation(user, fakes.model(), S.QUEUED)
    submitting = moved(fakes, g, S.SUBMITTING)
    processing = moved(fakes, submitting.generation, S.PROCESSING, 0.5)
    events = [submitting, processing, moved(fakes, processing.generation, S.SUCCEEDED, 1.0)]
    fakes.feed.push(user.id, *events)
    # when its owner watches it
    updates, ended = await drain(watch(fakes, user, g.id))
    # then they see where it stands, then every step, and the watch ends with the final one
    assert shown(updates) == [
        (None, S.QUEUED, 0.0),
        (S.QUEUED, S.SUBMITTING, 0.0),
        (S.SUBMITTING, S.PROCESSING, 0.5),
        (S.PROCESSING, S.SUCCEEDED, 1.0),
    ]
    assert ended is None and [u.at for u in updates[1:]] == [e.at for e in events]


async def test_late_duplicate_and_foreign_events_are_skipped(fakes: Fakes) -> None:
    user = fakes.user(balance=100)
    model = fakes.model()
    g, other = fakes.generation(user, model, S.SUBMITTING), fakes.generation(user, model, S.QUEUED)
    processing = moved(fakes, g, S.PROCESSING, 0.3)
    late_queued = GenerationChanged.of(dataclasses.replace(g, status=S.QUEUED), None, fakes.clock.now())
    fakes.feed.push(user.id, late_queued, processing, processing, moved(fakes, other, S.SUBMITTING))
    updates, ended = await drain(watch(fakes, user, g.id))
    assert shown(updates) == [(None, S.SUBMITTING, 0.0), (S.SUBMITTING, S.PROCESSING, 0.3)]
    assert isinstance(ended, FeedClosed)


async def test_an_ended_generation_is_shown_once(fakes: Fakes) -> None:
    user = fakes.user(balance=100)
    g = fakes.generation(user, fakes.model(), S.FAILED)
    updates, ended = await drain(watch(fakes, user, g.id))
    assert shown(updates) == [(None, S.FAILED, 0.0)] and ended is None


async def test_a_change_committed_while_subscribing_is_not_missed(fakes: Fakes) -> None:
    # given a generation that succeeds between the access check and the subscription
    user = fakes.user(balance=100)
    g = fakes.generation(user, fakes.model(), S.PROCESSING)
    fakes.feed.on_subscribe = lambda: commit(fakes, moved(fakes, g, S.SUCCEEDED, 1.0))
    # when it is watched, then the read after subscribing shows the end (the event was missed)
    updates, ended = await drain(watch(fakes, user, g.id))
    assert shown(updates) == [(None, S.SUCCEEDED, 1.0)] and ended is None


async def test_a_board_member_watches_through_the_owners_channel(fakes: Fakes) -> None:
    owner, viewer = fakes.user(balance=100), fakes.user()
    board = fakes.board(owner, v=(viewer, BoardRole.VIEWER))
    g = fakes.generation(owner, fakes.model(), S.PROCESSING, board_id=board.id)
    fakes.feed.push(owner.id, moved(fakes, g, S.SUCCEEDED, 1.0))
    updates, ended = await drain(watch(fakes, viewer, g.id))
    assert fakes.feed.subscribed == [owner.id]
    assert shown(updates)[-1] == (S.PROCESSING, S.SUCCEEDED, 1.0) and ended is None


async def test_strangers_and_unknown_ids_are_not_found_before_subscribing(fakes: Fakes) -> None:
    owner, stranger = fakes.user(balance=100), fakes.user()
    g = fakes.generation(owner, fakes.model(), S.QUEUED)
    for who, generation_id in ((stranger, g.id), (owner, uuid.uuid4())):
        updates, ended = await drain(watch(fakes, who, generation_id))
        assert updates == [] and isinstance(ended, NotFound)
    assert fakes.feed.subscribed == []


async def test_a_member_removed_from_the_board_stops_receiving(fakes: Fakes) -> None:
    # given a viewer watching a board generation
    owner, viewer = fakes.user(balance=100), fakes.user()
    board = fakes.board(owner, v=(viewer, BoardRole.VIEWER))
    g = fakes.generation(owner, fakes.model(), S.SUBMITTING, board_id=board.id)
    fakes.feed.push(owner.id, moved(fakes, g, S.PROCESSING, 0.5))
    updates = watch(fakes, viewer, g.id)
    assert (await anext(updates)).generation.id == g.id
    # when they are removed from the board, then the next change is refused
    del fakes.db.members[(board.id, viewer.id)]
    with pytest.raises(NotFound):
        await anext(updates)


async def test_an_expired_token_ends_the_watch(fakes: Fakes) -> None:
    user = fakes.user(balance=100)
    g = fakes.generation(user, fakes.model(), S.QUEUED)
    expires_at = fakes.clock.now() + TOKEN_LIFETIME
    # expired already: nothing is shown
    fakes.clock.advance(TOKEN_LIFETIME.total_seconds())
    updates, ended = await drain(watch(fakes, user, g.id, expires_at))
    assert updates == [] and isinstance(ended, Unauthenticated)
    # expiring during the watch: the next change is not delivered
    fakes.clock.at = expires_at - TOKEN_LIFETIME
    watcher = watch(fakes, user, g.id, expires_at)
    await anext(watcher)
    fakes.feed.push(user.id, moved(fakes, g, S.SUBMITTING))
    fakes.clock.at = expires_at
    with pytest.raises(Unauthenticated):
        await anext(watcher)


# ------------------------------------------------------------------ watch_my_generations / watch_credits


async def test_my_generations_shows_each_of_mine_forward_only_until_the_feed_closes(fakes: Fakes) -> None:
    user, other = fakes.user(balance=100), fakes.user(balance=100)
    model = fakes.model()
    a, b, theirs = (fakes.generation(u, model, S.QUEUED) for u in (user, user, other))
    a_submitting, b_failed = moved(fakes, a, S.SUBMITTING), moved(fakes, b, S.FAILED)
    late_a = GenerationChanged.of(dataclasses.replace(a, status=S.QUEUED), None, fakes.clock.now())
    fakes.feed.push(user.id, a_submitting, late_a, b_failed, a_submitting, moved(fakes, theirs, S.SUBMITTING))
    updates, ended = await drain(
        watching.watch_my_generations(principal=principal_of(user), feed=fakes.feed, clock=fakes.clock)
    )
    assert [(u.generation.id, u.generation.status) for u in updates] == [(a.id, S.SUBMITTING), (b.id, S.FAILED)]
    assert isinstance(ended, FeedClosed)


async def test_credits_are_delivered_as_announced(fakes: Fakes) -> None:
    user = fakes.user(balance=100)
    g = fakes.generation(user, fakes.model(), S.QUEUED)
    now = fakes.clock.now()
    fakes.feed.push(
        user.id,
        CreditsChanged(user.id, 100, 10, now),
        moved(fakes, g, S.CANCELED),
        CreditsChanged(user.id, 100, 0, now),
    )
    updates, ended = await drain(
        watching.watch_credits(principal=principal_of(user), feed=fakes.feed, clock=fakes.clock)
    )
    assert updates == [CreditBalance(100, 10), CreditBalance(100, 0)] and isinstance(ended, FeedClosed)


@pytest.mark.parametrize("watch_name", ["watch_my_generations", "watch_credits"])
async def test_the_feeds_of_my_own_end_on_expiry(fakes: Fakes, watch_name: str) -> None:
    user = fakes.user()
    expires_at = fakes.clock.now()
    updates, ended = await drain(
        getattr(watching, watch_name)(
            principal=principal_of(user), feed=fakes.feed, clock=fakes.clock, expires_at=expires_at
        )
    )
    assert updates == [] and isinstance(ended, Unauthenticated) and fakes.feed.subscribed == []


async def test_an_event_without_its_snapshot_is_skipped(fakes: Fakes) -> None:
    # given an event of an older publisher (no generation carried), then a full one
    user = fakes.user(balance=100)
    g = fakes.generation(user, fakes.model(), S.QUEUED)
    full = moved(fakes, g, S.SUBMITTING)
    bare = dataclasses.replace(full, generation=None)
    fakes.feed.push(user.id, bare, full)
    mine = watching.watch_my_generations(principal=principal_of(user), feed=fakes.feed, clock=fakes.clock)
    updates, ended = await drain(watch(fakes, user, g.id))
    # then only the full one is shown, to either kind of watcher
    assert shown(updates) == [(None, S.QUEUED, 0.0), (S.QUEUED, S.SUBMITTING, 0.0)]
    fakes.feed.push(user.id, bare, full)
    assert [u.generation.status for u in (await drain(mine))[0]] == [S.SUBMITTING]


# ------------------------------------------------------------------ as_announced


def test_a_generation_read_after_an_event_is_shown_as_the_event_announced(fakes: Fakes) -> None:
    # given a row read after it failed, and the earlier PROCESSING event it answers
    user = fakes.user(balance=100)
    g = fakes.generation(user, fakes.model(), S.PROCESSING)
    stored = dataclasses.replace(g, status=S.FAILED, error_code="X", finished_at=fakes.clock.now(), progress=0.4)
    processing = GenerationChanged.of(dataclasses.replace(g, progress=0.4), S.SUBMITTING, fakes.clock.now())
    # when it is shown as that event announced it, then the ending is not shown ahead of its event
    shown_as = watching.as_announced(stored, processing)
    assert (shown_as.status, shown_as.error_code, shown_as.finished_at) == (S.PROCESSING, None, None)
    # and a row that already matches the event is shown as it is
    assert watching.as_announced(stored, dataclasses.replace(processing, status=S.FAILED, generation=None)) is stored
