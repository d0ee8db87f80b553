"""Replicate predictions API client: create (by model or version), get, cancel, signed webhooks, downloads.

Asynchronous only (no `Prefer: wait`): a prediction is created, then followed by polling and,
when REPLICATE_WEBHOOK_SECRET is set and a callback URL is configured, by Replicate's
`start` and `completed` webhooks (hints: the finalize path reads the prediction itself).

Input mapping (kept simple; a model whose inputs are named otherwise takes them as params):
the generation's params, minus genhub's own (`_`-prefixed), are the prediction's `input`,
with `prompt` set to the generation's prompt; one input file goes in as `image`, several as
the list `image_input`. The generation's deadline becomes `Cancel-After`, so Replicate
stops (or never starts) work nobody will wait for.

The API token is sent to the API base URL's origin only; output files are fetched without
it from wherever they are (`replicate.delivery` links are public), unless they live on the
API's own origin.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from domain import webhooks
from domain.ports import JobSearch, ProviderCallback, ProviderError, ProviderJob, ProviderStatus
from infrastructure.providers.http import stream_output, transport_errors
from infrastructure.providers.replicate_lookup import MAX_PAGES, input_removed, matches, next_cursor, older_than
from infrastructure.providers.replicate_wire import (
    cancel_after,
    decode_json,
    error_for_answer,
    is_prediction_id,
    parse_model,
    status_from_prediction,
)
from infrastructure.providers.submission import job_input
from infrastructure.settings import Settings

#: Replicate's webhook events we ask for: the start, so that an uncertain create's prediction is adopted
#: as soon as it runs (domain/use_cases/adoption.py), and the end (the finalize path reads the rest).
WEBHOOK_EVENTS = ("start", "completed")


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or {"https": 443, "http": 80}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port


class ReplicateProvider:
    """Implements `domain.ports.Provider` for Replicate."""

    name = "replicate"
    supports_cancel = True

    def __init__(
        self,
        base_url: str,
        api_token: str,
        webhook_secret: str,
        client: httpx.AsyncClient,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._origin = _origin(self._base_url)
        self._api_token = api_token
        self._webhook_secret = webhook_secret
        self._client = client
        self._clock = clock

    async def submit(self, job: ProviderJob) -> str:
        self._require_token()
        try:
            model = parse_model(job.provider_model)
        except ValueError as exc:
            raise ProviderError("REPLICATE_BAD_MODEL", str(exc), retryable=False, our_config=True) from exc
        now = datetime.fromtimestamp(self._clock(), UTC)
        headers: dict[str, str] = {}
        if (deadline := cancel_after(job.deadline_at, now)) is not None:
            headers["Cancel-After"] = deadline
        # The submit rate (REPLICATE_RATE_LIMIT) is counted once, by routed submission.
        payload: dict[str, Any] = {"input": self._input(job)}
        if model.version is not None:
            payload["version"] = model.version
        if job.callback_url is not None and self._webhook_secret:
            payload["webhook"] = job.callback_url
            payload["webhook_events_filter"] = list(WEBHOOK_EVENTS)
        prediction = await self._call("POST", model.create_path, json=payload, headers=headers)
        try:
            prediction_id, _status = status_from_prediction(prediction)
        except ValueError as exc:
            raise ProviderError("PROVIDER_BAD_RESPONSE", f"Replicate create answered: {exc}", retryable=True) from exc
        return prediction_id

    async def find_job(self, job: ProviderJob, *, since: datetime) -> JobSearch:
        """The predictions an earlier create of `job` may have made (its answer lost), from the newest pages
        of the list back to `since` (infrastructure/providers/replicate_lookup.py); not `complete` when
        `MAX_PAGES` pages did not reach back that far, or when a prediction for the same model since then had
        its input removed (it may be the job: nothing proves it is not). A page without a `results` list is
        PROVIDER_BAD_RESPONSE. Implements `JobLookup`."""
        self._require_token()
        try:
            model = parse_model(job.provider_model)
        except ValueError as exc:
            raise ProviderError("REPLICATE_BAD_MODEL", str(exc), retryable=False, our_config=True) from exc
        sent = self._input(job)
        path = "/v1/predictions"
        found: list[str] = []
        unreadable = False
        for _ in range(MAX_PAGES):
            page = await self._call("GET", path)
            results = page.get("results")
            if not isinstance(results, list):
                # Not a page at all: it proves nothing absent (read as an empty one, it would send the job again).
                raise ProviderError(
                    "PROVIDER_BAD_RESPONSE", "Replicate's list answered without results", retryable=True
                )
            for prediction in results:
                if not isinstance(prediction, dict):
                    continue
                if matches(prediction, model=model, sent_input=sent, callback_query=job.callback_query, since=since):
                    found.append(str(prediction["id"]))
                elif input_removed(prediction, model=model, since=since):
                    # It may be ours, and nothing can tell: never proven absent while it is listed.
                    unreadable = True
            cursor = next_cursor(page)
            if cursor is None or older_than(page, since):
                return JobSearch(candidates=tuple(dict.fromkeys(found)), complete=not unreadable)
            path = f"/v1/predictions?cursor={quote(cursor, safe='')}"
        return JobSearch(candidates=tuple(dict.fromkeys(found)), complete=False)

    async def status(self, external_id: str) -> ProviderStatus:
        self._require_token()
        prediction = await self._call("GET", f"/v1/predictions/{self._checked_id(external_id)}")
        try:
            prediction_id, status = status_from_prediction(prediction)
        except ValueError as exc:
            raise ProviderError("PROVIDER_BAD_RESPONSE", f"Replicate get answered: {exc}", retryable=True) from exc
        if prediction_id != external_id:
            raise ProviderError("PROVIDER_BAD_RESPONSE", "Replicate answered for another prediction", retryable=True)
        return status

    async def cancel(self, external_id: str) -> None:
        """Cancel at Replicate; a prediction that already ended (or is unknown) is left as it is."""
        self._require_token()
        try:
            await self._call("POST", f"/v1/predictions/{self._checked_id(external_id)}/cancel")
        except ProviderError as exc:
            if exc.code != "REPLICATE_NOT_FOUND":
                raise

    def download(self, url: str) -> AsyncIterator[bytes]:
        headers = {"Authorization": f"Bearer {self._api_token}"} if self._is_api_origin(url) else {}
        return stream_output(self._client, url, headers=headers)

    def parse_callback(self, headers: Mapping[str, str], body: bytes) -> ProviderCallback:
        """Verify (Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature`) and decode.

        PermissionError when no secret is configured, or the message is unsigned, wrongly
        signed or outside the timestamp tolerance; ValueError when the body is no prediction.
        """
        if not self._webhook_secret:
            raise PermissionError("Replicate webhooks are refused: REPLICATE_WEBHOOK_SECRET is not set")
        lowered = {key.lower(): value for key, value in headers.items()}
        if not webhooks.verify(self._webhook_secret, lowered, body, now=int(self._clock())):
            raise PermissionError("the Replicate webhook signature is missing, wrong or stale")
        prediction_id, status = status_from_prediction(decode_json(body))
        return ProviderCallback(external_id=prediction_id, status=status)

    # ------------------------------------------------------------ helpers

    def _input(self, job: ProviderJob) -> dict[str, Any]:
        task_input = job_input(job)
        if len(job.input_urls) == 1:
            task_input["image"] = job.input_urls[0]
        elif job.input_urls:
            task_input["image_input"] = list(job.input_urls)
        return task_input

    def _is_api_origin(self, url: str) -> bool:
        try:
            return _origin(url) == self._origin
        except ValueError:
            return False

    @staticmethod
    def _checked_id(external_id: str) -> str:
        if not is_prediction_id(external_id):
            raise ProviderError("REPLICATE_BAD_ID", "not a Replicate prediction id", retryable=False)
        return external_id

    def _require_token(self) -> None:
        if not self._api_token:
            raise ProviderError("PROVIDER_NOT_CONFIGURED", "REPLICATE_API_TOKEN is not set", retryable=False)

    async def _call(
        self,
        method: str,
        path: str,
        *,
        json: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        sent = {"Authorization": f"Bearer {self._api_token}", "Accept": "application/json", **(headers or {})}
        with transport_errors(f"Replicate {method} {path}"):
            response = await self._client.request(method, self._base_url + path, json=json, headers=sent)
        try:
            body = decode_json(response.content)
        except ValueError:
            body = None
        if not response.is_success:
            lowered = {key.lower(): value for key, value in response.headers.items()}
            raise error_for_answer(response.status_code, body, lowered)
        if not isinstance(body, dict):
            raise ProviderError(
                "PROVIDER_BAD_RESPONSE", f"Replicate {method} {path} answered without a JSON object", retryable=True
            )
        return body


def from_settings(settings: Settings, *, http_client: httpx.AsyncClient) -> ReplicateProvider:
    """Factory used by `infrastructure.providers.registry`."""
    return ReplicateProvider(
        base_url=settings.replicate_base_url,
        api_token=settings.replicate_api_token,
        webhook_secret=settings.replicate_webhook_secret,
        client=http_client,
    )
