"""The headers of a signed download, against hostile names and keys (hypothesis)."""

from __future__ import annotations

import email.message
import uuid
from urllib.parse import unquote

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.chunks import output_key
from domain.media import download_name, thumbnail_key
from infrastructure.storage.download_headers import NO_STORE, attachment_name, cache_control, content_disposition

#: Anything a str can hold, lone surrogates included (they cannot be encoded as UTF-8).
HOSTILE_TEXT = st.text(st.characters(codec=None), max_size=300)
NASTY = ['a"b', "a\\b", "a\r\nSet-Cookie: x=1", "%22.png", "résumé 1.png", "😀.gif", "\ud800.png", "", ";,= \t"]


def parsed_name(header: str) -> str | None:
    """The name a MIME parser reads from the header's `filename*` (RFC 2231, which RFC 5987 profiles).

    Only that parameter is given to it: the parser takes the first of two names, and
    RFC 6266 puts the ASCII fallback first for old browsers while new ones read `filename*`.
    """
    message = email.message.Message()
    message["Content-Disposition"] = "attachment; " + header[header.index("filename*=") :]
    return message.get_filename()


def assert_safe_header(header: str) -> None:
    # One line of printable ASCII: nothing can end the header, start another, or need an encoding.
    assert header.isascii()
    assert all(ch.isprintable() for ch in header), repr(header)
    assert header.startswith('attachment; filename="')
    fallback = header.split('filename="', 1)[1].split('"; filename*=', 1)[0]
    assert '"' not in fallback and "\\" not in fallback and "%" not in fallback
    assert header.count('"') == 2


@settings(max_examples=500, deadline=None)
@given(HOSTILE_TEXT)
def test_any_filename_gives_one_safe_header_line(filename: str) -> None:
    header = content_disposition(filename)
    assert_safe_header(header)
    encoded = header.split("filename*=UTF-8''", 1)[1]
    # the UTF-8 name decodes back to the name (lone surrogates became U+FFFD: they are not text)
    expected = filename.encode("utf-8", "replace").decode("utf-8")
    assert unquote(encoded, errors="strict") == expected


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(codec="utf-8", exclude_categories=["Cc", "Cs"]), min_size=1, max_size=100))
def test_a_mime_parser_reads_the_name_back(filename: str) -> None:
    # (the parser strips surrounding whitespace; the exact round trip is checked above)
    assert (parsed_name(content_disposition(filename)) or "").strip() == filename.strip()


def test_named_nasty_filenames() -> None:
    for name in NASTY:
        assert_safe_header(content_disposition(name))
    assert content_disposition("") == "attachment; filename=\"download\"; filename*=UTF-8''"
    assert parsed_name(content_disposition("résumé 1.png")) == "résumé 1.png"


@settings(max_examples=300, deadline=None)
@given(key=st.text(max_size=200), filename=st.none() | HOSTILE_TEXT)
def test_any_key_gives_a_safe_name_and_cache_rule(key: str, filename: str | None) -> None:
    name = attachment_name(key, filename)
    if filename is not None:
        assert name == filename
    if name is not None:
        assert_safe_header(content_disposition(name))
    rule = cache_control(key, max_age=600)
    assert rule == ("private, max-age=600" if key.split("/", 1)[0] == "thumbnails" else NO_STORE)


def test_outputs_and_thumbnails_are_named_after_their_generation() -> None:
    user, generation = uuid.uuid4(), uuid.uuid4()
    output = output_key(user, generation, 2, ".mp4")
    thumbnail = thumbnail_key(output)
    assert attachment_name(output, None) == download_name(output) == f"{generation}-2.mp4"
    assert attachment_name(thumbnail, None) == f"{generation}-2-thumbnail.webp"
    assert attachment_name(f"user_chunks/{user}/x.png", None) is None
    assert attachment_name(output, "mine.mp4") == "mine.mp4"


def test_only_thumbnails_are_cached_and_never_past_their_url() -> None:
    thumbnail = thumbnail_key(output_key(uuid.uuid4(), uuid.uuid4(), 0, ".png"))
    assert cache_control(thumbnail, max_age=3600) == "private, max-age=3600"
    assert cache_control(thumbnail, max_age=0) == NO_STORE
    assert cache_control(thumbnail, max_age=-5) == NO_STORE
    assert cache_control(output_key(uuid.uuid4(), uuid.uuid4(), 0, ".png"), max_age=3600) == NO_STORE
