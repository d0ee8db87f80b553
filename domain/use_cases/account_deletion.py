"""Deleting an account (issue #20, point 4): the user's content goes, the ledger stays, anonymised.

Asked for with the account's password (a stolen access token alone cannot delete an
account; a wrong password is InvalidCredentials, rate-limited per account). One
transaction, holding the users row locked (so two deletions, or a deletion and an export
request, run one after the other):

- generations still running are canceled first, their reservations released exactly as
  `cancelGeneration` does (one ledger row each); then every generation goes with its
  assets, inputs' links and provider tasks, its objects queued in the deletion outbox.
  After the commit, as `cancelGeneration` does, the provider is told to stop each canceled
  one that reached it (CANCEL_TASK, carrying what it needs once the row is gone) and the
  CANCELED change is published, so board members watching one see it end;
- every chunk goes, its object queued too; every data export, its archive queued; every
  webhook endpoint with its secrets, and every webhook message and delivery (pending ones
  are never attempted);
- each board the user is the only OWNER of is deleted (other members' generations in it
  stay theirs, detached); from the others the user is removed; invitations to the
  user's address go;
- refresh tokens and password resets are deleted, API keys revoked, every session ended (the access gate refuses the account's
  tokens on every replica at once, and its open subscriptions are closed, after the
  commit's announcement: domain/use_cases/sessions.py); the users row stays as a tombstone (the ledger names it):
  e-mail replaced by `deleted:<id>` (no address can take that form, and the real address
  is free to register again), no password, `deleted_at` set. The credit account and
  every ledger row stay, so the ledger still sums to the balance.

A deletion that is retried after it succeeded (a lost reply) answers success again.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from datetime import datetime
from typing import Protocol

from domain.api_key_ports import ApiKeyRepository
from domain.boards import BoardRole
from domain.data_export_ports import DataExportRepository
from domain.errors import InvalidCredentials
from domain.events import Event
from domain.generations import Generation, GenerationStatus, allowed_sources
from domain.ports import AccessRevocations, Clock, EventPublisher, JobQueue, PasswordHasher
from domain.repositories import UnitOfWork
from domain.use_cases import storage_deletions
from domain.use_cases.generation_credits import release_hold
from domain.use_cases.generation_events import changed, publish_all
from domain.use_cases.generations import CANCEL_TASK, cancel_task_args
from domain.users import Principal

log = logging.getLogger("genhub.accounts")


class DeletionUnitOfWork(UnitOfWork, Protocol):
    """The unit of work with the data exports too (an account's exports go with it)."""

    @property
    def data_exports(self) -> DataExportRepository: ...

    @property
    def api_keys(self) -> ApiKeyRepository: ...

    async def __aenter__(self) -> DeletionUnitOfWork: ...


def tombstone_email(user_id: uuid.UUID) -> str:
    """Unique, and never an address (no `@`): nobody can register or sign in with it."""
    return f"deleted:{user_id}"


async def delete_account(
    *,
    principal: Principal,
    password: str,
    uow: DeletionUnitOfWork,
    hasher: PasswordHasher,
    jobs: JobQueue,
    publisher: EventPublisher,
    clock: Clock,
    revocations: AccessRevocations,
) -> bool:
    """Delete the principal's account; True when this call deleted it, False when it was deleted already.

    Password guesses are limited by the caller, in the user's one budget shared with changePassword
    but not with sign-in (graph/throttle.py, `password_checks`)."""
    user_id = principal.user_id
    async with uow:
        user = await uow.users.get(user_id)
    if user is None or user.deleted_at is not None:
        return False
    if not await hasher.verify(user.password_hash, password):
        raise InvalidCredentials("The password is not this account's.")
    now = clock.now()
    async with uow:
        locked = await uow.users.lock(user_id)
        if locked is None or locked.deleted_at is not None:
            return False  # a concurrent deletion won
        if locked.password_hash != user.password_hash:
            raise InvalidCredentials("The password changed meanwhile: try again with the current one.")
        ended: list[Event] = []
        canceled: list[Generation] = []
        keys = await _delete_content(uow, user_id, now, ended, canceled)
        await _leave_boards(uow, user_id)
        await uow.invitations.delete_for_email(locked.email)
        await uow.users.end_sessions(user_id, now)  # every access token issued so far is refused
        # Changing the e-mail (a key) waits for every transaction still inserting a row that references
        # the user (a generation started, a file uploaded just before) and holds off any new one until
        # this commits; what those committed meanwhile is deleted by the second pass.
        await uow.users.tombstone(user_id, email=tombstone_email(user_id), at=now)
        keys += await _delete_content(uow, user_id, now, ended, canceled)
        await uow.refresh_tokens.delete_all_of(user_id)
        await uow.password_resets.delete_all_of(user_id)
        await uow.api_keys.revoke_all_of(user_id, now)
        await storage_deletions.queue(uow, keys, now)
        await uow.commit()
    # Every process forgets the account (the gate refuses a tombstone) and closes its open subscriptions.
    await revocations.announce(user_id)
    log.info("account %s deleted; %d object(s) queued for deletion", user_id, len(keys))
    await publish_all(publisher, ended)  # never raises
    for generation in canceled:
        try:
            await jobs.enqueue(CANCEL_TASK, **cancel_task_args(generation))
        except Exception:  # deleted either way: the provider's task runs to its end, unread
            log.exception("queueing the provider cancel of generation %s failed", generation.id)
    if keys:
        await storage_deletions.kick(jobs)
    return True


async def _delete_content(
    uow: DeletionUnitOfWork,
    user_id: uuid.UUID,
    now: datetime,
    ended: list[Event],
    canceled: list[Generation],
) -> list[str]:
    """Cancel what runs, then delete every generation and chunk of the user; the object keys they held.

    Appends to `ended` the change each watcher of a generation sees last (its CANCELED, or, for one that
    had ended but still waited for thumbnails, the wait over) and to `canceled` the canceled generations
    a provider is working on, or whose provider slot they hold (waiting on an uncertain route).
    """
    generations = await uow.generations.lock_many(await uow.generations.ids_of_user(user_id), user_id=user_id)
    for generation in generations:
        if generation.is_final:
            if generation.thumbnails_pending:
                ended.append(changed(dataclasses.replace(generation, thumbnails_pending=0), generation.status, now))
            continue
        updated = await uow.generations.transition(
            generation.id,
            sources=allowed_sources(GenerationStatus.CANCELED),
            target=GenerationStatus.CANCELED,
            at=now,
            error_code="CANCELED",
            error_message="The account was deleted.",
        )
        # Whoever moved it last (this cancel, or a worker's ending just before the lock), what is
        # still held is released: a capture already taken is kept, as for any ended generation.
        await release_hold(uow, generation, now)
        if updated is not None:
            ended.append(changed(updated, generation.status, now))
            if updated.provider_task_id or updated.provider:  # a provider's task, or its slot (uncertain route)
                canceled.append(updated)
    ids = [g.id for g in generations]
    assets = await uow.generations.assets_of(ids)
    keys = [a.object_key for i in ids for a in assets.get(i, [])]
    await uow.generations.delete_many(ids)
    keys += await uow.chunks.delete_all_of(user_id)
    keys += await uow.data_exports.delete_for_user(user_id)
    # Endpoints, secrets, messages and deliveries (pending ones are never attempted).
    await uow.webhooks.delete_all_of(user_id)
    return keys


async def _leave_boards(uow: DeletionUnitOfWork, user_id: uuid.UUID) -> None:
    for board_id in await uow.boards.board_ids_of(user_id):
        members = await uow.boards.lock_members(board_id)
        owners = [m.user_id for m in members if m.role is BoardRole.OWNER]
        if owners == [user_id]:
            await uow.boards.delete(board_id)
        else:
            await uow.boards.remove_member(board_id, user_id)
