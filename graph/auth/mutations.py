"""register, login, refreshToken."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import strawberry

from domain.ports import RateBucket
from domain.use_cases import auth
from domain.use_cases.rate_limits import RateRule
from graph.auth.types import AuthPayload, AuthResult, LoginInput, RegisterInput
from graph.context import Info
from graph.throttle import account_bucket, ip_bucket, throttle


async def _open_session(
    buckets: Sequence[RateBucket], info: Info, start: Callable[[], Awaitable[auth.Session]]
) -> AuthResult:
    """The shared shape of the three mutations: the throttle (all buckets in one hit), the use case, the payload."""
    await throttle(info.context, buckets)
    return AuthPayload.from_session(await start())


@strawberry.type
class AuthMutations:
    @strawberry.mutation(description="Create an account and sign in.")
    async def register(self, info: Info, input: RegisterInput) -> AuthResult:
        c = info.context.container
        limits = c.settings
        return await _open_session(
            [
                ip_bucket(info.context, "register", limits.rate_limit_register),
                account_bucket(info.context, "register", input.email, limits.rate_limit_register_account),
            ],
            info,
            lambda: auth.register(
                email=input.email, password=input.password, uow=c.uow(), hasher=c.hasher, tokens=c.tokens, clock=c.clock
            ),
        )

    @strawberry.mutation(description="Sign in with e-mail and password.")
    async def login(self, info: Info, input: LoginInput) -> AuthResult:
        c = info.context.container
        limits = c.settings
        return await _open_session(
            [
                ip_bucket(info.context, "login", limits.rate_limit_login),
                account_bucket(info.context, "login", input.email, limits.rate_limit_login_account),
            ],
            info,
            lambda: auth.login(
                email=input.email, password=input.password, uow=c.uow(), hasher=c.hasher, tokens=c.tokens, clock=c.clock
            ),
        )

    @strawberry.mutation(description="Exchange a refresh token for a new session (the old token is spent).")
    async def refresh_token(self, info: Info, refresh_token: str) -> AuthResult:
        c = info.context.container
        limits = c.settings
        # Per address before the token is looked up; per token family inside the use case.
        return await _open_session(
            [ip_bucket(info.context, "refresh", limits.rate_limit_login)],
            info,
            lambda: auth.refresh(
                refresh_token=refresh_token,
                uow=c.uow(),
                tokens=c.tokens,
                clock=c.clock,
                limiter=c.limiter,
                family_rate=RateRule(limits.rate_limit_refresh_family, limits.rate_limit_account_window_seconds),
            ),
        )
