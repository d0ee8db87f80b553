"""Where automatic persisted queries are kept: Redis (shared by every replica, with a TTL) or this process (LRU).

Both are bounded: the memory store by a count of documents, the Redis store by a TTL per
key (refreshed when a document is read, so the ones in use stay) and by the size cap each
document passes before it is stored (domain/use_cases/persisted_documents.py). A Redis
that does not answer makes `get` a miss and `put` a no-op: the client sends the text again.
"""

from __future__ import annotations

import logging
from collections import OrderedDict

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger("genhub.documents")
KEY_PREFIX = "genhub:apq:"


class MemoryDocumentStore:
    """At most `max_entries` documents, the least recently used forgotten first."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._documents: OrderedDict[str, str] = OrderedDict()

    async def get(self, key: str) -> str | None:
        text = self._documents.get(key)
        if text is not None:
            self._documents.move_to_end(key)
        return text

    async def put(self, key: str, text: str) -> None:
        self._documents[key] = text
        self._documents.move_to_end(key)
        while len(self._documents) > self.max_entries:
            self._documents.popitem(last=False)

    def __len__(self) -> int:
        return len(self._documents)


class RedisDocumentStore:
    """`genhub:apq:{key}` strings with a TTL, refreshed on every hit."""

    def __init__(self, redis: Redis, *, ttl_seconds: int, prefix: str = KEY_PREFIX) -> None:
        self.redis = redis
        self.ttl_seconds = ttl_seconds
        self.prefix = prefix

    async def get(self, key: str) -> str | None:
        try:
            value = await self.redis.getex(self.prefix + key, ex=self.ttl_seconds)
        except (RedisError, OSError) as exc:
            log.warning("persisted query lookup failed, answered as a miss: %s", exc)
            return None
        if value is None:
            return None
        try:
            return value.decode("utf-8", "surrogatepass") if isinstance(value, bytes) else str(value)
        except UnicodeDecodeError:
            return None

    async def put(self, key: str, text: str) -> None:
        try:
            await self.redis.set(self.prefix + key, text.encode("utf-8", "surrogatepass"), ex=self.ttl_seconds)
        except (RedisError, OSError) as exc:
            log.warning("persisted query not stored: %s", exc)
