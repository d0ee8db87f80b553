"""The typed request context: the process's Services, the viewer (from the token, no database read), loaders."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Protocol

from strawberry.fastapi import BaseContext
from strawberry.types import Info as StrawberryInfo

from domain.api_keys import INVALID_KEY, looks_like_key
from domain.api_scopes import key_refusal
from domain.errors import DomainError, Forbidden, RateLimited, Unauthenticated
from domain.users import Principal
from infrastructure.bootstrap import Services

if TYPE_CHECKING:
    from graph.loaders import Loaders


@dataclass(slots=True)
class Credentials:
    """What the client presented: a raw bearer token (or nothing): an access token (JWT) or an API key."""

    token: str | None = None

    @property
    def is_api_key(self) -> bool:
        return self.token is not None and looks_like_key(self.token)


class StreamChannel(Protocol):
    """A stream that is not a WebSocket (Server-Sent Events, graph/sse.py), as the watch endings need it."""

    def is_open(self) -> bool: ...

    async def close(self, code: int, reason: str) -> None:
        """End the stream as a WebSocket close with `code` would (graph/subscriptions/session.py)."""
        ...


@dataclass
class Context(BaseContext):
    services: Services
    credentials: Credentials = field(default_factory=Credentials)
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    client_ip: str = "unknown"
    operation_name: str | None = None
    #: The transport writes a compiled read's JSON text into its answer as it is (HTTP does;
    #: the WebSocket transports hand `data` to strawberry's encoder, which needs objects).
    raw_answers: bool = False
    #: Set by `confirm_account`: the token verified, but the access gate refuses it (account gone or
    #: suspended, session ended); `viewer` raises it.
    access_refused: Unauthenticated | None = None
    _account_confirmed: bool = False
    #: An API key's verification (`authenticate`): its principal and expiry, or why it is refused.
    _key_verified: tuple[Principal, datetime | None] | DomainError | None = None
    _key_stale: bool = False
    #: The event stream an SSE subscription writes to (None: a WebSocket, whose socket is `request`, or plain HTTP).
    channel: StreamChannel | None = None
    _confirming: asyncio.Lock = field(default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        super().__init__()

    @cached_property
    def _token_verified(self) -> tuple[Principal, datetime | None] | Unauthenticated | None:
        if not self.credentials.token:
            return None
        try:
            return self.services.accounts.verify_access(self.credentials.token)
        except Unauthenticated as exc:
            return exc

    @property
    def _verified(self) -> tuple[Principal, datetime | None] | DomainError | None:
        if self.credentials.is_api_key:
            # Verified by `authenticate` (a read the first time a process meets the key); until then refused.
            return self._key_verified if self._key_verified is not None else Unauthenticated(INVALID_KEY)
        return self._token_verified

    def adopt(self, credentials: Credentials) -> None:
        """Take these credentials instead (a WebSocket's connection_init payload): verified afresh."""
        self.credentials = credentials
        self.__dict__.pop("_token_verified", None)
        self._key_verified = None
        self._account_confirmed = False

    async def authenticate(self) -> None:
        """Verify an API key (from this process's memo, or one read); nothing to do for a JWT."""
        token = self.credentials.token
        if token is None or not self.credentials.is_api_key:
            return
        if self._key_verified is not None and not self._key_stale:
            return
        self._key_stale = False
        try:
            self._key_verified = await self.services.api_keys.verify(token, before_read=self._key_read)
        except (Unauthenticated, RateLimited) as exc:
            self._key_verified = exc

    async def _key_read(self) -> None:
        """A key this process does not remember costs a read: limited per client address."""
        from graph.throttle import ip_bucket, throttle

        limit = self.services.settings.rate_limit_api_key_lookups
        await throttle(self, [ip_bucket(self, "api-key-lookup", limit)])

    def authorize_root(self, root_type: str, field_name: str) -> None:
        """A key may call a root field only with the scope domain/api_scopes.py names for it (FORBIDDEN);
        a key that failed verification is refused by every field, public ones too (UNAUTHENTICATED)."""
        if not self.credentials.is_api_key:
            return
        principal = self.viewer  # raises for a refused key or account
        if principal is None or principal.scopes is None:
            return
        reason = key_refusal(principal.scopes, root_type, field_name)
        if reason is not None:
            raise Forbidden(reason)

    @property
    def viewer(self) -> Principal | None:
        """The caller, or None when anonymous; a bad token (or one the access gate refuses) raises Unauthenticated."""
        verified = self._verified
        if isinstance(verified, DomainError):
            raise verified
        if self.access_refused is not None:
            raise self.access_refused
        return verified[0] if verified else None

    @property
    def principal(self) -> Principal | None:
        """The verified token's principal, whatever the access gate says (None: no valid token)."""
        verified = self._verified
        return verified[0] if isinstance(verified, tuple) else None

    async def confirm_account(self) -> None:
        """Before the first root field: the access gate must still admit a verified token
        (domain/use_cases/access_gate.py). Once per request; per operation on a WebSocket
        (`reconfirm`)."""
        if self._account_confirmed:
            return
        # The root fields of one operation run concurrently: the others wait for the first one's answer
        # (a field let through before it, an API key not yet verified, would be refused or admitted wrongly).
        async with self._confirming:
            if self._account_confirmed:
                return
            await self.authenticate()
            principal = self.principal
            if principal is not None:
                # (an API key was just verified by `authenticate`: what is left to ask is its owner's account)
                reason = await self.services.accounts.refusal(principal)
                self.access_refused = Unauthenticated(reason) if reason is not None else None
            self._account_confirmed = True

    def reconfirm(self) -> None:
        """A WebSocket's context lives as long as the connection: each operation is checked afresh
        (an API key is verified again: from the memo, which forgets a revoked key at once)."""
        self._account_confirmed = False
        self._key_stale = True  # the earlier answer serves the operations in flight until the new one is in

    @property
    def token_expires_at(self) -> datetime | None:
        verified = self._verified
        return verified[1] if isinstance(verified, tuple) else None

    def require_viewer(self) -> Principal:
        viewer = self.viewer
        if viewer is None:
            raise Unauthenticated("Sign in: send `Authorization: Bearer <accessToken>`.")
        return viewer

    @cached_property
    def loaders(self) -> Loaders:
        from graph.loaders import Loaders

        return Loaders(self.services.lookups)


Info = StrawberryInfo[Context, None]

_NO_SCOPE: AbstractAsyncContextManager[object] = contextlib.nullcontext()


def read_scope(context: object) -> AbstractAsyncContextManager[object]:
    """One read session for what runs inside (a query, a subscription event): its use cases and loaders.

    Opened at the first read only (infrastructure/db/read_scope.py); mutations are not run in
    one, so a request never holds a read connection while it waits for its write's.
    """
    return context.services.read_scope() if isinstance(context, Context) else _NO_SCOPE
