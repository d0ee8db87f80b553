"""register, login, refreshToken, deleteAccount."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import strawberry

from domain.ports import RateBucket
from domain.use_cases.auth import Session
from graph.auth.types import (
    AuthPayload,
    AuthResult,
    DeleteAccountInput,
    DeleteAccountResult,
    DeleteAccountSuccess,
    LoginInput,
    RegisterInput,
)
from graph.context import Info
from graph.permissions import IsAuthenticated
from graph.throttle import account_bucket, ip_bucket, throttle


async def _open_session(
    buckets: Sequence[RateBucket], info: Info, start: Callable[[], Awaitable[Session]]
) -> AuthResult:
    """The shared shape of the three mutations: the throttle (all buckets in one hit), the use case, the payload."""
    await throttle(info.context, buckets)
    return AuthPayload.from_session(await start())


@strawberry.type
class AuthMutations:
    @strawberry.mutation(description="Create an account and sign in.")
    async def register(self, info: Info, input: RegisterInput) -> AuthResult:
        services = info.context.services
        limits = services.settings
        return await _open_session(
            [
                ip_bucket(info.context, "register", limits.rate_limit_register),
                account_bucket(info.context, "register", input.email, limits.rate_limit_register_account),
            ],
            info,
            lambda: services.accounts.register(input.email, input.password),
        )

    @strawberry.mutation(description="Sign in with e-mail and password.")
    async def login(self, info: Info, input: LoginInput) -> AuthResult:
        services = info.context.services
        limits = services.settings
        return await _open_session(
            [
                ip_bucket(info.context, "login", limits.rate_limit_login),
                account_bucket(info.context, "login", input.email, limits.rate_limit_login_account),
            ],
            info,
            lambda: services.accounts.login(input.email, input.password),
        )

    @strawberry.mutation(description="Exchange a refresh token for a new session (the old token is spent).")
    async def refresh_token(self, info: Info, refresh_token: str) -> AuthResult:
        services = info.context.services
        limits = services.settings
        # Per address before the token is looked up; per token family inside the use case.
        return await _open_session(
            [ip_bucket(info.context, "refresh", limits.rate_limit_login)],
            info,
            lambda: services.accounts.refresh(refresh_token),
        )

    @strawberry.mutation(
        description="Delete the viewer's account, confirmed with its password (InvalidCredentials otherwise, "
        "rate-limited per account). Its generations (running ones are canceled first, their credits released), "
        "outputs, uploaded files, data exports, refresh tokens, and the boards it alone owns go; it leaves the "
        "other boards. The credit ledger is kept, anonymised. The e-mail address is free to register again at "
        "once. Files are deleted from storage by a worker moments later. Asking again once it is deleted answers "
        "success (or UNAUTHENTICATED once the token is refused).",
        permission_classes=[IsAuthenticated],
    )
    async def delete_account(self, info: Info, input: DeleteAccountInput) -> DeleteAccountResult:
        viewer = info.context.require_viewer()
        await info.context.services.account_deletion.delete(viewer, input.password)
        return DeleteAccountSuccess(user_id=strawberry.ID(str(viewer.user_id)))
