"""Data export rules of the domain: archive member names from hostile text, URL lifetimes, downloadability."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.data_exports import DataExport, ExportStatus, is_safe_member, output_member, upload_member
from domain.errors import InvalidInput
from domain.use_cases.data_exports import MAX_API_URL_SECONDS, MAX_URL_SECONDS, url_seconds

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def ready(expires_in: timedelta) -> DataExport:
    return DataExport(
        uuid.uuid4(),
        uuid.uuid4(),
        ExportStatus.READY,
        NOW,
        NOW,
        expires_at=NOW + expires_in,
        object_key="exports/u/e.zip",
        size=1,
        sha256="0" * 64,
    )


@given(filename=st.text(), chunk_id=st.uuids())
def test_an_upload_member_is_safe_whatever_the_filename(filename: str, chunk_id: uuid.UUID) -> None:
    member = upload_member(chunk_id, filename)
    assert is_safe_member(member) and member.startswith(f"uploads/{chunk_id}-") and member.count("/") == 1


@given(key=st.text(), position=st.integers(min_value=0, max_value=10_000), generation=st.uuids())
def test_an_output_member_is_safe_whatever_the_key(key: str, position: int, generation: uuid.UUID) -> None:
    member = output_member(generation, position, key)
    assert is_safe_member(member) and member.startswith(f"outputs/{generation}/{position}")


@pytest.mark.parametrize(
    ("key", "member_tail"),
    [("outputs/u/g/0.PNG", "0.png"), ("outputs/u/g/0", "0"), ("outputs/u/g/0.tar.gz", "0.gz"), ("x/../0.p/ng", "0")],
)
def test_an_output_keeps_only_a_plain_extension(key: str, member_tail: str) -> None:
    generation = uuid.uuid4()
    assert output_member(generation, 0, key) == f"outputs/{generation}/{member_tail}"


@pytest.mark.parametrize("name", ["", "/a", "a/", "a//b", "../a", "a/..", "./a", "a\\b", "c:a", "a\tb", "é", "a\x00"])
def test_unsafe_member_names_are_refused(name: str) -> None:
    assert not is_safe_member(name)


def test_a_url_lives_as_asked_but_never_past_the_archive() -> None:
    assert url_seconds(ready(timedelta(days=1)), requested=600, now_seconds_left=86400) == 600
    assert url_seconds(ready(timedelta(seconds=30)), requested=600, now_seconds_left=30.5) == 30
    for bad in (0, -1, MAX_URL_SECONDS + 1):
        with pytest.raises(InvalidInput):
            url_seconds(ready(timedelta(days=1)), requested=bad, now_seconds_left=86400)


@given(requested=st.integers(1, MAX_URL_SECONDS), left=st.floats(1, 30 * 86400))
def test_an_api_url_lives_at_most_the_short_cap_and_the_mailed_one_may_live_longer(requested: int, left: float) -> None:
    export = ready(timedelta(seconds=left))
    api = url_seconds(export, requested=requested, now_seconds_left=left)
    mailed = url_seconds(export, requested=requested, now_seconds_left=left, cap=MAX_URL_SECONDS)
    # the API's URL never lives past the cap, the request or the archive
    assert 1 <= api <= min(requested, MAX_API_URL_SECONDS) and api <= max(1.0, left)
    # and within them it lives as asked; the e-mailed link is not capped short
    if left >= requested + 1:
        assert mailed == requested
        assert api == min(requested, MAX_API_URL_SECONDS)
    assert mailed >= api


def test_only_a_ready_unexpired_export_is_downloadable() -> None:
    assert ready(timedelta(seconds=1)).downloadable(NOW)
    assert not ready(timedelta(0)).downloadable(NOW)
    building = DataExport(uuid.uuid4(), uuid.uuid4(), ExportStatus.BUILDING, NOW, NOW)
    assert not building.downloadable(NOW)
