"""The access gate: whether an already-issued access token still works, checked on every request.

A token's signature proves who issued it, not that its account still exists, is not
suspended, and has not had its sessions ended since (password change or reset, sign-out).
The gate answers from a per-process memo of each user's AccessState, read from the
database on first use and again after `ttl_seconds`, and forgotten the moment a revocation
is announced (infrastructure/access_revocations.py delivers the announcements of every
process). While announcements cannot be received (`trusted` is False: the broadcast's
connection is down) nothing is remembered and every check reads the database, so a
revocation still takes effect at once, at the price of one primary-key read per request.

Open WebSocket connections `watch` their user: an announcement (or the periodic
`recheck_all`) runs each watcher's check, which closes the connection when refused.
"""

from __future__ import annotations

import logging
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import timedelta

from domain.ports import Clock
from domain.repositories import UnitOfWork
from domain.users import AccessState, Principal

log = logging.getLogger("genhub.access")

GONE = "The account of this token no longer exists: sign in again."

Check = Callable[[], Awaitable[None]]


class AccessGate:
    """A bounded, time-limited memo of AccessState per user, forgotten on announcements."""

    def __init__(
        self,
        *,
        ttl_seconds: float,
        session_window: timedelta,
        clock: Clock,
        monotonic: Callable[[], float],
        max_entries: int = 100_000,
    ) -> None:
        self.ttl_seconds = ttl_seconds
        #: How long an access token lives: a session ended longer ago than this has no live token left.
        self.session_window = session_window
        self.max_entries = max_entries
        self._clock = clock
        self._monotonic = monotonic
        self._states: OrderedDict[uuid.UUID, tuple[AccessState, float]] = OrderedDict()
        self._forgotten = 0  # bumped by every forget: a read that overlapped one is not remembered
        #: Bumped whenever everything is forgotten: what others remember (API keys) from before is stale.
        self.epoch = 0
        self._trusted = True
        self._watchers: dict[uuid.UUID, dict[int, Check]] = {}
        self._next_watch = 0
        #: Database reads made (for tests and metrics).
        self.reads = 0

    @property
    def trusted(self) -> bool:
        return self._trusted

    async def refusal(self, principal: Principal, *, uow: UnitOfWork) -> str | None:
        """Why the principal's token is refused now, or None when it is admitted."""
        state = await self.state(principal.user_id, uow=uow)
        return GONE if state is None else state.refusal(principal)

    async def state(self, user_id: uuid.UUID, *, uow: UnitOfWork) -> AccessState | None:
        now = self._monotonic()
        if self._trusted:
            hit = self._states.get(user_id)
            if hit is not None and now - hit[1] < self.ttl_seconds:
                return hit[0]
        forgotten = self._forgotten
        self.reads += 1
        async with uow:
            state = await uow.users.access_state(user_id, ended_since=self._clock.now() - self.session_window)
        if state is None:
            self._states.pop(user_id, None)
            return None
        # Remembered only when no announcement arrived meanwhile: the read may predate its commit.
        if self._trusted and forgotten == self._forgotten:
            self._states[user_id] = (state, now)
            self._states.move_to_end(user_id)
            while len(self._states) > self.max_entries:
                self._states.popitem(last=False)
        return state

    def forget(self, user_id: uuid.UUID) -> None:
        """The user's state changed: the next check reads it again."""
        self._forgotten += 1
        self._states.pop(user_id, None)

    def forget_all(self) -> None:
        self._forgotten += 1
        self.epoch += 1
        self._states.clear()

    async def revoked(self, user_id: uuid.UUID) -> None:
        """An announcement for `user_id`: forget its state and check its open connections."""
        self.forget(user_id)
        await self._run(list(self._watchers.get(user_id, {}).values()))

    def distrust(self) -> None:
        """Announcements may be missed from now on: remember nothing until `trust`."""
        self._trusted = False
        self.forget_all()

    async def trust(self) -> None:
        """Announcements arrive again; any sent meanwhile were missed: start afresh, check every connection."""
        if self._trusted:
            return
        self._trusted = True
        self.forget_all()
        await self.recheck_all()

    async def recheck_all(self) -> None:
        """Check every open connection (the safety net for an announcement lost in transit)."""
        await self._run([check for checks in list(self._watchers.values()) for check in list(checks.values())])

    def watch(self, user_id: uuid.UUID, check: Check) -> Callable[[], None]:
        """Run `check` whenever the user's access may have changed; returns the function that stops it."""
        key = self._next_watch
        self._next_watch += 1
        self._watchers.setdefault(user_id, {})[key] = check

        def stop() -> None:
            checks = self._watchers.get(user_id)
            if checks is not None:
                checks.pop(key, None)
                if not checks:
                    del self._watchers[user_id]

        return stop

    def watched(self) -> int:
        """Connections being watched."""
        return sum(len(checks) for checks in self._watchers.values())

    @staticmethod
    async def _run(checks: list[Check]) -> None:
        # One after another: the first check of a user reads its state, the others find it remembered.
        for check in checks:
            try:
                await check()
            except Exception:  # one connection's failure (the database down) must not spare the others
                log.exception("checking an open connection's access failed")
