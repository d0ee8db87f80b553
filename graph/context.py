"""The typed request context: the process's Services, the viewer (from the token, no database read), loaders."""

from __future__ import annotations

import contextlib
import uuid
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING

from strawberry.fastapi import BaseContext
from strawberry.types import Info as StrawberryInfo

from domain.errors import Unauthenticated
from domain.users import Principal
from infrastructure.bootstrap import Services

if TYPE_CHECKING:
    from graph.loaders import Loaders


@dataclass(slots=True)
class Credentials:
    """What the client presented: a raw bearer token (or nothing)."""

    token: str | None = None


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

    def __post_init__(self) -> None:
        super().__init__()

    @cached_property
    def _verified(self) -> tuple[Principal, datetime] | Unauthenticated | None:
        if not self.credentials.token:
            return None
        try:
            return self.services.accounts.verify_access(self.credentials.token)
        except Unauthenticated as exc:
            return exc

    @property
    def viewer(self) -> Principal | None:
        """The caller, or None when anonymous; a bad token (or one the access gate refuses) raises Unauthenticated."""
        verified = self._verified
        if isinstance(verified, Unauthenticated):
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
        self._account_confirmed = True
        principal = self.principal
        if principal is not None:
            reason = await self.services.accounts.refusal(principal)
            self.access_refused = Unauthenticated(reason) if reason is not None else None

    def reconfirm(self) -> None:
        """A WebSocket's context lives as long as the connection: each operation is checked afresh."""
        self._account_confirmed = False

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
