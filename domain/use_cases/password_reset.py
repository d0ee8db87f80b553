"""Forgotten passwords: a single-use link by e-mail, then a new password that ends every session.

`request_password_reset` answers the same whether or not the address has an account: the
same statements run either way (PasswordResetRepository.issue), then one message is queued
either way (SEND_RESET_TASK, carrying the reset's id only); the worker sends the e-mail when
the reset exists (`reset_email`), and nothing for an unknown address. The token is derived
from the reset's id with a server key (ResetTokens): it travels only in the link (and the
outgoing e-mail while it is pending), never in the queue; the database keeps its SHA-256.
"""

from __future__ import annotations

import hmac
import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta

from domain.emails import EmailMessage
from domain.errors import InvalidCredentials, InvalidInput
from domain.ports import AccessRevocations, Clock, JobQueue, PasswordHasher, ResetTokens
from domain.repositories import UnitOfWork
from domain.users import User, is_email_address, normalize_email, refresh_token_hash, validate_new_password

log = logging.getLogger("genhub.accounts")

#: The mail task of a reset request: `reset_id` its only argument (workers/tasks.py).
SEND_RESET_TASK = "send_password_reset"
#: Longer than any token we issue (43 characters): longer input is refused before hashing.
MAX_TOKEN_LENGTH = 128
REFUSED = "The reset link is unknown, already used or expired: ask for a new one."


@dataclass(frozen=True, slots=True)
class ResetPolicy:
    ttl: timedelta
    #: The link e-mailed, with `{token}` where the token goes (in the fragment by default: never sent to a server).
    link_template: str
    product_name: str = "genhub"

    def link(self, token: str) -> str:
        return self.link_template.replace("{token}", token)


def reset_message(address: str, link: str, policy: ResetPolicy) -> EmailMessage:
    minutes = int(policy.ttl.total_seconds() // 60)
    text = (
        f"Someone (hopefully you) asked to reset the password of your {policy.product_name} account.\n\n"
        f"Choose a new password here (the link works once, for {minutes} minutes):\n\n{link}\n\n"
        "If it was not you, ignore this e-mail: your password stays as it is.\n"
    )
    return EmailMessage(to=address, subject=f"Reset your {policy.product_name} password", text=text)


async def request_password_reset(
    email: str, *, uow: UnitOfWork, jobs: JobQueue, clock: Clock, policy: ResetPolicy, tokens: ResetTokens
) -> None:
    """Issue a reset for the account with this address, if any, and queue its e-mail's task (queued
    whether or not there is an account: the worker sends nothing for an unknown address).

    Older unused links of the account stop working. InvalidInput only for text that is no
    e-mail address at all; nothing else tells whether the account exists. A failure to
    queue the task is logged, not answered.
    """
    address = normalize_email(email)
    if not is_email_address(address):
        raise InvalidInput.single("email", "must be a valid e-mail address")
    reset_id = uuid.uuid4()
    now = clock.now()
    token_hash = refresh_token_hash(tokens.token(reset_id))
    async with uow:
        await uow.password_resets.issue(
            address, reset_id=reset_id, token_hash=token_hash, at=now, expires_at=now + policy.ttl
        )
        await uow.commit()
    try:
        await jobs.enqueue(SEND_RESET_TASK, reset_id=str(reset_id))
    except Exception as exc:  # the reset stands; the user can ask again
        log.warning("password reset %s: its e-mail could not be queued: %r", reset_id, exc)


async def reset_email(
    reset_id: uuid.UUID, *, uow: UnitOfWork, clock: Clock, policy: ResetPolicy, tokens: ResetTokens
) -> EmailMessage | None:
    """The e-mail of the reset `reset_id` (SEND_RESET_TASK), to its account's address; None when there
    is nothing to send: no account had the address asked for, or the link was used, superseded or
    expired since. The same message each time (a redelivered task sends the same link).

    The reset is found by its id, and the token derived here must match the hash the API stored: when
    it does not, this process derives tokens with another key than the API's (URL_SIGNING_SECRET or
    JWT_SECRET differ between them), which is logged as an error rather than passing for an unknown
    address; the link would not work, so none is sent."""
    token = tokens.token(reset_id)
    async with uow:
        reset = await uow.password_resets.pending(reset_id, clock.now())
    if reset is None:
        return None
    if not hmac.compare_digest(reset.token_hash, refresh_token_hash(token)):
        log.error(
            "password reset %s: not sent, the token derived here does not match the one the API issued; "
            "every process (API, worker, scheduler) needs the same URL_SIGNING_SECRET (or JWT_SECRET)",
            reset_id,
        )
        return None
    return reset_message(reset.email, policy.link(token), policy)


async def reset_password(
    token: str,
    new_password: str,
    *,
    uow: UnitOfWork,
    hasher: PasswordHasher,
    clock: Clock,
    revocations: AccessRevocations,
) -> User:
    """Use the token up and set the password; every session of the account ends (refresh families
    and access tokens, at once). Returns the account.

    InvalidInput for a password registration would refuse (the token is not used);
    InvalidCredentials for an unknown, used or expired token (nothing changes).
    """
    validate_new_password(new_password)
    token = token.strip()
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise InvalidCredentials(REFUSED)
    new_hash = await hasher.hash(new_password)  # before the transaction: the token's row is not held meanwhile
    now = clock.now()
    token_hash = refresh_token_hash(token)
    async with uow:
        # The user's row first, then the token, in deleteAccount's order (it locks the user, then deletes
        # the resets): the other order would hold the reset while waiting for the deletion's user lock.
        owner = await uow.password_resets.owner(token_hash)
        user = await uow.users.lock(owner) if owner is not None else None
        if user is None or user.deleted_at is not None:  # a deleted account's link is dead
            raise InvalidCredentials(REFUSED)
        user_id = await uow.password_resets.use(token_hash, now)
        if user_id != user.id:  # used, superseded or expired
            raise InvalidCredentials(REFUSED)
        await uow.users.set_password_hash(user_id, new_hash)
        await uow.users.end_sessions(user_id, now)
        await uow.refresh_tokens.revoke_all(user_id, now)
        await uow.commit()
    await revocations.announce(user.id)
    return user
