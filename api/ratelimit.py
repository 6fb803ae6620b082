"""Token buckets per caller: in-process, or shared by every API process through Redis.

A bucket holds up to `burst` tokens and refills at `per_second`; a request takes one.
When the bucket is empty the answer is how long until the next token: that becomes
`Retry-After`. With Redis the check-and-take is one Lua script, atomic across
processes. If Redis cannot be reached the limiter falls back to its in-process
buckets (and logs it) rather than refusing or failing requests.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict

from api.settings import Rate

log = logging.getLogger("trafi.api.ratelimit")


class MemoryBuckets:
    """Per-process buckets, least recently used dropped beyond `capacity` keys."""

    def __init__(self, capacity: int = 100_000, clock=time.monotonic):
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()
        self._capacity = capacity
        self._clock = clock

    def take(self, key: str, rate: Rate) -> float:
        """0.0 if a token was taken, else the seconds until one will be there."""
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.pop(key, (float(rate.burst), now))
            tokens = min(float(rate.burst), tokens + (now - at) * rate.per_second)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / rate.per_second
            self._buckets[key] = (tokens, now)
            if len(self._buckets) > self._capacity:
                self._buckets.popitem(last=False)
        return wait


# KEYS[1] bucket; ARGV: per_second, burst. Returns the wait in microseconds (0: taken).
# "now" is the Redis server's clock, so every API process agrees on it.
_TAKE = """
local state = redis.call('HMGET', KEYS[1], 't', 'at')
local clock = redis.call('TIME')
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local tokens, at = tonumber(state[1]), tonumber(state[2])
if tokens == nil then tokens = burst; at = now end
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 't', tokens, 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return math.ceil(wait * 1000000)
"""


class RedisBuckets:
    def __init__(self, url: str, *, prefix: str = "trafi:rl:"):
        import redis  # only needed when configured

        self._client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self._script = self._client.register_script(_TAKE)
        self._prefix = prefix
        self._fallback = MemoryBuckets()
        self._warned_at = 0.0

    def take(self, key: str, rate: Rate) -> float:
        try:
            return int(self._script(keys=[self._prefix + key], args=[rate.per_second, rate.burst])) / 1e6
        except Exception as error:  # any Redis failure: degrade to per-process limits, keep serving
            if time.monotonic() - self._warned_at > 60:
                self._warned_at = time.monotonic()
                log.warning("Redis rate limiter unavailable, using in-process buckets: %s", error)
            return self._fallback.take(key, rate)


class RateLimiter:
    def __init__(self, buckets: MemoryBuckets | RedisBuckets):
        self.buckets = buckets
        self.refused = 0

    def check(self, key: str, rate: Rate) -> int | None:
        """None when allowed; otherwise the whole seconds to put in Retry-After (at least 1)."""
        wait = self.buckets.take(key, rate)
        if wait <= 0:
            return None
        self.refused += 1
        return max(1, math.ceil(wait))


def limiter_for(redis_url: str | None) -> RateLimiter:
    return RateLimiter(RedisBuckets(redis_url) if redis_url else MemoryBuckets())


class SignInLockouts:
    """Addresses refused sign-in for now, because their failed attempts ran past the limit.

    The limiter counts failures only (a shop's customers behind one address may all sign
    in); but once past the limit, every attempt is refused *before* the password is
    checked — else a correct guess would still get through, and the limit would only
    change the status code of wrong ones. The failure count is the limiter's (shared
    through Redis when configured); the lockout is remembered per process, so another
    process allows at most one more attempt before it refuses too.
    """

    MAX_ENTRIES = 100_000

    def __init__(self) -> None:
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()

    def locked_for(self, address: str) -> int | None:
        """Whole seconds this address stays locked out, or None."""
        with self._lock:
            remaining = self._until.get(address, 0.0) - time.monotonic()
        return max(1, math.ceil(remaining)) if remaining > 0 else None

    def failed(self, limiter: RateLimiter, address: str, rate: Rate) -> int | None:
        """Count a failed attempt; the lockout in seconds if this one ran past the limit."""
        seconds = limiter.check(f"signin-failed:{address}", rate)
        if seconds is None:
            return None
        with self._lock:
            if len(self._until) >= self.MAX_ENTRIES:
                now = time.monotonic()
                self._until = {a: t for a, t in self._until.items() if t > now}
            self._until[address] = time.monotonic() + seconds
        return seconds
