"""generate and cancel (domain/use_cases/generations.py) with in-memory fakes: credits, replays, access, limits."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from domain.boards import BoardRole
from domain.chunks import ChunkStatus
from domain.credits import CreditBalance, LedgerEntry, LedgerKind, generation_key
from domain.errors import Forbidden, InsufficientCredits, InvalidInput, InvalidState, NotFound, RateLimited
from domain.events import CreditsChanged, GenerationChanged
from domain.generations import Generation, GenerationStatus
from domain.ports import RateBucket
from domain.repositories import StartOutcome, StartStatus
from domain.use_cases import generations
from domain.use_cases.generations import CANCEL_TASK, SUBMIT_TASK, GenerateRequest
from domain.use_cases.rate_limits import RateRule
from domain.users import Role, User
from tests.unit.fakes import FakeGenerationStarter, Fakes, principal_of

S = GenerationStatus
COST = 10
BALANCE = 100
PROMPT = "a red fox in the snow"
KEY = "client-key-1"
ONE_PER_MINUTE = RateRule(limit=1, window_seconds=60)


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


async def generate(fakes: Fakes, user: User, request: GenerateRequest, **extra: Any) -> Generation:
    return await generations.generate(
        principal=principal_of(user),
        request=request,
        uow=fakes.uow,
        starter=extra.pop("starter", fakes.starter),
        catalogue=fakes.catalogue,
        jobs=fakes.jobs,
        publisher=fakes.publisher,
        clock=fakes.clock,
        limiter=fakes.limiter,
        **extra,
    )


async def cancel(fakes: Fakes, user: User, generation_id: uuid.UUID) -> Generation:
    return await generations.cancel(
        principal=principal_of(user),
        generation_id=generation_id,
        uow=fakes.uow,
        jobs=fakes.jobs,
        publisher=fakes.publisher,
        clock=fakes.clock,
    )


def announced(fakes: Fakes) -> list[tuple[Any, ...]]:
    """The published events as what a subscriber learns: which generation went from what to what, and balances."""
    out: list[tuple[Any, ...]] = []
    for e in fakes.publisher.events:
        if isinstance(e, GenerationChanged):
            out.append(("generation", e.generation_id, e.previous_status, e.status, e.board_id, e.at))
        else:
            out.append(("credits", e.user_id, e.balance, e.reserved, e.at))
    return out


def ledger_kinds(fakes: Fakes, generation_id: uuid.UUID) -> list[tuple[LedgerKind, int]]:
    return sorted((e.kind, e.amount) for e in fakes.db.ledger.values() if e.generation_id == generation_id)


class StarterAfter:
    """The real (fake) starter, after `meanwhile` ran: a change committed between the checks and the start."""

    def __init__(self, inner: FakeGenerationStarter, meanwhile: Callable[[], None]) -> None:
        self.inner = inner
        self.meanwhile = meanwhile

    async def start(self, generation: Generation, reservation: LedgerEntry | None) -> StartOutcome:
        self.meanwhile()
        return await self.inner.start(generation, reservation)


# ------------------------------------------------------------------ generate: the reservation


async def test_generate_queues_the_generation_and_reserves_its_cost(fakes: Fakes) -> None:
    # given a user with 100 credits and a model costing 10
    user = fakes.user(balance=BALANCE)
    model = fakes.model(cost=COST)
    # when they start a generation
    g = await generate(fakes, user, GenerateRequest(model.id, f"  {PROMPT}  "))
    # then it is stored QUEUED with the trimmed prompt and the cost held
    stored = fakes.db.generations[g.id]
    assert (stored.status, stored.prompt, stored.reserved_credits) == (S.QUEUED, PROMPT, COST)
    assert stored.deadline_at == fakes.clock.now() + timedelta(seconds=model.deadline_seconds)
    assert fakes.db.accounts[user.id] == CreditBalance(BALANCE, COST)
    assert ledger_kinds(fakes, g.id) == [(LedgerKind.RESERVE, COST)]
    assert generation_key(g.id, LedgerKind.RESERVE) in fakes.db.ledger
    # and its submit is queued and both changes announced
    assert fakes.jobs.kicked == [(SUBMIT_TASK, {"generation_id": str(g.id)})]
    now = fakes.clock.now()
    assert announced(fakes) == [
        ("generation", g.id, None, S.QUEUED, None, now),
        ("credits", user.id, BALANCE, COST, now),
    ]


async def test_a_free_model_moves_no_credits_and_announces_no_balance(fakes: Fakes) -> None:
    user = fakes.user(balance=0)
    model = fakes.model(cost=0)
    g = await generate(fakes, user, GenerateRequest(model.id, PROMPT))
    assert fakes.db.generations[g.id].status is S.QUEUED
    assert ledger_kinds(fakes, g.id) == [] and fakes.db.accounts[user.id] == CreditBalance(0, 0)
    assert [type(e) for e in fakes.publisher.events] == [GenerationChanged]


async def test_insufficient_credits_start_nothing(fakes: Fakes) -> None:
    # given a user with 5 credits and a model costing 10
    user = fakes.user(balance=5)
    model = fakes.model(cost=COST)
    # when they try to generate
    with pytest.raises(InsufficientCredits) as refused:
        await generate(fakes, user, GenerateRequest(model.id, PROMPT))
    # then they learn what is missing, and nothing was stored, queued or announced
    assert (refused.value.required, refused.value.available) == (COST, 5)
    assert fakes.db.generations == {} and fakes.db.accounts[user.id] == CreditBalance(5, 0)
    assert fakes.jobs.kicked == [] and fakes.publisher.events == []


async def test_credits_held_by_running_generations_are_not_available(fakes: Fakes) -> None:
    # given 15 credits, 10 of them held by a first generation
    user = fakes.user(balance=15)
    model = fakes.model(cost=COST)
    await generate(fakes, user, GenerateRequest(model.id, PROMPT))
    # when a second one is started
    with pytest.raises(InsufficientCredits) as refused:
        await generate(fakes, user, GenerateRequest(model.id, PROMPT))
    # then only the 5 free credits count
    assert refused.value.available == 5
    assert len(fakes.db.generations) == 1 and fakes.db.accounts[user.id] == CreditBalance(15, COST)


# ------------------------------------------------------------------ generate: the catalogue and the request


async def test_an_unknown_or_inactive_model_is_not_found(fakes: Fakes) -> None:
    user = fakes.user(balance=BALANCE)
    inactive = fakes.model(active=False)
    for model_id in (inactive.id, uuid.uuid4()):
        with pytest.raises(NotFound) as missing:
            await generate(fakes, user, GenerateRequest(model_id, PROMPT))
        assert missing.value.entity == "model"
    assert fakes.starter.calls == [] and fakes.db.accounts[user.id] == CreditBalance(BALANCE, 0)


async def test_every_problem_of_the_request_is_reported_at_once_and_nothing_starts(fakes: Fakes) -> None:
    # given a model with one int param, and a preset of another model
    user = fakes.user(balance=BALANCE)
    model = fakes.model(params={"steps": {"type": "int", "min": 1, "max": 50}})
    other_preset = fakes.preset(fakes.model())
    request = GenerateRequest(model.id, "   ", preset_id=other_preset.id, params={"steps": 99}, idempotency_key="")
    # when it is sent
    with pytest.raises(InvalidInput) as invalid:
        await generate(fakes, user, request)
    # then each field is named, and the starter was never asked
    assert sorted(p.field for p in invalid.value.fields) == ["idempotencyKey", "params.steps", "presetId", "prompt"]
    assert fakes.starter.calls == []


async def test_preset_and_request_params_are_merged_over_the_defaults(fakes: Fakes) -> None:
    user = fakes.user(balance=BALANCE)
    specs = {"steps": {"type": "int", "default": 20}, "style": {"type": "string", "default": "plain"}}
    model = fakes.model(params=specs)
    preset = fakes.preset(model, style="noir")
    g = await generate(fakes, user, GenerateRequest(model.id, PROMPT, preset_id=preset.id, params={"steps": 30}))
    assert fakes.db.generations[g.id].params == {"steps": 30, "style": "noir"}
    assert fakes.db.generations[g.id].preset_id == preset.id


# ------------------------------------------------------------------ generate: idempotency keys


async def test_the_same_key_and_request_replays_the_first_generation(fakes: Fakes) -> None:
    # given a generation started with a key
    user = fakes.user(balance=BALANCE)
    model = fakes.model(cost=COST)
    request = GenerateRequest(model.id, PROMPT, idempotency_key=KEY)
    first = await generate(fakes, user, request)
    # when the client retries with the same key and request
    again = await generate(fakes, user, request)
    # then it gets the same generation; nothing was held, queued or announced twice
    assert again.id == first.id and len(fakes.db.generations) == 1
    assert fakes.db.accounts[user.id] == CreditBalance(BALANCE, COST)
    assert len(fakes.jobs.kicked) == 1 and len(fakes.publisher.events) == 2


async def test_a_replay_answers_even_when_the_request_would_no_longer_pass(fakes: Fakes) -> None:
    # given a keyed generation, whose model was deactivated and whose credits ran out since
    user = fakes.user(balance=COST)
    model = fakes.model(cost=COST)
    request = GenerateRequest(model.id, PROMPT, idempotency_key=KEY)
    first = await generate(fakes, user, request)
    fakes.db.models[model.id] = dataclasses.replace(model, is_active=False)
    # when the client retries
    again = await generate(fakes, user, request)
    # then the first generation is the answer
    assert again.id == first.id and len(fakes.db.generations) == 1


async def test_reusing_a_key_for_another_request_is_refused_with_what_differs(fakes: Fakes) -> None:
    user = fakes.user(balance=BALANCE)
    model = fakes.model(cost=COST)
    first = await generate(fakes, user, GenerateRequest(model.id, PROMPT, idempotency_key=KEY))
    with pytest.raises(InvalidInput) as reused:
        await generate(fakes, user, GenerateRequest(model.id, "another prompt", idempotency_key=KEY))
    [problem] = reused.value.fields
    assert problem.field == "idempotencyKey" and str(first.id) in problem.message and "prompt" in problem.message
    assert len(fakes.db.generations) == 1 and fakes.db.accounts[user.id] == CreditBalance(BALANCE, COST)


async def test_a_replay_with_a_deactivated_model_still_checks_the_request(fakes: Fakes) -> None:
    # given a keyed generation whose model is gone since
    user = fakes.user(balance=BALANCE)
    model = fakes.model(cost=COST)
    await generate(fakes, user, GenerateRequest(model.id, PROMPT, idempotency_key=KEY))
    fakes.db.models[model.id] = dataclasses.replace(model, is_active=False)
    # when the key comes back with another prompt, then the reuse is reported (not "model not found")
    with pytest.raises(InvalidInput) as reused:
        await generate(fakes, user, GenerateRequest(model.id, "another prompt", idempotency_key=KEY))
    assert reused.value.fields[0].field == "idempotencyKey"


async def test_keys_belong_to_one_user(fakes: Fakes) -> None:
    model = fakes.model(cost=COST)
    alice, bob = fakes.user(balance=BALANCE), fakes.user(balance=BALANCE)
    a = await generate(fakes, alice, GenerateRequest(model.id, PROMPT, idempotency_key=KEY))
    b = await generate(fakes, bob, GenerateRequest(model.id, PROMPT, idempotency_key=KEY))
    assert a.id != b.id and {a.user_id, b.user_id} == {alice.id, bob.id}


# ------------------------------------------------------------------ generate: boards and inputs


async def test_an_editor_generates_in_a_board(fakes: Fakes) -> None:
    owner, editor = fakes.user(), fakes.user(balance=BALANCE)
    board = fakes.board(owner, e=(editor, BoardRole.EDITOR))
    model = fakes.model(cost=COST)
    g = await generate(fakes, editor, GenerateRequest(model.id, PROMPT, board_id=board.id))
    assert fakes.db.generations[g.id].board_id == board.id
    assert isinstance(event := fakes.publisher.events[0], GenerationChanged) and event.board_id == board.id


async def test_a_viewer_may_not_and_a_stranger_does_not_see_the_board(fakes: Fakes) -> None:
    owner, viewer, stranger = fakes.user(), fakes.user(balance=BALANCE), fakes.user(balance=BALANCE)
    board = fakes.board(owner, v=(viewer, BoardRole.VIEWER))
    model = fakes.model(cost=COST)
    with pytest.raises(Forbidden):
        await generate(fakes, viewer, GenerateRequest(model.id, PROMPT, board_id=board.id))
    with pytest.raises(NotFound) as missing:
        await generate(fakes, stranger, GenerateRequest(model.id, PROMPT, board_id=board.id))
    assert missing.value.entity == "board"
    assert fakes.starter.calls == [] and fakes.db.generations == {}


@pytest.mark.parametrize(("now_role", "error"), [(None, NotFound), (BoardRole.VIEWER, Forbidden)])
async def test_leaving_the_board_between_the_check_and_the_start_is_reported(
    fakes: Fakes, now_role: BoardRole | None, error: type[Exception]
) -> None:
    # given an editor who is removed (or made a viewer) just before the start is written
    owner, editor = fakes.user(), fakes.user(balance=BALANCE)
    board = fakes.board(owner, e=(editor, BoardRole.EDITOR))
    model = fakes.model(cost=COST)

    def demote() -> None:
        if now_role is None:
            del fakes.db.members[(board.id, editor.id)]
        else:
            fakes.join(board, editor, now_role)

    # when they generate, then the start is refused, with nothing held
    with pytest.raises(error):
        await generate(
            fakes,
            editor,
            GenerateRequest(model.id, PROMPT, board_id=board.id),
            starter=StarterAfter(fakes.starter, demote),
        )
    assert fakes.db.generations == {} and fakes.db.accounts[editor.id] == CreditBalance(BALANCE, 0)


async def test_ready_input_chunks_are_recorded_in_order(fakes: Fakes) -> None:
    user = fakes.user(balance=BALANCE)
    model = fakes.model(cost=COST, maxInputs=2)
    first, second = fakes.chunk(user), fakes.chunk(user)
    g = await generate(fakes, user, GenerateRequest(model.id, PROMPT, input_chunk_ids=(second.id, first.id)))
    assert fakes.db.inputs[g.id] == [second.id, first.id]


async def test_inputs_must_be_the_users_ready_chunks(fakes: Fakes) -> None:
    user, other = fakes.user(balance=BALANCE), fakes.user()
    model = fakes.model(cost=COST, maxInputs=2)
    theirs, pending = fakes.chunk(other), fakes.chunk(user, status=ChunkStatus.PENDING)
    with pytest.raises(NotFound) as missing:
        await generate(fakes, user, GenerateRequest(model.id, PROMPT, input_chunk_ids=(theirs.id,)))
    assert missing.value.entity == "chunk"
    with pytest.raises(InvalidInput) as unfinished:
        await generate(fakes, user, GenerateRequest(model.id, PROMPT, input_chunk_ids=(pending.id,)))
    assert unfinished.value.fields[0].field == "inputChunkIds"
    assert fakes.db.generations == {}


async def test_a_chunk_deleted_between_the_check_and_the_start_is_not_found(fakes: Fakes) -> None:
    user = fakes.user(balance=BALANCE)
    model = fakes.model(cost=COST, maxInputs=1)
    chunk = fakes.chunk(user)
    starter = StarterAfter(fakes.starter, lambda: fakes.db.chunks.pop(chunk.id) and None)
    with pytest.raises(NotFound) as missing:
        await generate(fakes, user, GenerateRequest(model.id, PROMPT, input_chunk_ids=(chunk.id,)), starter=starter)
    assert missing.value.entity == "chunk" and fakes.db.generations == {}


async def test_more_inputs_than_the_model_takes_are_refused(fakes: Fakes) -> None:
    user = fakes.user(balance=BALANCE)
    model = fakes.model(cost=COST, maxInputs=1)
    chunks = (fakes.chunk(user).id, fakes.chunk(user).id)
    with pytest.raises(InvalidInput) as invalid:
        await generate(fakes, user, GenerateRequest(model.id, PROMPT, input_chunk_ids=chunks))
    assert [p.field for p in invalid.value.fields] == ["inputChunkIds"]


# ------------------------------------------------------------------ generate: rate limit and a lost submit


async def test_the_rate_limit_refuses_before_any_work_and_frees_up_after_the_window(fakes: Fakes) -> None:
    # given one start per minute
    user = fakes.user(balance=BALANCE)
    model = fakes.model(cost=COST)
    await generate(fakes, user, GenerateRequest(model.id, PROMPT), rate=ONE_PER_MINUTE)
    # when a second comes at once, then it is refused with the wait
    with pytest.raises(RateLimited) as limited:
        await generate(fakes, user, GenerateRequest(model.id, PROMPT), rate=ONE_PER_MINUTE)
    assert limited.value.retry_after_seconds == 60 and len(fakes.starter.calls) == 1
    # and a minute later it passes
    fakes.clock.advance(60)
    await generate(fakes, user, GenerateRequest(model.id, PROMPT), rate=ONE_PER_MINUTE)
    assert len(fakes.db.generations) == 2


async def test_the_callers_own_buckets_count_in_the_same_hit(fakes: Fakes) -> None:
    # given an address bucket that is already full, and a user bucket with room
    user = fakes.user(balance=BALANCE)
    model = fakes.model(cost=COST)
    by_address = RateBucket("generate:addr:203.0.113.9", limit=1, window_seconds=60)
    await fakes.limiter.hit_all([by_address])
    # when the user generates, then the address limit refuses and the user bucket was not counted
    with pytest.raises(RateLimited):
        await generate(fakes, user, GenerateRequest(model.id, PROMPT), rate=ONE_PER_MINUTE, also_limit=[by_address])
    assert fakes.limiter.hits[f"generate:{user.id}"] == []


async def test_a_lost_submit_message_leaves_the_generation_due_for_the_sweep(fakes: Fakes) -> None:
    # given a queue that cannot be reached
    user = fakes.user(balance=BALANCE)
    model = fakes.model(cost=COST)
    fakes.jobs.failure = ConnectionError("broker down")
    # when a generation starts
    g = await generate(fakes, user, GenerateRequest(model.id, PROMPT))
    # then it is started anyway (credits held, change announced) and marked due now
    stored = fakes.db.generations[g.id]
    assert (stored.status, stored.next_attempt_at) == (S.QUEUED, fakes.clock.now())
    assert fakes.db.accounts[user.id] == CreditBalance(BALANCE, COST) and len(fakes.publisher.events) == 2


# ------------------------------------------------------------------ cancel


async def test_the_owner_cancels_and_the_hold_is_released(fakes: Fakes) -> None:
    # given a queued generation holding 10 credits
    user = fakes.user(balance=BALANCE)
    model = fakes.model(cost=COST)
    g = await generate(fakes, user, GenerateRequest(model.id, PROMPT))
    fakes.publisher.events.clear()
    fakes.jobs.kicked.clear()
    # when its owner cancels it
    canceled = await cancel(fakes, user, g.id)
    # then it is CANCELED, its hold released, and both changes announced; no provider to tell
    stored = fakes.db.generations[g.id]
    assert (canceled.status, stored.status, stored.error_code) == (S.CANCELED, S.CANCELED, "CANCELED")
    assert stored.finished_at == fakes.clock.now()
    assert fakes.db.accounts[user.id] == CreditBalance(BALANCE, 0)
    assert ledger_kinds(fakes, g.id) == [(LedgerKind.RELEASE, -COST), (LedgerKind.RESERVE, COST)]
    now = fakes.clock.now()
    assert announced(fakes) == [
        ("generation", g.id, S.QUEUED, S.CANCELED, None, now),
        ("credits", user.id, BALANCE, 0, now),
    ]
    assert fakes.jobs.kicked == []


async def test_canceling_a_running_generation_tells_its_provider(fakes: Fakes) -> None:
    user = fakes.user(balance=BALANCE)
    g = fakes.generation(user, fakes.model(cost=COST), S.PROCESSING, provider_task_id="task-7")
    await cancel(fakes, user, g.id)
    # the message names the model and the provider's task too: it works once the row is deleted
    assert fakes.jobs.kicked == [
        (CANCEL_TASK, {"generation_id": str(g.id), "model_id": str(g.model_id), "external_id": "task-7"})
    ]
    assert fakes.db.accounts[user.id] == CreditBalance(BALANCE, 0)


async def test_someone_elses_generation_is_not_found_and_unchanged(fakes: Fakes) -> None:
    owner, other = fakes.user(balance=BALANCE), fakes.user()
    g = fakes.generation(owner, fakes.model(cost=COST), S.QUEUED)
    for missing in (g.id, uuid.uuid4()):
        with pytest.raises(NotFound):
            await cancel(fakes, other, missing)
    assert fakes.db.generations[g.id].status is S.QUEUED
    assert fakes.db.accounts[owner.id] == CreditBalance(BALANCE, COST) and fakes.publisher.events == []


async def test_in_a_board_an_editor_or_an_admin_may_cancel_but_a_viewer_may_not(fakes: Fakes) -> None:
    owner, editor, viewer = fakes.user(balance=BALANCE), fakes.user(), fakes.user()
    admin = fakes.user(role=Role.ADMIN)
    board = fakes.board(owner, e=(editor, BoardRole.EDITOR), v=(viewer, BoardRole.VIEWER))
    model = fakes.model(cost=COST)
    by_editor = fakes.generation(owner, model, S.QUEUED, board_id=board.id)
    by_admin = fakes.generation(owner, model, S.QUEUED)
    with pytest.raises(Forbidden):
        await cancel(fakes, viewer, by_editor.id)
    assert fakes.db.generations[by_editor.id].status is S.QUEUED
    await cancel(fakes, editor, by_editor.id)
    await cancel(fakes, admin, by_admin.id)
    assert {fakes.db.generations[g.id].status for g in (by_editor, by_admin)} == {S.CANCELED}
    assert fakes.db.accounts[owner.id] == CreditBalance(BALANCE, 0)


@pytest.mark.parametrize("final", [S.SUCCEEDED, S.FAILED, S.CANCELED, S.EXPIRED])
async def test_a_generation_that_ended_cannot_be_canceled(fakes: Fakes, final: S) -> None:
    user = fakes.user(balance=BALANCE)
    g = fakes.generation(user, fakes.model(cost=COST), final)
    with pytest.raises(InvalidState):
        await cancel(fakes, user, g.id)
    assert fakes.db.generations[g.id].status is final and fakes.publisher.events == []


async def test_credits_are_released_once_however_often_cancel_is_called(fakes: Fakes) -> None:
    user = fakes.user(balance=BALANCE)
    g = fakes.generation(user, fakes.model(cost=COST), S.SUBMITTING)
    await cancel(fakes, user, g.id)
    with pytest.raises(InvalidState):
        await cancel(fakes, user, g.id)
    assert ledger_kinds(fakes, g.id) == [(LedgerKind.RELEASE, -COST), (LedgerKind.RESERVE, COST)]
    assert fakes.db.accounts[user.id] == CreditBalance(BALANCE, 0)
    assert sum(isinstance(e, CreditsChanged) for e in fakes.publisher.events) == 1


async def test_a_failure_while_releasing_rolls_the_cancel_back(fakes: Fakes) -> None:
    # given a generation whose release cannot be committed (the database goes away)
    user = fakes.user(balance=BALANCE)
    g = fakes.generation(user, fakes.model(cost=COST), S.QUEUED)
    fakes.db.fail_next_commit = ConnectionError("gone")
    # when it is canceled, then the error surfaces and neither status nor credits changed
    with pytest.raises(ConnectionError):
        await cancel(fakes, user, g.id)
    assert fakes.db.generations[g.id].status is S.QUEUED
    assert fakes.db.accounts[user.id] == CreditBalance(BALANCE, COST) and fakes.publisher.events == []


class StarterAnswering:
    """A starter that answers `outcome` and writes nothing (what a concurrent first call can make the store say)."""

    def __init__(self, outcome: StartOutcome) -> None:
        self.outcome = outcome

    async def start(self, generation: Generation, reservation: LedgerEntry | None) -> StartOutcome:
        return self.outcome


async def test_a_key_whose_first_call_is_still_being_written_asks_for_a_retry(fakes: Fakes) -> None:
    user = fakes.user(balance=BALANCE)
    model = fakes.model(cost=COST)
    in_flight = StarterAnswering(StartOutcome(StartStatus.REPLAYED, None))
    with pytest.raises(InvalidState, match="retry"):
        await generate(fakes, user, GenerateRequest(model.id, PROMPT, idempotency_key=KEY), starter=in_flight)
    assert fakes.jobs.kicked == [] and fakes.publisher.events == []


async def test_insufficient_without_an_account_reports_nothing_available(fakes: Fakes) -> None:
    user = fakes.user()
    model = fakes.model(cost=COST)
    with pytest.raises(InsufficientCredits) as refused:
        await generate(fakes, user, GenerateRequest(model.id, PROMPT))
    assert (refused.value.required, refused.value.available) == (COST, 0)
