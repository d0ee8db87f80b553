"""Whether the account behind a verified access token still exists.

A token's signature proves who issued it, not that its account is still there: a token
outlives an account removed from the database (or one minted for another deployment
that shared the secret). Confirmations are remembered for `ttl_seconds` per process,
so a busy viewer costs one primary-key read per window, not one per request.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict

from domain.repositories import UnitOfWork


class KnownAccounts:
    """A bounded, time-limited memo of accounts confirmed to exist (least recently confirmed out)."""

    def __init__(self, *, ttl_seconds: float, max_entries: int = 100_000) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._confirmed: OrderedDict[uuid.UUID, float] = OrderedDict()

    async def exists(self, user_id: uuid.UUID, *, uow: UnitOfWork, now: float) -> bool:
        """`now` is a monotonic reading in seconds (the caller's clock)."""
        confirmed_at = self._confirmed.get(user_id)
        if confirmed_at is not None and now - confirmed_at < self.ttl_seconds:
            return True
        async with uow:
            user = await uow.users.get(user_id)
        if user is None:
            self.forget(user_id)
            return False
        self._confirmed[user_id] = now
        self._confirmed.move_to_end(user_id)
        while len(self._confirmed) > self.max_entries:
            self._confirmed.popitem(last=False)
        return True

    def forget(self, user_id: uuid.UUID) -> None:
        """The account is gone (or changed): the next request reads it again."""
        self._confirmed.pop(user_id, None)
