"""The controller process: watch Moor's custom resources, queue them, reconcile each one at a time.

Stateless: everything it knows comes from the cluster (custom resources and their status) and from
the disposable artifact cache, so it can be killed at any moment and converges when it restarts.

Nothing escapes a reconcile: the reconcilers turn every failure into a status with a reason, and what
escapes them anyway (the object could not even be read) is logged, counted and retried with backoff,
short when the cluster itself failed. When the watch of GitRepositories or Syncs comes back after an
outage, every object whose reconcile failed meanwhile is queued again within a couple of seconds.
Background tasks (delivery metrics, notifications, the release of unused watches) run supervised;
`problems()` says what is failing, for /healthz.

With a `Shard` (scale-out, docs/scale-out.md) the controller still watches all of Moor's objects (they
are small, and dependents need them) but queues only the keys of its shard; a bucket lost cancels the
passes of its objects, a bucket gained queues its objects at once; each reconcile marks the object with
its owner (`moor.dev/shard-owner`, written only when it changes) and runs inside `reconciling(obj)`, so
the fenced API refuses its writes once the object moved. The delivery metrics run on the leader only.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from moor.cluster.api import KubeApi
from moor.cluster.cache import KindInformer, LiveCache, LiveChange
from moor.cluster.client import ApiError
from moor.controller.dependents import Dependents
from moor.controller.gitrepository import GitRepositoryReconciler
from moor.controller.helmrepository import HelmRepositoryReconciler
from moor.controller.image_store import ImageStore
from moor.controller.imagepolicy import ImagePolicyReconciler
from moor.controller.imagerepository import ImageRepositoryReconciler
from moor.controller.imageupdate import ImageUpdateReconciler
from moor.controller.ocirepository import OCIRepositoryReconciler
from moor.controller.ownership import Claims
from moor.controller.queue import WorkQueue
from moor.controller.rendering import sync_key
from moor.controller.scheduling import Requeue, cluster_failed
from moor.controller.source_store import SourceStore
from moor.controller.sync import SyncReconciler
from moor.controller.sync_report import DEFAULT_CLUSTER_NAME, Attempt, NotePushes, SyncReporter
from moor.controller.tenancy import TenancyPolicy
from moor.controller.values_watch import ValuesWatch
from moor.errors import MoorError
from moor.notify import Notifier, NotifierOptions
from moor.objects import RECONCILE_ANNOTATION, SYNC_LABEL, KubeObject, ObjectRef
from moor.plan import may_have_drifted
from moor.record.dora_metrics import DoraMetrics
from moor.record.events import EventRecorder
from moor.record.history import DEFAULT_RETENTION, HistoryStore
from moor.record.metrics import Metrics
from moor.record.snapshots import SnapshotStore
from moor.resources import (
    API_VERSION,
    GITREPOSITORY,
    GROUP,
    HELMREPOSITORY,
    IMAGEPOLICY,
    IMAGEREPOSITORY,
    IMAGEUPDATE,
    OCIREPOSITORY,
    SYNC,
    VERSION,
    CustomResourceKind,
    conditions,
)
from moor.sharding.fence import Fenced, reconciling
from moor.sharding.shard import OWNER_ANNOTATION, Shard, ShardChange, ShardObjectsCollector, bucket_selector
from moor.source import ArtifactCache, ArtifactLimits
from moor.source.helm import IndexLimits
from moor.supervised import Supervisor

log = logging.getLogger(__name__)

RETRY_AFTER_ERROR = 5.0
"""Seconds before the first retry of an object whose reconcile failed before it could start."""
RECOVERY_SPREAD = 2.0
"""After an outage, the objects that failed meanwhile are queued again within this many seconds."""


@dataclass(frozen=True, order=True)
class ObjectKey:
    kind: str
    namespace: str
    name: str

    @classmethod
    def of(cls, obj: KubeObject) -> ObjectKey:
        metadata = obj["metadata"]
        return cls(str(obj["kind"]), str(metadata.get("namespace", "")), str(metadata["name"]))

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef(GROUP, VERSION, self.kind, self.namespace, self.name)


@dataclass(frozen=True)
class ControllerOptions:
    artifact_dir: Path
    workers: int = 4
    apply_concurrency: int = 16
    history_retention: int = DEFAULT_RETENTION
    tenancy: TenancyPolicy = field(default_factory=TenancyPolicy)
    artifact_limits: ArtifactLimits = field(default_factory=ArtifactLimits)
    cluster_name: str = DEFAULT_CLUSTER_NAME
    watch_own_shard: bool = False
    """With a shard: the live cache selects managed objects by `moor.dev/shard-bucket`."""
    index_limits: IndexLimits = field(default_factory=IndexLimits)
    """How large a Helm repository's index may be (`moor run --max-helm-index-size`)."""


SOURCES = (GITREPOSITORY, OCIREPOSITORY, HELMREPOSITORY)
SOURCE_KINDS = tuple(kind.kind for kind in SOURCES)
IMAGE_KINDS = (IMAGEREPOSITORY, IMAGEPOLICY, IMAGEUPDATE)
WATCHED = (*SOURCES, *IMAGE_KINDS, SYNC)
CRDS_WAIT = 10.0
"""Seconds the controller waits at start for its CRDs to be served before it gives up."""


class CrdsMissing(MoorError):
    pass


class Reconciler(Protocol):
    """What the runtime asks of the reconciler of each kind."""

    async def reconcile(self, obj: KubeObject, failures: int) -> Requeue: ...

    async def report_error(self, obj: KubeObject, error: Exception) -> None:
        """Reports an error that escaped `reconcile` (the object could not even be read) on the object."""


@dataclass
class _Syncs:
    """The Sync reconciler in the runtime's terms (it reports an error on an attempt, not an object)."""

    syncs: SyncReconciler

    async def reconcile(self, obj: KubeObject, failures: int) -> Requeue:
        return await self.syncs.reconcile(obj, failures)

    async def report_error(self, obj: KubeObject, error: Exception) -> None:
        await self.syncs.report_error(Attempt(obj, dict(obj.get("status") or {})), error)


class Controller:
    def __init__(self, api: KubeApi, options: ControllerOptions, shard: Shard | None = None) -> None:
        self.api = api
        self.options = options
        self.shard = shard
        self.live = LiveCache(api, on_recovered=self._retry_failed_soon)
        self.events = EventRecorder(api)
        self.metrics = Metrics()
        self.metrics.watch_api_requests(api.client.requests)
        self.metrics.watch_cache_size(self.live.object_count)
        self.metrics.watch_informers(self._informer_phases)
        cache = ArtifactCache(options.artifact_dir, limits=options.artifact_limits)
        sources = SourceStore(api, cache, index_limits=options.index_limits)
        self.repositories = GitRepositoryReconciler(sources, self.events, self.metrics)
        self.registries = OCIRepositoryReconciler(sources.registries, self.events, self.metrics)
        self.helm_repositories = HelmRepositoryReconciler(sources.charts, self.events, self.metrics)
        history = HistoryStore(api, options.history_retention)
        self.reporter = SyncReporter(
            api, self.events, history, self.metrics, notes=NotePushes(cluster=options.cluster_name)
        )
        self.syncs = SyncReconciler(
            api,
            self.live,
            sources,
            self.reporter,
            SnapshotStore(api),
            self.lookup,
            Claims(lambda: self.objects(SYNC.kind)),
            options.apply_concurrency,
            tenancy=options.tenancy,
        )
        self.live.subscribe(self._on_managed_change)
        notify = NotifierOptions(cross_namespace=not options.tenancy.no_cross_namespace_refs)
        self.notifier = Notifier(api, self.lookup, self.metrics, notify)
        self.dora = DoraMetrics(HistoryStore(api), self.metrics, lambda: self.objects(GITREPOSITORY.kind))
        self.events.subscribe(self.notifier.listen)
        self.events.subscribe(self.dora.listen)
        images = ImageStore(api)
        images.subscribe(self._on_scanned)
        self.image_repositories = ImageRepositoryReconciler(images, self.events, self.metrics)
        cross_namespace = not options.tenancy.no_cross_namespace_refs
        self.image_policies = ImagePolicyReconciler(
            images, self.events, self.lookup, self.metrics, cross_namespace=cross_namespace
        )
        self.image_updates = ImageUpdateReconciler(
            api,
            self.events,
            self.metrics,
            self.lookup,
            options.artifact_dir / "image-updates",
            cross_namespace=cross_namespace,
        )
        self.reconcilers: dict[str, Reconciler] = {
            GITREPOSITORY.kind: self.repositories,
            OCIREPOSITORY.kind: self.registries,
            HELMREPOSITORY.kind: self.helm_repositories,
            IMAGEREPOSITORY.kind: self.image_repositories,
            IMAGEPOLICY.kind: self.image_policies,
            IMAGEUPDATE.kind: self.image_updates,
            SYNC.kind: _Syncs(self.syncs),
        }
        self.forgetters: dict[str, Callable[[KubeObject], None]] = {
            SYNC.kind: self.syncs.forget,
            HELMREPOSITORY.kind: self.helm_repositories.forget,
            IMAGEREPOSITORY.kind: self.image_repositories.forget,
            IMAGEUPDATE.kind: self.image_updates.forget,
        }
        """What each kind's reconciler drops when an object of it is deleted."""
        accepts = None if shard is None else self._owns
        self.queue: WorkQueue[ObjectKey] = WorkQueue(self.reconcile, workers=options.workers, accepts=accepts)
        self.values_watch = ValuesWatch(
            api, lambda: self.objects(SYNC.kind), lambda sync: self.queue.add(ObjectKey.of(sync))
        )
        """ConfigMaps and Secrets labelled moor.dev/watch: a change wakes the Syncs whose helm.valuesFrom names them."""
        self._change_listeners: list[Callable[[LiveChange], None]] = []
        self.failures: Counter[ObjectKey] = Counter()
        self.tasks = Supervisor(self.metrics.task_restarts)
        self._informers: dict[str, KindInformer] = {}
        self._seen: dict[ObjectKey, tuple[Any, ...]] = {}
        self._syncs_by_label: dict[str, ObjectKey] = {}
        self._dependents: Dependents[ObjectKey] = Dependents()
        """The Syncs that use each source or depend on each Sync."""
        self._shard_changes: asyncio.Queue[ShardChange] = asyncio.Queue()
        self._leading = False
        if shard is not None:
            shard.subscribe(self._shard_changes.put_nowait)
            self.metrics.registry.register(
                ShardObjectsCollector(shard, lambda: [obj for kind in WATCHED for obj in self.objects(kind.kind)])
            )

    def lookup(self, kind: str, namespace: str, name: str) -> KubeObject | None:
        informer = self._informers.get(kind)
        if informer is None:
            return None
        return informer.objects.get((GROUP, kind, namespace, name))

    def objects(self, kind: str) -> list[KubeObject]:
        informer = self._informers.get(kind)
        return list(informer.objects.values()) if informer is not None else []

    async def run(self, stop: asyncio.Event) -> None:
        """Runs until `stop` is set; in-flight reconciles are cancelled at their next await."""
        await self.api.discovery.refresh()
        for kind in WATCHED:
            await self._watch(kind)
        await self.values_watch.start()
        await self.notifier.start()
        if self.shard is None:
            self.dora.start()
        else:
            self.tasks.start("follow the shard", self._follow_shard)
        self.queue.start()
        self.tasks.start("release unused watches", self._release_unused_watches)
        log.info(
            "moor controller started; watching Git, OCI and Helm repositories, image automation and Syncs in all "
            "namespaces"
        )
        try:
            await stop.wait()
        finally:
            log.info("shutting down")
            await self.tasks.stop()
            await self.values_watch.stop()
            await self.queue.stop()
            await self.reporter.notes.stop()
            await self.notifier.stop()
            await self.dora.stop()
            for informer in self._informers.values():
                await informer.stop()
            await self.live.stop()

    async def _watch(self, kind: CustomResourceKind, within: float = CRDS_WAIT) -> None:
        """Watches one of Moor's kinds; CRDs installed a moment ago may take a few seconds to be served."""
        deadline = time.monotonic() + within
        while (resource := await self.api.discovery.resolve(API_VERSION, kind.kind)) is None:
            if time.monotonic() > deadline:
                raise CrdsMissing(f"the cluster does not serve {kind.kind} ({API_VERSION}); run `moor install` first")
            await asyncio.sleep(0.5)
            await self.api.discovery.refresh()
        informer = KindInformer(
            self.api, resource, self._heard, label_selector=None, on_recovered=self._retry_failed_soon
        )
        self._informers[kind.kind] = informer
        informer.start()
        await informer.wait_synced()

    def problems(self) -> list[str]:
        """What keeps this controller from working, one line each (none: healthy): failing watches and
        background tasks. /healthz answers 503 with these lines."""
        now = time.monotonic()
        own = [
            f"{informer.name}: {state.error} (failing for {now - state.since:.0f}s)"
            for informer in self._informers.values()
            if (state := informer.state).phase == "failing"
        ]
        return [
            *own,
            *self.live.failing(),
            *self.values_watch.problems(),
            *self.tasks.problems(),
            *self.notifier.problems(),
            *self.dora.problems(),
        ]

    def subscribe(self, listener: Callable[[LiveChange], None]) -> None:
        """Hears every change of Moor's own kinds once its informer stored it (the dashboard)."""
        self._change_listeners.append(listener)

    def _informer_phases(self) -> dict[str, int]:
        """Informers in each phase: the live cache's and this controller's own (GitRepositories, Syncs)."""
        counts = self.live.phase_counts()
        for informer in self._informers.values():
            counts[informer.state.phase] += 1
        return counts

    def _retry_failed_soon(self) -> None:
        """The API server answers again: every object whose reconcile failed meanwhile is tried again now,
        spread over a couple of seconds, instead of at the end of its backoff."""
        failed = list(self.failures)
        if failed:
            log.info("the API server answers again; retrying %d object(s) that failed meanwhile", len(failed))
        for key in failed:
            self.queue.add(key, random.uniform(0.1, RECOVERY_SPREAD))

    async def _release_unused_watches(self, every: float = 300.0) -> None:
        """Kinds are watched only while some Sync manages them (its inventory lists them)."""
        while True:
            await asyncio.sleep(every)
            managed = {
                (str(entry.get("group", "")), str(entry["kind"]))
                for sync in self.objects(SYNC.kind)
                for entry in (sync.get("status") or {}).get("inventory") or []
            }
            for group, kind in await self.live.retain_kinds(managed):
                log.info("no Sync manages %s any more; stopped watching it", f"{kind}.{group}".rstrip("."))

    def _owns(self, key: ObjectKey) -> bool:
        if self.shard is None:
            return True
        obj = self.lookup(key.kind, key.namespace, key.name)
        return self.shard.owns(obj) if obj is not None else self.shard.owns_key(key.kind, key.namespace, key.name)

    async def _follow_shard(self) -> None:
        """Acts on each change of the shard: lost objects' passes cancelled and forgotten, gained ones
        queued now, the live cache's selection and the singletons moved along."""
        assert self.shard is not None
        shard = self.shard
        while True:
            change = await self._shard_changes.get()
            if change.lost:
                await self.queue.drop(lambda key: not self._owns(key))
                for kind, forget in self.forgetters.items():
                    for obj in self.objects(kind):
                        if shard.bucket_of_object(obj) in change.lost:
                            forget(obj)
                for key in [key for key in self.failures if not self._owns(key)]:
                    self.failures.pop(key)
            if self.options.watch_own_shard:
                await self.live.reselect(bucket_selector(shard.active))
            for watched in WATCHED:
                for obj in self.objects(watched.kind):
                    if shard.bucket_of_object(obj) in change.gained:
                        self.queue.add(ObjectKey.of(obj))
            await self._lead(shard.leader)

    async def _lead(self, leader: bool) -> None:
        """The singletons (the delivery metrics' recomputation) run on the leader only."""
        if leader and not self._leading:
            log.info("this member leads: it recomputes the delivery metrics")
            self.dora.start()
        elif self._leading and not leader:
            log.info("this member no longer leads")
            await self.dora.stop()
        self._leading = leader

    async def _mark_owner(self, obj: KubeObject) -> KubeObject:
        """Writes this member's identity on the object when another was written there (`moor get` shows it)."""
        if self.shard is None:
            return obj
        annotations = obj["metadata"].get("annotations") or {}
        if annotations.get(OWNER_ANNOTATION) == self.shard.identity:
            return obj
        patch = {"metadata": {"annotations": {OWNER_ANNOTATION: self.shard.identity}}}
        return await self.api.merge_patch(ObjectKey.of(obj).ref, patch)

    def _heard(self, change: LiveChange) -> None:
        self._on_change(change)
        for listener in self._change_listeners:
            listener(change)

    def _on_change(self, change: LiveChange) -> None:
        """Queues what a change to a custom resource concerns; ignores changes Moor made to status alone."""
        obj = change.object
        key = ObjectKey.of(obj)
        if key.kind == SYNC.kind:
            self._syncs_by_label[sync_key(obj)] = key
            if change.type == "DELETED":
                self._dependents.remove(key)
            else:
                self._dependents.update(key, obj)
        if change.type == "DELETED":
            forget = self.forgetters.get(key.kind)
            if forget is not None:
                forget(obj)
            self.queue.forget(key)
            self._seen.pop(key, None)
            self.failures.pop(key, None)
            if key.kind == IMAGEREPOSITORY.kind:
                self._on_scanned(key.namespace, key.name)  # its policies say it is gone
            return
        metadata = obj["metadata"]
        status = obj.get("status") or {}
        own = (
            metadata.get("generation"),
            (metadata.get("annotations") or {}).get(RECONCILE_ANNOTATION),
            metadata.get("deletionTimestamp"),
            # Written by the ImageUpdate controller: the policy must choose again without those tags.
            _failed_tags(status) if key.kind == IMAGEPOLICY.kind else None,
        )
        outcome = (
            (status.get("artifact") or {}).get("revision"),
            ready.status if (ready := conditions.get_condition(status.get("conditions"), conditions.READY)) else None,
        )
        followed = _followed_by_image_updates(key.kind, status)
        previous = self._seen.get(key)
        self._seen[key] = (own, outcome, followed)
        if previous is None or previous[0] != own:
            self.queue.add(key)
        if previous is not None and previous[1] != outcome:
            self._queue_dependents(obj)
        if previous is not None and previous[1:] != (outcome, followed):
            self._queue_image_updates(obj)

    def _on_managed_change(self, change: LiveChange) -> None:
        """Drift, caught from the watch: a managed object deleted, or a field Moor applied changed, wakes its
        Sync; so does any change to an object whose drift the Sync reports (it may have been put back)."""
        label = ((change.object.get("metadata") or {}).get("labels") or {}).get(SYNC_LABEL)
        owner = self._syncs_by_label.get(str(label))
        if owner is None:
            return
        if (
            change.type == "DELETED"
            or may_have_drifted(change.previous, change.object)
            or self._reports_drift_of(owner, ObjectRef.of(change.object))
        ):
            self.queue.add(owner)

    def _reports_drift_of(self, owner: ObjectKey, ref: ObjectRef) -> bool:
        sync = self.lookup(owner.kind, owner.namespace, owner.name) or {}
        return any(
            (entry.get("group", ""), entry.get("kind"), entry.get("namespace", ""), entry.get("name")) == ref.identity
            for entry in (sync.get("status") or {}).get("drift") or []
        )

    async def _escaped(self, key: ObjectKey, cached: KubeObject, error: Exception) -> None:
        """An error the reconcilers did not report (the object could not even be read): logged, and reported
        on the object as last seen unless the cluster itself failed (then nothing could be written)."""
        if isinstance(error, ApiError) and error.conflict:
            return
        if cluster_failed(error):
            log.warning("%s: %s", key, error)
            return
        await self.reconcilers[key.kind].report_error(cached, error)

    def _on_scanned(self, namespace: str, name: str) -> None:
        """An ImageRepository's tags changed (or are known for the first time since the start): its
        ImagePolicies choose again."""
        for policy in self.objects(IMAGEPOLICY.kind):
            ref = (policy.get("spec") or {}).get("imageRepositoryRef") or {}
            own = policy["metadata"].get("namespace", "")
            if ref.get("name") == name and (ref.get("namespace") or own) == namespace:
                self.queue.add(ObjectKey.of(policy))

    def _queue_dependents(self, changed: KubeObject) -> None:
        """A source's new revision or Ready status, or a Sync's Ready status, wakes the Syncs that use it; an
        ImageRepository's Ready status, its ImagePolicies."""
        key = ObjectKey.of(changed)
        if key.kind == IMAGEREPOSITORY.kind:
            self._on_scanned(key.namespace, key.name)
            return
        if key.kind in (IMAGEPOLICY.kind, IMAGEUPDATE.kind):
            return
        for dependent in sorted(self._dependents.of(key.kind, key.namespace, key.name)):
            self.queue.add(dependent)

    async def reconcile(self, key: ObjectKey) -> None:
        """One reconcile of `key`, timed and counted; whatever happens, the key is queued again when due."""
        cached = self.lookup(key.kind, key.namespace, key.name)
        if cached is None:
            return
        failures = self.failures[key]
        started = time.monotonic()
        try:
            # One read per reconcile (not per managed object): the informer may not have seen the
            # status this controller wrote a moment ago, and a pass must start from it.
            obj = await self.api.get(key.ref)
            if obj is None:
                return
            with reconciling(obj):
                obj = await self._mark_owner(obj)
                requeue = await self.reconcilers[key.kind].reconcile(obj, failures)
        except Fenced as error:
            log.info("%s: stopped, nothing more written: %s", key, error)
            return
        except Exception as error:  # nothing escapes a reconcile
            await self._escaped(key, cached, error)
            requeue = Requeue.after_error(error, RETRY_AFTER_ERROR, failures)
        result = "failure" if requeue.failed else "success"
        self.metrics.reconcile_duration.labels(key.kind, result).observe(time.monotonic() - started)
        if requeue.failed:
            self.failures[key] += 1
        else:
            self.failures.pop(key, None)
        if requeue.delay is not None:
            self.queue.add(key, requeue.delay)

    def _queue_image_updates(self, changed: KubeObject) -> None:
        """An ImagePolicy's choice or failed tags changed: the ImageUpdates of its namespace write again. A
        GitRepository's revision changed: the ImageUpdates writing to it look at the new commit. A Sync's
        outcome changed (Ready, the applied revision, a rollback): the ImageUpdates writing to the
        GitRepository it applies follow their commits."""
        key = ObjectKey.of(changed)
        if key.kind == IMAGEPOLICY.kind:
            for update in self.objects(IMAGEUPDATE.kind):
                if update["metadata"].get("namespace", "") == key.namespace:
                    self.queue.add(ObjectKey.of(update))
            return
        repository: tuple[str, str | None]
        if key.kind == GITREPOSITORY.kind:
            repository = (key.namespace, key.name)  # a new commit (a marker fixed in Git): write again now
        elif key.kind == SYNC.kind:
            source = (changed.get("spec") or {}).get("sourceRef") or {}
            if (source.get("kind") or GITREPOSITORY.kind) != GITREPOSITORY.kind:
                return
            repository = (str(source.get("namespace") or key.namespace), source.get("name"))
        else:
            return
        for update in self.objects(IMAGEUPDATE.kind):
            target = (update.get("spec") or {}).get("sourceRef") or {}
            own = update["metadata"].get("namespace", "")
            if (target.get("namespace") or own, target.get("name")) == repository:
                self.queue.add(ObjectKey.of(update))


def _failed_tags(status: dict[str, Any]) -> tuple[str, ...]:
    return tuple(sorted(str(entry.get("tag")) for entry in status.get("failedTags") or [] if isinstance(entry, dict)))


def _followed_by_image_updates(kind: str, status: dict[str, Any]) -> tuple[Any, ...]:
    """The status fields of an ImagePolicy or a Sync, beyond Ready, whose change concerns ImageUpdates."""
    if kind == IMAGEPOLICY.kind:
        return (status.get("latestTag"), status.get("latestImage"), _failed_tags(status))
    if kind == SYNC.kind:
        return (status.get("lastAppliedRevision"), (status.get("rollback") or {}).get("failedRevision"))
    return ()
