"""When to try a call again and how long to wait first: one policy for every edge that retries.

Exponential backoff from `first_delay`, capped at `max_delay`, with optional jitter so that many
clients failing together do not come back together; a server's `Retry-After` replaces the backoff
(still capped, so one answer cannot park a caller for long); `budget` bounds the time all tries of
one call may take. The policy only computes delays: the callers (cluster/client.py, notify/delivery.py)
decide which failures are worth another try.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


@dataclass(frozen=True)
class RetryPolicy:
    """`attempts` tries at most; waits first_delay, doubling, capped at max_delay; jitter in [0, 1]."""

    attempts: int = 5
    first_delay: float = 1.0
    max_delay: float = 30.0
    jitter: float = 0.0
    budget: float = math.inf

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after the `attempt`-th failed try, before jitter: Retry-After if given, else backoff."""
        wanted = retry_after if retry_after is not None else self.first_delay * 2.0 ** min(attempt - 1, 64)
        return float(min(max(wanted, 0.0), self.max_delay))

    def next_delay(
        self,
        attempt: int,
        elapsed: float,
        retry_after: float | None = None,
        *,
        rng: Callable[[], float] = random.random,
    ) -> float | None:
        """The wait before try `attempt + 1`, or None when the tries or the time budget are spent.

        Jitter shortens a backoff (by up to `jitter` of it) but lengthens a Retry-After, which is a minimum."""
        if attempt >= self.attempts:
            return None
        wait = self.delay(attempt, retry_after)
        if retry_after is None:
            wait *= 1.0 - self.jitter * rng()
        else:
            wait = min(wait * (1.0 + self.jitter * rng()), self.max_delay)
        if elapsed + wait > self.budget:
            return None
        return wait


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None when absent or garbled."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)
