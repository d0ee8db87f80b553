"""GraphQL types of the auth area."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from domain import users as du
from domain.use_cases.auth import Session
from graph.common.node import Node
from graph.common.types import (
    AccountSuspended,
    EmailTaken,
    InvalidCredentials,
    InvalidInput,
    InvalidState,
    RateLimited,
)

strawberry.enum(du.Role, name="Role", description="What an account may do.")
Role = du.Role


@strawberry.type(description="An account.")
class User(Node):
    email: str
    role: Role
    created_at: datetime

    @classmethod
    def from_domain(cls, user: du.User) -> User:
        return cls(id=strawberry.ID(str(user.id)), email=user.email, role=user.role, created_at=user.created_at)


@strawberry.input(description="E-mail and password of a new account.")
class RegisterInput:
    email: str = strawberry.field(description="The new account's e-mail address (compared without case).")
    password: str = strawberry.field(description=f"At least {du.MIN_PASSWORD_LENGTH} characters.")


@strawberry.input(description="Credentials of an existing account.")
class LoginInput:
    email: str = strawberry.field(description="The account's e-mail address.")
    password: str = strawberry.field(description="The account's password.")


@strawberry.type(description="A signed-in session: a short-lived access token and a rotating refresh token.")
class AuthPayload:
    access_token: str
    refresh_token: str = strawberry.field(description="Single use: each refresh returns a new one.")
    expires_in: int = strawberry.field(description="Seconds until the access token expires.")
    user: User

    @classmethod
    def from_session(cls, session: Session) -> AuthPayload:
        return cls(
            access_token=session.access_token,
            refresh_token=session.refresh_token,
            expires_in=session.expires_in,
            user=User.from_domain(session.user),
        )


@strawberry.input(description="Delete the viewer's account: its password, as proof that the owner asks.")
class DeleteAccountInput:
    password: str = strawberry.field(description="The account's current password.")


@strawberry.type(description="The account is deleted (also when it already was: a retry).")
class DeleteAccountSuccess:
    user_id: strawberry.ID


DeleteAccountResult = Annotated[
    DeleteAccountSuccess | InvalidCredentials | RateLimited, strawberry.union("DeleteAccountResult")
]

AuthResult = Annotated[
    AuthPayload | InvalidCredentials | EmailTaken | InvalidInput | RateLimited | AccountSuspended,
    strawberry.union("AuthResult"),
]


@strawberry.input(description="The current password, and the new one.")
class ChangePasswordInput:
    current_password: str = strawberry.field(description="The password the account has now.")
    new_password: str = strawberry.field(
        description=f"At least {du.MIN_PASSWORD_LENGTH} characters, not the current one."
    )


@strawberry.type(
    description="The password is changed and every other session ended. The access token sent with this "
    "request stops working: use this one (the session's refresh token still works)."
)
class ChangePasswordSuccess:
    access_token: str
    expires_in: int = strawberry.field(description="Seconds until the access token expires.")


ChangePasswordResult = Annotated[
    ChangePasswordSuccess | InvalidCredentials | InvalidInput | RateLimited,
    strawberry.union("ChangePasswordResult"),
]


@strawberry.type(
    description="Accepted. If an account has this address, a link to choose a new password is on its way; "
    "the answer is the same when none has (so it tells nobody which addresses have accounts)."
)
class RequestPasswordResetSuccess:
    email: str = strawberry.field(description="The address as understood (trimmed, lower case).")


RequestPasswordResetResult = Annotated[
    RequestPasswordResetSuccess | InvalidInput | RateLimited,
    strawberry.union("RequestPasswordResetResult"),
]


@strawberry.input(description="The token from the reset link, and the new password.")
class ResetPasswordInput:
    token: str = strawberry.field(description="The token of the reset link (single use, expires).")
    new_password: str = strawberry.field(description=f"At least {du.MIN_PASSWORD_LENGTH} characters.")


@strawberry.type(description="The password is set, and every session of the account ended: sign in with it.")
class ResetPasswordSuccess:
    email: str


ResetPasswordResult = Annotated[
    ResetPasswordSuccess | InvalidCredentials | InvalidInput | RateLimited,
    strawberry.union("ResetPasswordResult"),
]


@strawberry.type(description="Signed out: the session's refresh token and access tokens stop working.")
class LogoutSuccess:
    everywhere: bool = strawberry.field(description="True: every session of the account ended, not only this one.")


LogoutResult = Annotated[LogoutSuccess | InvalidState, strawberry.union("LogoutResult")]
