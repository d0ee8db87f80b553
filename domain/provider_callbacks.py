"""Which generation a provider's callback is for, named in the callback URL we give the provider.

Every callback URL carries `generation=<id>&sig=<mac>`: the MAC (HMAC-SHA256 under a key of
ours, over the provider's name, the generation id and any `BOUND_QUERY` parameter such as fal's
`app`) says we made that URL for that generation at that provider. A provider's own signature
covers its task id (and for some the body), not our query; ours covers the query. Together they let a callback for a task id we never recorded (an
uncertain submit: the provider took the job, its answer was lost) be adopted by the generation
that waits for it (domain/use_cases/adoption.py).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid
from collections.abc import Mapping, Sequence

GENERATION_QUERY = "generation"
SIGNATURE_QUERY = "sig"
_MAC_CHARS = 32
_MAC_SHAPE = re.compile(rf"[0-9a-f]{{{_MAC_CHARS}}}")


#: Query parameters a provider builds its task id from (fal's `app`): covered by the MAC when present, so an
#: adopted task id is the one we gave out, not one a replayed callback's edited URL names.
BOUND_QUERY = ("app",)
_MAX_BOUND_CHARS = 256


def _mac(key: str, provider: str, generation_id: uuid.UUID, bound: Mapping[str, str]) -> str:
    lines = ["genhub/v1/provider-callback", provider, str(generation_id)]
    lines += [f"{name}={bound[name]}" for name in BOUND_QUERY if name in bound]
    message = "\n".join(lines).encode("utf-8", "surrogatepass")
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()[:_MAC_CHARS]


def callback_query(
    key: str, provider: str, generation_id: uuid.UUID, bound: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The query naming `generation_id` in a callback URL given to `provider` (empty without a key), with the
    `bound` parameters (of `BOUND_QUERY`) the provider needs in it, under the MAC."""
    if not key:
        return {}
    extra = {name: value for name, value in (bound or {}).items() if name in BOUND_QUERY}
    mac = _mac(key, provider, generation_id, extra)
    return {GENERATION_QUERY: str(generation_id), SIGNATURE_QUERY: mac, **extra}


def named_generation(
    key: str, provider: str, query: Mapping[str, str], previous: Sequence[str] = ()
) -> uuid.UUID | None:
    """The generation a callback URL's query names, when its MAC is ours for `provider` under `key` or one of
    the `previous` keys (URLs given out before the secret was rotated); else None."""
    if not key:
        return None
    raw, mac = query.get(GENERATION_QUERY), query.get(SIGNATURE_QUERY)
    if not isinstance(raw, str) or not isinstance(mac, str) or len(raw) > 64 or not _MAC_SHAPE.fullmatch(mac):
        return None  # a MAC is lower-case hex only: anything else (non-ASCII too) is refused before comparing
    try:
        generation_id = uuid.UUID(raw)
    except ValueError:
        return None
    bound = {name: query[name] for name in BOUND_QUERY if name in query}
    if any(not isinstance(value, str) or len(value) > _MAX_BOUND_CHARS for value in bound.values()):
        return None
    given = mac.encode()
    # Every key is compared (no early exit), so the time taken says nothing of which one matched.
    macs = [_mac(k, provider, generation_id, bound) for k in (key, *previous) if k]
    matched = [hmac.compare_digest(expected.encode(), given) for expected in macs]
    return generation_id if any(matched) else None
