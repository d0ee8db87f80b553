"""The response headers a signed download carries, for both backends: an attachment name and a caching rule.

Outputs and thumbnails are user-influenced bytes served from URLs we sign, so every
download is an attachment (a browser never renders one as a page in our origin) under
the name `domain.media.download_name` gives it, unless the caller names it. Thumbnails
may be kept by the browser until their URL expires (they are small, derived and
re-derivable); every other kind stays `private, no-store`.
"""

from __future__ import annotations

from urllib.parse import quote

from domain.media import download_name
from domain.object_kinds import kind_of

NO_STORE = "private, no-store"
#: Characters the ASCII fallback name may keep: printable ASCII but the quoted-string's own
#: specials and `%`, which some browsers percent-decode inside `filename="..."`.
_UNSAFE_IN_FALLBACK = frozenset('"\\%')


def content_disposition(filename: str) -> str:
    """`attachment` with the name as an ASCII fallback and as RFC 5987 UTF-8 (`filename*`).

    Never contains a control character, a quote or backslash inside the quoted
    name, or anything outside printable ASCII, whatever `filename` holds.
    """
    fallback = "".join(
        ch if ch.isascii() and ch.isprintable() and ch not in _UNSAFE_IN_FALLBACK else "_" for ch in filename
    )
    encoded = quote(filename, safe="", errors="replace")
    return f"attachment; filename=\"{fallback or 'download'}\"; filename*=UTF-8''{encoded}"


def attachment_name(key: str, filename: str | None) -> str | None:
    """The name a download of `key` is saved under: the caller's, else one for outputs and thumbnails."""
    if filename is not None:
        return filename
    if kind_of(key) in ("outputs", "thumbnails"):
        return download_name(key)
    return None


def cache_control(key: str, *, max_age: int) -> str:
    """Thumbnails: `private, max-age` up to the URL's expiry; everything else: never stored."""
    if kind_of(key) == "thumbnails" and max_age > 0:
        return f"private, max-age={max_age}"
    return NO_STORE
