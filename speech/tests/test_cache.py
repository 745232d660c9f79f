"""The synthesis cache: LRU by bytes in memory and in Redis, and a cache hit saves an Azure call."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import redis
import respx
from redis.backoff import NoBackoff
from redis.retry import Retry

from speech.azure import AzureSpeech
from speech.cache import CachedSpeech, MemoryAudioCache, RedisAudioCache, cache_key

REDIS_URL = "redis://127.0.0.1:6379/0"
TTS = "https://westeurope.tts.speech.microsoft.com/cognitiveservices/v1"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def prefix() -> Iterator[str]:
    """A key prefix no one else uses; its keys are deleted afterwards."""
    name = f"test-speech-{uuid.uuid4().hex[:10]}:"
    yield name
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(f"{name}*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    r = redis.Redis.from_url(REDIS_URL)
    yield r
    r.close()


def test_cache_key_covers_everything_that_changes_the_audio() -> None:
    base = {"backend": "azure", "text": "Hi.", "voice": "en-US-AvaMultilingualNeural", "locale": "en-US", "fmt": "ogg"}
    changes = [
        ("text", "Hi!"),
        ("voice", "en-GB-SoniaNeural"),
        ("locale", "en-GB"),
        ("fmt", "mp3"),
        ("backend", "local"),
    ]
    keys = {cache_key(**{**base, field: value}) for field, value in changes}
    assert cache_key(**base) == cache_key(**base)
    assert len(keys | {cache_key(**base)}) == 6
    assert len(cache_key(**base)) == 64


def test_memory_cache_evicts_least_recently_used_by_bytes() -> None:
    cache = MemoryAudioCache(max_bytes=10)
    cache.put("a", b"1234")
    cache.put("b", b"5678")
    assert cache.get("a") == b"1234"  # a is now the most recent
    cache.put("c", b"90ab")  # 12 bytes: b goes
    cache.put("huge", b"x" * 11)  # bigger than the whole cache: not stored

    assert (cache.get("a"), cache.get("b"), cache.get("c"), cache.get("huge")) == (b"1234", None, b"90ab", None)
    assert cache.total_bytes == 8


def test_redis_cache_round_trip_sets_ttl(client: redis.Redis, prefix: str) -> None:
    cache = RedisAudioCache(client, prefix=prefix, ttl_s=3600)
    cache.put("k1", b"\x00OggS audio")

    assert cache.get("k1") == b"\x00OggS audio"
    assert cache.get("missing") is None
    assert 3590 < client.ttl(f"{prefix}tts:k1") <= 3600
    assert client.hgetall(cache.sizes_key) == {b"k1": b"11"}


def test_redis_cache_evicts_least_recently_used_by_total_bytes(client: redis.Redis, prefix: str) -> None:
    clock = Clock()
    cache = RedisAudioCache(client, prefix=prefix, max_bytes=10, clock=clock)
    for key in ("a", "b", "c"):
        clock.now += 1
        cache.put(key, b"123")
    clock.now += 1
    assert cache.get("a") == b"123"  # b is now the least recently used
    clock.now += 1
    cache.put("d", b"4567")  # 13 bytes: b must go

    assert client.zrange(cache.lru_key, 0, -1) == [b"c", b"a", b"d"]
    assert cache.total_bytes() == 10
    assert client.exists(f"{prefix}tts:b") == 0
    assert [cache.get(k) for k in ("a", "b", "c", "d")] == [b"123", None, b"123", b"4567"]


def test_redis_cache_forgets_entries_that_expired(client: redis.Redis, prefix: str) -> None:
    clock = Clock()
    cache = RedisAudioCache(client, prefix=prefix, max_bytes=100, ttl_s=60, clock=clock)
    cache.put("old", b"x" * 50)
    client.delete(f"{prefix}tts:old")  # what Redis does when the TTL runs out
    clock.now += 61
    cache.put("new", b"y" * 60)

    assert cache.get("new") == b"y" * 60
    assert client.hgetall(cache.sizes_key) == {b"new": b"60"}
    assert client.zrange(cache.lru_key, 0, -1) == [b"new"]


def test_redis_down_costs_only_a_miss(caplog: pytest.LogCaptureFixture) -> None:
    down = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0))
    cache = RedisAudioCache(down, prefix="x:")
    cache.put("k", b"audio")
    assert cache.get("k") is None
    assert "speech cache unavailable" in caplog.text


def test_redis_cache_refuses_a_decoding_client() -> None:
    with pytest.raises(ValueError, match="decode_responses=False"):
        RedisAudioCache(redis.Redis(decode_responses=True), prefix="x:")


@pytest.fixture
async def azure() -> AsyncIterator[AzureSpeech]:
    async with httpx.AsyncClient() as http:
        yield AzureSpeech(http, key="k", region="westeurope")


@respx.mock
async def test_a_cache_hit_avoids_a_second_azure_call(azure: AzureSpeech, client: redis.Redis, prefix: str) -> None:
    route = respx.post(TTS).mock(
        side_effect=[httpx.Response(200, content=b"OggS first"), httpx.Response(200, content=b"OggS second")]
    )
    speech = CachedSpeech(azure, RedisAudioCache(client, prefix=prefix))

    first = await speech.synthesize("Check-out is at 11.", locale="en-GB")
    again = await speech.synthesize("Check-out is at 11.", locale="en-GB")
    same_voice_named = await speech.synthesize("Check-out is at 11.", locale="en-GB", voice="en-GB-SoniaNeural")
    other = await speech.synthesize("Check-out is at 11.", locale="en-GB", fmt="mp3")

    assert (first, again, same_voice_named, other) == (b"OggS first", b"OggS first", b"OggS first", b"OggS second")
    assert route.call_count == 2
    assert speech.name == "azure" and speech.voice_for("en-GB") == "en-GB-SoniaNeural"
