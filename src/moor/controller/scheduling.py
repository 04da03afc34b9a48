"""When to reconcile an object again: after its interval (with jitter), or after a failure (with backoff).

A failure of the cluster itself (the API server unreachable, too slow, or answering 429/5xx) is retried
with a backoff capped at `CLUSTER_BACKOFF_CAP`: the object is not what is wrong, and it should be
reconciled again soon after the API server recovers.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from moor.cluster.cache import InformerNotSynced
from moor.cluster.client import ApiError, ApiUnreachable
from moor.errors import MoorError
from moor.resources import conditions

JITTER = 0.1
MAX_BACKOFF = 600.0
CLUSTER_BACKOFF_CAP = 15.0
UNANSWERED_LISTS = frozenset({"unreachable", "timeout", "watch broken", "server error", "too many requests"})
"""Reasons of an InformerNotSynced that mean the API server did not answer (rather than refused the list)."""


def jittered(seconds: float, jitter: float = JITTER) -> float:
    """`seconds` moved by up to ±10%, so objects created together don't reconcile in lockstep."""
    return seconds * (1 + random.uniform(-jitter, jitter))


def cluster_failed(error: BaseException) -> bool:
    """True when the API server itself failed: unreachable, timed out, overloaded (429) or erroring (5xx)."""
    if isinstance(error, ApiUnreachable):
        return True
    if isinstance(error, InformerNotSynced):
        return error.reason in UNANSWERED_LISTS
    return isinstance(error, ApiError) and (error.status == 429 or error.status >= 500)


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

    @classmethod
    def after_error(cls, error: BaseException, retry_interval: float, failures: int) -> Requeue:
        """Backoff after `error`; never longer than `CLUSTER_BACKOFF_CAP` when the cluster itself failed."""
        if cluster_failed(error):
            return cls.backoff(min(retry_interval, CLUSTER_BACKOFF_CAP), failures, cap=CLUSTER_BACKOFF_CAP)
        return cls.backoff(retry_interval, failures)


@dataclass(frozen=True)
class UnexpectedFailure:
    """An error no step of a reconcile turned into a failure of its own, as a condition reason and message."""

    reason: str
    message: str

    @classmethod
    def of(cls, error: BaseException) -> UnexpectedFailure:
        if cluster_failed(error):
            return cls(conditions.CLUSTER_UNREACHABLE, str(error) or type(error).__name__)
        if isinstance(error, MoorError):
            return cls(conditions.RECONCILE_ERROR, str(error))
        return cls(conditions.RECONCILE_ERROR, f"unexpected error ({type(error).__name__}): {error}")
