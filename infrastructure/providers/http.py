"""The one shared HTTP client of a process, and what every provider adapter does with it alike.

Provider-specific answers (body codes, error payloads) stay in each adapter's `*_wire` module;
this module holds the transport side: timeouts and connection failures as retryable
`ProviderError`s, `Retry-After` parsing and the output download.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager

import httpx

from domain.ports import ProviderError
from infrastructure.settings import Settings


def build_http_client(settings: Settings) -> httpx.AsyncClient:
    """Timeouts from `provider_timeout_seconds` (connect capped at 10 s) and bounded pooling.

    Redirects are followed for CDN links; httpx drops Authorization on a cross-origin hop.
    """
    timeout = httpx.Timeout(settings.provider_timeout_seconds, connect=min(10.0, settings.provider_timeout_seconds))
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=30.0)
    return httpx.AsyncClient(timeout=timeout, limits=limits, follow_redirects=True, headers={"User-Agent": "genhub"})


@contextmanager
def transport_errors(what: str, *, failed: str = "unreachable") -> Iterator[None]:
    """Turn httpx timeouts into PROVIDER_TIMEOUT and other transport failures into PROVIDER_UNAVAILABLE.

    Both are retryable; the messages read "{what} timed out" and "{what} {failed}: {cause}".
    A connection never made (or never taken from the pool) sent nothing: `nothing_started`.
    Any later failure (a read timeout, a dropped connection) may come after the provider took the job.
    """
    try:
        yield
    except httpx.TransportError as exc:
        raise transport_error(exc, what, failed=failed) from exc


def transport_error(exc: httpx.TransportError, what: str, *, failed: str = "unreachable") -> ProviderError:
    """The `ProviderError` for a request that got no answer (see `transport_errors`)."""
    nothing_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
    if isinstance(exc, httpx.TimeoutException):
        return ProviderError("PROVIDER_TIMEOUT", f"{what} timed out", retryable=True, nothing_started=nothing_sent)
    return ProviderError(
        "PROVIDER_UNAVAILABLE", f"{what} {failed}: {exc}", retryable=True, nothing_started=nothing_sent
    )


#: Answers saying a provider took no job: out of credit (402), throttled (429), in maintenance (KIE's 455), and
#: a server error (5xx) the provider answered itself (issue #23 lists 5xx among the failures before any work
#: started). What stays uncertain is no answer from the provider after the request went out: a transport
#: failure, or a gateway in front of it saying the provider's answer did not come (`GATEWAY_STATUSES`).
REFUSED_STATUSES = frozenset({402, 429, 455})
#: A gateway's answer for an origin that got the request but answered wrongly or too late (bad gateway,
#: gateway timeout, Cloudflare's unknown error and origin timeout): the job may exist.
GATEWAY_STATUSES = frozenset({502, 504, 520, 524})
#: Answers blaming our credentials (401/403) or the route's model (404): nothing started, another route may work.
OUR_CONFIG_STATUSES = frozenset({401, 403, 404})


def classified(error: ProviderError, status: int) -> ProviderError:
    """`error` (for an answer of HTTP or body status `status`) marked with what that answer proves."""
    error.our_config = status in OUR_CONFIG_STATUSES
    error.nothing_started = (
        error.our_config or status in REFUSED_STATUSES or (500 <= status <= 599 and status not in GATEWAY_STATUSES)
    )
    return error


def retry_after_seconds(response: httpx.Response) -> float | None:
    """A `Retry-After` given in seconds; None when absent or an HTTP date (the caller's default applies)."""
    try:
        return max(0.0, float(response.headers.get("retry-after", "")))
    except ValueError:
        return None


async def stream_output(
    client: httpx.AsyncClient, url: str, *, headers: Mapping[str, str] | None = None
) -> AsyncIterator[bytes]:
    """Download an output file: 404/410 OUTPUT_EXPIRED, 429/5xx OUTPUT_UNAVAILABLE (retryable), other refusals
    OUTPUT_DOWNLOAD_FAILED. Callers decide which headers may travel to the output's host.
    """
    with transport_errors(f"downloading {url}", failed="failed"):
        async with client.stream("GET", url, headers=headers) as response:
            status = response.status_code
            if status in (404, 410):
                raise ProviderError("OUTPUT_EXPIRED", f"output is gone ({status}): {url}", retryable=False)
            if status == 429 or status >= 500:
                raise ProviderError("OUTPUT_UNAVAILABLE", f"output host answered {status}", retryable=True)
            if not response.is_success:
                raise ProviderError("OUTPUT_DOWNLOAD_FAILED", f"output host answered {status}", retryable=False)
            async for chunk in response.aiter_bytes():
                yield chunk
