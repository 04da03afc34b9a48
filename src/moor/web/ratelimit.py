"""A token bucket per client: a steady rate of requests with room for a short burst."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

_EPSILON = 1e-9  # a token refilled in exactly the time it takes is there, despite float rounding


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: float = 0.0
    """Seconds until the next request would be allowed (0 when this one was)."""


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """`rate` requests per second per key, at most `burst` at once.

    Memory stays bounded: beyond `max_keys` clients, the buckets that have been idle longest are
    dropped (a dropped client starts again with a full bucket, which is what idleness gives it anyway).
    """

    def __init__(
        self, rate: float, burst: int, *, max_keys: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a rate limit needs a positive rate and a burst of at least 1")
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def check(self, key: str) -> Decision:
        """Takes one token from `key`'s bucket if it has one."""
        now = self._clock()
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = _Bucket(tokens=float(self.burst), updated=now)
        else:
            elapsed = max(0.0, now - bucket.updated)
            bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate)
            bucket.updated = now
        self._buckets[key] = bucket  # re-inserted: the dict stays ordered from least to most recent
        self._evict()
        if bucket.tokens >= 1.0 - _EPSILON:
            bucket.tokens = max(0.0, bucket.tokens - 1.0)
            return Decision(allowed=True)
        return Decision(allowed=False, retry_after=(1.0 - bucket.tokens) / self.rate)

    @staticmethod
    def retry_after_header(decision: Decision) -> str:
        """Whole seconds for a Retry-After header, never 0."""
        return str(max(1, math.ceil(decision.retry_after)))

    def __len__(self) -> int:
        return len(self._buckets)

    def _evict(self) -> None:
        while len(self._buckets) > self.max_keys:
            del self._buckets[next(iter(self._buckets))]
