"""POSTs one signed webhook message to a checked address, with deadlines and a capped read of the answer.

Each attempt checks the URL again (a name may point elsewhere since it was registered) and
connects only to an address that check returned: the URL's host is replaced by that address,
while the `Host` header and TLS (SNI and certificate verification) keep the name. No
redirects, no proxies from the environment, no cookies, no connection reuse (a pooled TLS
connection is keyed by address, and was verified for whichever name opened it).
"""

from __future__ import annotations

import asyncio
import errno
import ssl
import time
from collections.abc import Mapping
from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx

from domain.webhooks import DeliveryFailure, DeliveryOutcome, ForbiddenDestination
from infrastructure.webhooks.addresses import IPAddress
from infrastructure.webhooks.destinations import CheckedDestination, ResolvingDestinations

USER_AGENT = "genhub-webhooks/1"
#: Headers the sender sets itself; a caller's value for any of them is dropped.
OWN_HEADERS = frozenset(
    {"host", "user-agent", "content-type", "content-length", "transfer-encoding", "connection", "accept-encoding"}
)
#: Addresses of one name tried in turn when connecting fails (all of them checked).
MAX_CONNECT_TRIES = 3


class _ResponseTooLarge(Exception):
    pass


def _no_cookies() -> CookieJar:
    """A jar that keeps nothing: a receiver's Set-Cookie never reaches another receiver."""
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


def build_client(
    *, connect_timeout: float, timeout: float, concurrency: int, verify: ssl.SSLContext | bool = True
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout, connect=connect_timeout),
        limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=0),
        follow_redirects=False,
        trust_env=False,
        cookies=_no_cookies(),
        verify=verify,
        headers={"user-agent": USER_AGENT},
    )


def _host_header(checked: CheckedDestination) -> str:
    host = f"[{checked.host}]" if ":" in checked.host else checked.host
    default = 443 if checked.url.scheme == "https" else 80
    return host if checked.port == default else f"{host}:{checked.port}"


def _connect_detail(exc: BaseException) -> str:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return "TLS certificate not valid for the host"
        if isinstance(cause, ssl.SSLError):
            return "TLS handshake failed"
        if isinstance(cause, ConnectionRefusedError) or getattr(cause, "errno", None) == errno.ECONNREFUSED:
            return "connection refused"
        cause = cause.__cause__ or cause.__context__
    text = str(exc).lower()
    if "refused" in text:
        return "connection refused"
    if "certificate" in text:
        return "TLS certificate not valid for the host"
    if "ssl" in text or "tls" in text:
        return "TLS handshake failed"
    return "connection failed"


class _Outcomes:
    """Builds the outcomes of one attempt, each with the time since the attempt started."""

    def __init__(self, started: float) -> None:
        self._started = started

    def __call__(self, status: int | None, failure: DeliveryFailure | None, detail: str) -> DeliveryOutcome:
        elapsed_ms = int((time.monotonic() - self._started) * 1000)
        return DeliveryOutcome(status_code=status, failure=failure, detail=detail, elapsed_ms=elapsed_ms)


class HttpWebhookSender:
    """Implements domain.webhooks.WebhookSender over httpx; never raises for network or receiver failures."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        destinations: ResolvingDestinations,
        *,
        timeout_seconds: float,
        max_response_bytes: int,
        concurrency: int,
    ) -> None:
        self._client = client
        self._destinations = destinations
        self._deadline = timeout_seconds
        self._max_bytes = max_response_bytes
        self._slots = asyncio.Semaphore(concurrency)

    @property
    def destinations(self) -> ResolvingDestinations:
        """The check every attempt runs first (the same rules as at registration)."""
        return self._destinations

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send(self, url: str, *, headers: Mapping[str, str], body: bytes) -> DeliveryOutcome:
        outcome = _Outcomes(time.monotonic())
        async with self._slots:
            status: list[int] = []  # the receiver's status once it answered (kept through a timeout)
            try:
                async with asyncio.timeout(self._deadline):
                    checked = await self._destinations.resolve(url)
                    return await self._deliver(checked, headers, body, status, outcome)
            except ForbiddenDestination as refused:
                return outcome(None, refused.failure, refused.message)
            except TimeoutError:
                if status and 200 <= status[0] < 300:
                    # The receiver acknowledged: delivered, however long its answer then took to read.
                    return outcome(status[0], None, f"HTTP {status[0]}, answer not read in time")
                return outcome(status[0] if status else None, DeliveryFailure.TIMEOUT, "deadline passed")

    async def _deliver(
        self,
        checked: CheckedDestination,
        headers: Mapping[str, str],
        body: bytes,
        status: list[int],
        outcome: _Outcomes,
    ) -> DeliveryOutcome:
        sent_headers = {name: value for name, value in headers.items() if name.lower() not in OWN_HEADERS}
        sent_headers.update(
            {
                "host": _host_header(checked),
                "user-agent": USER_AGENT,
                "content-type": "application/json",
                "accept-encoding": "identity",
            }
        )
        extensions = {"sni_hostname": checked.host} if checked.url.scheme == "https" else {}
        failure, detail = DeliveryFailure.CONNECT, "connection failed"
        for address in checked.addresses[:MAX_CONNECT_TRIES]:
            request = self._client.build_request(
                "POST", _pinned(checked.url, address), headers=sent_headers, content=body, extensions=extensions
            )
            try:
                return await self._exchange(request, status, outcome)
            except httpx.ConnectTimeout:
                detail = "connect timed out"
                failure = DeliveryFailure.TIMEOUT
            except httpx.ConnectError as exc:
                detail = _connect_detail(exc)
                failure = DeliveryFailure.CONNECT
        return outcome(None, failure, detail)

    async def _exchange(self, request: httpx.Request, status: list[int], outcome: _Outcomes) -> DeliveryOutcome:
        try:
            response = await self._client.send(request, stream=True, follow_redirects=False)
        except (httpx.ConnectError, httpx.ConnectTimeout):
            raise
        except httpx.TimeoutException:
            return outcome(None, DeliveryFailure.TIMEOUT, "no answer in time")
        except (httpx.HTTPError, OSError, ssl.SSLError) as exc:
            return outcome(None, DeliveryFailure.CONNECT, _connect_detail(exc))
        try:
            code = response.status_code
            status.append(code)
            if 300 <= code < 400:
                return outcome(code, DeliveryFailure.REDIRECTED, f"HTTP {code}: redirects are not followed")
            if not 200 <= code < 300:
                return outcome(code, DeliveryFailure.HTTP_STATUS, f"HTTP {code}")
            # A 2xx is the receiver's acknowledgement: the message is delivered whatever follows.
            # The answer is read up to the cap (then the connection is dropped), never beyond.
            try:
                await self._read_capped(response)
            except _ResponseTooLarge:
                return outcome(code, None, f"HTTP {code}, answer over {self._max_bytes} bytes left unread")
            except httpx.TimeoutException:
                return outcome(code, None, f"HTTP {code}, answer not read in time")
            except (httpx.HTTPError, OSError, ssl.SSLError):
                return outcome(code, None, f"HTTP {code}, connection lost while reading the answer")
            return outcome(code, None, f"HTTP {code}")
        finally:
            await response.aclose()

    async def _read_capped(self, response: httpx.Response) -> None:
        """Read the raw (still encoded) answer up to the cap; past it, stop and say so."""
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self._max_bytes:
            raise _ResponseTooLarge
        seen = 0
        async for chunk in response.aiter_raw():
            seen += len(chunk)
            if seen > self._max_bytes:
                raise _ResponseTooLarge


def _pinned(url: httpx.URL, address: IPAddress) -> httpx.URL:
    """The URL with its host replaced by a checked address (the name stays in Host and SNI)."""
    return url.copy_with(host=str(address))
