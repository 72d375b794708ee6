"""A Redis cache that degrades to a miss when Redis does not answer.

The cache only ever holds what can be recomputed (API throttle counters, the
certificate PDF, a chain verdict, the heartbeat check's "due" flag), so a
Redis outage must not turn pages into 500s: every read answers as a miss and
every write is dropped, with a warning in the log (at most once a minute per
process, not once per request). Redis's own errors only: a bug in a caller
still raises.
"""

import logging
import time

import redis.exceptions
from django.core.cache.backends.redis import RedisCache

logger = logging.getLogger(__name__)

REDIS_UNAVAILABLE = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    # Redis refusing writes while it loads or runs out of memory.
    redis.exceptions.BusyLoadingError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.OutOfMemoryError,
)
WARNING_INTERVAL_SECONDS = 60.0

# What each operation answers when Redis does not: a miss, or a write that did
# not happen. ``incr``/``decr`` raise ValueError as for a missing key.
_DEGRADED_ANSWERS = {
    "get": None,  # the caller's default: see DegradingRedisCache.get
    "get_many": dict,
    "has_key": False,
    "add": False,
    "set": None,
    "set_many": list,
    "touch": False,
    "delete": False,
    "delete_many": None,
    "clear": False,
}


class DegradingRedisCache(RedisCache):
    """Django's Redis cache, answering a miss while Redis is unavailable."""

    _last_warning = float("-inf")

    def _unavailable(self, operation: str, error: Exception) -> None:
        now = time.monotonic()
        if now - DegradingRedisCache._last_warning >= WARNING_INTERVAL_SECONDS:
            DegradingRedisCache._last_warning = now
            logger.warning(
                "Cache unavailable (%s during %s): answering as a miss.",
                error.__class__.__name__,
                operation,
            )

    def get(self, key, default=None, version=None):
        try:
            return super().get(key, default, version)
        except REDIS_UNAVAILABLE as error:
            self._unavailable("get", error)
            return default

    def incr(self, key, delta=1, version=None):
        try:
            return super().incr(key, delta, version)
        except REDIS_UNAVAILABLE as error:
            self._unavailable("incr", error)
            raise ValueError(f"Key '{key}' not found.") from error


def _degrading(operation: str):
    method = getattr(RedisCache, operation)
    answer = _DEGRADED_ANSWERS[operation]

    def degrading(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except REDIS_UNAVAILABLE as error:
            self._unavailable(operation, error)
            return answer() if callable(answer) else answer

    degrading.__name__ = operation
    degrading.__doc__ = method.__doc__
    return degrading


for _operation in _DEGRADED_ANSWERS:
    if _operation != "get":
        setattr(DegradingRedisCache, _operation, _degrading(_operation))
