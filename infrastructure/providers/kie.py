"""KIE.ai jobs API client: `createTask`, `recordInfo`, signed callbacks, output download.

Success is the body's `code` 200, not only the HTTP status; see `kie_wire` for the
code -> retryable/permanent mapping. Timeouts and connection errors are retryable.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import httpx

from domain.ports import ProviderCallback, ProviderError, ProviderJob, ProviderStatus
from infrastructure.providers.http import build_http_client as build_http_client  # re-export
from infrastructure.providers.http import retry_after_seconds, stream_output, transport_errors
from infrastructure.providers.kie_wire import callback_data, error_for_code, int_or_none, sign, status_from_record
from infrastructure.providers.submission import job_input
from infrastructure.settings import Settings


class KieProvider:
    """Implements `domain.ports.Provider` for KIE.ai."""

    name = "kie"
    supports_cancel = False  # KIE has no cancel endpoint; the job runs out and is ignored

    def __init__(
        self,
        base_url: str,
        api_key: str,
        callback_secret: str,
        client: httpx.AsyncClient,
        tolerance_seconds: int = 300,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._callback_secret = callback_secret
        self._client = client
        self._tolerance = tolerance_seconds
        self._clock = clock

    async def submit(self, job: ProviderJob) -> str:
        # KIE's submit rate (KIE_RATE_LIMIT, 18 per 10 s) is counted once, by routed submission
        # (domain/use_cases/routed_submission.py), across every worker.
        self._require_key()
        task_input = job_input(job)
        if job.input_urls:
            task_input["image_urls"] = list(job.input_urls)
        payload: dict[str, Any] = {"model": job.provider_model, "input": task_input}
        if job.callback_url is not None and self._callback_secret:  # a callback we could not verify is noise
            payload["callBackUrl"] = job.callback_url
        data = await self._call("POST", "/api/v1/jobs/createTask", json=payload)
        task_id = data.get("taskId")
        if not isinstance(task_id, str) or not task_id:
            raise ProviderError("PROVIDER_BAD_RESPONSE", "createTask answered without a taskId", retryable=True)
        return task_id

    async def status(self, external_id: str) -> ProviderStatus:
        self._require_key()
        data = await self._call("GET", "/api/v1/jobs/recordInfo", params={"taskId": external_id})
        try:
            return status_from_record(data)
        except ValueError as exc:
            raise ProviderError("PROVIDER_BAD_RESPONSE", str(exc), retryable=True) from exc

    async def cancel(self, external_id: str) -> None:
        return None

    def download(self, url: str) -> AsyncIterator[bytes]:
        # No Authorization header: result URLs are public CDN links, and the API
        # key must never travel to another host.
        return stream_output(self._client, url)

    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> ProviderCallback:
        """Verify and decode a KIE callback.

        The signature covers only the task id and the timestamp, not the body: callers
        should treat the decoded status as a hint and confirm with `status()`.
        """
        if not self._callback_secret:
            raise PermissionError("KIE callbacks are refused: KIE_CALLBACK_SECRET is not set")
        lowered = {key.lower(): value for key, value in headers.items()}
        signature = lowered.get("x-webhook-signature", "").strip()
        timestamp = lowered.get("x-webhook-timestamp", "").strip()
        if not signature or not timestamp:
            raise PermissionError("missing X-Webhook-Signature or X-Webhook-Timestamp")
        try:
            sent_at = int(timestamp)
        except ValueError as exc:
            raise PermissionError("X-Webhook-Timestamp is not an integer") from exc
        if abs(self._clock() - sent_at) > self._tolerance:
            raise PermissionError("X-Webhook-Timestamp is outside the accepted window (replay?)")
        data = callback_data(body)
        task_id = data.get("taskId") or data.get("task_id")
        if not isinstance(task_id, str) or not task_id:
            raise ValueError("callback body has no taskId")
        expected = sign(self._callback_secret, task_id, timestamp)
        if not hmac.compare_digest(expected.encode("ascii"), signature.encode("utf-8", "replace")):
            raise PermissionError("X-Webhook-Signature does not match")
        return ProviderCallback(external_id=task_id, status=status_from_record(data))

    def _require_key(self) -> None:
        if not self._api_key:
            raise ProviderError("PROVIDER_NOT_CONFIGURED", "KIE_API_KEY is not set", retryable=False)

    async def _call(
        self,
        method: str,
        path: str,
        *,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Mapping[str, Any]:
        headers = {"Authorization": f"Bearer {self._api_key}", "Accept": "application/json"}
        with transport_errors(f"KIE {path}"):
            response = await self._client.request(
                method, self._base_url + path, json=json, params=params, headers=headers
            )
        try:
            body = response.json()
        except ValueError:
            body = None
        body = body if isinstance(body, dict) else {}
        body_code = int_or_none(body.get("code"))
        message = str(body.get("msg") or response.reason_phrase or "")
        if not response.is_success:
            # A body code that names the failure beats the bare HTTP status.
            code = body_code if body_code not in (None, 200) else response.status_code
            raise error_for_code(code, message, retry_after=retry_after_seconds(response))
        if body_code is None:
            raise ProviderError("PROVIDER_BAD_RESPONSE", f"KIE {path} answered without a code", retryable=True)
        if body_code != 200:
            raise error_for_code(body_code, message, retry_after=retry_after_seconds(response))
        data = body.get("data")
        if not isinstance(data, dict):
            raise ProviderError("PROVIDER_BAD_RESPONSE", f"KIE {path} answered without data", retryable=True)
        return data


def from_settings(settings: Settings, *, http_client: httpx.AsyncClient) -> KieProvider:
    """Factory used by `infrastructure.providers.registry`."""
    return KieProvider(
        base_url=settings.kie_base_url,
        api_key=settings.kie_api_key,
        callback_secret=settings.kie_callback_secret,
        client=http_client,
        tolerance_seconds=settings.callback_tolerance_seconds,
    )
