"""API keys: their scopes, their text (`ghk_<lookup>_<secret>`), how the secret is kept, the rules of new keys.

A key is `ghk_` + a public lookup id (16 hex characters, stored in clear and unique) + `_` +
the secret (32 random bytes, base64url without padding: 43 characters). Only the SHA-256 of the
secret is stored. A fast hash is enough here, unlike for passwords: the secret is 256 random
bits, so a leaked hash cannot be reversed by guessing, and a slow hash would cost every request
its CPU time. The stored hash is compared in constant time; a lookup id nobody holds is compared
against a dummy hash the same way, so neither the answer nor its timing tells which ids exist.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from domain.errors import Problems

PREFIX = "ghk_"
#: How many live (unrevoked, unexpired) keys one account may hold.
MAX_KEYS_PER_USER = 50
MAX_NAME_LENGTH = 100
_LOOKUP_HEX = 16
_TOKEN_RE = re.compile(r"ghk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
#: The one answer for a malformed, unknown, revoked or expired key (and a wrong secret).
INVALID_KEY = "The API key is invalid, revoked or expired."
#: Compared against when a lookup id is unknown, so that path costs what a known id's does.
DUMMY_HASH = hashlib.sha256(b"genhub/no-such-api-key").hexdigest()


class Scope(enum.StrEnum):
    """What a key may do; root fields name the scope they need in domain/api_scopes.py."""

    READ = "read"
    GENERATE = "generate"
    UPLOAD = "upload"
    ADMIN_READ = "admin:read"
    ADMIN_WRITE = "admin:write"


ADMIN_SCOPES = frozenset({Scope.ADMIN_READ, Scope.ADMIN_WRITE})


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key as its owner sees it (never its secret)."""

    id: uuid.UUID
    user_id: uuid.UUID
    name: str
    lookup_id: str
    scopes: frozenset[Scope]
    created_at: datetime
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    @property
    def prefix(self) -> str:
        """What identifies the key in lists and logs: `ghk_<lookup id>`."""
        return f"{PREFIX}{self.lookup_id}"

    def live(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


@dataclass(frozen=True, slots=True)
class KeyCredential:
    """What verifying a key needs: the key, its secret's hash, and its owner's role."""

    key: ApiKey
    secret_hash: str
    owner_is_admin: bool


@dataclass(frozen=True, slots=True)
class NewKey:
    """A freshly minted key: the record to store and the text shown once."""

    key: ApiKey
    secret_hash: str
    token: str


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse(token: str) -> tuple[str, str] | None:
    """(lookup id, secret) of a well-formed key, else None."""
    match = _TOKEN_RE.fullmatch(token)
    return (match.group(1), match.group(2)) if match else None


def looks_like_key(token: str) -> bool:
    """Whether a bearer token is meant as an API key (JWTs never start with the prefix)."""
    return token.startswith(PREFIX)


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(secret_hash(secret).encode(), stored_hash.encode())


def mint(
    *, user_id: uuid.UUID, name: str, scopes: frozenset[Scope], created_at: datetime, expires_at: datetime | None
) -> NewKey:
    lookup_id = secrets.token_hex(_LOOKUP_HEX // 2)
    secret = secrets.token_urlsafe(32)
    key = ApiKey(
        id=uuid.uuid4(),
        user_id=user_id,
        name=name,
        lookup_id=lookup_id,
        scopes=scopes,
        created_at=created_at,
        expires_at=expires_at,
    )
    return NewKey(key=key, secret_hash=secret_hash(secret), token=f"{PREFIX}{lookup_id}_{secret}")


def parse_scopes(raw: list[str]) -> frozenset[Scope] | None:
    """The scopes named, or None when one is unknown."""
    try:
        return frozenset(Scope(s) for s in raw)
    except ValueError:
        return None


def is_aware(moment: datetime) -> bool:
    """Whether a client's moment names its time zone (a naive one cannot be compared or stored as UTC)."""
    return moment.tzinfo is not None and moment.utcoffset() is not None


def validate_new_key(
    *, name: str, scopes: list[str], expires_at: datetime | None, owner_is_admin: bool, now: datetime
) -> tuple[str, frozenset[Scope]]:
    """The key's clean name and scopes; InvalidInput naming each bad field."""
    problems = Problems()
    clean = name.strip()
    if not clean or len(clean) > MAX_NAME_LENGTH:
        problems.add("name", f"must be 1-{MAX_NAME_LENGTH} characters")
    parsed = parse_scopes(scopes)
    if parsed is None:
        problems.add("scopes", f"must each be one of: {', '.join(s.value for s in Scope)}")
    elif not parsed:
        problems.add("scopes", "must name at least one scope")
    elif parsed & ADMIN_SCOPES and not owner_is_admin:
        problems.add("scopes", "admin:read and admin:write are for an administrator's keys only")
    if expires_at is not None and not is_aware(expires_at):
        problems.add("expiresAt", "must include a time zone (such as Z or +02:00)")
    elif expires_at is not None and expires_at <= now:
        problems.add("expiresAt", "must be in the future")
    problems.raise_if_any()
    return clean, parsed or frozenset()
