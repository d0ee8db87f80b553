"""API keys' text, hashing and rules (domain/api_keys.py), and the revocation announcements that carry a key."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.api_keys import (
    PREFIX,
    Scope,
    mint,
    parse,
    secret_hash,
    secret_matches,
    validate_new_key,
)
from domain.errors import InvalidInput
from infrastructure.access_revocations import decode, encode

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def minted() -> tuple[str, str, str]:
    new = mint(user_id=uuid.uuid4(), name="k", scopes=frozenset({Scope.READ}), created_at=NOW, expires_at=None)
    return new.token, new.key.lookup_id, new.secret_hash


def test_a_minted_key_parses_back_to_its_lookup_id_and_secret() -> None:
    token, lookup, stored = minted()
    parsed = parse(token)
    assert parsed is not None and parsed[0] == lookup
    assert token.startswith(f"{PREFIX}{lookup}_")
    assert secret_matches(parsed[1], stored) and secret_hash(parsed[1]) == stored
    assert parsed[1] not in stored


def test_keys_do_not_repeat() -> None:
    tokens = {minted()[0] for _ in range(200)}
    assert len(tokens) == 200


@given(st.text(max_size=120))
def test_parse_takes_any_text_and_accepts_only_the_exact_shape(text: str) -> None:
    parsed = parse(text)
    if parsed is not None:
        assert text == f"{PREFIX}{parsed[0]}_{parsed[1]}"
        assert len(parsed[0]) == 16 and len(parsed[1]) == 43


@given(st.text(min_size=1, max_size=60))
def test_a_changed_key_no_longer_matches(noise: str) -> None:
    token, _, stored = minted()
    parsed = parse(token)
    assert parsed is not None
    assert not secret_matches(parsed[1] + noise, stored)


def test_whitespace_and_case_variants_are_not_keys() -> None:
    token, _, _ = minted()
    for variant in (token + " ", " " + token, token.upper(), token.replace("ghk_", "GHK_"), token + "\n"):
        assert parse(variant) is None


@pytest.mark.parametrize(
    ("name", "scopes", "expires", "admin", "field"),
    [
        ("", ["read"], None, False, "name"),
        ("x" * 101, ["read"], None, False, "name"),
        ("ok", [], None, False, "scopes"),
        ("ok", ["read", "nope"], None, False, "scopes"),
        ("ok", ["admin:write"], None, False, "scopes"),
        ("ok", ["read"], NOW, False, "expiresAt"),
        ("ok", ["read"], NOW - timedelta(days=1), False, "expiresAt"),
    ],
)
def test_new_key_rules(name: str, scopes: list[str], expires: datetime | None, admin: bool, field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        validate_new_key(name=name, scopes=scopes, expires_at=expires, owner_is_admin=admin, now=NOW)
    assert field in [p.field for p in refused.value.fields]


NAIVE = st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30))  # noqa: DTZ001
LATER = st.datetimes(min_value=datetime(2027, 1, 1), max_value=datetime(9999, 1, 1), timezones=st.timezones())  # noqa: DTZ001


@given(NAIVE)
def test_a_naive_expiry_is_refused_whatever_its_value(moment: datetime) -> None:
    # a moment without a time zone, in the past or the future: InvalidInput, never a comparison error
    with pytest.raises(InvalidInput) as refused:
        validate_new_key(name="ok", scopes=["read"], expires_at=moment, owner_is_admin=False, now=NOW)
    assert [(p.field, p.message) for p in refused.value.fields] == [
        ("expiresAt", "must include a time zone (such as Z or +02:00)")
    ]


@given(LATER)
def test_an_aware_future_expiry_is_accepted(moment: datetime) -> None:
    validate_new_key(name="ok", scopes=["read"], expires_at=moment, owner_is_admin=False, now=NOW)


def test_an_admin_may_hold_admin_scopes() -> None:
    name, scopes = validate_new_key(
        name=" ops ", scopes=["admin:read", "read", "read"], expires_at=None, owner_is_admin=True, now=NOW
    )
    assert name == "ops" and scopes == {Scope.ADMIN_READ, Scope.READ}


def test_announcements_carry_a_key_and_older_ones_still_decode() -> None:
    user, key = uuid.uuid4(), uuid.uuid4()
    assert decode(encode(user)) == (user, None)
    assert decode(encode(user, key)) == (user, key)
    assert decode(json.dumps({"user": str(user)})) == (user, None)  # an older process's message
    for bad in (
        '{"user": "x"}',
        json.dumps({"user": str(user), "key": 5}),
        json.dumps({"user": str(user), "key": "k"}),
    ):
        with pytest.raises(ValueError):
            decode(bad)
