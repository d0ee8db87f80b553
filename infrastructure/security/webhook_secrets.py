"""Webhook signing secrets sealed at rest: AES-256-GCM under a key derived from the deployment's secret.

We sign with the secrets, so they must be recoverable (no hash will do); a copy of the
database alone does not give them away. The key is `Settings.purpose_secret("webhook-secrets")`:
changing URL_SIGNING_SECRET (or the JWT key it is derived from) makes every stored secret
unreadable, and deliveries fail with SECRET_UNREADABLE until the secrets are rotated.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VERSION = "v1"
NONCE_BYTES = 12
#: Bound to the purpose: a sealed value of another use of the same key never opens here.
ASSOCIATED = b"genhub/webhook-secret/v1"


class AesGcmSecretSealer:
    def __init__(self, key_material: str) -> None:
        self._aead = AESGCM(hashlib.sha256(key_material.encode()).digest())

    def seal(self, secret: str) -> str:
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, secret.encode(), ASSOCIATED)
        return f"{VERSION}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def open(self, sealed: str) -> str:
        version, _, payload = sealed.partition(".")
        if version != VERSION:
            raise ValueError("not a sealed webhook secret")
        try:
            raw = base64.urlsafe_b64decode(payload.encode())
            return self._aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], ASSOCIATED).decode()
        except (InvalidTag, binascii.Error, ValueError) as exc:
            raise ValueError("the webhook secret cannot be opened with this deployment's key") from exc
