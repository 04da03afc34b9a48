"""Notifications, wired to the controller: every recorded event is matched against the Alerts and sent
through their Providers, without ever holding up a reconcile.

The event listener only puts the event on a bounded queue (dropped with a log line when full). One
task routes each event: Alerts and Providers come from their own watches, the repository URL from
the controller's informers. Each Provider has its own bounded lane and task, so a slow or failing
receiver delays only itself, and a commit's statuses arrive in the order they happened. The router
and every lane run supervised: one that fails is logged and restarted (its queue kept), and
`problems()` names it meanwhile, with the Provider and Alert watches that are failing.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp

from moor.cluster.api import KubeApi
from moor.cluster.cache import InformerNotSynced, KindInformer, LiveChange
from moor.errors import MoorError
from moor.notify.dedup import DEFAULT_WINDOW, Deduplicator
from moor.notify.delivery import DeliveryFailed, RetryPolicy, deliver
from moor.notify.matching import NamedAlert, ProviderKey, providers_for
from moor.notify.notices import Notice
from moor.notify.payloads import Credentials, NotDeliverable, render
from moor.notify.specs import AlertSpec, ProviderSpec
from moor.objects import KubeObject, ObjectRef
from moor.record.events import WARNING, RecordedEvent, event_for
from moor.record.metrics import Metrics
from moor.resources import ALERT, API_VERSION, GITREPOSITORY, GROUP, PROVIDER, SYNC, CustomResourceKind, SpecError
from moor.supervised import Supervisor

log = logging.getLogger(__name__)

Lookup = Callable[[str, str, str], KubeObject | None]
"""(kind, namespace, name) -> a GitRepository or Sync as the controller's informers last saw it."""

DELIVERY_FAILED = "DeliveryFailed"


@dataclass(frozen=True)
class NotifierOptions:
    queue_size: int = 1000
    """Events waiting to be routed; more are dropped (and logged)."""
    lane_size: int = 100
    """Notifications waiting for one Provider; more are dropped (and logged)."""
    dedup_window: float = DEFAULT_WINDOW
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    cross_namespace: bool = True
    """False: an Alert hears only of objects in its own namespace (`--no-cross-namespace-refs`)."""


@dataclass(frozen=True)
class Delivery:
    notice: Notice
    spec: ProviderSpec
    provider: KubeObject


class Notifier:
    def __init__(
        self, api: KubeApi, lookup: Lookup, metrics: Metrics | None = None, options: NotifierOptions | None = None
    ) -> None:
        self.api = api
        self.lookup = lookup
        self.metrics = metrics
        self.options = options or NotifierOptions()
        self.dedup = Deduplicator(self.options.dedup_window)
        self._events: asyncio.Queue[RecordedEvent] = asyncio.Queue(self.options.queue_size)
        self._informers: dict[str, KindInformer] = {}
        self._lanes: dict[ProviderKey, asyncio.Queue[Delivery]] = {}
        self._tasks = Supervisor(metrics.task_restarts if metrics is not None else None)
        self._session: aiohttp.ClientSession | None = None
        self._parsed: dict[tuple[str, str, str], tuple[str, Any]] = {}
        self._last_failure: dict[ProviderKey, str] = {}

    @property
    def enabled(self) -> bool:
        return self._session is not None

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Watches Providers and Alerts and starts routing; stays off when the cluster does not serve them."""
        for kind in (PROVIDER, ALERT):
            resource = await self.api.discovery.resolve(API_VERSION, kind.kind)
            if resource is None:
                log.warning(
                    "the cluster does not serve %s (%s): notifications are off; run `moor install`",
                    kind.kind,
                    API_VERSION,
                )
                await self._stop_informers()
                return
            self._informers[kind.kind] = KindInformer(self.api, resource, self._on_change, label_selector=None)
        for informer in self._informers.values():
            informer.start()
        for informer in self._informers.values():
            try:
                await informer.wait_synced()
            except InformerNotSynced as error:
                # Keeps trying in the background; meanwhile, Alerts it cannot see send nothing.
                log.warning("notifications start without every Alert and Provider: %s", error)
        self._session = aiohttp.ClientSession()
        self._tasks.start("notifications", self._route_events)

    async def stop(self) -> None:
        await self._tasks.stop()
        await self._stop_informers()
        if self._session is not None:
            await self._session.close()
            self._session = None
        waiting = self._events.qsize() + sum(lane.qsize() for lane in self._lanes.values())
        if waiting:
            log.info("shutting down with %d notification(s) not sent", waiting)

    def problems(self) -> list[str]:
        """Failing Provider and Alert watches, and routing or sending tasks being restarted (for /healthz)."""
        now = time.monotonic()
        watches = [
            f"{informer.name}: {state.error} (failing for {now - state.since:.0f}s)"
            for informer in self._informers.values()
            if (state := informer.state).phase == "failing"
        ]
        return [*watches, *self._tasks.problems()]

    async def _stop_informers(self) -> None:
        for informer in self._informers.values():
            await informer.stop()
        self._informers.clear()

    def _on_change(self, change: LiveChange) -> None:
        if change.type == "DELETED":
            metadata = change.object.get("metadata") or {}
            self._parsed.pop(
                (str(change.object.get("kind")), metadata.get("namespace", ""), metadata.get("name", "")), None
            )

    # -- the listener: never blocks ----------------------------------------------------------------

    def listen(self, event: RecordedEvent) -> None:
        """An EventRecorder listener: queues the event and returns at once."""
        if not self.enabled:
            return
        try:
            self._events.put_nowait(event)
        except asyncio.QueueFull:
            log.warning(
                "notification queue full (%d): dropped %s on %s", self._events.maxsize, event.reason, event.subject
            )
            self._count(ProviderKey("", ""), "dropped")

    # -- routing -----------------------------------------------------------------------------------

    async def _route_events(self) -> None:
        while True:
            event = await self._events.get()
            try:
                self.route(event)
            except Exception:
                log.exception("could not route the event %s on %s", event.reason, event.subject)

    def route(self, event: RecordedEvent) -> None:
        """Sends `event` to the lane of every Provider an Alert names for it, once per dedup window."""
        alerts = self._alerts()
        if not alerts:
            return
        notice = Notice.of(event, self.repository_url(event.subject))
        for key in providers_for(notice, alerts, cross_namespace=self.options.cross_namespace):
            provider = self._object(PROVIDER, key.namespace, key.name)
            if provider is None:
                log.warning("an Alert names %s, which does not exist: not sending %s", key, event.reason)
                continue
            spec = self._spec(PROVIDER, provider, ProviderSpec.from_object)
            if not isinstance(spec, ProviderSpec) or spec.suspend:
                continue
            if not self.dedup.first((key, notice.dedup_key)):
                self._count(key, "deduplicated")
                continue
            self._submit(key, Delivery(notice, spec, provider))

    def repository_url(self, subject: ObjectRef) -> str:
        """The `spec.url` of the GitRepository behind a Sync or GitRepository ('' when unknown)."""
        obj = self.lookup(subject.kind, subject.namespace, subject.name)
        if obj is not None and subject.kind == SYNC.kind:
            source = (obj.get("spec") or {}).get("sourceRef") or {}
            obj = self.lookup(
                GITREPOSITORY.kind, str(source.get("namespace") or subject.namespace), str(source.get("name"))
            )
        if obj is None or obj.get("kind", GITREPOSITORY.kind) != GITREPOSITORY.kind:
            return ""
        return str((obj.get("spec") or {}).get("url") or "")

    def _alerts(self) -> list[NamedAlert]:
        informer = self._informers.get(ALERT.kind)
        alerts = []
        for obj in list(informer.objects.values()) if informer else []:
            spec = self._spec(ALERT, obj, AlertSpec.from_object)
            if isinstance(spec, AlertSpec):
                metadata = obj["metadata"]
                alerts.append(NamedAlert(metadata.get("namespace", ""), metadata["name"], spec))
        return alerts

    def _object(self, kind: CustomResourceKind, namespace: str, name: str) -> KubeObject | None:
        informer = self._informers.get(kind.kind)
        if informer is None:
            return None
        return informer.objects.get((GROUP, kind.kind, namespace, name))

    def _spec(self, kind: CustomResourceKind, obj: KubeObject, parse: Callable[[KubeObject], Any]) -> Any:
        """The parsed spec, cached per resourceVersion; an invalid spec is logged once and yields None."""
        metadata = obj["metadata"]
        key = (kind.kind, metadata.get("namespace", ""), metadata["name"])
        version = str(metadata.get("resourceVersion", ""))
        cached = self._parsed.get(key)
        if cached is not None and cached[0] == version:
            return cached[1]
        try:
            spec = parse(obj)
        except SpecError as error:
            log.warning("ignoring %s: %s", f"{kind.kind} {key[1]}/{key[2]}", error)
            spec = None
        self._parsed[key] = (version, spec)
        return spec

    # -- lanes: one sender per Provider ------------------------------------------------------------

    def _submit(self, key: ProviderKey, delivery: Delivery) -> None:
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = asyncio.Queue(self.options.lane_size)
            self._tasks.start(f"notifications {key}", functools.partial(self._drain, key, lane))
        try:
            lane.put_nowait(delivery)
        except asyncio.QueueFull:
            log.warning("%s: %d notifications waiting; dropped %s", key, lane.maxsize, delivery.notice.title)
            self.dedup.forget((key, delivery.notice.dedup_key))
            self._count(key, "dropped")

    async def _drain(self, key: ProviderKey, lane: asyncio.Queue[Delivery]) -> None:
        while True:
            delivery = await lane.get()
            try:
                await self.send(key, delivery)
            except Exception:
                log.exception("%s: could not send %s", key, delivery.notice.title)

    async def send(self, key: ProviderKey, delivery: Delivery) -> None:
        """Renders and delivers one notice; a failure is logged, counted and recorded as an Event on the Provider."""
        assert self._session is not None
        notice, spec = delivery.notice, delivery.spec
        try:
            credentials = await self.credentials(key, spec)
            outgoing = render(spec.type, notice, credentials)
            if outgoing is None:
                return
            await deliver(
                self._session,
                outgoing,
                timeout=spec.timeout.total_seconds(),
                policy=self.options.retry,
                secrets=credentials.secrets,
            )
        except (NotDeliverable, DeliveryFailed) as error:
            self.dedup.forget((key, notice.dedup_key))
            self._count(key, "failed")
            await self._report_failure(key, delivery.provider, f"could not send {notice.title}: {error}")
            return
        self._count(key, "sent")
        self._last_failure.pop(key, None)
        log.info("%s: sent %s (%s)", key, notice.title, outgoing.target)

    async def credentials(self, key: ProviderKey, spec: ProviderSpec) -> Credentials:
        """Where to send and with what, from the Provider's Secret (read for each delivery, never cached)."""
        data: dict[str, bytes] = {}
        if spec.secret_name:
            secret = await self.api.get(ObjectRef("", "v1", "Secret", key.namespace, spec.secret_name))
            if secret is None:
                raise NotDeliverable(f"{key}: the Secret {key.namespace}/{spec.secret_name} does not exist")
            data = {name: base64.b64decode(value) for name, value in (secret.get("data") or {}).items()}
        secret_address = data.get("address", b"").decode("utf-8", "replace").strip()
        address = secret_address or spec.address or spec.type.default_address
        if not address:
            raise NotDeliverable(f"{key}: no address: set spec.address or the key address of its Secret")
        if not address.startswith(("http://", "https://")):
            raise NotDeliverable(f"{key}: the address in its Secret is not an http:// or https:// URL")
        token = data.get("token", b"").decode("utf-8", "replace").strip()
        if spec.type.sets_commit_status and not token:
            raise NotDeliverable(f"{key}: its Secret {key.namespace}/{spec.secret_name} has no key token")
        return Credentials(address, token, data.get("hmacKey", b"").strip(), address_is_secret=bool(secret_address))

    async def _report_failure(self, key: ProviderKey, provider: KubeObject, message: str) -> None:
        log.warning("%s", message)
        if self._last_failure.get(key) == message:
            return
        self._last_failure[key] = message
        try:
            # Written directly, not through the EventRecorder: an event about notifications is not news.
            await self.api.create(event_for(provider, WARNING, DELIVERY_FAILED, message, datetime.now(UTC)))
        except MoorError as error:
            log.warning("could not record event %s on %s: %s", DELIVERY_FAILED, key, error)

    def _count(self, key: ProviderKey, result: str) -> None:
        if self.metrics is not None:
            self.metrics.notifications.labels(key.namespace, key.name, result).inc()
