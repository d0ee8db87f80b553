"""HMAC-SHA256 signatures for the local backend's download and upload URLs.

A signature binds the purpose (download or upload), the key, the expiry and
every value the client must honour (filename; content type, length, checksum),
so one signed URL cannot be replayed for another object or another body.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable


class UrlSigner:
    """Signs and verifies expiring URL parameters with one shared secret."""

    def __init__(self, secret: str, *, clock: Callable[[], float] = time.time) -> None:
        if not secret:
            raise ValueError("a URL signing secret is required")
        self._secret = secret.encode()
        self._clock = clock

    def expiry(self, expires_in: int) -> int:
        """The unix time at which a URL issued now for `expires_in` seconds stops working."""
        return int(self._clock()) + expires_in

    def download_signature(self, key: str, exp: int, name: str | None) -> str:
        return self._sign(["get", key, exp, name])

    def upload_signature(self, key: str, exp: int, content_type: str, length: int, sha256: str | None) -> str:
        # The checksum is normalised to lower case so a client sending upper-case hex still matches.
        return self._sign(["put", key, exp, content_type, length, sha256.lower() if sha256 else None])

    def verify_download(self, key: str, exp: int, sig: str, name: str | None = None) -> bool:
        return self._fresh(exp) and _same(sig, self.download_signature(key, exp, name))

    def verify_upload(self, key: str, exp: int, content_type: str, length: int, sha256: str | None, sig: str) -> bool:
        return self._fresh(exp) and _same(sig, self.upload_signature(key, exp, content_type, length, sha256))

    def _fresh(self, exp: int) -> bool:
        return self._clock() <= exp

    def _sign(self, fields: list[str | int | None]) -> str:
        # JSON keeps the fields unambiguous: no separator inside a value can shift a boundary.
        message = json.dumps(fields, separators=(",", ":"), ensure_ascii=True).encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()


def _same(given: str, expected: str) -> bool:
    # compare_digest needs ASCII for str; a non-ASCII "signature" is simply wrong.
    return given.isascii() and hmac.compare_digest(given.lower(), expected)
