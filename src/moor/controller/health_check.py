"""Waiting until every object of a Sync is healthy, reading the live cache as watch events arrive."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence

from moor.cluster.cache import LiveCache
from moor.health import HealthState, HealthStatus, aggregate, assess_health
from moor.objects import KubeObject, ObjectRef

SETTLE = 0.1
"""Seconds to wait after a change before re-checking every object's health."""


def freshest(cached: KubeObject | None, applied: KubeObject | None) -> KubeObject | None:
    """The newer of the cached object and the one an apply just returned (the watch may lag behind)."""
    if cached is None or applied is None:
        return cached or applied
    try:
        cached_version = int(cached["metadata"]["resourceVersion"])
        applied_version = int(applied["metadata"]["resourceVersion"])
    except (KeyError, ValueError):
        return cached
    return cached if cached_version >= applied_version else applied


def current_health(
    cache: LiveCache, refs: Sequence[ObjectRef], applied: Mapping[ObjectRef, KubeObject]
) -> HealthStatus:
    statuses = []
    for ref in refs:
        obj = freshest(cache.get(ref), applied.get(ref))
        if obj is None:
            statuses.append(HealthStatus(HealthState.PROGRESSING, f"{ref} does not exist yet", ref))
        else:
            statuses.append(assess_health(obj))
    return aggregate(statuses)


async def wait_until_healthy(
    cache: LiveCache,
    refs: Sequence[ObjectRef],
    applied: Mapping[ObjectRef, KubeObject],
    within: float,
) -> HealthStatus:
    """The set's health once all are healthy, or as it stands when `within` seconds have passed."""
    deadline = time.monotonic() + within
    while True:
        health = current_health(cache, refs, applied)
        remaining = deadline - time.monotonic()
        if health.state is HealthState.HEALTHY or remaining <= 0:
            return health
        await cache.wait_for_change(min(remaining, 1.0))
        # Let a burst of watch events (a rollout updates many objects) settle before judging again.
        await asyncio.sleep(min(SETTLE, max(deadline - time.monotonic(), 0)))
