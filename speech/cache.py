"""A bounded cache of synthesized audio, so a repeated answer is not paid for twice.

Keyed by sha256 of (backend, voice, locale, format, text). The Redis cache is shared by all
replicas; it keeps recency in a sorted set and sizes in a hash so it can evict least recently used
entries once the total passes `max_bytes`, and every entry also expires after `ttl_s` without use.
A Redis failure only costs a cache miss: answering must not depend on the cache.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import redis

from speech.types import AudioFormat, Transcript

if TYPE_CHECKING:
    from speech.backend import SpeechBackend

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_TTL_S = 30 * 24 * 3600


def cache_key(*, backend: str, text: str, voice: str, locale: str, fmt: str) -> str:
    """sha256 hex of everything that changes the audio."""
    material = json.dumps([backend, voice, locale, fmt, text], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


class AudioCache(Protocol):
    def get(self, key: str) -> bytes | None: ...

    def put(self, key: str, data: bytes) -> None: ...


class MemoryAudioCache:
    """In-process LRU bounded by total bytes (for tests and single-process setups)."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._total = 0
        self._lock = threading.Lock()

    @property
    def total_bytes(self) -> int:
        return self._total

    def get(self, key: str) -> bytes | None:
        with self._lock:
            data = self._items.get(key)
            if data is not None:
                self._items.move_to_end(key)
            return data

    def put(self, key: str, data: bytes) -> None:
        if len(data) > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            self._total -= len(old) if old is not None else 0
            self._items[key] = data
            self._total += len(data)
            while self._total > self.max_bytes:
                _, evicted = self._items.popitem(last=False)
                self._total -= len(evicted)


class RedisAudioCache:
    """Shared LRU in Redis under `prefix` (e.g. 'sidecar:'): `{prefix}tts:<sha>` holds the audio,
    `{prefix}tts:lru` (sorted set, score = last use) and `{prefix}tts:sizes` (hash) track it."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str,
        max_bytes: int = DEFAULT_MAX_BYTES,
        ttl_s: int = DEFAULT_TTL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if client.connection_pool.connection_kwargs.get("decode_responses"):
            raise ValueError("RedisAudioCache needs a Redis client with decode_responses=False (audio is bytes)")
        self._redis = client
        self._prefix = f"{prefix}tts:"
        self.lru_key = f"{self._prefix}lru"
        self.sizes_key = f"{self._prefix}sizes"
        self.max_bytes = max_bytes
        self.ttl_s = ttl_s
        self._clock = clock

    def data_key(self, key: str) -> str:
        return f"{self._prefix}{key}"

    def get(self, key: str) -> bytes | None:
        try:
            data = self._redis.get(self.data_key(key))
            if data is None:
                return None
            pipe = self._redis.pipeline()
            pipe.zadd(self.lru_key, {key: self._clock()})
            pipe.hset(self.sizes_key, key, len(data))
            pipe.expire(self.data_key(key), self.ttl_s)
            pipe.execute()
            return data  # type: ignore[return-value]
        except redis.RedisError as exc:
            log.warning("speech cache unavailable, synthesizing without it: %s", exc)
            return None

    def put(self, key: str, data: bytes) -> None:
        if len(data) > self.max_bytes:
            return
        now = self._clock()
        try:
            pipe = self._redis.pipeline()
            pipe.set(self.data_key(key), data, ex=self.ttl_s)
            pipe.zadd(self.lru_key, {key: now})
            pipe.hset(self.sizes_key, key, len(data))
            pipe.expire(self.lru_key, self.ttl_s)
            pipe.expire(self.sizes_key, self.ttl_s)
            pipe.execute()
            self._evict(now)
        except redis.RedisError as exc:
            log.warning("speech cache unavailable, not storing: %s", exc)

    def total_bytes(self) -> int:
        return sum(int(v) for v in self._redis.hvals(self.sizes_key))

    def _evict(self, now: float) -> None:
        # Entries unused for ttl_s have expired in Redis already; drop their bookkeeping first.
        stale = self._redis.zrangebyscore(self.lru_key, "-inf", now - self.ttl_s)
        if stale:
            self._forget(stale)  # type: ignore[arg-type]
        total = self.total_bytes()
        while total > self.max_bytes:
            oldest: list[Any] = self._redis.zrange(self.lru_key, 0, 15)
            if not oldest:
                break
            sizes: list[Any] = self._redis.hmget(self.sizes_key, oldest)
            victims = []
            for member, size in zip(oldest, sizes, strict=True):
                if total <= self.max_bytes:
                    break
                victims.append(member)
                total -= int(size or 0)
            self._forget(victims)

    def _forget(self, members: Sequence[bytes | str]) -> None:
        names = [m.decode() if isinstance(m, bytes) else m for m in members]
        pipe = self._redis.pipeline()
        pipe.delete(*[self.data_key(n) for n in names])
        pipe.zrem(self.lru_key, *names)
        pipe.hdel(self.sizes_key, *names)
        pipe.execute()


class CachedSpeech:
    """A SpeechBackend whose `synthesize` consults `cache` first; `transcribe` passes through."""

    def __init__(self, backend: SpeechBackend, cache: AudioCache) -> None:
        self.backend = backend
        self.cache = cache
        self.name = backend.name

    def voice_for(self, locale: str | None) -> str:
        return self.backend.voice_for(locale)

    async def transcribe(
        self, audio: bytes, filename: str, content_type: str | None, locales: Sequence[str] = ()
    ) -> Transcript:
        return await self.backend.transcribe(audio, filename, content_type, locales)

    async def synthesize(self, text: str, *, locale: str, voice: str | None = None, fmt: AudioFormat = "ogg") -> bytes:
        voice = voice or self.backend.voice_for(locale)
        key = cache_key(backend=self.backend.name, text=text, voice=voice, locale=locale, fmt=fmt)
        # The Redis client is synchronous: keep a slow or unreachable Redis off the event loop.
        cached = await asyncio.to_thread(self.cache.get, key)
        if cached is not None:
            return cached
        audio = await self.backend.synthesize(text, locale=locale, voice=voice, fmt=fmt)
        await asyncio.to_thread(self.cache.put, key, audio)
        return audio
