"""What the dashboard reads: Syncs and sources from informers, managed objects from a LiveCache.

Served from the controller (`moor run --ui-port`) both are the controller's own: its informers of
Moor's kinds (`shared`; the controller tells the view of their changes, `custom_resource_changed`) and
its LiveCache. In `moor ui` both are the dashboard's, run with the user's credentials: watches of
Syncs and sources, and a LiveCache watching the kinds the Syncs manage. Listeners hear every change
of either, which is how pages are told to refresh (server-sent events): nothing polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from typing import Protocol

from moor.cluster.api import KubeApi
from moor.cluster.cache import InformerNotSynced, KindInformer, LiveCache, LiveChange, resource_name
from moor.cluster.discovery import ResourceType
from moor.objects import KubeObject, ObjectRef
from moor.resources import API_VERSION, GITREPOSITORY, GROUP, HELMREPOSITORY, OCIREPOSITORY, SYNC

log = logging.getLogger(__name__)

WATCHED = (SYNC, GITREPOSITORY, OCIREPOSITORY, HELMREPOSITORY)
SOURCE_KINDS = (GITREPOSITORY.kind, OCIREPOSITORY.kind, HELMREPOSITORY.kind)
FIRST_LIST_SECONDS = 30.0

ChangeListener = Callable[[LiveChange], None]


class CustomResources(Protocol):
    """Moor's own objects as informers someone else runs hold them (the controller's: Controller.objects)."""

    def objects(self, kind: str) -> list[KubeObject]: ...

    def lookup(self, kind: str, namespace: str, name: str) -> KubeObject | None: ...


class ClusterView:
    def __init__(
        self, api: KubeApi, live: LiveCache, *, watch_managed_kinds: bool, shared: CustomResources | None = None
    ) -> None:
        self.api = api
        self.live = live
        self.watch_managed_kinds = watch_managed_kinds
        """True when the LiveCache is the dashboard's own: it is told to watch what the Syncs manage."""
        self.shared = shared
        """Informers of Moor's kinds read instead of the view's own watches; their owner calls
        `custom_resource_changed` with each of their changes."""
        self.generation = 0
        """Grows at every change of a Sync or source (rows of the overview are rebuilt when it moved)."""
        self.changes = 0
        """Grows at every change this view hears of, after the change is stored."""
        self.epoch = secrets.token_hex(4)
        """Names this view among the processes that served a page (its `changes` start again at 0)."""
        self._informers: dict[str, KindInformer] = {}
        self._missing: dict[str, str] = {}
        self._listeners: list[ChangeListener] = []
        self._kinds_task: asyncio.Task[None] | None = None
        self._kinds_wanted = asyncio.Event()
        live.subscribe(self._on_managed_change)

    @property
    def position(self) -> str:
        """Where the view is in its changes ("epoch.changes"): a page read at one position and told of a later
        one by its event stream knows that it missed a change, however the two were ordered."""
        return f"{self.epoch}.{self.changes}"

    def subscribe(self, listener: ChangeListener) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: ChangeListener) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    async def start(self) -> None:
        if self.shared is None:
            await self._watch_custom_resources()
        if self.watch_managed_kinds:
            self._kinds_task = asyncio.create_task(self._watch_managed_kinds(), name="dashboard managed kinds")
            self._kinds_wanted.set()

    async def _watch_custom_resources(self) -> None:
        await self.api.discovery.refresh()
        for kind in WATCHED:
            resource = await self.api.discovery.resolve(API_VERSION, kind.kind)
            if resource is None:
                self._missing[kind.kind] = f"the cluster does not serve {kind.kind}; run `moor install` first"
                continue
            informer = KindInformer(self.api, resource, self.custom_resource_changed, label_selector=None)
            self._informers[kind.kind] = informer
            informer.start()
        for informer in self._informers.values():
            with contextlib.suppress(InformerNotSynced):
                await informer.wait_synced(FIRST_LIST_SECONDS)

    async def stop(self) -> None:
        if self._kinds_task is not None:
            self._kinds_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._kinds_task
        for informer in self._informers.values():
            await informer.stop()
        if self.watch_managed_kinds:
            await self.live.stop()

    def objects(self, kind: str) -> list[KubeObject]:
        if self.shared is not None:
            return self.shared.objects(kind)
        informer = self._informers.get(kind)
        return list(informer.objects.values()) if informer is not None else []

    def lookup(self, kind: str, namespace: str, name: str) -> KubeObject | None:
        if self.shared is not None:
            return self.shared.lookup(kind, namespace, name)
        informer = self._informers.get(kind)
        return None if informer is None else informer.objects.get((GROUP, kind, namespace, name))

    def managed(self, ref: ObjectRef) -> KubeObject | None:
        return self.live.get(ref)

    def problems(self) -> list[str]:
        """Why some of what the page should show is not there: kinds not served, watches failing (403...)."""
        now = time.monotonic()
        failing = [
            f"cannot watch {informer.name}: {state.error} (for {now - state.since:.0f}s)"
            for informer in self._informers.values()
            if (state := informer.state).phase == "failing"
        ]
        return [*self._missing.values(), *failing, *self.live.failing()]

    def custom_resource_changed(self, change: LiveChange) -> None:
        """Hears a change of a Sync or source, once the informer holding them has stored it."""
        self.generation += 1
        if change.object.get("kind") == SYNC.kind:
            self._kinds_wanted.set()
        self._tell(change)

    def _on_managed_change(self, change: LiveChange) -> None:
        self._tell(change)

    def _tell(self, change: LiveChange) -> None:
        self.changes += 1
        for listener in list(self._listeners):
            try:
                listener(change)
            except Exception:  # one page's trouble is not another's
                log.exception("a dashboard listener raised")

    async def _watch_managed_kinds(self) -> None:
        """Keeps the dashboard's own LiveCache watching every kind some Sync's inventory lists."""
        while True:
            await self._kinds_wanted.wait()
            self._kinds_wanted.clear()
            wanted = {
                (str(entry.get("group", "")), str(entry.get("version", "")), str(entry["kind"]))
                for sync in self.objects(SYNC.kind)
                for entry in (sync.get("status") or {}).get("inventory") or []
            }
            resources: list[ResourceType] = []
            for group, version, kind in sorted(wanted):
                if self.live.is_watching(group, kind):
                    continue
                api_version = f"{group}/{version}" if group else version
                resource = await self.api.discovery.resolve(api_version, kind)
                if resource is not None:
                    resources.append(resource)
            if resources:
                log.debug("dashboard watches %s", ", ".join(resource_name(r) for r in resources))
                await self.live.watch_kinds(resources, wait=False)
            await asyncio.sleep(1.0)
