"""Which prediction in Replicate's list is the one an uncertain create made (infrastructure/providers/replicate_lookup.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.provider_callbacks import callback_query
from infrastructure.providers.replicate_lookup import matches, next_cursor, older_than
from infrastructure.providers.replicate_wire import parse_model

SINCE = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
GENERATION = uuid.uuid4()
QUERY = callback_query("key", "replicate", GENERATION)
SENT = {"prompt": "a red fox", "seed": 7, "image": "https://bucket/in.png?X-Amz-Signature=first"}


def listed(**changes: Any) -> dict[str, Any]:
    prediction: dict[str, Any] = {
        "id": "abc123",
        "model": "owner/model",
        "version": "v" * 64,
        "input": {"prompt": "a red fox", "seed": 7, "image": "https://bucket/in.png?X-Amz-Signature=second"},
        "created_at": (SINCE + timedelta(seconds=5)).isoformat().replace("+00:00", "Z"),
        "status": "processing",
    }
    prediction.update(changes)
    return prediction


def found(prediction: dict[str, Any], model: str = "owner/model") -> bool:
    return matches(prediction, model=parse_model(model), sent_input=SENT, callback_query=QUERY, since=SINCE)


def test_the_same_model_and_input_since_the_generation_began_matches_whatever_the_presigned_file_urls() -> None:
    assert found(listed())


@pytest.mark.parametrize(
    "changes",
    [
        {"model": "owner/other"},
        {"input": {"prompt": "a blue fox", "seed": 7}},
        {"input": {"prompt": "a red fox", "seed": 8}},
        {"created_at": (SINCE - timedelta(seconds=1)).isoformat()},
        {"created_at": "yesterday"},
        {"created_at": "2026-12-05T12:00:05"},  # no zone
        {"id": "not/an id"},
        {"input": "a red fox"},
        {"webhook": "https://genhub.example/providers/replicate/callback?generation=" + str(uuid.uuid4())},
    ],
    ids=[
        "model",
        "prompt",
        "param",
        "before",
        "unreadable date",
        "naive date",
        "bad id",
        "input kind",
        "other webhook",
    ],
)
def test_anything_else_does_not(changes: dict[str, Any]) -> None:
    assert not found(listed(**changes))


def test_another_users_file_with_the_same_prompt_is_not_ours() -> None:
    # given a prediction made from another user's image, with the same preset prompt and seed
    theirs = listed(input={"prompt": "a red fox", "seed": 7, "image": "https://bucket/user-b/in.png?X-Amz-Signature=b"})
    # then it is not the generation's, whatever the presigned query
    assert not found(theirs)
    assert not found(listed(input={**SENT, "image": "https://elsewhere/in.png?X-Amz-Signature=first"}))
    assert not found(listed(input={**SENT, "image": "http://bucket/in.png?X-Amz-Signature=first"}))


def test_a_list_of_files_is_compared_file_by_file_without_queries() -> None:
    sent = {"prompt": "p", "image_input": ["https://b/1.png?sig=a", "https://b/2.png?sig=a"]}

    def same(listed_files: list[str]) -> bool:
        item = listed(input={"prompt": "p", "image_input": listed_files})
        return matches(item, model=parse_model("owner/model"), sent_input=sent, callback_query=QUERY, since=SINCE)

    assert same(["https://b/1.png?sig=z", "https://B/2.png"])
    assert not same(["https://b/1.png?sig=z", "https://b/3.png?sig=a"])
    assert not same(["https://b/2.png", "https://b/1.png"])
    assert not same(["https://b/1.png"])


def test_a_listed_webhook_must_name_the_generation() -> None:
    ours = "https://genhub.example/providers/replicate/callback?generation=" + str(GENERATION) + "&sig=x"
    assert found(listed(webhook=ours))


def test_a_version_reference_matches_by_version() -> None:
    assert found(listed(), model="v" * 64)
    assert not found(listed(version="w" * 64), model="v" * 64)


def test_the_walk_stops_at_the_last_page_or_one_older_than_the_generation() -> None:
    page = {"next": "https://api.replicate.com/v1/predictions?cursor=c2", "results": [listed()]}
    assert next_cursor(page) == "c2" and not older_than(page, SINCE)
    old = {
        "next": "https://api.replicate.com/v1/predictions?cursor=c3",
        "results": [listed(created_at="2026-01-01T00:00:00Z")],
    }
    assert older_than(old, SINCE)
    assert next_cursor({"next": None, "results": []}) is None and older_than({"results": []}, SINCE)


@given(st.dictionaries(st.text(max_size=20), st.one_of(st.none(), st.text(max_size=40), st.integers()), max_size=8))
def test_a_hostile_list_item_never_raises(item: dict[str, Any]) -> None:
    assert found(item) in (True, False)
    older_than({"results": [item]}, SINCE)
    next_cursor(item)
