"""Signing secrets that no one else knows, for a server started without them.

With no JWT_SECRET (or URL_SIGNING_SECRET) set, a server must not sign with a value
written in its source: anyone could mint an ADMIN token for it. Instead the first
start draws a random secret and keeps it in the data directory (`secrets/<name>`,
mode 0600, the folder 0700), so tokens and signed URLs outlive a restart and every
process sharing that data directory signs alike. Production refuses to start without
configured secrets (Settings.production_problems); this serves `make run` and tests.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from functools import lru_cache
from pathlib import Path

SECRET_BYTES = 48


def local_secret(data_dir: Path, name: str) -> str:
    """The secret `name` kept under `data_dir`, created on first use."""
    return _read_or_create((data_dir / "secrets" / name).resolve())


@lru_cache(maxsize=32)
def _read_or_create(path: Path) -> str:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    if path.exists():
        return _read(path)
    # Written whole under a name of its own, then linked into place: `link` fails when the
    # name exists and never shows a half-written file, so a process starting at the same
    # moment reads either nothing (and links its own) or the complete winner.
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(SECRET_BYTES))
            file.flush()
            os.fsync(file.fileno())
        # Another process linked its secret first: everyone uses that one.
        with contextlib.suppress(FileExistsError):
            os.link(draft, path)
    finally:
        draft.unlink(missing_ok=True)
    return _read(path)


def _read(path: Path) -> str:
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        path.chmod(0o600)  # readable by others (copied, restored): narrow it before use
    value = path.read_text().strip()
    if len(value) < 32:  # written by hand, or by a release that could die between create and write
        raise RuntimeError(f"{path} holds no usable secret: delete it to have a new one drawn")
    return value
