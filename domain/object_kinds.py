"""The kinds of stored objects, each named by the first segment of its keys.

The domain writes every key with its kind in front (domain/chunks.py `chunk_key` and
`output_key`, domain/media.py `thumbnail_key`, domain/data_exports.py `export_key`); storage
places a kind by that segment, and the orphan sweep walks every kind's prefix.
"""

from __future__ import annotations

from typing import Literal

Kind = Literal["uploads", "outputs", "thumbnails", "exports"]

#: The first key segment of each kind.
PREFIXES: dict[Kind, str] = {
    "uploads": "user_chunks",
    "outputs": "outputs",
    "thumbnails": "thumbnails",
    "exports": "exports",
}
_KINDS: dict[str, Kind] = {prefix: kind for kind, prefix in PREFIXES.items()}


def kind_of(key: str) -> Kind | None:
    """The kind a key belongs to, or None for any other first segment."""
    return _KINDS.get(key.split("/", 1)[0])
