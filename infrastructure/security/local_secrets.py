"""Signing secrets that no one else knows, for a server started without them.

With no JWT_SECRET (or URL_SIGNING_SECRET) set, a server must not sign with a value
written in its source: anyone could mint an ADMIN token for it. Instead the first
start draws a random secret and keeps it in the data directory (`secrets/<name>`,
mode 0600, the folder 0700), so tokens and signed URLs outlive a restart and every
process sharing that data directory signs alike. Production refuses to start without
configured secrets (Settings.production_problems); this serves `make run` and tests.
"""

from __future__ import annotations

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
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read(path)
    with os.fdopen(descriptor, "w") as file:
        file.write(secrets.token_urlsafe(SECRET_BYTES))
    return _read(path)


def _read(path: Path) -> str:
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        path.chmod(0o600)  # readable by others (copied, restored): narrow it before use
    value = path.read_text().strip()
    if len(value) < 32:  # a partial write by a process that died between create and write
        raise RuntimeError(f"{path} holds no usable secret: delete it to have a new one drawn")
    return value
