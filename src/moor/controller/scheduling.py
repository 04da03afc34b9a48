"""When to reconcile an object again: after its interval (with jitter), or after a failure (with backoff)."""

from __future__ import annotations

import random
from dataclasses import dataclass

JITTER = 0.1
MAX_BACKOFF = 600.0


def jittered(seconds: float, jitter: float = JITTER) -> float:
    """`seconds` moved by up to ±10%, so objects created together don't reconcile in lockstep."""
    return seconds * (1 + random.uniform(-jitter, jitter))


@dataclass(frozen=True)
class Requeue:
    """The result of a reconcile: run again in `delay` seconds, or only when something changes (None)."""

    delay: float | None
    failed: bool = False

    @classmethod
    def after(cls, seconds: float) -> Requeue:
        return cls(seconds)

    @classmethod
    def never(cls) -> Requeue:
        return cls(None)

    @classmethod
    def backoff(cls, retry_interval: float, failures: int, cap: float = MAX_BACKOFF) -> Requeue:
        """After the n-th failure in a row: retry_interval * 2^n, capped, with jitter."""
        return cls(jittered(min(retry_interval * 2 ** min(failures, 16), max(cap, retry_interval))), failed=True)
