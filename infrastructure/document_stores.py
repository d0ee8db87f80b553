"""Where automatic persisted queries are kept: Redis (shared by every replica, with a TTL) or this process (LRU).

Both are bounded by a count of documents (PERSISTED_QUERY_CACHE_SIZE), the least recently
used forgotten first, and by the size cap each document passes before it is stored
(domain/use_cases/persisted_documents.py). In Redis the count is kept across every replica:
a sorted set indexes the documents by last use, and each store (a Lua script, atomic) adds
the document, drops index entries whose documents' TTL ran out, and evicts the oldest past
the cap. Each document also has a TTL (refreshed when it is read). A Redis that does not
answer makes `get` a miss and `put` a no-op: the client sends the text again.
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


# KEYS: the document, the index; ARGV: the text, the TTL in seconds, the cap.
_PUT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local ttl = tonumber(ARGV[2])
redis.call('SET', KEYS[1], ARGV[1], 'EX', ttl)
redis.call('ZADD', KEYS[2], now, KEYS[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - ttl * 1000000)
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[3])
if over > 0 then
  local oldest = redis.call('ZRANGE', KEYS[2], 0, over - 1)
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, over - 1)
  redis.call('DEL', unpack(oldest))
end
redis.call('EXPIRE', KEYS[2], ttl)
return over
"""

# KEYS: the document, the index; ARGV: the TTL in seconds. The text, its TTL and its place refreshed.
_GET = """
local value = redis.call('GETEX', KEYS[1], 'EX', tonumber(ARGV[1]))
if value then
  local t = redis.call('TIME')
  redis.call('ZADD', KEYS[2], 'XX', tonumber(t[1]) * 1000000 + tonumber(t[2]), KEYS[1])
end
return value
"""


class RedisDocumentStore:
    """`genhub:apq:{key}` strings with a TTL, refreshed on every hit, at most `max_entries` of them."""

    def __init__(self, redis: Redis, *, ttl_seconds: int, max_entries: int, prefix: str = KEY_PREFIX) -> None:
        self.redis = redis
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self.prefix = prefix
        #: The sorted set of stored documents' keys by last use (a name no document key can take).
        self.index = prefix.rstrip(":") + "-index"
        self._put = redis.register_script(_PUT)
        self._get = redis.register_script(_GET)

    async def get(self, key: str) -> str | None:
        try:
            value = await self._get(keys=[self.prefix + key, self.index], args=[self.ttl_seconds])
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
            await self._put(
                keys=[self.prefix + key, self.index],
                args=[text.encode("utf-8", "surrogatepass"), self.ttl_seconds, self.max_entries],
            )
        except (RedisError, OSError) as exc:
            log.warning("persisted query not stored: %s", exc)
