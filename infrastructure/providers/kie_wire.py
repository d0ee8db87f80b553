"""KIE.ai wire format: body codes -> `ProviderError`, task records -> `ProviderStatus`, webhook signing.

Error mapping (body code, or HTTP status when the body has none):

    400 bad request, 401 auth, 404 unknown task, 422 validation,
    501 generation failed, 505 feature disabled, other 4xx   -> permanent
    402 KIE account out of credits, 429 rate limited, 455 maintenance,
    500 and other 5xx                                        -> retryable
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any

from domain.ports import ProviderError, ProviderState, ProviderStatus
from infrastructure.json_input import JsonInputError, loads
from infrastructure.providers.http import classified

# 402 means genhub's KIE account ran dry, not that the user did anything wrong.
# Ops can top it up, so the job waits (retryable, long back-off) instead of
# failing every queued generation; the worker's attempt limit and the
# generation deadline still bound how long it waits.
CREDITS_RETRY_AFTER = 300.0
MAINTENANCE_RETRY_AFTER = 60.0
RATE_LIMITED_RETRY_AFTER = 10.0  # KIE counts new tasks per 10 s window

_CODES: dict[int, tuple[str, bool, float | None]] = {
    400: ("KIE_BAD_REQUEST", False, None),
    401: ("KIE_UNAUTHORIZED", False, None),
    402: ("KIE_INSUFFICIENT_CREDITS", True, CREDITS_RETRY_AFTER),
    404: ("KIE_NOT_FOUND", False, None),
    422: ("KIE_VALIDATION", False, None),
    429: ("KIE_RATE_LIMITED", True, RATE_LIMITED_RETRY_AFTER),
    455: ("KIE_MAINTENANCE", True, MAINTENANCE_RETRY_AFTER),
    500: ("KIE_SERVER_ERROR", True, None),
    501: ("KIE_GENERATION_FAILED", False, None),
    505: ("KIE_FEATURE_DISABLED", False, None),
}
_STATES: dict[str, ProviderState] = {
    "waiting": "pending",
    "queuing": "pending",
    "generating": "running",
    "success": "succeeded",
    "fail": "failed",
}


def error_for_code(code: int, message: str, *, retry_after: float | None = None) -> ProviderError:
    """The `ProviderError` for a KIE body code (or HTTP status)."""
    known = _CODES.get(code)
    if known is None:
        known = (f"KIE_HTTP_{code}", code >= 500, None)
    error_code, retryable, default_after = known
    error = ProviderError(
        error_code, message or f"KIE answered {code}", retryable=retryable, retry_after=retry_after or default_after
    )
    return classified(error, code)


def int_or_none(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _result_urls(result_json: object) -> tuple[str, ...]:
    if result_json in (None, ""):
        return ()
    result = loads(result_json) if isinstance(result_json, str | bytes) else result_json
    if not isinstance(result, dict):
        raise ValueError("resultJson is not an object")
    urls = result.get("resultUrls") or []
    if not isinstance(urls, list) or not all(isinstance(url, str) for url in urls):
        raise ValueError("resultJson.resultUrls is not a list of strings")
    return tuple(urls)


def _progress(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    # KIE reports percent on some models and a fraction on others.
    if number > 1:
        number /= 100
    return min(1.0, max(0.0, number))


def status_from_record(data: Mapping[str, Any]) -> ProviderStatus:
    """Map a `recordInfo` (or callback) `data` object; raises ValueError when malformed."""
    state = _STATES.get(str(data.get("state", "")).lower())
    if state is None:
        raise ValueError(f"unknown KIE task state {data.get('state')!r}")
    progress = _progress(data.get("progress"))
    if state == "succeeded":
        try:
            urls = _result_urls(data.get("resultJson"))
        except JsonInputError as exc:
            raise ValueError(f"resultJson is not JSON: {exc}") from exc
        return ProviderStatus(state=state, progress=1.0, output_urls=urls, raw=dict(data))
    if state == "failed":
        fail_code = re.sub(r"[^A-Za-z0-9]+", "_", str(data.get("failCode") or "")).strip("_").upper()
        return ProviderStatus(
            state=state,
            error_code=f"KIE_{fail_code}" if fail_code else "KIE_FAILED",
            error_message=str(data.get("failMsg") or "The KIE task failed."),
            raw=dict(data),
        )
    return ProviderStatus(state=state, progress=progress, raw=dict(data))


def callback_data(body: bytes) -> dict[str, Any]:
    try:
        payload = loads(body)  # unsigned: the signature covers the task id, not the body
    except JsonInputError as exc:
        raise ValueError(f"callback body is not JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise ValueError("callback body is not an object")
    data = payload.get("data")
    if not isinstance(data, dict):
        return payload  # the unwrapped shape: the task record itself
    code = int_or_none(payload.get("code"))
    if "state" not in data and code is not None and code != 200:
        # A wrapped failure without a task state: the wrapper's code is the reason.
        return {**data, "state": "fail", "failCode": str(code), "failMsg": payload.get("msg")}
    return data


def sign(secret: str, task_id: str, timestamp: str) -> str:
    """KIE's webhook signature: base64(HMAC-SHA256(key=secret, msg=f"{task_id}.{timestamp}"))."""
    digest = hmac.new(secret.encode(), f"{task_id}.{timestamp}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")
