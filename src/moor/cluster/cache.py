"""The shared live cache: one supervised list + watch per managed kind, filtered by the `moor.dev/sync` label.

Planning reads objects from here, so a reconcile where nothing changed sends no request per object.
Each kind's informer is in one of three phases (`InformerState`):

- listing: a paged list (`limit` + `continue`, decoded page by page) is on its way;
- watching: the list arrived, and a watch from its version (with bookmarks) follows every change; a
  410 Gone, and every 10 to 30 minutes a periodic relist, lists again and tells what differed;
- failing: the last list or watch failed (the error, and since when). The informer lists again after
  a pause that suits the failure: short (at most 2 s) when the API server did not answer, so the watch
  resumes within seconds of its return; up to 30 s when the kind may not be listed (401, 403) or is not
  served (404), so a later RBAC grant or CRD heals it without flooding the server meanwhile.

After a failure the informer always lists before it watches again, so "watching" means the API server
answered. Nothing but `stop()` ends an informer: a listener's exception is logged (at most once a
minute per listener) and the next change is delivered as usual; any other exception is a failure like
the rest. Lists of all informers of one LiveCache share a few slots, so a relist of every kind after
an outage does not arrive at the server at once.

`wait_synced(within=...)` waits for the first list, and not forever: it raises `InformerNotSynced`
at once for a kind that may not be listed or is not served, and for any other kind when the deadline
passes first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from moor.cluster.api import PAGE_SIZE, KubeApi
from moor.cluster.client import Decode
from moor.cluster.discovery import ResourceType
from moor.cluster.errors import ApiError, ApiTimeout, ApiUnreachable
from moor.errors import MoorError
from moor.objects import SYNC_LABEL, Identity, KubeObject, ObjectRef
from moor.retry import RetryPolicy
from moor.shared_strings import SharedJsonDecoder
from moor.supervised import cancel_and_wait

log = logging.getLogger(__name__)

Phase = Literal["listing", "watching", "failing"]
PHASES: tuple[Phase, ...] = ("listing", "watching", "failing")

WAIT_SYNCED_SECONDS = 30.0
"""How long a caller waits by default for a kind's first list before it is told why it has not come."""
WATCH_SECONDS = 300
"""The server ends each watch after this long; the informer then watches again from the last version."""
WATCH_GRACE_SECONDS = 30
"""A watch still open this long past WATCH_SECONDS has stalled (a connection that died without a word)."""
SHORTEST_WATCH_SECONDS = 1.0
"""A watch the server ends sooner than this, with no event, is a failure (else the informer would spin)."""
RELIST_SECONDS = 1200.0
"""About how often an informer lists again although its watch is fine (jittered to 10-30 minutes)."""
CONCURRENT_LISTS = 8
"""Lists one LiveCache sends at once (the rest wait their turn): a relist of every kind after an outage is spread."""
LOG_INTERVAL_SECONDS = 60.0


@dataclass(frozen=True)
class LiveChange:
    """An object of a watched kind changed (`ADDED`, `MODIFIED`) or went away (`DELETED`)."""

    type: str
    object: KubeObject
    previous: KubeObject | None = None
    """The object as the cache held it before this change (None when it was not there)."""


Listener = Callable[[LiveChange], None]


@dataclass(frozen=True)
class InformerState:
    """What an informer is doing: `error` says why while `phase` is failing; `since` is time.monotonic()
    when this phase began (a failing informer keeps the time of its first failure)."""

    phase: Phase
    error: str = ""
    since: float = 0.0


def _paced(first: float, cap: float) -> RetryPolicy:
    """Pauses between an informer's tries: it never gives up, so only the pace matters (jitter takes up to half off)."""
    return RetryPolicy(attempts=sys.maxsize, first_delay=first, max_delay=cap, jitter=0.5)


RECONNECT = _paced(0.25, 2.0)
"""The API server did not answer: it may be back any moment."""
BUSY = _paced(0.5, 5.0)
"""The API server answered 429 or 5xx (an aggregated API down, priority and fairness shedding load)."""
REFUSED = _paced(2.0, 30.0)
"""Not allowed or not served: only a change of RBAC or of the served kinds heals it."""
UNEXPECTED = _paced(1.0, 30.0)


@dataclass(frozen=True)
class InformerFailure:
    """Why a list or watch failed, in the words the informer reports it with, and how to retry it."""

    reason: str
    """Short: forbidden, unauthorized, not served, unreachable, timeout, watch broken, server error,
    too many requests, error."""
    detail: str
    pace: RetryPolicy
    retry_after: float | None = None
    """What the server asked for (Retry-After on a 429 or 503), in seconds."""

    def pause(self, failures_in_a_row: int) -> float:
        """Seconds to wait before the next try after this many failures in a row (jittered)."""
        delay = self.pace.next_delay(failures_in_a_row, 0.0, self.retry_after)
        return self.pace.max_delay if delay is None else delay

    @property
    def refused(self) -> bool:
        """Waiting will not help: the kind may not be listed, or is not served."""
        return self.pace is REFUSED


def classify_failure(error: BaseException) -> InformerFailure:
    """The informer's view of an exception from a list or a watch."""
    if isinstance(error, ApiError):
        reason, pace = _BY_STATUS.get(error.status, ("error", UNEXPECTED))
        if error.status >= 500:
            reason, pace = "server error", BUSY
        detail = str(error) or f"the API server answered {error.status}"
        return InformerFailure(reason, detail, pace, error.retry_after)
    if isinstance(error, WatchBroken):
        return InformerFailure("watch broken", str(error), RECONNECT)
    if isinstance(error, ApiTimeout | TimeoutError):
        return InformerFailure("timeout", str(error) or "no answer in time", RECONNECT)
    if isinstance(error, ApiUnreachable):
        return InformerFailure("unreachable", str(error), RECONNECT)
    return InformerFailure("error", f"{type(error).__name__}: {error}", UNEXPECTED)


_BY_STATUS: dict[int, tuple[str, RetryPolicy]] = {
    401: ("unauthorized", REFUSED),
    403: ("forbidden", REFUSED),
    404: ("not served", REFUSED),
    429: ("too many requests", BUSY),
}


def resource_name(resource: ResourceType) -> str:
    """How kubectl names the resource: `deployments.apps`, `configmaps`."""
    return f"{resource.plural}.{resource.group}" if resource.group else resource.plural


class WatchBroken(MoorError):
    """A watch stream that stayed open, silent, past the time the server should have ended it, or that
    ended as soon as it opened without a word (both would otherwise leave the cache quietly stale)."""


class InformerNotSynced(MoorError):
    """A kind's objects are not known: its list failed in a way waiting will not mend, or did not arrive in time."""

    def __init__(self, resource: ResourceType, reason: str, explanation: str) -> None:
        super().__init__(f"cannot list {resource_name(resource)}: {explanation}")
        self.resource = resource
        self.reason = reason

    @classmethod
    def of_failure(cls, resource: ResourceType, failure: InformerFailure) -> InformerNotSynced:
        return cls(resource, failure.reason, f"{failure.reason}: {failure.detail}")

    @classmethod
    def of_deadline(cls, resource: ResourceType, within: float, failure: InformerFailure | None) -> InformerNotSynced:
        if failure is None:
            return cls(resource, "timeout", f"the API server did not answer within {within:g}s")
        return cls(resource, failure.reason, f"{failure.reason}: {failure.detail} (for {within:g}s)")


class ThrottledLog:
    """Lets one message a key through per interval, and tells how many it held back meanwhile."""

    def __init__(self, interval: float = LOG_INTERVAL_SECONDS) -> None:
        self.interval = interval
        self._last: dict[str, float] = {}
        self._held: Counter[str] = Counter()

    def admit(self, key: str, now: float) -> int | None:
        """None: hold this message back; otherwise how many were held back since the last one let through."""
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            self._held[key] += 1
            return None
        self._last[key] = now
        return self._held.pop(key, 0)

    def forget(self, key: str) -> None:
        self._last.pop(key, None)
        self._held.pop(key, None)


class KindInformer:
    """Keeps every labelled object of one kind in memory, current to within one watch event."""

    def __init__(
        self,
        api: KubeApi,
        resource: ResourceType,
        notify: Listener,
        *,
        label_selector: str | None = SYNC_LABEL,
        namespace: str | None = None,
        decode: Decode = json.loads,
        on_recovered: Callable[[], None] | None = None,
        list_slots: asyncio.Semaphore | None = None,
        page_size: int | None = PAGE_SIZE,
        relist_seconds: float = RELIST_SECONDS,
    ) -> None:
        self.api = api
        self.decode = decode
        self.resource = resource
        self.label_selector = label_selector
        self.namespace = namespace
        self.objects: dict[Identity, KubeObject] = {}
        self.relists = 0
        self.started_at = time.monotonic()
        self.page_size = page_size
        self.relist_seconds = relist_seconds
        self._notify = notify
        self._on_recovered = on_recovered
        self._list_slots = list_slots or asyncio.Semaphore(1)
        self._listed = False
        self._task: asyncio.Task[None] | None = None
        self._state = InformerState("listing", since=time.monotonic())
        self._state_changed = asyncio.Event()
        self._failure: InformerFailure | None = None
        self._failures_in_a_row = 0
        self._log = ThrottledLog()

    @property
    def name(self) -> str:
        return resource_name(self.resource)

    @property
    def state(self) -> InformerState:
        return self._state

    def start(self) -> None:
        self.started_at = time.monotonic()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"informer {self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait([self._task])
            self._task = None

    async def reselect(self, label_selector: str | None) -> None:
        """Follows another selection: lists again at once, and tells what left it (DELETED) or joined it."""
        self.label_selector = label_selector
        if self._task is not None:
            await self.stop()
            self._listed = False
            self.start()

    async def wait_synced(self, within: float | None = WAIT_SYNCED_SECONDS) -> None:
        """Returns once the objects are known and current (the first list arrived, and the informer is not
        failing); raises InformerNotSynced at once when the kind may not be listed or is not served, and
        when `within` seconds (None: no limit) pass first."""
        loop = asyncio.get_running_loop()
        deadline = None if within is None else loop.time() + within
        while True:
            failure = self._failure if self._state.phase == "failing" else None
            if self._listed and failure is None:
                return
            if failure is not None and failure.refused:
                raise InformerNotSynced.of_failure(self.resource, failure)
            changed = self._state_changed
            remaining = None if deadline is None else deadline - loop.time()
            try:
                if remaining is not None and remaining <= 0:
                    raise TimeoutError
                async with asyncio.timeout(remaining):
                    await changed.wait()
            except TimeoutError:
                assert within is not None
                raise InformerNotSynced.of_deadline(self.resource, within, failure) from None

    # The informer's task ------------------------------------------------------------------------

    async def _run(self) -> None:
        """The supervisor: lists and watches until cancelled, pausing after each failure, whatever it was."""
        while True:
            try:
                await self._list_and_watch()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # an informer must outlive every failure
                await self._pause_after(error)

    async def _list_and_watch(self) -> None:
        resource_version = await self._relist()
        relist_at = self._next_relist()
        while True:
            try:
                resource_version = await self._watch(resource_version)
            except ApiError as error:
                if not error.gone:
                    raise
                log.info("watch of %s expired (410); listing again", self.name)
                resource_version = ""
            if not resource_version or time.monotonic() >= relist_at:
                resource_version = await self._relist()
                relist_at = self._next_relist()

    def _next_relist(self) -> float:
        return time.monotonic() + self.relist_seconds * (0.5 + random.random())

    async def _relist(self) -> str:
        """Lists every object, replaces the cache with them, tells what differed; returns the list's version."""
        recovering = self._state.phase == "failing"
        if not recovering:
            self._enter("listing")
        async with self._list_slots:
            listing = await self.api.list(
                self.resource,
                namespace=self.namespace,
                label_selector=self.label_selector,
                decode=self.decode,
                limit=self.page_size,
            )
        fresh = {ObjectRef.of(item).identity: item for item in listing.items}
        previous = self.objects
        gone = [obj for identity, obj in previous.items() if identity not in fresh]
        changed = [(obj, previous.get(identity)) for identity, obj in fresh.items() if previous.get(identity) != obj]
        self.objects = fresh
        self.relists += 1
        self._failure, self._failures_in_a_row = None, 0
        self._listed = True
        self._enter("watching")
        for obj in gone:
            self._deliver(LiveChange("DELETED", obj, obj))
        for obj, before in changed:
            self._deliver(LiveChange("MODIFIED" if before else "ADDED", obj, before))
        if recovering:
            log.info("%s: listed again after the failure; watching", self.name)
            self._log.forget("failure")
            if self._on_recovered is not None:
                self._call_isolated("on_recovered", self._on_recovered)
        return listing.resource_version

    async def _watch(self, resource_version: str) -> str:
        """Follows changes from `resource_version` until the server ends the stream; returns the last version."""
        watchdog = asyncio.timeout(WATCH_SECONDS + WATCH_GRACE_SECONDS)
        opened, events = time.monotonic(), 0
        try:
            stream = self.api.watch(
                self.resource,
                resource_version=resource_version,
                namespace=self.namespace,
                label_selector=self.label_selector,
                timeout_seconds=WATCH_SECONDS,
                decode=self.decode,
            )
            async with watchdog, contextlib.aclosing(stream) as stream_events:  # closed however the loop ends
                async for event in stream_events:
                    resource_version = self._handle(event) or resource_version
                    events += 1
        except TimeoutError:
            if watchdog.expired():
                limit = WATCH_SECONDS + WATCH_GRACE_SECONDS
                raise WatchBroken(f"the watch stream was still open, silent, after {limit}s") from None
            raise
        if not events and time.monotonic() - opened < SHORTEST_WATCH_SECONDS:
            raise WatchBroken("the watch stream ended as soon as it opened")
        return resource_version

    def _handle(self, event: dict[str, Any]) -> str:
        kind, obj = event.get("type", ""), event.get("object") or {}
        version = str((obj.get("metadata") or {}).get("resourceVersion", ""))
        if kind == "BOOKMARK":
            return version
        obj.setdefault("apiVersion", self.resource.api_version)
        obj.setdefault("kind", self.resource.kind)
        identity = ObjectRef.of(obj).identity
        before = self.objects.pop(identity, None) if kind == "DELETED" else self.objects.get(identity)
        if kind != "DELETED":
            self.objects[identity] = obj
        self._deliver(LiveChange(kind, obj, before))
        return version

    async def _pause_after(self, error: Exception) -> None:
        failure = classify_failure(error)
        self._failure = failure
        self._failures_in_a_row += 1
        verb = "watch" if self._state.phase == "watching" else "list"
        self._enter("failing", f"cannot {verb}: {failure.reason}: {failure.detail}")
        held = self._log.admit("failure", time.monotonic())
        if held is not None:
            more = f" ({held} more failures since the last report)" if held else ""
            log.warning(
                "%s: %s; trying again%s", self.name, self._state.error, more, exc_info=failure.pace is UNEXPECTED
            )
        await asyncio.sleep(failure.pause(self._failures_in_a_row))

    def _enter(self, phase: Phase, error: str = "") -> None:
        since = self._state.since if self._state.phase == phase else time.monotonic()
        self._state = InformerState(phase, error, since)
        self._state_changed.set()
        self._state_changed = asyncio.Event()

    def _deliver(self, change: LiveChange) -> None:
        self._call_isolated("listener", lambda: self._notify(change))

    def _call_isolated(self, what: str, call: Callable[[], None]) -> None:
        """Runs a callback of someone else's: its exception is logged (rate-limited) and goes no further."""
        try:
            call()
        except Exception:  # one broken callback must not stop the informer
            held = self._log.admit(what, time.monotonic())
            if held is not None:
                more = f" ({held} more since the last report)" if held else ""
                log.exception("%s: a %s of changes to %s raised%s", self.name, what, self.name, more)


class LiveCache:
    """Informers shared by all Syncs, started for a kind when some Sync first manages it."""

    def __init__(
        self,
        api: KubeApi,
        *,
        concurrent_lists: int = CONCURRENT_LISTS,
        on_recovered: Callable[[], None] | None = None,
        label_selector: str = SYNC_LABEL,
    ) -> None:
        """`on_recovered` is called whenever a kind's watch lists again after failing (see KindInformer);
        `label_selector` selects the managed objects watched (a member of several watches only its shard's)."""
        self.api = api
        self.label_selector = label_selector
        self._on_recovered = on_recovered
        self._informers: dict[tuple[str, str], KindInformer] = {}
        self._listeners: list[Listener] = []
        self._changed = asyncio.Event()
        self._changes_by_label: Counter[str] = Counter()
        self._decoder = SharedJsonDecoder()
        self._list_slots = asyncio.Semaphore(concurrent_lists)
        self._listener_log = ThrottledLog()

    async def wait_for_change(self, within: float) -> None:
        """Returns at the next change of any watched object, or after `within` seconds."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self._changed.wait()

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def watch_kinds(
        self, resources: Iterable[ResourceType], *, wait: bool = True, within: float | None = WAIT_SYNCED_SECONDS
    ) -> None:
        """Makes sure each kind is watched and (with `wait`) that its objects are known: raises
        InformerNotSynced for the first kind that cannot be listed or is not listed within `within` seconds."""
        started = []
        for resource in resources:
            key = (resource.group, resource.kind)
            if key not in self._informers:
                informer = KindInformer(
                    self.api,
                    resource,
                    self._publish,
                    label_selector=self.label_selector,
                    decode=self._decoder.loads,
                    list_slots=self._list_slots,
                    on_recovered=self._on_recovered,
                )
                self._informers[key] = informer
                informer.start()
            started.append(self._informers[key])
        if wait and started:
            await _wait_all_synced(started, within)

    async def reselect(self, label_selector: str) -> None:
        """Watches another selection of managed objects (a member's shard changed); each kind lists again."""
        if label_selector == self.label_selector:
            return
        self.label_selector = label_selector
        for informer in self._informers.values():
            await informer.reselect(label_selector)

    async def retain_kinds(self, keep: set[tuple[str, str]], *, younger_than: float = 600.0) -> list[tuple[str, str]]:
        """Stops watching kinds no Sync manages any more; a kind watched for less than `younger_than`
        seconds is kept (a Sync may be about to apply it). Returns the kinds let go."""
        now = time.monotonic()
        stale = [
            key
            for key, informer in self._informers.items()
            if key not in keep and now - informer.started_at > younger_than
        ]
        for key in stale:
            await self._informers.pop(key).stop()
        return stale

    async def wait_synced(self, group: str, kind: str, *, within: float | None = WAIT_SYNCED_SECONDS) -> None:
        """Returns once the kind's objects are known (at once if it is not watched); raises InformerNotSynced
        as KindInformer.wait_synced does."""
        informer = self._informers.get((group, kind))
        if informer is not None:
            await informer.wait_synced(within)

    def get(self, ref: ObjectRef) -> KubeObject | None:
        informer = self._informers.get((ref.group, ref.kind))
        return None if informer is None else informer.objects.get(ref.identity)

    def is_watching(self, group: str, kind: str) -> bool:
        return (group, kind) in self._informers

    def state(self, group: str, kind: str) -> InformerState | None:
        informer = self._informers.get((group, kind))
        return None if informer is None else informer.state

    def failing(self) -> list[str]:
        """One line per failing informer, for /healthz: `configmaps: cannot list: forbidden: ... (failing for 42s)`."""
        now = time.monotonic()
        return [
            f"{informer.name}: {state.error} (failing for {now - state.since:.0f}s)"
            for informer in self._informers.values()
            if (state := informer.state).phase == "failing"
        ]

    def phase_counts(self) -> dict[str, int]:
        """How many informers are in each phase (every phase present, zero included), for the metrics."""
        counts: dict[str, int] = dict.fromkeys(PHASES, 0)
        for informer in self._informers.values():
            counts[informer.state.phase] += 1
        return counts

    def changes_of(self, sync_key: str) -> int:
        """A number that grows whenever an object labelled for this Sync (before or after the change) changes:
        while it stays the same, nothing the Sync manages changed in the cluster."""
        return self._changes_by_label[sync_key]

    def object_count(self) -> int:
        return sum(len(informer.objects) for informer in self._informers.values())

    async def stop(self) -> None:
        for informer in self._informers.values():
            await informer.stop()
        self._informers.clear()

    def _publish(self, change: LiveChange) -> None:
        for obj in (change.previous, change.object):
            label = (((obj or {}).get("metadata") or {}).get("labels") or {}).get(SYNC_LABEL)
            if label:
                self._changes_by_label[str(label)] += 1
        self._changed.set()
        self._changed = asyncio.Event()
        for listener in self._listeners:
            try:
                listener(change)
            except Exception:  # one broken subscriber must not keep the change from the others
                held = self._listener_log.admit(repr(listener), time.monotonic())
                if held is not None:
                    more = f" ({held} more since the last report)" if held else ""
                    log.exception("a subscriber of the live cache raised on a change%s", more)


async def _wait_all_synced(informers: list[KindInformer], within: float | None) -> None:
    """Waits for every informer; the first that cannot be waited for raises, and the other waits end."""
    waits = [asyncio.ensure_future(informer.wait_synced(within)) for informer in informers]
    try:
        done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        for task in waits:
            task.cancel()
    errors = [error for task in waits if task in done and (error := task.exception()) is not None]
    if errors:
        raise errors[0]
