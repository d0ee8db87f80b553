"""The cursor codec: what encode gives, decode gives back; any other string is InvalidInput.

And its key: the same on every replica of a deployment, different after any secret change.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import string
import struct
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.cursors import CURSOR_LENGTH, EARLIEST, LATEST, Cursor, CursorCodec
from domain.errors import InvalidInput
from domain.pagination import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, PageRequest
from infrastructure.container import cursor_codec
from infrastructure.settings import Settings
from tests.fixtures.app import app_settings

KEY = bytes(range(32))
CODEC = CursorCodec(KEY)
ALPHABET = string.ascii_letters + string.digits + "-_"
BASE64URL = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"  # in base64 order
MANY = settings(max_examples=500, deadline=None)

offsets = st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda m: timezone(timedelta(minutes=m)))
# hypothesis takes naive bounds, the local time of each drawn offset
moments = st.datetimes(
    min_value=datetime(1970, 1, 2, tzinfo=UTC).replace(tzinfo=None),
    max_value=datetime(9998, 12, 30, tzinfo=UTC).replace(tzinfo=None),
    timezones=st.just(UTC) | offsets,
).filter(lambda d: EARLIEST <= d < LATEST)
cursors = st.builds(Cursor, moments, st.uuids())


def refused(value: object, codec: CursorCodec = CODEC) -> bool:
    """True when decode refuses `value` with InvalidInput naming `after`; any other exception fails the test."""
    try:
        codec.decode(value)
    except InvalidInput as exc:
        assert [(p.field, p.message) for p in exc.fields] == [("after", "is not a valid cursor")]
        return True
    return False


def signed(body: bytes, key: bytes = KEY) -> str:
    """A cursor string for any 25-byte body, tagged as the wire format says (what only a key holder can make)."""
    tag = hmac.new(key, body, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(body + tag).decode().rstrip("=")


def body(micros: int, ident: uuid.UUID, version: int = 1) -> bytes:
    return struct.pack(">Bq16s", version, micros, ident.bytes)


# ---------------------------------------------------------------- what genhub issues


@MANY
@given(cursor=cursors)
def test_decode_gives_back_what_encode_made(cursor: Cursor) -> None:
    # given any cursor in range, in any UTC offset
    token = CODEC.encode(cursor)
    # when it is encoded and decoded
    decoded = CODEC.decode(token)
    # then the same instant and id come back, in UTC, from a fixed-length url-safe string
    assert decoded == cursor
    assert decoded.created_at.utcoffset() == timedelta(0)
    assert len(token) == CURSOR_LENGTH and set(token) <= set(ALPHABET)
    assert CODEC.encode(decoded) == token


@MANY
@given(cursor=cursors)
def test_the_same_instant_in_another_offset_gives_the_same_cursor(cursor: Cursor) -> None:
    local = cursor.created_at.astimezone(timezone(timedelta(hours=-7)))
    assert CODEC.encode(Cursor(local, cursor.id)) == CODEC.encode(cursor)


@pytest.mark.parametrize(
    "moment",
    [
        datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        LATEST,
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=23, minutes=59))),
    ],
)
def test_encode_refuses_what_no_store_can_hold(moment: datetime) -> None:
    with pytest.raises(ValueError, match="outside"):
        CODEC.encode(Cursor(moment, uuid.uuid4()))


def test_encode_refuses_a_naive_timestamp() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        CODEC.encode(Cursor(datetime(2026, 1, 1), uuid.uuid4()))  # noqa: DTZ001  (the point of the test)


def test_the_range_edges_are_held() -> None:
    for moment in (EARLIEST, LATEST - timedelta(microseconds=1)):
        cursor = Cursor(moment, uuid.uuid4())
        assert CODEC.decode(CODEC.encode(cursor)) == cursor


# ---------------------------------------------------------------- what genhub does not issue


ODD_CHARACTERS = st.characters(categories=["Cs", "Cc", "Zs", "Lo", "Nd"])  # lone surrogates and NUL among them


@MANY
@given(
    value=st.text(max_size=200)
    | st.text(ODD_CHARACTERS, max_size=80)
    | st.text(ALPHABET, min_size=CURSOR_LENGTH, max_size=CURSOR_LENGTH)
    | st.text(st.sampled_from(ALPHABET) | ODD_CHARACTERS, min_size=CURSOR_LENGTH, max_size=CURSOR_LENGTH)
)
def test_random_text_is_refused(value: str) -> None:
    assert refused(value)


@MANY
@given(raw=st.binary(max_size=120), padded=st.booleans(), alphabet=st.sampled_from(["url", "standard"]))
def test_random_bytes_in_base64_are_refused(raw: bytes, padded: bool, alphabet: str) -> None:
    encoded = (base64.urlsafe_b64encode if alphabet == "url" else base64.b64encode)(raw).decode()
    assert refused(encoded if padded else encoded.rstrip("="))


@MANY
@given(
    year=st.sampled_from([1, 1969, 2026, 9999]) | st.integers(1, 9999),
    offset_minutes=st.sampled_from([-(23 * 60 + 59), 23 * 60 + 59, 0, 330]),
    fraction=st.sampled_from(["", ".5", ".123456", ".1234567", ",5"]),
    ident=st.uuids().map(str) | st.text(max_size=40),
    suffix=st.sampled_from(["", "Z", "+00:00"]),
)
def test_the_old_plain_cursors_and_their_tampered_forms_are_refused(
    year: int, offset_minutes: int, fraction: str, ident: str, suffix: str
) -> None:
    # given what genhub used to issue, base64("<ISO timestamp>|<uuid>"), with a tampered timestamp
    sign = "+" if offset_minutes >= 0 else "-"
    offset = f"{sign}{abs(offset_minutes) // 60:02d}:{abs(offset_minutes) % 60:02d}"
    stamp = f"{year:04d}-01-01T00:00:00{fraction}{suffix or offset}"
    for raw in (f"{stamp}|{ident}", f"10000-01-01T00:00:00+00:00|{ident}"):
        token = base64.urlsafe_b64encode(raw.encode("utf-8", "surrogatepass")).decode()
        # then it is refused, padded or not
        assert refused(token) and refused(token.rstrip("="))


@MANY
@given(cursor=cursors, data=st.data())
def test_a_real_cursor_changed_anywhere_is_refused(cursor: Cursor, data: st.DataObject) -> None:
    token = CODEC.encode(cursor)
    i = data.draw(st.integers(0, len(token) - 1))
    other = data.draw(st.sampled_from(ALPHABET).filter(lambda ch: ch != token[i]) | st.characters())
    edit = data.draw(st.sampled_from(["replace", "insert", "delete", "truncate", "append"]))
    mutated = {
        "replace": token[:i] + other + token[i + 1 :],
        "insert": token[:i] + other + token[i:],
        "delete": token[:i] + token[i + 1 :],
        "truncate": token[:i],
        "append": token + other,
    }[edit]
    if mutated != token:
        assert refused(mutated)


def test_every_one_character_change_of_a_real_cursor_is_refused() -> None:
    token = CODEC.encode(Cursor(datetime(2026, 12, 5, 1, 2, 3, 456789, tzinfo=UTC), uuid.uuid4()))
    for i, original in enumerate(token):
        for ch in ALPHABET:
            if ch != original:
                assert refused(token[:i] + ch + token[i + 1 :]), (i, ch)


def test_base64_with_nonzero_unused_bits_is_refused() -> None:
    # given a real cursor: 41 bytes in 55 characters leave 2 unused bits in the last one
    token = CODEC.encode(Cursor(datetime(2026, 1, 1, tzinfo=UTC), uuid.uuid4()))
    value = BASE64URL.index(token[-1])
    assert value & 0b11 == 0
    for unused in (1, 2, 3):
        twin = token[:-1] + BASE64URL[value | unused]
        # then a twin that decodes to the very same bytes is still not what genhub issued
        assert base64.urlsafe_b64decode(twin + "=") == base64.urlsafe_b64decode(token + "=")
        assert refused(twin)


@given(cursor=cursors, other_key=st.binary(min_size=16, max_size=64).filter(lambda k: k != KEY))
def test_a_cursor_signed_with_another_key_is_refused(cursor: Cursor, other_key: bytes) -> None:
    assert refused(CursorCodec(other_key).encode(cursor))


def test_a_changed_secret_refuses_the_old_cursors() -> None:
    # given cursors issued by one deployment
    before = CursorCodec.from_secret("the first secret, long enough to be real")
    token = before.encode(Cursor(datetime(2026, 6, 1, tzinfo=UTC), uuid.uuid4()))
    # then the same secret accepts them, another (or a rotated one) refuses them
    assert CursorCodec.from_secret("the first secret, long enough to be real").decode(token)
    assert refused(token, CursorCodec.from_secret("the second secret, long enough to be real"))


@pytest.mark.parametrize(
    "micros",
    [
        -1,  # 1969-12-31T23:59:59.999999Z
        -(2**63),
        2**63 - 1,
        (LATEST - EARLIEST) // timedelta(microseconds=1),  # 9999-01-01T00:00:00Z
        (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC) - EARLIEST) // timedelta(microseconds=1),
        (datetime(1, 1, 1, tzinfo=UTC) - EARLIEST) // timedelta(microseconds=1),
    ],
)
def test_even_a_correctly_signed_timestamp_out_of_range_is_refused(micros: int) -> None:
    # given a key holder's cursor (the tag is right) whose timestamp no store can hold
    assert refused(signed(body(micros, uuid.uuid4())))


@pytest.mark.parametrize("version", [0, 2, 255])
def test_an_unknown_version_is_refused_even_when_signed(version: int) -> None:
    assert refused(signed(body(1_700_000_000_000_000, uuid.uuid4(), version)))


def test_the_wire_format_is_the_documented_one() -> None:
    ident = uuid.uuid4()
    moment = datetime(2026, 12, 5, 1, 2, 3, 456789, tzinfo=UTC)
    token = signed(body((moment - EARLIEST) // timedelta(microseconds=1), ident))
    assert CODEC.decode(token) == Cursor(moment, ident)
    assert CODEC.encode(Cursor(moment, ident)) == token


@pytest.mark.parametrize(
    "value", [None, 0, b"AAAA", "", " ", "\x00" * CURSOR_LENGTH, "\ud800" * CURSOR_LENGTH, "A" * 10_000_000]
)
def test_odd_values_are_refused_without_another_exception(value: object) -> None:
    assert refused(value)


def test_a_short_secret_or_key_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="secret"):
        CursorCodec.from_secret("")
    with pytest.raises(ValueError, match="16 bytes"):
        CursorCodec(b"short")


# ---------------------------------------------------------------- page requests


@pytest.mark.parametrize(("first", "size"), [(None, DEFAULT_PAGE_SIZE), (0, 0), (1, 1), (MAX_PAGE_SIZE, MAX_PAGE_SIZE)])
def test_first_within_bounds_is_the_page_size(first: int | None, size: int) -> None:
    assert PageRequest.parse(first, None, cursors=CODEC) == PageRequest(size)


@given(first=st.integers(max_value=-1) | st.integers(min_value=MAX_PAGE_SIZE + 1))
def test_first_out_of_bounds_is_invalid_input_naming_first(first: int) -> None:
    with pytest.raises(InvalidInput) as caught:
        PageRequest.parse(first, None, cursors=CODEC)
    assert [p.field for p in caught.value.fields] == ["first"]


def test_an_empty_after_is_not_a_cursor() -> None:
    with pytest.raises(InvalidInput) as caught:
        PageRequest.parse(5, "", cursors=CODEC)
    assert [p.field for p in caught.value.fields] == ["after"]


@given(cursor=cursors)
def test_a_page_request_carries_the_decoded_cursor(cursor: Cursor) -> None:
    assert PageRequest.parse(3, CODEC.encode(cursor), cursors=CODEC) == PageRequest(3, cursor)


# ---------------------------------------------------------------- the key, from the server's settings

JWT_SECRET = "a configured JWT secret of the deployment, 40+ chars"


def cursor_of(settings: Settings) -> str:
    return cursor_codec(settings).encode(Cursor(datetime(2026, 6, 1, tzinfo=UTC), uuid.UUID(int=7)))


def test_replicas_with_the_same_configured_secret_issue_the_same_cursors(tmp_path: Path) -> None:
    # given two replicas (their own data directories) of one deployment, HS256 or RS256
    for configured in ({"jwt_secret": JWT_SECRET}, {"jwt_algorithm": "RS256", "jwt_private_key": "-----PEM-----"}):
        one, two = (app_settings(tmp_path / name, **configured) for name in ("a", "b"))
        # then a cursor of one is a cursor of the other
        assert cursor_of(one) == cursor_of(two)
        assert cursor_codec(two).decode(cursor_of(one))


def test_any_configured_secret_change_refuses_the_old_cursors(tmp_path: Path) -> None:
    before = app_settings(tmp_path, jwt_secret=JWT_SECRET, url_signing_secret="urls " * 8)
    for change in ({"jwt_secret": JWT_SECRET + "!"}, {"url_signing_secret": "other urls " * 4}):
        after = before.model_copy(update=change)
        assert refused(cursor_of(before), cursor_codec(after))


def test_without_a_configured_secret_the_drawn_one_signs(tmp_path: Path) -> None:
    # given no secret in the settings: the one drawn in the data directory is used
    here = app_settings(tmp_path / "one")
    assert cursor_of(here) == cursor_of(app_settings(tmp_path / "one"))
    # then another data directory (another secret) does not accept its cursors
    assert refused(cursor_of(here), cursor_codec(app_settings(tmp_path / "two")))
