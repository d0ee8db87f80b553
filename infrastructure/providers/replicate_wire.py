"""Replicate's HTTP API wire format: model references, predictions -> `ProviderStatus`, errors.

Model references (a model's `providerModel` capability, or its slug):

    owner/name                 -> POST /v1/models/{owner}/{name}/predictions (the official model's
                                  latest version)
    owner/name:<version id>    -> POST /v1/predictions with {"version": "<version id>"}
    <version id>               -> POST /v1/predictions with {"version": "<version id>"}

Prediction statuses:

    starting   -> pending       processing -> running       succeeded -> succeeded (output URLs)
    failed     -> failed  REPLICATE_FAILED (the prediction's `error` as the message)
    canceled   -> failed  REPLICATE_CANCELED (by us, or its Cancel-After deadline after it started)
    aborted    -> failed  PROVIDER_ABORTED (its deadline passed before it started: nothing ran,
                                           Replicate charges nothing; ours is released like any failure)

Errors (HTTP status of an API answer; the body is `{"title", "detail", "status"}`):

    401 REPLICATE_UNAUTHORIZED, 402 REPLICATE_PAYMENT_REQUIRED (retryable, long back-off: ops
    can top the account up), 404 REPLICATE_NOT_FOUND, 422 REPLICATE_INVALID_INPUT, other 4xx
    REPLICATE_HTTP_{status}: permanent. 429 REPLICATE_RATE_LIMITED (Retry-After, or the wait
    named in `detail`), 5xx REPLICATE_SERVER_ERROR: retryable.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from domain.ports import ProviderError, ProviderState, ProviderStatus
from infrastructure.json_input import JsonInputError, loads
from infrastructure.providers.http import classified

PAYMENT_RETRY_AFTER = 300.0
RATE_LIMITED_RETRY_AFTER = 1.0
#: Replicate refuses a Cancel-After shorter than this.
MIN_CANCEL_AFTER_SECONDS = 5
#: Walking a JSON output for URLs stops this deep and after this many URLs (hostile outputs).
MAX_OUTPUT_DEPTH = 8
MAX_OUTPUT_URLS = 64
MAX_MESSAGE_CHARS = 1000

_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,98}[A-Za-z0-9_])?"
_VERSION = r"[A-Za-z0-9]{8,128}"
_MODEL = re.compile(rf"(?P<owner>{_NAME})/(?P<name>{_NAME})(?::(?P<version>{_VERSION}))?")
_BARE_VERSION = re.compile(rf"(?P<version>{_VERSION})")
_PREDICTION_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_DETAIL_WAIT = re.compile(r"(\d{1,5})\s*(?:s\b|sec|second)", re.IGNORECASE)

_STATES: dict[str, ProviderState] = {
    "starting": "pending",
    "processing": "running",
    "succeeded": "succeeded",
    "failed": "failed",
    "canceled": "failed",
    "aborted": "failed",
}
_FAILURE_CODES = {"failed": "REPLICATE_FAILED", "canceled": "REPLICATE_CANCELED", "aborted": "PROVIDER_ABORTED"}
_FAILURE_MESSAGES = {
    "failed": "The Replicate prediction failed.",
    "canceled": "The Replicate prediction was canceled.",
    "aborted": "The Replicate prediction passed its deadline before it started; nothing ran.",
}
_ERRORS: dict[int, tuple[str, bool, float | None]] = {
    400: ("REPLICATE_BAD_REQUEST", False, None),
    401: ("REPLICATE_UNAUTHORIZED", False, None),
    402: ("REPLICATE_PAYMENT_REQUIRED", True, PAYMENT_RETRY_AFTER),
    403: ("REPLICATE_FORBIDDEN", False, None),
    404: ("REPLICATE_NOT_FOUND", False, None),
    422: ("REPLICATE_INVALID_INPUT", False, None),
    429: ("REPLICATE_RATE_LIMITED", True, RATE_LIMITED_RETRY_AFTER),
}


@dataclass(frozen=True, slots=True)
class ModelRef:
    """Where a prediction is created: by model (`owner`/`name`) or by `version` id."""

    owner: str | None
    name: str | None
    version: str | None

    @property
    def create_path(self) -> str:
        if self.version is None:
            return f"/v1/models/{self.owner}/{self.name}/predictions"
        return "/v1/predictions"


def parse_model(reference: str) -> ModelRef:
    """The model reference of `providerModel`; ValueError when it is none of the three forms."""
    if (match := _MODEL.fullmatch(reference)) is not None:
        return ModelRef(match["owner"], match["name"], match["version"])
    if (match := _BARE_VERSION.fullmatch(reference)) is not None:
        return ModelRef(None, None, match["version"])
    raise ValueError(f"not a Replicate model reference (owner/name, owner/name:version or a version id): {reference!r}")


def is_prediction_id(value: object) -> bool:
    return isinstance(value, str) and _PREDICTION_ID.fullmatch(value) is not None


def cancel_after(deadline_at: datetime | None, now: datetime) -> str | None:
    """The `Cancel-After` header for what is left before the deadline ("300s"); None without a deadline.

    Rounded up to whole seconds and never below Replicate's minimum; a deadline already past
    raises ProviderError (DEADLINE_EXCEEDED, permanent): nothing should start then.
    """
    if deadline_at is None:
        return None
    left = (deadline_at - now).total_seconds()
    if left <= 0:
        raise ProviderError("DEADLINE_EXCEEDED", "The generation's deadline passed before submit.", retryable=False)
    return f"{max(MIN_CANCEL_AFTER_SECONDS, math.ceil(left))}s"


def decode_json(body: bytes) -> Any:
    """A body of Replicate's (answer or webhook) decoded; ValueError when it is not JSON."""
    try:
        return loads(body)
    except JsonInputError as exc:
        raise ValueError(f"not JSON: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise ValueError("not UTF-8 JSON") from exc


def _text(value: object, limit: int = MAX_MESSAGE_CHARS) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    return text[:limit]


def retry_after_from(headers: Mapping[str, str], detail: str) -> float | None:
    """Seconds to wait: the Retry-After header (delta seconds), else a wait named in `detail`."""
    header = headers.get("retry-after", "").strip()
    if header:
        try:
            seconds = float(header)
        except ValueError:
            seconds = math.nan  # an HTTP date: fall back to the detail or the default
        if math.isfinite(seconds):
            return max(0.0, seconds)
    if (match := _DETAIL_WAIT.search(detail)) is not None:
        return float(match.group(1))
    return None


def error_for_answer(status: int, body: object, headers: Mapping[str, str]) -> ProviderError:
    """The ProviderError for a non-2xx API answer (body: the decoded JSON, or None)."""
    detail = ""
    if isinstance(body, dict):
        detail = _text(body.get("detail") or body.get("title") or "")
    known = _ERRORS.get(status)
    if known is None:
        known = ("REPLICATE_SERVER_ERROR", True, None) if status >= 500 else (f"REPLICATE_HTTP_{status}", False, None)
    code, retryable, default_after = known
    retry_after = retry_after_from(headers, detail) if retryable else None
    error = ProviderError(
        code,
        detail or f"Replicate answered HTTP {status}",
        retryable=retryable,
        retry_after=retry_after if retry_after is not None else default_after,
    )
    return classified(error, status)


def _is_url(value: str) -> bool:
    if len(value) > 4096:
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("https", "http") and bool(parts.hostname)


def _urls(value: object, depth: int) -> Iterator[str]:
    if isinstance(value, str):
        if _is_url(value):
            yield value
    elif depth < MAX_OUTPUT_DEPTH and isinstance(value, list):
        for item in value:
            yield from _urls(item, depth + 1)
    elif depth < MAX_OUTPUT_DEPTH and isinstance(value, dict):
        for item in value.values():
            yield from _urls(item, depth + 1)


def output_urls(output: object) -> tuple[str, ...]:
    """The http(s) URLs in a prediction's `output`: a URL, a list of them, or any JSON holding them.

    In the order they appear, each once, at most MAX_OUTPUT_URLS (anything else is not a file
    we copy: text outputs yield none, and the generation fails with NO_OUTPUT).
    """
    seen: dict[str, None] = {}
    for url in _urls(output, 0):
        seen.setdefault(url, None)
        if len(seen) >= MAX_OUTPUT_URLS:
            break
    return tuple(seen)


def status_from_prediction(prediction: object) -> tuple[str, ProviderStatus]:
    """A prediction object -> (its id, our status); ValueError when it is malformed."""
    if not isinstance(prediction, dict):
        raise ValueError("a prediction is a JSON object")
    prediction_id = prediction.get("id")
    if not is_prediction_id(prediction_id):
        raise ValueError("the prediction has no valid id")
    assert isinstance(prediction_id, str)
    status = prediction.get("status")
    state = _STATES.get(status) if isinstance(status, str) else None
    if state is None or not isinstance(status, str):
        raise ValueError(f"unknown Replicate prediction status {_text(status, 40)!r}")
    raw = {key: prediction[key] for key in ("id", "status", "model", "version", "error") if key in prediction}
    if state == "succeeded":
        return prediction_id, ProviderStatus(
            state=state, progress=1.0, output_urls=output_urls(prediction.get("output")), raw=raw
        )
    if state == "failed":
        return prediction_id, ProviderStatus(
            state=state,
            error_code=_FAILURE_CODES[status],
            error_message=_text(prediction.get("error")) or _FAILURE_MESSAGES[status],
            raw=raw,
        )
    return prediction_id, ProviderStatus(state=state, raw=raw)
