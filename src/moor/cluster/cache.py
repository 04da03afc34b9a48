"""The shared live cache: one list + watch per managed kind, filtered by the `moor.dev/sync` label.

Planning reads objects from here, so a reconcile where nothing changed sends no request per object.
Each kind's informer lists once, then watches from that version with bookmarks; a 410 Gone relists;
a broken stream reconnects with backoff. Subscribers hear every change as it arrives (drift
detection and health waits build on that).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from moor.cluster.api import KubeApi
from moor.cluster.client import ApiError, ApiUnreachable, Decode
from moor.cluster.discovery import ResourceType
from moor.objects import SYNC_LABEL, KubeObject, ObjectRef
from moor.shared_strings import SharedJsonDecoder

log = logging.getLogger(__name__)

Identity = tuple[str, str, str, str]


@dataclass(frozen=True)
class LiveChange:
    """An object of a watched kind changed (`ADDED`, `MODIFIED`) or went away (`DELETED`)."""

    type: str
    object: KubeObject
    previous: KubeObject | None = None
    """The object as the cache held it before this change (None when it was not there)."""


Listener = Callable[[LiveChange], None]


class KindInformer:
    """Keeps every labelled object of one kind in memory, current to within one watch event."""

    def __init__(
        self,
        api: KubeApi,
        resource: ResourceType,
        notify: Listener,
        *,
        label_selector: str | None = SYNC_LABEL,
        decode: Decode = json.loads,
    ) -> None:
        self.api = api
        self.decode = decode
        self.resource = resource
        self.label_selector = label_selector
        self.objects: dict[Identity, KubeObject] = {}
        self._notify = notify
        self._synced = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.relists = 0
        self.started_at = time.monotonic()

    def start(self) -> None:
        self.started_at = time.monotonic()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"informer {self.resource.plural}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def wait_synced(self) -> None:
        await self._synced.wait()

    async def _run(self) -> None:
        backoff = 0.2
        resource_version = ""
        while True:
            try:
                if not resource_version:
                    resource_version = await self._relist()
                async for event in self.api.watch(
                    self.resource,
                    resource_version=resource_version,
                    label_selector=self.label_selector,
                    decode=self.decode,
                ):
                    resource_version = self._handle(event) or resource_version
                    backoff = 0.2
            except ApiError as error:
                if error.gone:
                    log.info("watch of %s expired (410); relisting", self.resource.plural)
                    resource_version = ""
                    continue
                log.warning("watch of %s failed: %s", self.resource.plural, error)
                await self._sleep(backoff)
                backoff = min(backoff * 2, 30.0)
            except ApiUnreachable as error:
                log.warning("%s", error)
                await self._sleep(backoff)
                backoff = min(backoff * 2, 30.0)

    async def _relist(self) -> str:
        listing = await self.api.list(self.resource, label_selector=self.label_selector, decode=self.decode)
        fresh = {ObjectRef.of(item).identity: item for item in listing.items}
        previous = self.objects
        gone = [obj for identity, obj in previous.items() if identity not in fresh]
        changed = [(obj, previous.get(identity)) for identity, obj in fresh.items() if previous.get(identity) != obj]
        self.objects = fresh
        self.relists += 1
        self._synced.set()
        for obj in gone:
            self._notify(LiveChange("DELETED", obj, obj))
        for obj, before in changed:
            self._notify(LiveChange("MODIFIED" if before else "ADDED", obj, before))
        return listing.resource_version

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
        self._notify(LiveChange(kind, obj, before))
        return version

    @staticmethod
    async def _sleep(seconds: float) -> None:
        await asyncio.sleep(seconds * (0.5 + random.random()))


class LiveCache:
    """Informers shared by all Syncs, started for a kind when some Sync first manages it."""

    def __init__(self, api: KubeApi) -> None:
        self.api = api
        self._informers: dict[tuple[str, str], KindInformer] = {}
        self._listeners: list[Listener] = []
        self._changed = asyncio.Event()
        self._changes_by_label: Counter[str] = Counter()
        self._decoder = SharedJsonDecoder()

    async def wait_for_change(self, within: float) -> None:
        """Returns at the next change of any watched object, or after `within` seconds."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), within)

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def watch_kinds(self, resources: Iterable[ResourceType], *, wait: bool = True) -> None:
        """Makes sure each kind is watched and (with `wait`) that its first list has arrived."""
        started = []
        for resource in resources:
            key = (resource.group, resource.kind)
            if key not in self._informers:
                informer = KindInformer(self.api, resource, self._publish, decode=self._decoder.loads)
                self._informers[key] = informer
                informer.start()
            started.append(self._informers[key])
        if wait:
            await asyncio.gather(*(informer.wait_synced() for informer in started))

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

    async def wait_synced(self, group: str, kind: str) -> None:
        """Returns once the kind's first list has arrived (at once if it is not watched)."""
        informer = self._informers.get((group, kind))
        if informer is not None:
            await informer.wait_synced()

    def get(self, ref: ObjectRef) -> KubeObject | None:
        informer = self._informers.get((ref.group, ref.kind))
        return None if informer is None else informer.objects.get(ref.identity)

    def is_watching(self, group: str, kind: str) -> bool:
        return (group, kind) in self._informers

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
            listener(change)
