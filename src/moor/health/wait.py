"""Waiting until every object of a Sync is healthy, reading the live cache as watch events arrive (or, for
a pass's hooks, which are not watched, reading them from the API server until they are done).

The one impure part of health: it waits on the live cache (`moor.cluster.cache`) or polls, and judges each
object with the pure rules beside it. `moor.health` itself does not import it, so the rules stay free of I/O.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

from moor.cluster.cache import LiveCache
from moor.health import HealthState, HealthStatus, aggregate, failures
from moor.health.cel import HealthChecks, assess_health_by
from moor.health.library import library_checks
from moor.objects import KubeObject, ObjectRef

SETTLE = 0.1
"""Seconds to wait after a change before re-checking the objects not yet healthy."""


def version_of(obj: KubeObject) -> int | None:
    try:
        return int(obj["metadata"]["resourceVersion"])
    except (KeyError, TypeError, ValueError):
        return None


def object_health(
    cache: LiveCache, ref: ObjectRef, applied: Mapping[ObjectRef, int], checks: HealthChecks | None = None
) -> HealthStatus:
    """One object's health as the cache shows it, once the cache has caught up with the last apply, judged
    by `checks` (a Sync's CEL checks; the built-in library when None) or the built-in rules."""
    obj = cache.get(ref)
    if obj is None:
        return HealthStatus(HealthState.PROGRESSING, f"{ref} does not exist yet", ref)
    wrote, seen = applied.get(ref), version_of(obj)
    if wrote is not None and seen is not None and seen < wrote:
        return HealthStatus(HealthState.PROGRESSING, f"{ref} was just applied; waiting for the watch to show it", ref)
    return assess_health_by(obj, library_checks() if checks is None else checks)


async def wait_until_healthy(
    cache: LiveCache,
    refs: Sequence[ObjectRef],
    applied: Mapping[ObjectRef, int],
    within: float,
    checks: HealthChecks | None = None,
) -> HealthStatus:
    """The set's health once all are healthy or one has failed, or as it stands when `within` seconds have passed.

    `applied` holds the resourceVersion each apply returned. A Failed object ends the wait at once (as Flux's
    WaitForSet with FailFast does): its answer is Failed, naming the failed objects, since waiting for the
    others would only delay a failure already known. Between watch events only the objects not yet healthy
    are assessed again; when they all are, every object is checked once more, so the answer HEALTHY always
    comes from one look at the whole set.
    """
    deadline = time.monotonic() + within
    statuses = {ref: object_health(cache, ref, applied, checks) for ref in refs}
    while True:
        if any(status.state is HealthState.FAILED for status in statuses.values()):
            return failures(statuses.values())
        waiting = [ref for ref, status in statuses.items() if not status.healthy]
        if not waiting:
            statuses = {ref: object_health(cache, ref, applied, checks) for ref in refs}
            if all(status.healthy for status in statuses.values()):
                return aggregate(statuses.values())
            continue
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return aggregate(statuses.values())
        await cache.wait_for_change(min(remaining, 1.0))
        # Let a burst of watch events (a rollout updates many objects) settle before judging again.
        await asyncio.sleep(min(SETTLE, max(deadline - time.monotonic(), 0)))
        statuses.update((ref, object_health(cache, ref, applied, checks)) for ref in waiting)


Read = Callable[[ObjectRef], Awaitable[KubeObject | None]]
"""GETs one object from the API server (None when it does not exist)."""
POLL = 0.5
"""Seconds between two looks at objects that are not watched (a pass's hooks)."""


async def poll_until_healthy(
    read: Read,
    refs: Sequence[ObjectRef],
    within: float,
    *,
    still_waiting: Callable[[HealthStatus], Awaitable[None]] | None = None,
    checks: HealthChecks | None = None,
) -> dict[ObjectRef, HealthStatus]:
    """Each object's health once all are healthy or one has failed, or as they stand after `within` seconds.

    For objects outside the live cache (hooks are not watched): they are read every POLL seconds.
    `still_waiting` is awaited once, with the set's health, when the first look finds it not done yet.
    """
    deadline = time.monotonic() + within
    told = still_waiting is None
    checks = library_checks() if checks is None else checks
    statuses: dict[ObjectRef, HealthStatus] = {}
    while True:
        for ref in refs:
            if ref in statuses and statuses[ref].healthy:
                continue
            obj = await read(ref)
            statuses[ref] = (
                assess_health_by(obj, checks)
                if obj is not None
                else HealthStatus(HealthState.PROGRESSING, f"{ref} does not exist yet", ref)
            )
        if all(status.healthy for status in statuses.values()) or any(
            status.state is HealthState.FAILED for status in statuses.values()
        ):
            return statuses
        if time.monotonic() >= deadline:
            return statuses
        if not told and still_waiting is not None:
            told = True
            await still_waiting(aggregate(statuses.values()))
        await asyncio.sleep(min(POLL, max(deadline - time.monotonic(), 0)))
