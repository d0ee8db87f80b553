"""GraphQL over SSE, the pure parts: which Accept headers ask for a stream, how a result is framed, the per-user cap."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from graph.compiled_reads import RawJSON
from graph.http_protocol import wants_event_stream
from graph.sse import COMPLETE, KEEPALIVE, StreamCounts, event

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text() | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


def parse_events(stream: bytes) -> list[dict[str, Any]]:
    """An SSE parser as the spec reads a stream: blank lines end a message, `data:` lines join with a newline."""
    messages = []
    for block in stream.decode().replace("\r\n", "\n").split("\n\n"):
        fields: dict[str, list[str]] = {}
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            fields.setdefault(name, []).append(value.removeprefix(" "))
        if fields:
            messages.append({"event": fields["event"][0], "data": "\n".join(fields.get("data", []))})
    return messages


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("text/event-stream", True),
        ("TEXT/EVENT-STREAM", True),
        ("text/event-stream; charset=utf-8", True),
        ("application/json, text/event-stream", False),  # same q: the first listed wins
        ("text/event-stream, application/json", True),
        ("application/json;q=0.5, text/event-stream", True),
        ("text/event-stream;q=0, application/json", False),
        ("text/event-stream;q=0.2, application/graphql-response+json", False),
        ("application/json", False),
        ("*/*", False),
        ("", False),
        (None, False),
        ("text/event-stream;q=nan", False),
    ],
)
def test_an_event_stream_is_served_only_when_the_client_prefers_it(accept: str | None, expected: bool) -> None:
    assert wants_event_stream(accept) is expected


@given(st.text(max_size=200))
def test_any_accept_header_is_answered_without_an_exception(accept: str) -> None:
    assert wants_event_stream(accept) in (True, False)


@given(JSON_VALUES)
def test_a_next_event_carries_its_result_intact(data: Any) -> None:
    # given any result (strings with line breaks, carriage returns, unicode)
    payload = {"data": {"value": data}}

    # when it is framed as an SSE message
    frame = event(b"next", payload)

    # then it is one message, every line of it a field, and its data decodes to the result
    assert frame.endswith(b"\n\n") and b"\n\n" not in frame[:-2]
    assert all(line.startswith((b"event: ", b"data: ")) for line in frame[:-2].split(b"\n"))
    [message] = parse_events(frame)
    assert message["event"] == "next"
    assert json.loads(message["data"]) == json.loads(json.dumps(payload))


def test_a_result_whose_json_spans_lines_becomes_several_data_lines() -> None:
    # given a compiled read's JSON text with line breaks between its tokens
    frame = event(b"next", {"data": RawJSON('{"a":\n 1,\r\n "b": "x\\ny"}')})

    # then each line is a data line of one message, and the message's data is the JSON again
    assert frame.count(b"data: ") == 3
    [message] = parse_events(frame + COMPLETE + KEEPALIVE)[:1]
    assert json.loads(message["data"]) == {"data": {"a": 1, "b": "x\ny"}}
    assert parse_events(COMPLETE) == [{"event": "complete", "data": ""}]
    assert event(b"next", {"data": {"a": 1}}) == b'event: next\ndata: {"data":{"a":1}}\n\n'


def test_the_per_user_cap_counts_open_streams_and_frees_them() -> None:
    # given a cap of two streams per user
    counts = StreamCounts(2)
    alice, bob = uuid.uuid4(), uuid.uuid4()

    # when alice opens two streams, a third is refused; bob is not affected
    assert counts.acquire(alice) and counts.acquire(alice)
    assert not counts.acquire(alice)
    assert counts.acquire(bob)

    # then closing one of alice's lets her open another, and nothing is left once all closed
    counts.release(alice)
    assert counts.acquire(alice)
    for user in (alice, alice, bob):
        counts.release(user)
    assert counts.total() == 0
