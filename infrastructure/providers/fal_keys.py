"""fal's webhook signing keys: its published JWKS (Ed25519 `OKP` keys), fetched, cached, refetched.

fal signs each webhook with one of the keys of its JWKS and names none in the request, so a
signature is checked against every cached key. The set is kept for `ttl_seconds`; a
signature that no cached key verifies triggers one refetch (a rotation), at most once per
`refetch_interval_seconds` so forged webhooks cannot make us hammer the JWKS host. The
fetch is bounded: the HTTP client's timeout, `max_bytes`, `MAX_KEYS`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time
from collections.abc import Callable

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from domain.errors import ServiceUnavailable
from infrastructure.json_input import JsonInputError, loads

log = logging.getLogger(__name__)

MAX_KEYS = 20
DEFAULT_MAX_BYTES = 64 * 1024


class JwksError(Exception):
    """The JWKS could not be fetched or read."""


def _b64url(value: str) -> bytes:
    padded = value + "=" * (-len(value) % 4)
    return base64.urlsafe_b64decode(padded.encode("ascii"))


def parse_jwks(content: bytes) -> tuple[Ed25519PublicKey, ...]:
    """The Ed25519 keys of a JWKS document (other key types are skipped); raises JwksError."""
    try:
        document = loads(content)
    except JsonInputError as exc:
        raise JwksError(f"the JWKS is not JSON: {exc}") from exc
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list):
        raise JwksError("the JWKS has no keys list")
    found: list[Ed25519PublicKey] = []
    for entry in keys[:MAX_KEYS]:
        if not isinstance(entry, dict) or entry.get("kty") != "OKP" or entry.get("crv") != "Ed25519":
            continue
        x = entry.get("x")
        if not isinstance(x, str) or len(x) > 64:
            continue
        try:
            raw = _b64url(x)
        except (binascii.Error, ValueError):
            continue
        if len(raw) != 32:
            continue
        found.append(Ed25519PublicKey.from_public_bytes(raw))
    return tuple(found)


class FalJwks:
    """The cached key set of one process."""

    def __init__(
        self,
        url: str,
        client: httpx.AsyncClient,
        *,
        ttl_seconds: float = 24 * 3600,
        refetch_interval_seconds: float = 60.0,
        max_bytes: int = DEFAULT_MAX_BYTES,
        timeout_seconds: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._client = client
        self._ttl = ttl_seconds
        self._refetch_interval = refetch_interval_seconds
        self._max_bytes = max_bytes
        self._timeout = timeout_seconds
        self._clock = clock
        self._keys: tuple[Ed25519PublicKey, ...] = ()
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0

    @property
    def keys(self) -> tuple[Ed25519PublicKey, ...]:
        return self._keys

    def verifies(self, message: bytes, signature: bytes) -> bool:
        """Whether any cached key verifies the signature (never fetches)."""
        for key in self._keys:
            try:
                key.verify(signature, message)
            except InvalidSignature:
                continue
            return True
        return False

    def _fresh(self, now: float) -> bool:
        return self._fetched_at is not None and now - self._fetched_at < self._ttl

    async def ensure_fresh(self) -> None:
        """Fetch when nothing is cached or the cache is older than the TTL.

        Raises ServiceUnavailable when no key could be fetched yet (the caller answers 503
        and fal delivers again); a failed refresh of an expired set keeps the old keys.
        """
        if not self._fresh(self._clock()):
            await self._refresh(unless_fresh=True)
        if not self._keys:
            raise ServiceUnavailable("fal-jwks", retry_after_seconds=max(1, int(self._refetch_interval)))

    async def refresh_for_unknown(self) -> bool:
        """A signature no cached key verifies: refetch, unless a fetch was tried within the refetch interval."""
        return await self._refresh(unless_fresh=False)

    async def _refresh(self, *, unless_fresh: bool) -> bool:
        async with self._lock:
            now = self._clock()
            if unless_fresh and self._fresh(now):
                return False  # another caller refreshed it while this one waited
            if self._attempted_at is not None and now - self._attempted_at < self._refetch_interval:
                return False  # fetched (or failed) moments ago: not again on every webhook
            self._attempted_at = now
            try:
                keys = await self._fetch()
            except JwksError as exc:
                log.warning("fal JWKS fetch from %s failed: %s", self._url, exc)
                return False
            self._keys = keys
            self._fetched_at = self._clock()
            return True

    async def _fetch(self) -> tuple[Ed25519PublicKey, ...]:
        self.fetches += 1
        try:
            async with asyncio.timeout(self._timeout):
                async with self._client.stream("GET", self._url, headers={"Accept": "application/json"}) as response:
                    if response.status_code != 200:
                        raise JwksError(f"the JWKS host answered {response.status_code}")
                    chunks: list[bytes] = []
                    size = 0
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                        if size > self._max_bytes:
                            raise JwksError(f"the JWKS is larger than {self._max_bytes} bytes")
                        chunks.append(chunk)
        except TimeoutError as exc:
            raise JwksError("the JWKS fetch timed out") from exc
        except httpx.HTTPError as exc:
            raise JwksError(f"the JWKS fetch failed: {exc}") from exc
        keys = parse_jwks(b"".join(chunks))
        if not keys:
            raise JwksError("the JWKS holds no Ed25519 key")
        return keys
