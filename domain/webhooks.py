"""Outgoing webhooks: what is sent, how it is signed, when a failed delivery is tried again.

Deliveries follow the Standard Webhooks specification (standardwebhooks.com):

- three headers: `webhook-id` (the message id, the same on every retry of one message, so a
  receiver can drop duplicates), `webhook-timestamp` (seconds since the epoch, of this
  attempt) and `webhook-signature`;
- the signature is HMAC-SHA256 over `{id}.{timestamp}.{body}` with the endpoint's secret,
  base64-encoded and versioned: `v1,<base64>`. While a rotated secret's overlap lasts, the
  header carries one signature per live secret, separated by spaces, and a receiver accepts
  the message when any of them verifies with the secret it holds;
- secrets are `whsec_` followed by the base64 of 32 random bytes; the HMAC key is the
  decoded bytes.

The network side (which addresses may be called, the HTTP request with its timeouts and
response cap) is the `WebhookSender` port; `infrastructure/webhooks/` implements it.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
SIGNATURE_VERSION = "v1"
#: A receiver refuses a message whose timestamp is further than this from its clock (replay).
TIMESTAMP_TOLERANCE = timedelta(minutes=5)
#: The delays between attempts after the first: exponential, about a day in all (jitter on top).
RETRY_DELAYS: tuple[timedelta, ...] = (
    timedelta(seconds=5),
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(minutes=30),
    timedelta(hours=1),
    timedelta(hours=2),
    timedelta(hours=4),
    timedelta(hours=8),
    timedelta(hours=8),
)
#: Each delay is stretched by a random fraction up to this, so failed receivers are not hit in waves.
RETRY_JITTER = 0.2


class WebhookEvent(enum.StrEnum):
    """The event types a webhook can ask for (the message's `type`)."""

    GENERATION_STARTED = "generation.started"
    GENERATION_PROGRESS = "generation.progress"  # throttled: at most one per endpoint per interval
    GENERATION_COMPLETED = "generation.completed"  # succeeded, failed or cancelled: the final status


class DeliveryFailure(enum.StrEnum):
    """Why one attempt did not deliver (stored on the attempt; shown in the delivery log)."""

    FORBIDDEN_ADDRESS = "FORBIDDEN_ADDRESS"  # the host resolves to loopback, private, link-local, metadata...
    NOT_HTTPS = "NOT_HTTPS"  # production calls https URLs only
    DNS = "DNS"  # the host name does not resolve
    CONNECT = "CONNECT"  # refused, reset, TLS failure
    TIMEOUT = "TIMEOUT"  # connect or whole-request deadline passed
    REDIRECTED = "REDIRECTED"  # a 3xx answer: redirects are never followed
    HTTP_STATUS = "HTTP_STATUS"  # any answer outside 2xx (and 3xx)


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """What one attempt came to: the receiver's status code (if it answered) and why it failed."""

    status_code: int | None
    failure: DeliveryFailure | None
    #: A short, safe description for the delivery log (never the response body).
    detail: str
    elapsed_ms: int

    @property
    def delivered(self) -> bool:
        return self.failure is None and self.status_code is not None and 200 <= self.status_code < 300


class ForbiddenDestination(Exception):
    """A webhook URL that may not be called: refused at registration, a failed attempt at delivery."""

    def __init__(self, failure: DeliveryFailure, message: str) -> None:
        self.failure = failure
        self.message = message
        super().__init__(message)


class WebhookDestinations(Protocol):
    """Whether a URL may be called now: syntax, scheme, and every address its host resolves to."""

    async def check(self, url: str) -> None:
        """Raise ForbiddenDestination when the URL must not be called."""
        ...


class WebhookSender(Protocol):
    """POSTs one signed message; never raises for the receiver's or the network's failures.

    It checks the destination again (the name may resolve elsewhere since registration) and
    connects only to an address it checked; it follows no redirects, bounds the connect and the
    whole request by deadlines, and reads at most a capped number of bytes of the answer.
    """

    async def send(self, url: str, *, headers: Mapping[str, str], body: bytes) -> DeliveryOutcome: ...


# ---------------------------------------------------------------- secrets and signatures


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a `whsec_` secret; ValueError for anything else."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("a webhook secret starts with whsec_")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("a webhook secret is whsec_ and base64") from exc
    if not 24 <= len(key) <= 64:
        raise ValueError("a webhook secret's key is 24 to 64 bytes")
    return key


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,<base64>` signature of the message with the secret."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def signature_header(live_secrets: Sequence[str], message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: one signature per live secret (the rotation overlap)."""
    if not live_secrets:
        raise ValueError("an endpoint has at least one live secret")
    return " ".join(sign(secret, message_id, timestamp, body) for secret in live_secrets)


def signed_headers(live_secrets: Sequence[str], message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(live_secrets, message_id, timestamp, body),
    }


def verify(secret: str, headers: Mapping[str, str], body: bytes, *, now: int) -> bool:
    """Whether a received message is signed with `secret` and fresh (inbound webhooks, tests).

    `headers` is looked up by lower-case name. Constant-time comparison of each signature.
    """
    message_id = headers.get("webhook-id", "")
    timestamp_text = headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    if not message_id or not timestamp_text.isdigit() or len(timestamp_text) > 12 or not signatures:
        return False
    timestamp = int(timestamp_text)
    if abs(now - timestamp) > TIMESTAMP_TOLERANCE.total_seconds():
        return False
    try:
        expected = sign(secret, message_id, timestamp, body).encode()
    except ValueError:
        return False
    return any(
        hmac.compare_digest(expected, candidate.encode())
        for candidate in signatures.split(" ")[:16]
        if candidate.startswith(f"{SIGNATURE_VERSION},")
    )


# ---------------------------------------------------------------- retries


def retry_delay(attempts_made: int, jitter: float, delays: Sequence[timedelta] = RETRY_DELAYS) -> timedelta | None:
    """The wait before the next attempt after `attempts_made` failed ones; None when they are spent.

    `jitter` is a random number in [0, 1) (the caller's: the domain draws none). `delays` is the
    schedule (`RETRY_DELAYS` unless the deployment configures its own, e.g. a short one in tests):
    `len(delays) + 1` attempts in all.
    """
    if attempts_made < 1 or attempts_made > len(delays):
        return None
    base = delays[attempts_made - 1]
    return base * (1 + RETRY_JITTER * min(max(jitter, 0.0), 1.0))


MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
