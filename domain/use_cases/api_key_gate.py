"""Verifying API keys per request without a database read per request, and when each was last used.

Each process remembers what it read of a key (by its lookup id: the key, its secret's hash,
its owner's role) for `ttl_seconds`, in a bounded LRU memo, and remembers lookup ids that
name no key in a smaller one, so repeating a bad key costs no read. A key's revocation is
announced to every process (infrastructure/access_revocations.py), which forgets it at once
(`forget`); the access gate's distrust (announcements may be missed) empties the memo and
stops remembering, exactly as it does for access states. A flood of invented lookup ids
still reaches the database once each: the caller passes `before_read`, which the GraphQL
layer ties to a per-address rate limit. It is spent only on lookup ids this process has not
yet seen name a key (a bounded set kept even while distrusted): while the revocation channel
is down every verification reads, and real keys must not be throttled for that.

After the key itself, the owner's account is asked of the access gate (suspended or deleted
accounts' keys stop working); session versions do not apply to keys (domain/users.py).

`lastUsedAt`: each verification notes the moment in a per-process buffer; `take_used` hands
the buffer to a flusher that writes it in one batched UPDATE every few seconds
(API_KEY_LAST_USED_FLUSH_SECONDS), so lastUsedAt lags by at most that interval (and a
process that dies loses its unflushed moments).
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import datetime

from domain.api_key_ports import ApiKeyUnitOfWork
from domain.api_keys import ADMIN_SCOPES, DUMMY_HASH, INVALID_KEY, KeyCredential, parse, secret_matches
from domain.errors import Unauthenticated
from domain.ports import Clock
from domain.use_cases.access_gate import AccessGate
from domain.users import Principal, Role

BeforeRead = Callable[[], Awaitable[None]]


class ApiKeyGate:
    def __init__(
        self,
        *,
        access: AccessGate,
        clock: Clock,
        monotonic: Callable[[], float],
        ttl_seconds: float,
        max_entries: int = 100_000,
        max_unknown: int = 10_000,
    ) -> None:
        self.access = access
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self.max_unknown = max_unknown
        self._clock = clock
        self._monotonic = monotonic
        self._known: OrderedDict[str, tuple[KeyCredential, float, int]] = OrderedDict()
        self._unknown: OrderedDict[str, tuple[float, int]] = OrderedDict()
        #: Lookup ids seen to name a key (whatever the trust): their reads are not rate limited.
        self._existing: OrderedDict[str, None] = OrderedDict()
        self._lookups: dict[uuid.UUID, str] = {}
        self._forgotten = 0
        self._used: dict[uuid.UUID, datetime] = {}
        #: Database reads made (for tests and metrics).
        self.reads = 0

    async def verify(
        self, token: str, *, uow: ApiKeyUnitOfWork, before_read: BeforeRead | None = None, note_use: bool = True
    ) -> tuple[Principal, datetime | None]:
        """The key's principal and expiry; Unauthenticated(INVALID_KEY) for any defect of the key."""
        parsed = parse(token)
        if parsed is None:
            raise Unauthenticated(INVALID_KEY)
        lookup_id, secret = parsed
        credential = await self._credential(lookup_id, uow, before_read)
        # The same comparison whether or not the id is known: no timing tells the two apart.
        matches = secret_matches(secret, credential.secret_hash if credential is not None else DUMMY_HASH)
        now = self._clock.now()
        if credential is None or not matches or not credential.key.live(now):
            raise Unauthenticated(INVALID_KEY)
        key = credential.key
        if note_use:
            self._used[key.id] = now
        # An administrator's key acts as administrator only when it holds an admin scope.
        role = Role.ADMIN if credential.owner_is_admin and key.scopes & ADMIN_SCOPES else Role.USER
        return Principal(user_id=key.user_id, role=role, api_key_id=key.id, scopes=key.scopes), key.expires_at

    async def refusal(self, token: str, *, uow: ApiKeyUnitOfWork) -> str | None:
        """Why the key is refused now (revoked, expired, the account suspended or gone), or None."""
        try:
            principal, _ = await self.verify(token, uow=uow, note_use=False)
        except Unauthenticated as exc:
            return str(exc)
        return await self.access.refusal(principal, uow=uow)

    async def _credential(
        self, lookup_id: str, uow: ApiKeyUnitOfWork, before_read: BeforeRead | None
    ) -> KeyCredential | None:
        now = self._monotonic()
        epoch = self.access.epoch
        if self.access.trusted:
            hit = self._known.get(lookup_id)
            if hit is not None and now - hit[1] < self.ttl_seconds and hit[2] == epoch:
                self._known.move_to_end(lookup_id)
                return hit[0]
            miss = self._unknown.get(lookup_id)
            if miss is not None and now - miss[0] < self.ttl_seconds and miss[1] == epoch:
                return None
        if before_read is not None and lookup_id not in self._existing:
            await before_read()
        forgotten = self._forgotten
        self.reads += 1
        async with uow:
            credential = await uow.api_keys.credential(lookup_id)
        if credential is not None:
            self._existing[lookup_id] = None
            self._existing.move_to_end(lookup_id)
            while len(self._existing) > self.max_entries:
                self._existing.popitem(last=False)
        # Remembered only when nothing was forgotten meanwhile: the read may predate a revocation's commit.
        if self.access.trusted and forgotten == self._forgotten and epoch == self.access.epoch:
            self._remember(lookup_id, credential, now, epoch)
        return credential

    def _remember(self, lookup_id: str, credential: KeyCredential | None, now: float, epoch: int) -> None:
        if credential is None:
            self._unknown[lookup_id] = (now, epoch)
            self._unknown.move_to_end(lookup_id)
            while len(self._unknown) > self.max_unknown:
                self._unknown.popitem(last=False)
            return
        self._known[lookup_id] = (credential, now, epoch)
        self._known.move_to_end(lookup_id)
        self._lookups[credential.key.id] = lookup_id
        while len(self._known) > self.max_entries:
            _, (evicted, _, _) = self._known.popitem(last=False)
            self._lookups.pop(evicted.key.id, None)

    def forget(self, key_id: uuid.UUID) -> None:
        """The key changed (revoked): the next verification reads it again."""
        self._forgotten += 1
        lookup_id = self._lookups.pop(key_id, None)
        if lookup_id is not None:
            self._known.pop(lookup_id, None)

    def remembered(self) -> int:
        return len(self._known) + len(self._unknown)

    def take_used(self) -> dict[uuid.UUID, datetime]:
        """The moments noted since the last call (the buffer starts empty again)."""
        used, self._used = self._used, {}
        return used

    def put_back(self, used: dict[uuid.UUID, datetime]) -> None:
        """Moments a flush could not write: kept for the next one (a later moment wins)."""
        for key_id, at in used.items():
            if key_id not in self._used or self._used[key_id] < at:
                self._used[key_id] = at
