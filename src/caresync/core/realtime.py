"""Per-user realtime events over the ``/ws`` WebSocket.

In-process fan-out by default: each connected socket has an asyncio queue, and :func:`publish` (callable
from any thread) drops the event into the queues of that user's sockets. With ``CARESYNC_REDIS_URL`` set,
:func:`publish` goes through Redis pub/sub instead and every web process relays the events it receives to
its own sockets, so a job finishing on a worker machine reaches the browser wherever it is connected.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import uuid
from collections import defaultdict
from typing import Any

from caresync.config import get_settings

log = logging.getLogger(__name__)
CHANNEL_PREFIX = "caresync:user:"
QUEUE_SIZE = 100


class Hub:
    """The sockets connected to this process, by user."""

    def __init__(self) -> None:
        self._queues: dict[uuid.UUID, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None

    def subscribe(self, user_id: uuid.UUID) -> asyncio.Queue[dict[str, Any]]:
        """Register a socket for ``user_id`` (call from the event loop)."""
        self._loop = asyncio.get_running_loop()
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        with self._lock:
            self._queues[user_id].add(queue)
        return queue

    def unsubscribe(self, user_id: uuid.UUID, queue: asyncio.Queue[dict[str, Any]]) -> None:
        """Forget a socket."""
        with self._lock:
            self._queues[user_id].discard(queue)
            if not self._queues[user_id]:
                del self._queues[user_id]

    def connected(self, user_id: uuid.UUID) -> int:
        """How many sockets this user has open here."""
        with self._lock:
            return len(self._queues.get(user_id, ()))

    def deliver(self, user_id: uuid.UUID, event: dict[str, Any]) -> None:
        """Hand ``event`` to this user's local sockets; safe from any thread."""
        with self._lock:
            queues = list(self._queues.get(user_id, ()))
        loop = self._loop
        if not queues or loop is None or loop.is_closed():
            return
        for queue in queues:
            loop.call_soon_threadsafe(_put_nowait, queue, event)


def _put_nowait(queue: asyncio.Queue[dict[str, Any]], event: dict[str, Any]) -> None:
    if queue.full():  # a stalled client loses its oldest event rather than blocking everyone
        queue.get_nowait()
    queue.put_nowait(event)


hub = Hub()


def publish(user_id: uuid.UUID, event: dict[str, Any]) -> None:
    """Send ``event`` to every socket of ``user_id``, in any process."""
    redis_url = get_settings().redis_url
    if not redis_url:
        hub.deliver(user_id, event)
        return
    try:
        _redis(redis_url).publish(f"{CHANNEL_PREFIX}{user_id}", json.dumps(event, default=str))
    except Exception:  # realtime is best effort; the UI also polls
        log.warning("could not publish a realtime event through Redis", exc_info=True)


_clients: dict[str, Any] = {}


def _redis(url: str) -> Any:
    import redis

    if url not in _clients:
        _clients[url] = redis.Redis.from_url(url)
    return _clients[url]


async def relay_from_redis(stop: asyncio.Event) -> None:
    """Forward events published through Redis to this process's sockets until ``stop`` is set."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(get_settings().redis_url)
    pubsub = client.pubsub()
    await pubsub.psubscribe(f"{CHANNEL_PREFIX}*")
    try:
        while not stop.is_set():
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if not message:
                continue
            channel = message["channel"].decode()
            try:
                user_id = uuid.UUID(channel.removeprefix(CHANNEL_PREFIX))
                hub.deliver(user_id, json.loads(message["data"]))
            except (ValueError, json.JSONDecodeError):
                log.warning("ignored a malformed realtime message")
    finally:
        await pubsub.aclose()
        await client.aclose()
