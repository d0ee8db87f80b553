"""register, login, refreshToken."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import strawberry

from domain.use_cases import auth
from graph.auth.types import AuthPayload, AuthResult, LoginInput, RegisterInput
from graph.common.types import EmailTaken, InvalidCredentials, InvalidInput
from graph.common.types import RateLimited as RateLimitedType
from graph.context import Info
from graph.errors import result_or_error
from graph.throttle import throttle_ip

_AUTH_ERRORS = (InvalidCredentials, EmailTaken, InvalidInput, RateLimitedType)


async def _open_session(
    info: Info, action: str, limit: int, start: Callable[[], Awaitable[auth.Session]]
) -> AuthResult:
    """The shared shape of the three mutations: per-IP throttle, the use case, the payload."""

    async def call() -> AuthPayload:
        await throttle_ip(info.context, action, limit)
        return AuthPayload.from_session(await start())

    result: AuthResult = await result_or_error(call, *_AUTH_ERRORS)
    return result


@strawberry.type
class AuthMutations:
    @strawberry.mutation(description="Create an account and sign in.")
    async def register(self, info: Info, input: RegisterInput) -> AuthResult:
        c = info.context.container
        return await _open_session(
            info,
            "register",
            c.settings.rate_limit_register,
            lambda: auth.register(
                email=input.email, password=input.password, uow=c.uow(), hasher=c.hasher, tokens=c.tokens, clock=c.clock
            ),
        )

    @strawberry.mutation(description="Sign in with e-mail and password.")
    async def login(self, info: Info, input: LoginInput) -> AuthResult:
        c = info.context.container
        return await _open_session(
            info,
            "login",
            c.settings.rate_limit_login,
            lambda: auth.login(
                email=input.email, password=input.password, uow=c.uow(), hasher=c.hasher, tokens=c.tokens, clock=c.clock
            ),
        )

    @strawberry.mutation(description="Exchange a refresh token for a new session (the old token is spent).")
    async def refresh_token(self, info: Info, refresh_token: str) -> AuthResult:
        c = info.context.container
        return await _open_session(
            info,
            "refresh",
            c.settings.rate_limit_login,
            lambda: auth.refresh(refresh_token=refresh_token, uow=c.uow(), tokens=c.tokens, clock=c.clock),
        )
