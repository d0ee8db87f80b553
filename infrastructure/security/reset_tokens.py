"""Password-reset tokens derived from the reset's id with a server key (domain ResetTokens)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid


class HmacResetTokens:
    """HMAC-SHA256 of the reset's id under `key`, a key used for nothing else (the composition root
    passes Settings.purpose_secret("reset-tokens")): 43 URL-safe characters, unguessable without the
    key, the same every time for one reset."""

    def __init__(self, key: str) -> None:
        self._key = key.encode()

    def token(self, reset_id: uuid.UUID) -> str:
        digest = hmac.new(self._key, reset_id.bytes, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
