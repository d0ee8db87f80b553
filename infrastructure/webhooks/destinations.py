"""Whether a webhook URL may be called: its form, its scheme, and every address its host resolves to.

The host is never judged by its spelling: it is handed to the resolver (getaddrinfo, as the
connection would), and each address that comes back is checked (infrastructure/webhooks/addresses.py).
So `2130706433`, `0x7f.1`, `127.1`, `[::ffff:127.0.0.1]` or a name pointing at 10.0.0.1 all end
up as the address they mean. The sender connects only to the addresses a check returned.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import httpx

from domain.webhooks import DeliveryFailure, ForbiddenDestination
from infrastructure.webhooks.addresses import IPAddress, IPNetwork, allowed_by, forbidden_reason

log = logging.getLogger("genhub.webhooks")

MAX_URL_LENGTH = 2048
#: Addresses kept from one resolution (a name with hundreds of records is not worth checking all).
MAX_ADDRESSES = 32

#: host, port -> the addresses as the resolver prints them (IPv6 zone ids included).
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]


async def system_resolver(host: str, port: int) -> list[str]:
    """getaddrinfo in the loop's executor (the way a socket would resolve the name)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for family, _type, _proto, _name, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        text = str(sockaddr[0])
        scope = sockaddr[3] if len(sockaddr) == 4 else 0
        # a scoped (link-local) answer keeps its zone, so the address rules see it
        addresses.append(f"{text}%{scope}" if scope and "%" not in text else text)
    return addresses


@dataclass(frozen=True, slots=True)
class CheckedDestination:
    """A URL that may be called, with the addresses its host resolved to (all of them allowed)."""

    url: httpx.URL
    host: str
    port: int
    addresses: tuple[IPAddress, ...]


def _refuse(failure: DeliveryFailure, message: str) -> ForbiddenDestination:
    return ForbiddenDestination(failure, message)


class ResolvingDestinations:
    """Implements domain.webhooks.WebhookDestinations by parsing the URL and resolving its host."""

    def __init__(
        self,
        *,
        allow_http: bool,
        allowed_networks: Sequence[IPNetwork] = (),
        dns_timeout_seconds: float = 5.0,
        resolver: Resolver = system_resolver,
    ) -> None:
        self._allow_http = allow_http
        self._allowed = tuple(allowed_networks)
        self._dns_timeout = dns_timeout_seconds
        self._resolver = resolver

    async def check(self, url: str) -> None:
        await self.resolve(url)

    def parse(self, url: str) -> tuple[httpx.URL, str, int]:
        """The URL's form alone (no resolution): absolute http(s), a host, no userinfo, capped length."""
        if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
            raise _refuse(DeliveryFailure.FORBIDDEN_ADDRESS, f"a webhook URL is 1 to {MAX_URL_LENGTH} characters")
        if not url.isprintable() or any(ch.isspace() for ch in url):
            raise _refuse(DeliveryFailure.FORBIDDEN_ADDRESS, "a webhook URL has no spaces or control characters")
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, ValueError, TypeError, UnicodeError):
            raise _refuse(DeliveryFailure.FORBIDDEN_ADDRESS, "not a valid URL") from None
        if parsed.scheme not in ("http", "https") or not url.lower().startswith(f"{parsed.scheme}://"):
            raise _refuse(DeliveryFailure.NOT_HTTPS, "a webhook URL is an absolute https URL")
        if parsed.scheme == "http" and not self._allow_http:
            raise _refuse(DeliveryFailure.NOT_HTTPS, "a webhook URL must use https")
        if parsed.userinfo:
            raise _refuse(DeliveryFailure.FORBIDDEN_ADDRESS, "a webhook URL carries no user name or password")
        # The ASCII (IDNA) form: what is resolved, and what Host and TLS name.
        host = parsed.raw_host.decode("ascii", "replace")
        if not host:
            raise _refuse(DeliveryFailure.FORBIDDEN_ADDRESS, "a webhook URL names a host")
        port = parsed.port if parsed.port is not None else (443 if parsed.scheme == "https" else 80)
        if not 1 <= port <= 65535:
            raise _refuse(DeliveryFailure.FORBIDDEN_ADDRESS, "a webhook URL's port is 1 to 65535")
        return parsed, host, port

    async def resolve(self, url: str) -> CheckedDestination:
        """The destination with every address its host resolves to; ForbiddenDestination if any is refused."""
        parsed, host, port = self.parse(url)
        try:
            async with asyncio.timeout(self._dns_timeout):
                answers = await self._resolver(host, port)
        except TimeoutError:
            raise _refuse(DeliveryFailure.DNS, "the host name did not resolve in time") from None
        except (OSError, UnicodeError, ValueError):
            raise _refuse(DeliveryFailure.DNS, "the host name does not resolve") from None
        addresses: list[IPAddress] = []
        for text in list(answers)[:MAX_ADDRESSES]:
            try:
                address = ipaddress.ip_address(text)
            except ValueError:
                raise _refuse(
                    DeliveryFailure.DNS, "the host name resolved to something that is not an address"
                ) from None
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise _refuse(DeliveryFailure.DNS, "the host name does not resolve")
        for address in addresses:
            if allowed_by(address, self._allowed):
                continue
            reason = forbidden_reason(address)
            if reason is not None:
                raise _refuse(DeliveryFailure.FORBIDDEN_ADDRESS, f"the host resolves to a forbidden address ({reason})")
        return CheckedDestination(url=parsed, host=host, port=port, addresses=tuple(addresses))


def warn_if_allowlisted_in_production(*, production: bool, allowed_networks: Sequence[IPNetwork]) -> None:
    if production and allowed_networks:
        log.warning(
            "WEBHOOK_ALLOWED_NETWORKS is set in production: webhooks may reach %s "
            "(meant for development and tests only)",
            ", ".join(str(network) for network in allowed_networks),
        )
