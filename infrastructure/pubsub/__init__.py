"""Status fan-out: domain events pushed to every subscriber of a user's channel.

Built on broadcaster's API (``connect``/``disconnect``/``publish``/``subscribe``):

- ``codec``: JSON encoding of :mod:`domain.events` (garbage decodes to ``ValueError``).
- ``bounded``: :class:`BoundedBroadcast`, broadcaster's ``Broadcast`` API of our own, whose
  per-subscriber queues are bounded (drop-oldest) and whose listener task survives backend
  errors; ``memory_backend``: the in-process backend (``memory://``).
- ``subscriber``: :class:`BoundedSubscriber`, one such queue, iterated with ``async for``.
- ``redis_backend``: :class:`RedisPubSubBackend`, a backend on ``redis.asyncio`` that
  reconnects with backoff and re-subscribes every active channel after a Redis restart.
- ``redis_publishing``: its PUBLISH side (:class:`PubSubUnavailable` when Redis stays down).
- ``publisher``: :class:`BroadcastPublisher` (the ``EventPublisher`` port, best effort),
  and :func:`open_broadcast` (``memory://`` or Redis from settings).

Redis pub/sub is fire-and-forget: an event published while a replica is disconnected
from Redis is lost for that replica's subscribers. Clients treat a subscription as a
hint and re-read state (query) after they (re)connect.
"""

from infrastructure.pubsub.bounded import BoundedBroadcast
from infrastructure.pubsub.codec import decode_event, encode_event, event_from_dict, event_to_dict
from infrastructure.pubsub.publisher import BroadcastPublisher, open_broadcast
from infrastructure.pubsub.redis_backend import RedisPubSubBackend
from infrastructure.pubsub.redis_publishing import PubSubUnavailable
from infrastructure.pubsub.subscriber import BoundedSubscriber, Unsubscribed

__all__ = [
    "Unsubscribed",
    "BoundedBroadcast",
    "BoundedSubscriber",
    "BroadcastPublisher",
    "PubSubUnavailable",
    "RedisPubSubBackend",
    "decode_event",
    "encode_event",
    "event_from_dict",
    "event_to_dict",
    "open_broadcast",
]
