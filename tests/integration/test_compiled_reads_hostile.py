"""Compiled reads under hostile requests, on PostgreSQL: directive variables of every value, wide
aliasing, streams of variants, a statement the database refuses, and the connections a compiled
request holds. Each answer must be the resolvers' answer, never an internal error.
"""

from __future__ import annotations

import dataclasses
import json
import random
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graph.compiled_memo import MEMO_CHARS, MEMO_SIZE
from graph.extensions import INTERNAL
from infrastructure.db.json_reads import sql_text
from infrastructure.db.json_reads.sql_text import MAX_KEYS_PER_OBJECT
from tests.integration.board_world import World
from tests.integration.compiled_world import Rows, both_paths, compiled_world
from tests.integration.statement_log import StatementLog, statements_of

pytestmark = pytest.mark.postgres

HOSTILE = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
async def world(postgres_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[World, Rows]]:
    async with compiled_world(postgres_dsn, tmp_path_factory.mktemp("compiled-hostile")) as (w, rows):
        yield w, rows


@pytest.fixture
def wide_documents(world: tuple[World, Rows], monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Limits that let a document alias fields past the keys an object may have (a deployment may raise `max_aliases`)."""
    plans = world[0].client.app.state.schema.plans
    monkeypatch.setattr(plans, "_limits", dataclasses.replace(plans._limits, max_aliases=500, max_tokens=5000))
    yield


def internal_errors(body: dict[str, Any]) -> list[Any]:
    return [e for e in body.get("errors") or () if e.get("extensions", {}).get("code") == INTERNAL]


# ---------------------------------------------------------------- directive variables

#: Declarations of a directive variable; a nullable one without a default is refused by validation.
DECLARATIONS = ["Boolean!", "Boolean = true", "Boolean = false", "Boolean! = true", "Boolean! = false", "Boolean"]
VALUE = st.sampled_from([True, False, None])


@st.composite
def directive_document(draw: st.DrawFn) -> str:
    names = ["x", "y"][: draw(st.integers(1, 2))]

    def directive(name: str | None = None) -> str:
        kind = draw(st.sampled_from(["include", "skip"]))
        return f" @{kind}(if: ${name or draw(st.sampled_from(names))})"

    header = ", ".join(f"${n}: {draw(st.sampled_from(DECLARATIONS))}" for n in names)
    node = f"id prompt{directive(names[0])} ... on Generation{directive()} {{ status }} ...G{directive(names[-1])}"
    fragment = f"fragment G on Generation {{ createdAt progress{directive()} model{directive()} {{ slug }} }}"
    return f"query Flags({header}) {{ generations(first: 3) {{ edges {{ node {{ {node} }} }} }} }} {fragment}"


@HOSTILE
@given(
    document=directive_document(),
    requests=st.lists(st.fixed_dictionaries({}, optional={"x": VALUE, "y": VALUE}), min_size=1, max_size=4),
)
async def test_directive_variables_of_any_value_answer_as_the_resolvers_do(
    world: tuple[World, Rows], document: str, requests: list[dict[str, Any]]
) -> None:
    w, _ = world
    # given a document whose directives (on fields, inline fragments, spreads and inside a fragment)
    # read variables, and requests giving them true, false, null or nothing, in turn
    for variables in requests:
        # when each is answered with compiled reads and by the resolvers
        compiled, resolved = await both_paths(w, "owner", document, variables)
        # then the answers are the same, and never an internal error
        assert compiled == resolved, (document, variables)
        assert internal_errors(compiled) == [], compiled


FLAGS = "query Flags($x: Boolean = true) { generations(first: 2) { edges { node { id prompt @include(if: $x) } } } }"


async def test_a_null_directive_variable_is_the_resolvers_error_after_false_too(
    world: tuple[World, Rows], caplog: pytest.LogCaptureFixture
) -> None:
    w, rows = world
    ran: list[int] = []
    answers: list[Any] = []
    with caplog.at_level("INFO", logger="genhub.compiled"):
        # given the same document read with false, then null twice, then true, then without the variable
        for variables in ({"x": False}, {"x": None}, {"x": None}, {"x": True}, {}):
            before = rows.counting.runs
            # when each is answered on both paths
            compiled, resolved = await both_paths(w, "owner", FLAGS, variables)
            ran.append(rows.counting.runs - before)
            answers.append(compiled)
            assert compiled == resolved, variables
    # then false, true and the default were compiled; null took the resolvers' error each time
    assert ran == [1, 0, 0, 1, 1]
    assert all(answers[i].get("errors") for i in (1, 2)) and not internal_errors(answers[1])
    # and that was logged once, not per request
    logged = [r for r in caplog.records if r.getMessage().startswith("not compiled") and "Flags" in r.getMessage()]
    assert len(logged) == 1, [r.getMessage() for r in logged]


# ---------------------------------------------------------------- the memo's bound

VARIANT_ROOTS = 6
STREAM = "query Stream({header}) {{ {body} }}".format(
    header=", ".join(f"$a{i}: String, $f{i}: GenerationFilter" for i in range(VARIANT_ROOTS)),
    body=" ".join(
        f"r{i}: generations(first: 2, after: $a{i}, filter: $f{i}) {{ edges {{ cursor node {{ id prompt }} }} "
        "pageInfo { hasNextPage endCursor } }"
        for i in range(VARIANT_ROOTS)
    ),
)


async def test_a_stream_of_argument_variants_keeps_the_memo_within_its_bound(world: tuple[World, Rows]) -> None:
    # given a document of aliased roots whose optional arguments a client varies request by request
    w, rows = world
    rng = random.Random(11)
    filters = [
        None,
        {"status": ["FAILED", "QUEUED"]},
        {"modelId": w.model_id},
        {"status": ["SUCCEEDED"], "modelId": w.model_id},
    ]
    plans = w.client.app.state.schema.plans
    sent: set[str] = set()
    for n in range(MEMO_SIZE + 30):
        variables: dict[str, Any] = {}
        for i in range(VARIANT_ROOTS):
            variables[f"a{i}"] = rng.choice([None, rows.cursors[3]])
            variables[f"f{i}"] = rng.choice(filters)
        sent.add(json.dumps(variables, sort_keys=True))
        # when each is read (and now and then compared with the resolvers' answer)
        before = rows.counting.runs
        if n % 10 == 0:
            compiled, resolved = await both_paths(w, "owner", STREAM, variables)
            assert compiled == resolved
        else:
            await w.data("owner", STREAM, variables)
        assert rows.counting.runs == before + 1  # every variant compiles
        # then the plan's memo stays within its bounds
        memo = plans.get(STREAM).fetch.memo
        assert len(memo) <= MEMO_SIZE and memo.chars <= MEMO_CHARS, (len(memo), memo.chars)
    assert len(sent) > MEMO_SIZE  # the stream did send more variants than the memo keeps


# ---------------------------------------------------------------- wide objects


def wide_document(level: str, width: int) -> str:
    keys = range(width)
    if level == "connection":
        body = "generations(first: 3) { " + " ".join(f"e{i}: edges {{ cursor }}" for i in keys) + " }"
    elif level == "edge":
        body = "generations(first: 3) { edges { " + " ".join(f"c{i}: cursor" for i in keys) + " } }"
    elif level == "pageInfo":
        names = ["hasNextPage", "endCursor", "__typename"]
        body = "generations(first: 3) { pageInfo { " + " ".join(f"p{i}: {names[i % 3]}" for i in keys) + " } }"
    elif level == "node":
        body = "generations(first: 3) { edges { node { " + " ".join(f"n{i}: prompt" for i in keys) + " } } }"
    else:
        body = " ".join(f"b{i}: credits {{ balance }}" for i in keys)
    return f"query Wide {{ {body} }}"


@HOSTILE
@given(level=st.sampled_from(["connection", "edge", "pageInfo", "node", "root"]), width=st.integers(1, 90))
async def test_wide_aliasing_answers_alike_without_a_failing_statement(
    world: tuple[World, Rows], wide_documents: None, caplog: pytest.LogCaptureFixture, level: str, width: int
) -> None:
    w, rows = world
    caplog.clear()
    # given a document `width` keys wide in one object (the operation, a connection, an edge, pageInfo, a node)
    document = wide_document(level, width)
    before = rows.counting.runs
    # when it is answered on both paths
    with caplog.at_level("WARNING", logger="genhub.compiled"):
        compiled, resolved = await both_paths(w, "owner", document, {})
    # then the answers are equal, compiled exactly when every object is within the bound, and no statement failed
    assert compiled == resolved
    assert "errors" not in compiled, compiled
    assert rows.counting.runs - before == (1 if width <= MAX_KEYS_PER_OBJECT else 0)
    assert [r.getMessage() for r in caplog.records if r.name == "genhub.compiled"] == []


async def test_a_statement_the_database_refuses_is_not_run_again(
    world: tuple[World, Rows], wide_documents: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # given a compiler whose bound on keys is lifted, so that it writes what PostgreSQL refuses
    w, rows = world
    monkeypatch.setattr(sql_text, "MAX_KEYS_PER_OBJECT", 1000)
    document = (
        "query Refused { generations(first: 2) { pageInfo { "
        + " ".join(f"h{i}: hasNextPage" for i in range(60))
        + " } } }"
    )
    ran: list[int] = []
    with caplog.at_level("WARNING", logger="genhub.compiled"):
        for _ in range(3):
            before = rows.counting.runs
            # when it is read again and again
            compiled, resolved = await both_paths(w, "owner", document, {})
            ran.append(rows.counting.runs - before)
            # then the resolvers answer it, without SQL in the answer
            assert compiled == resolved
            assert "errors" not in compiled and "json_build_object" not in json.dumps(compiled)
    # and the refused statement ran once and was logged once
    assert ran == [1, 0, 0]
    refused = [r for r in caplog.records if "refused" in r.getMessage() and "Refused" in r.getMessage()]
    assert len(refused) == 1


# ---------------------------------------------------------------- connections held


class HeldWhileRunning:
    """The app's JsonReads, noting how many of the engine's connections the request held while its statement ran."""

    def __init__(self, inner: Any, log: StatementLog) -> None:
        self.inner = inner
        self.log = log
        self.held: list[int] = []

    async def fetch(self, sql: str, params: Sequence[Any]) -> str:
        self.held.append(self.log.held)
        text: str = await self.inner.fetch(sql, params)
        return text


PAGE = "query Page($first: Int) { generations(first: $first) { edges { node { id prompt } } } }"


async def test_a_compiled_request_holds_one_pooled_connection_at_a_time(world: tuple[World, Rows]) -> None:
    # given an owner whose account check misses its cache (it reads the account through the request's scope)
    w, _ = world
    app = w.client.app
    services = app.state.services
    services.accounts.gate.forget(uuid.UUID(w.user_ids["owner"]))
    with statements_of(services.adapters.engine) as log:
        probe = HeldWhileRunning(services.json_reads, log)
        app.state.services = dataclasses.replace(services, json_reads=probe)
        try:
            # when the owner reads a compiled page
            body = await w.run("owner", PAGE, {"first": 3})
        finally:
            app.state.services = services
    await log.settled()
    # then the account was read on one pooled connection, given back before the statement ran on the driver pool
    assert "errors" not in body, body
    assert log.checkouts == 1
    assert probe.held == [0]
    assert log.held == 0
