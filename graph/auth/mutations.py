"""register, login, refreshToken, deleteAccount; changePassword, requestPasswordReset, resetPassword, logout,
logoutEverywhere."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated

import strawberry

from domain.ports import RateBucket
from domain.use_cases.auth import Session
from domain.users import normalize_email
from graph.auth.types import (
    AuthPayload,
    AuthResult,
    ChangePasswordInput,
    ChangePasswordResult,
    ChangePasswordSuccess,
    DeleteAccountInput,
    DeleteAccountResult,
    DeleteAccountSuccess,
    LoginInput,
    LogoutResult,
    LogoutSuccess,
    RegisterInput,
    RequestPasswordResetResult,
    RequestPasswordResetSuccess,
    ResetPasswordInput,
    ResetPasswordResult,
    ResetPasswordSuccess,
)
from graph.context import Info
from graph.permissions import IsAuthenticated
from graph.throttle import account_bucket, ip_bucket, login_guesses, password_checks, throttle


async def _open_session(
    buckets: Sequence[RateBucket], info: Info, start: Callable[[], Awaitable[Session]]
) -> AuthResult:
    """The shared shape of the three mutations: the throttle (all buckets in one hit), the use case, the payload."""
    await throttle(info.context, buckets)
    return AuthPayload.from_session(await start())


@strawberry.type
class AuthMutations:
    @strawberry.mutation(description="Create an account and sign in.")
    async def register(
        self,
        info: Info,
        input: Annotated[RegisterInput, strawberry.argument(description="The new account's e-mail and password.")],
    ) -> AuthResult:
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
    async def login(
        self,
        info: Info,
        input: Annotated[LoginInput, strawberry.argument(description="The account's e-mail and password.")],
    ) -> AuthResult:
        services = info.context.services
        limits = services.settings
        return await _open_session(
            [
                ip_bucket(info.context, "login", limits.rate_limit_login),
                login_guesses(info.context, input.email),
            ],
            info,
            lambda: services.accounts.login(input.email, input.password),
        )

    @strawberry.mutation(description="Exchange a refresh token for a new session (the old token is spent).")
    async def refresh_token(
        self,
        info: Info,
        refresh_token: Annotated[
            str, strawberry.argument(description="The refreshToken of the last AuthPayload (each is used once).")
        ],
    ) -> AuthResult:
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
        "rate-limited per user, together with changePassword). Its generations (running ones are canceled first, their credits released), "
        "outputs, uploaded files, data exports, refresh tokens, and the boards it alone owns go; it leaves the "
        "other boards. The credit ledger is kept, anonymised. The e-mail address is free to register again at "
        "once. Files are deleted from storage by a worker moments later. Asking again once it is deleted answers "
        "success (or UNAUTHENTICATED once the token is refused).",
        permission_classes=[IsAuthenticated],
    )
    async def delete_account(
        self,
        info: Info,
        input: Annotated[DeleteAccountInput, strawberry.argument(description="The password, as proof.")],
    ) -> DeleteAccountResult:
        viewer = info.context.require_viewer()
        await throttle(info.context, [password_checks(info.context, viewer.user_id)])
        await info.context.services.account_deletion.delete(viewer, input.password)
        return DeleteAccountSuccess(user_id=strawberry.ID(str(viewer.user_id)))


@strawberry.type
class SessionMutations:
    @strawberry.mutation(
        description="Change the password (the current one required). Every other session ends at once; this "
        "one continues with the access token in the answer.",
        permission_classes=[IsAuthenticated],
    )
    async def change_password(
        self,
        info: Info,
        input: Annotated[ChangePasswordInput, strawberry.argument(description="The current and the new password.")],
    ) -> ChangePasswordResult:
        services = info.context.services
        limits = services.settings
        viewer = info.context.require_viewer()
        # Guessing the current password is limited per address as login is, and per user in the budget
        # deleteAccount shares (not login's account bucket, which anyone can spend with the e-mail).
        await throttle(
            info.context,
            [ip_bucket(info.context, "login", limits.rate_limit_login), password_checks(info.context, viewer.user_id)],
        )
        access = await services.passwords.change(viewer, input.current_password, input.new_password)
        return ChangePasswordSuccess(access_token=access.token, expires_in=access.expires_in)

    @strawberry.mutation(
        description="Send a link to choose a new password to this address, if an account has it. The answer "
        "does not say whether one has."
    )
    async def request_password_reset(
        self, info: Info, email: Annotated[str, strawberry.argument(description="The account's e-mail address.")]
    ) -> RequestPasswordResetResult:
        services = info.context.services
        limits = services.settings
        await throttle(
            info.context,
            [
                ip_bucket(info.context, "password-reset", limits.rate_limit_password_reset),
                account_bucket(info.context, "password-reset", email, limits.rate_limit_password_reset_account),
            ],
        )
        await services.passwords.request_reset(email)
        return RequestPasswordResetSuccess(email=normalize_email(email))

    @strawberry.mutation(
        description="Set a new password with the token of a reset link (it works once). Every session of "
        "the account ends: sign in with the new password."
    )
    async def reset_password(
        self,
        info: Info,
        input: Annotated[ResetPasswordInput, strawberry.argument(description="The link's token and the new password.")],
    ) -> ResetPasswordResult:
        services = info.context.services
        await throttle(info.context, [ip_bucket(info.context, "reset-password", services.settings.rate_limit_login)])
        user = await services.passwords.reset(input.token, input.new_password)
        return ResetPasswordSuccess(email=user.email)

    @strawberry.mutation(
        description="Sign out: this session's refresh token and access tokens stop working at once.",
        permission_classes=[IsAuthenticated],
    )
    async def logout(self, info: Info) -> LogoutResult:
        await info.context.services.accounts.end_session(info.context.require_viewer())
        return LogoutSuccess(everywhere=False)

    @strawberry.mutation(
        description="Sign out everywhere: every session of the account ends at once (refresh tokens, access "
        "tokens, open subscriptions), this one included.",
        permission_classes=[IsAuthenticated],
    )
    async def logout_everywhere(self, info: Info) -> LogoutResult:
        await info.context.services.accounts.end_all_sessions(info.context.require_viewer().user_id)
        return LogoutSuccess(everywhere=True)
