"""fal.ai queue API wire format: model ids and external ids, answers -> `ProviderStatus`/`ProviderError`, webhooks.

Queue endpoints (https://queue.fal.run):

    POST {model_id}                              submit (a model id may carry a subpath: fal-ai/flux/dev)
    GET  {app_id}/requests/{request_id}/status   IN_QUEUE (queue_position) / IN_PROGRESS / COMPLETED
    GET  {app_id}/requests/{request_id}          the result
    PUT  {app_id}/requests/{request_id}/cancel   202 CANCELLATION_REQUESTED, 400 ALREADY_COMPLETED, 404 NOT_FOUND

The app id is the model id's first two segments (`owner/name`): status, result and cancel
never take the subpath. genhub's external id is `{app_id}/{request_id}`, so a poll from
any process knows where to ask.

HTTP errors: 429 and 5xx are retryable (Retry-After honoured), 401/403 and other 4xx
(422: the model refused the input) are permanent.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from domain.ports import ProviderError, ProviderStatus
from infrastructure.json_input import JsonInputError, loads
from infrastructure.providers.http import classified

RATE_LIMITED_RETRY_AFTER = 10.0

_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,127}")
_CODE_CHARS = re.compile(r"[^A-Za-z0-9]+")
MAX_MESSAGE_CHARS = 500

_HTTP_CODES: dict[int, tuple[str, bool]] = {
    400: ("FAL_BAD_REQUEST", False),
    401: ("FAL_UNAUTHORIZED", False),
    403: ("FAL_FORBIDDEN", False),
    404: ("FAL_NOT_FOUND", False),
    422: ("FAL_VALIDATION", False),
    429: ("FAL_RATE_LIMITED", True),
}


def _segment_ok(segment: str) -> bool:
    return _SEGMENT.fullmatch(segment) is not None and segment.strip(".") != ""


def split_model_id(model_id: str) -> tuple[str, str]:
    """`owner/name[/subpath...]` -> (app id, submit path); raises ValueError for anything else."""
    parts = model_id.split("/")
    if len(parts) < 2 or len(parts) > 6 or not all(_segment_ok(part) for part in parts):
        raise ValueError(f"not a fal model id: {model_id[:200]!r}")
    return "/".join(parts[:2]), "/".join(parts)


def check_app_id(app_id: str) -> str:
    parts = app_id.split("/")
    if len(parts) != 2 or not all(_segment_ok(part) for part in parts):
        raise ValueError(f"not a fal app id: {app_id[:200]!r}")
    return app_id


def check_request_id(request_id: object) -> str:
    if not isinstance(request_id, str) or _REQUEST_ID.fullmatch(request_id) is None:
        raise ValueError(f"not a fal request id: {str(request_id)[:200]!r}")
    return request_id


def external_id(app_id: str, request_id: str) -> str:
    return f"{check_app_id(app_id)}/{check_request_id(request_id)}"


def parse_external_id(value: str) -> tuple[str, str]:
    """`{app_id}/{request_id}` -> (app id, request id); raises ValueError."""
    app_id, _, request_id = value.rpartition("/")
    return check_app_id(app_id), check_request_id(request_id)


def _message(body: object, fallback: str) -> str:
    if isinstance(body, dict):
        detail = body.get("detail", body.get("error", body.get("message")))
        if isinstance(detail, str) and detail:
            return detail[:MAX_MESSAGE_CHARS]
        if detail is not None:
            return repr(detail)[:MAX_MESSAGE_CHARS]
    return fallback


def error_for_status(status: int, body: object, *, retry_after: float | None = None) -> ProviderError:
    """The `ProviderError` for a non-2xx answer of the queue API."""
    known = _HTTP_CODES.get(status)
    code, retryable = known if known is not None else (f"FAL_HTTP_{status}", status >= 500)
    if status == 429:
        retry_after = retry_after or RATE_LIMITED_RETRY_AFTER
    error = ProviderError(code, _message(body, f"fal answered {status}"), retryable=retryable, retry_after=retry_after)
    return classified(error, status)


def json_object(content: bytes, what: str) -> dict[str, Any]:
    """An answer's JSON object; raises ValueError when it is not one."""
    try:
        body = loads(content)
    except JsonInputError as exc:
        raise ValueError(f"{what} is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ValueError(f"{what} is not a JSON object")
    return body


def submitted_request_id(body: Mapping[str, Any]) -> str:
    """The request id of a submit answer; raises ValueError."""
    return check_request_id(body.get("request_id"))


def _queue_position(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def _failed(error: object, error_type: object = None) -> ProviderStatus:
    kind = _CODE_CHARS.sub("_", error_type).strip("_").upper()[:60] if isinstance(error_type, str) else ""
    message = error if isinstance(error, str) and error else repr(error)
    return ProviderStatus(
        state="failed",
        error_code=f"FAL_{kind}" if kind else "FAL_REQUEST_FAILED",
        error_message=message[:MAX_MESSAGE_CHARS],
        raw={"error": message[:MAX_MESSAGE_CHARS]},
    )


def queue_status(body: Mapping[str, Any]) -> ProviderStatus | None:
    """A status answer -> the status, or None for COMPLETED without an error (fetch the result).

    Raises ValueError for an unknown or missing status.
    """
    status = body.get("status")
    if status == "IN_QUEUE":
        position = _queue_position(body.get("queue_position"))
        return ProviderStatus(state="pending", raw={"status": status, "queue_position": position})
    if status == "IN_PROGRESS":
        return ProviderStatus(state="running", raw={"status": status})
    if status == "COMPLETED":
        error = body.get("error")
        if error not in (None, ""):
            return _failed(error, body.get("error_type"))
        return None
    raise ValueError(f"unknown fal request status {str(status)[:100]!r}")


def _url(value: object) -> str | None:
    if isinstance(value, dict):
        value = value.get("url")
    if isinstance(value, str) and value.startswith(("https://", "http://")) and len(value) <= 4096:
        return value
    return None


def output_urls(result: Mapping[str, Any]) -> tuple[str, ...]:
    """The files of a result: `images[].url`, `image.url`, `videos[].url`, `video.url` (in that order).

    Raises ValueError when a listed file has no http(s) URL.
    """
    urls: list[str] = []
    for many, one in (("images", "image"), ("videos", "video")):
        files = result.get(many)
        if files is not None:
            if not isinstance(files, list):
                raise ValueError(f"result.{many} is not a list")
            for item in files:
                url = _url(item)
                if url is None:
                    raise ValueError(f"result.{many} holds a file without an http(s) url")
                urls.append(url)
        single = result.get(one)
        if single is not None:
            url = _url(single)
            if url is None:
                raise ValueError(f"result.{one} has no http(s) url")
            urls.append(url)
    return tuple(urls)


def result_status(result: Mapping[str, Any]) -> ProviderStatus:
    """A result answer -> succeeded with its files, or failed when it holds none; raises ValueError."""
    urls = output_urls(result)
    if not urls:
        return ProviderStatus(state="failed", error_code="FAL_NO_OUTPUT", error_message="fal returned no files")
    return ProviderStatus(state="succeeded", progress=1.0, output_urls=urls, raw={"status": "COMPLETED"})


def failed_result(status: int, body: object) -> ProviderStatus:
    """A result that fal answers with a 4xx (the model refused or failed the input): the job failed."""
    known = _HTTP_CODES.get(status)
    code = known[0] if known is not None else f"FAL_HTTP_{status}"
    return ProviderStatus(
        state="failed", error_code=code, error_message=_message(body, f"the fal request failed ({status})")
    )


def start_timed_out() -> ProviderStatus:
    """fal's 504 with `X-Fal-Request-Timeout-Type: user`: no runner started within the deadline we gave."""
    return ProviderStatus(
        state="failed",
        error_code="FAL_START_TIMEOUT",
        error_message="No fal runner started the request before the generation's deadline.",
    )


def webhook_status(body: Mapping[str, Any]) -> ProviderStatus:
    """A webhook body (`status` OK/ERROR, `payload`, `error`) -> the status it reports; raises ValueError."""
    status = body.get("status")
    payload = body.get("payload")
    if status == "OK":
        if not isinstance(payload, dict):
            detail = body.get("payload_error") or "the webhook carried no payload"
            return ProviderStatus(state="succeeded", raw={"payload_error": str(detail)[:MAX_MESSAGE_CHARS]})
        return result_status(payload)
    if status == "ERROR":
        return _failed(body.get("error") or _message(payload, "the fal request failed"))
    raise ValueError(f"unknown fal webhook status {str(status)[:100]!r}")


def webhook_message(request_id: str, user_id: str, timestamp: str, body: bytes) -> bytes:
    """What fal signs: request id, user id, timestamp and the body's SHA-256 (hex), joined by newlines."""
    return "\n".join((request_id, user_id, timestamp, hashlib.sha256(body).hexdigest())).encode("utf-8")
