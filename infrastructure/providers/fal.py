"""fal.ai queue API client: submit, status and result, cancel, webhooks signed with Ed25519.

The external id is `{app_id}/{request_id}` (see `fal_wire`). A webhook is verified against
fal's published JWKS (`fal_keys`): the signed message covers the request id, fal's user
id, the timestamp and the body's SHA-256. The webhook URL given to fal carries the app id
as `?app=...` so the callback names the same external id; fal does not sign that query,
but our MAC beside it covers it (`callback_bound`, domain/provider_callbacks.py), so a
webhook whose URL names another app is never adopted as this generation's job.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from domain.ports import ProviderCallback, ProviderError, ProviderJob, ProviderStatus
from infrastructure.providers import fal_wire
from infrastructure.providers.fal_keys import FalJwks
from infrastructure.providers.http import retry_after_seconds, stream_output, transport_errors
from infrastructure.providers.submission import job_input
from infrastructure.settings import Settings

APP_QUERY = "app"
SIGNATURE_HEADERS = (
    "x-fal-webhook-request-id",
    "x-fal-webhook-user-id",
    "x-fal-webhook-timestamp",
    "x-fal-webhook-signature",
)


class _Unverified(PermissionError):
    """No cached key verifies the signature (a rotation may explain it)."""


class FalProvider:
    """Implements `domain.ports.Provider` (and `AsyncCallbackVerifier`) for fal.ai's queue API."""

    name = "fal"
    supports_cancel = True

    def __init__(
        self,
        base_url: str,
        api_key: str,
        client: httpx.AsyncClient,
        jwks: FalJwks,
        *,
        tolerance_seconds: int = 300,
        webhook_url: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._client = client
        self._jwks = jwks
        self._tolerance = tolerance_seconds
        self._webhook_url = webhook_url
        self._clock = clock

    # ------------------------------------------------------------ queue API

    async def submit(self, job: ProviderJob) -> str:
        self._require_key()
        try:
            app_id, path = fal_wire.split_model_id(job.provider_model)
        except ValueError as exc:
            raise ProviderError("FAL_BAD_MODEL_ID", str(exc), retryable=False, our_config=True) from exc
        headers = self._headers()
        if job.deadline_at is not None:
            left = (job.deadline_at - datetime.fromtimestamp(self._clock(), UTC)).total_seconds()
            if left < 1:
                raise ProviderError("FAL_DEADLINE_PASSED", "the generation's deadline has passed", retryable=False)
            headers["X-Fal-Request-Timeout"] = str(math.floor(left))
        # The submit rate (FAL_RATE_LIMIT) is counted once, by routed submission.
        arguments = job_input(job)
        if job.input_urls:
            arguments["image_url"] = job.input_urls[0]
            arguments["image_urls"] = list(job.input_urls)
        params: dict[str, str] = {}
        if self._webhook_url:
            # Its own URL (FAL_WEBHOOKS): fal's webhooks need no shared secret, unlike the job's KIE-gated one.
            # It names the generation too, so the webhook of a job whose submit answer was lost is adopted.
            query = {**job.callback_query, APP_QUERY: app_id}
            params["fal_webhook"] = str(httpx.URL(self._webhook_url).copy_merge_params(query))
        response = await self._request("POST", f"/{path}", json=arguments, params=params, headers=headers)
        body = self._object(response, "the submit answer")
        try:
            request_id = fal_wire.submitted_request_id(body)
        except ValueError as exc:
            raise ProviderError("FAL_BAD_RESPONSE", str(exc), retryable=True) from exc
        return fal_wire.external_id(app_id, request_id)

    def callback_bound(self, provider_model: str) -> Mapping[str, str]:
        """The app of the model's jobs: in the webhook URL, under our MAC (implements `CallbackBinding`)."""
        try:
            app_id, _path = fal_wire.split_model_id(provider_model)
        except ValueError:
            return {}  # the submit refuses the model (FAL_BAD_MODEL_ID)
        return {APP_QUERY: app_id}

    async def status(self, external_id: str) -> ProviderStatus:
        self._require_key()
        base = self._request_path(external_id)
        response = await self._request("GET", f"{base}/status", headers=self._headers())
        body = self._object(response, "the status answer")
        try:
            status = fal_wire.queue_status(body)
        except ValueError as exc:
            raise ProviderError("FAL_BAD_RESPONSE", str(exc), retryable=True) from exc
        if status is not None:
            return status
        return await self._result(base)

    async def _result(self, base: str) -> ProviderStatus:
        response = await self._request("GET", base, headers=self._headers(), ok_statuses=range(200, 600))
        if response.status_code == 504 and response.headers.get("x-fal-request-timeout-type") == "user":
            # Our X-Fal-Request-Timeout ran out before a runner started: nothing ran.
            return fal_wire.start_timed_out()
        if response.status_code in (401, 403, 404, 429) or response.status_code >= 500:
            raise self._error(response)
        if not response.is_success:
            # fal keeps a failed request's error as its result (422: the model refused the input).
            return fal_wire.failed_result(response.status_code, self._json_or_none(response))
        body = self._object(response, "the result")
        try:
            return fal_wire.result_status(body)
        except ValueError as exc:
            raise ProviderError("FAL_BAD_RESPONSE", str(exc), retryable=True) from exc

    async def cancel(self, external_id: str) -> None:
        """202 CANCELLATION_REQUESTED; 400 ALREADY_COMPLETED and 404 NOT_FOUND leave nothing to cancel."""
        self._require_key()
        base = self._request_path(external_id)
        response = await self._request("PUT", f"{base}/cancel", headers=self._headers(), ok_statuses=range(200, 500))
        if response.is_success or response.status_code in (400, 404):
            return None
        raise self._error(response)

    def download(self, url: str) -> AsyncIterator[bytes]:
        # No Authorization header: result URLs are public CDN links, and the key must never leave fal's API.
        return stream_output(self._client, url)

    # ------------------------------------------------------------ webhooks

    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> ProviderCallback:
        """Not a path for fal: its webhooks need the app query and may need a key fetch (`verify_callback`).

        The callback use case calls `verify_callback` for every `AsyncCallbackVerifier`; this
        sync method only exists for the `Provider` protocol.
        """
        raise NotImplementedError("fal webhooks are verified by the async verify_callback")

    async def verify_callback(
        self, headers: Mapping[str, str], body: bytes, query: Mapping[str, str]
    ) -> ProviderCallback:
        """Verify a webhook against fal's JWKS (fetched when missing or expired, refetched on an unknown key).

        Raises PermissionError (unsigned, wrongly signed, stale), ValueError (malformed)
        or ServiceUnavailable (no key could be fetched yet).
        """
        self._signed_fields(headers)  # refuse unsigned requests before any fetch
        await self._jwks.ensure_fresh()
        try:
            return self._verify(headers, body, query)
        except _Unverified:
            if not await self._jwks.refresh_for_unknown():
                raise
        return self._verify(headers, body, query)

    def _signed_fields(self, headers: Mapping[str, str]) -> tuple[str, str, str, bytes]:
        lowered = {key.lower(): value for key, value in headers.items()}
        request_id, user_id, timestamp, signature_hex = (lowered.get(name, "").strip() for name in SIGNATURE_HEADERS)
        if not (request_id and user_id and timestamp and signature_hex):
            raise PermissionError("missing X-Fal-Webhook-* signature headers")
        if not timestamp.isdigit() or len(timestamp) > 12:
            raise PermissionError("X-Fal-Webhook-Timestamp is not a unix time")
        if abs(self._clock() - int(timestamp)) > self._tolerance:
            raise PermissionError("X-Fal-Webhook-Timestamp is outside the accepted window (replay?)")
        try:
            signature = bytes.fromhex(signature_hex)
        except ValueError as exc:
            raise PermissionError("X-Fal-Webhook-Signature is not hex") from exc
        if len(signature) != 64:
            raise PermissionError("X-Fal-Webhook-Signature is not an Ed25519 signature")
        return request_id, user_id, timestamp, signature

    def _verify(self, headers: Mapping[str, str], body: bytes, query: Mapping[str, str]) -> ProviderCallback:
        request_id, user_id, timestamp, signature = self._signed_fields(headers)
        if not self._jwks.verifies(fal_wire.webhook_message(request_id, user_id, timestamp, body), signature):
            raise _Unverified("X-Fal-Webhook-Signature does not verify with fal's published keys")
        # Signed from here on: the body's hash is part of the message.
        payload = fal_wire.json_object(body, "the webhook body")
        if payload.get("request_id") != request_id:
            raise ValueError("the webhook body names another request than its signed header")
        app = query.get(APP_QUERY)
        if app is None:
            raise ValueError("the webhook URL has no app query")
        external = fal_wire.external_id(app, request_id)
        return ProviderCallback(external_id=external, status=fal_wire.webhook_status(payload))

    # ------------------------------------------------------------ plumbing

    def _require_key(self) -> None:
        if not self._api_key:
            raise ProviderError("PROVIDER_NOT_CONFIGURED", "FAL_KEY is not set", retryable=False)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Key {self._api_key}", "Accept": "application/json"}

    @staticmethod
    def _request_path(external_id: str) -> str:
        try:
            app_id, request_id = fal_wire.parse_external_id(external_id)
        except ValueError as exc:
            raise ProviderError("FAL_BAD_EXTERNAL_ID", str(exc), retryable=False) from exc
        return f"/{app_id}/requests/{request_id}"

    async def _request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str],
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        ok_statuses: range = range(200, 300),
    ) -> httpx.Response:
        with transport_errors(f"fal {method} {path}", failed="failed"):
            response = await self._client.request(
                method, self._base_url + path, json=json, params=params, headers=headers, follow_redirects=False
            )
        if response.status_code not in ok_statuses:
            raise self._error(response)
        return response

    @staticmethod
    def _json_or_none(response: httpx.Response) -> object:
        try:
            return fal_wire.json_object(response.content, "the answer")
        except ValueError:
            return None

    def _error(self, response: httpx.Response) -> ProviderError:
        return fal_wire.error_for_status(
            response.status_code, self._json_or_none(response), retry_after=retry_after_seconds(response)
        )

    @staticmethod
    def _object(response: httpx.Response, what: str) -> dict[str, Any]:
        try:
            return fal_wire.json_object(response.content, what)
        except ValueError as exc:
            raise ProviderError("FAL_BAD_RESPONSE", str(exc), retryable=True) from exc


def from_settings(settings: Settings, *, http_client: httpx.AsyncClient) -> FalProvider:
    """Factory used by `infrastructure.providers.registry`."""
    jwks = FalJwks(
        settings.fal_jwks_url,
        http_client,
        ttl_seconds=settings.fal_jwks_ttl_seconds,
        refetch_interval_seconds=settings.fal_jwks_refetch_seconds,
        timeout_seconds=min(10.0, settings.provider_timeout_seconds),
    )
    return FalProvider(
        base_url=settings.fal_queue_base_url,
        api_key=settings.fal_key,
        client=http_client,
        jwks=jwks,
        tolerance_seconds=settings.callback_tolerance_seconds,
        webhook_url=settings.public_base_url.rstrip("/") + "/providers/fal/callback" if settings.fal_webhooks else None,
    )
