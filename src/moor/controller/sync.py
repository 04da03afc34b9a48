"""Reconciling a Sync: the story of one pass, from the source's revision to a healthy cluster.

fetch artifact -> render -> plan against the live cache -> dry-run and apply -> prune -> wait for
health -> record status, history and events. A pass where nothing changed sends no request at all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from moor.cluster.api import KubeApi
from moor.cluster.apply import Applier, ApplyOutcome, ChangeSetRejected
from moor.cluster.cache import LiveCache
from moor.cluster.client import ApiError, Impersonation
from moor.cluster.discovery import ResourceType
from moor.controller.desired import desired_objects, sync_key
from moor.controller.health_check import wait_until_healthy
from moor.controller.scheduling import Requeue, jittered
from moor.controller.sources import SourceStore
from moor.errors import MoorError
from moor.health import HealthState
from moor.objects import RECONCILE_ANNOTATION, KubeObject, ObjectRef
from moor.plan import Action, Drift, ObjectChange, Plan, decide_drift, new_inventory, plan_changes
from moor.record import readiness
from moor.record.events import NORMAL, WARNING, EventRecorder
from moor.record.metrics import Metrics
from moor.record.status import write_status
from moor.resources import (
    GITREPOSITORY,
    SYNC,
    Condition,
    SpecError,
    SyncSpec,
    conditions,
    format_duration,
    set_condition,
)
from moor.resources.conditions import format_time
from moor.source import Artifact

log = logging.getLogger(__name__)

FINALIZER = "moor.dev/finalizer"
HISTORY_LENGTH = 10

Lookup = Callable[[str, str, str], KubeObject | None]
"""(kind, namespace, name) -> the custom resource as last seen by the controller's informers."""


class SyncFailed(MoorError):
    """A pass that ends with Ready=False: the reason (a condition reason) and whether retrying can help."""

    def __init__(self, reason: str, message: str, *, stalled: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.stalled = stalled


@dataclass
class Attempt:
    """The state of one pass over one Sync, turned into its status at the end."""

    sync: KubeObject
    status: dict[str, Any]
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    revision: str = ""
    author: str = ""
    outcome: ApplyOutcome = field(default_factory=ApplyOutcome)
    corrected: list[Drift] = field(default_factory=list)
    drifted: list[Drift] = field(default_factory=list)

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef.of(self.sync)

    @property
    def generation(self) -> int:
        return int(self.sync["metadata"].get("generation", 0))

    @property
    def changed_anything(self) -> bool:
        return bool(self.outcome.created or self.outcome.configured or self.outcome.deleted)


@dataclass
class SyncReconciler:
    api: KubeApi
    live: LiveCache
    sources: SourceStore
    events: EventRecorder
    lookup: Lookup
    apply_concurrency: int = 16
    metrics: Metrics | None = None

    async def reconcile(self, sync: KubeObject, failures: int) -> Requeue:
        if sync["metadata"].get("deletionTimestamp"):
            await self.finalize(sync)
            return Requeue.never()
        try:
            spec = SyncSpec.from_object(sync)
        except SpecError as error:
            attempt = Attempt(sync, dict(sync.get("status") or {}))
            await self.record_failure(attempt, SyncFailed(conditions.VALIDATION_FAILED, str(error), stalled=True))
            return Requeue.never()
        sync = await self.ensure_finalizer(sync)
        if spec.suspend:
            return Requeue.never()

        attempt = Attempt(sync, dict(sync.get("status") or {}))
        try:
            await self.sync_once(attempt, spec)
        except SyncFailed as failure:
            await self.record_failure(attempt, failure)
            if failure.stalled:
                return Requeue.never()
            return Requeue.backoff(spec.retry_interval.total_seconds(), failures)
        return Requeue.after(jittered(spec.interval.total_seconds()))

    async def sync_once(self, attempt: Attempt, spec: SyncSpec) -> None:
        """The happy path, top to bottom; each step raises SyncFailed with its reason."""
        self.check_dependencies(spec)
        repository = self.source_of(spec)
        artifact = await self.fetch(repository)
        attempt.revision, attempt.author = artifact.revision, artifact.author
        desired = await self.build(attempt, spec, artifact.path)
        inventory = [ObjectRef.from_dict(entry) for entry in attempt.status.get("inventory") or []]
        self.refuse_empty_prune(attempt, spec, desired, inventory)

        await self.watch(desired, inventory)
        plan = self.plan(attempt, desired, inventory)
        git_moved = not settled(attempt.status, attempt.revision, attempt.generation)
        decision = decide_drift(
            plan,
            inventory=inventory,
            git_moved=git_moved,
            mode=str(spec.drift.mode),
            ignored_paths=lambda ref: spec.drift.ignored_paths(ref.kind, ref.namespace, ref.name),
        )
        if decision.writes or plan.prunes or git_moved:
            # Before writing, the inventory grows to hold every object this pass may create, so a crash
            # mid-apply cannot leave an object that a later revision would forget to prune.
            attempt.status["inventory"] = [ref.to_dict() for ref in sorted({*inventory, *new_inventory(desired)})]
            await self.mark_progress(attempt, f"applying revision {attempt.revision}: {plan.summary()}")
        await self.apply(attempt, spec, decision.writes, take_over=[drift.ref for drift in decision.corrected])
        await self.watch(desired, inventory)
        if spec.prune:
            await self.prune(attempt, spec, plan)

        attempt.status["inventory"] = [ref.to_dict() for ref in new_inventory(desired)]
        attempt.status["lastAppliedRevision"] = attempt.revision
        attempt.corrected = list(decision.corrected)
        attempt.drifted = list(decision.reported)
        if spec.wait:
            await self.check_health(attempt, spec, [ObjectRef.of(obj) for obj in desired])
        await self.record_success(attempt)

    # -- steps -------------------------------------------------------------------------------------

    def check_dependencies(self, spec: SyncSpec) -> None:
        waiting = []
        for dependency in spec.depends_on:
            other = self.lookup(SYNC.kind, dependency.namespace, dependency.name)
            if other is None:
                waiting.append(f"{dependency} does not exist")
                continue
            status = other.get("status") or {}
            generation = int(other["metadata"].get("generation", 0))
            ready = conditions.is_condition_true(status.get("conditions"), conditions.READY)
            if not ready or int(status.get("observedGeneration", -1)) != generation:
                waiting.append(f"{dependency} is not Ready")
        if waiting:
            message = f"waiting for dependencies: {', '.join(waiting)}"
            raise SyncFailed(conditions.DEPENDENCY_NOT_READY, message)

    def source_of(self, spec: SyncSpec) -> KubeObject:
        source_ref = spec.source_ref
        repository = self.lookup(GITREPOSITORY.kind, source_ref.namespace, source_ref.name)
        where = f"GitRepository {source_ref.namespace}/{source_ref.name}"
        if repository is None:
            raise SyncFailed(conditions.ARTIFACT_FAILED, f"source {where} does not exist")
        revision = ((repository.get("status") or {}).get("artifact") or {}).get("revision")
        if not revision:
            ready = conditions.get_condition((repository.get("status") or {}).get("conditions"), conditions.READY)
            detail = f": {ready.message}" if ready and ready.message else ""
            raise SyncFailed(conditions.ARTIFACT_FAILED, f"source {where} has no artifact yet{detail}")
        return repository

    async def fetch(self, repository: KubeObject) -> Artifact:
        try:
            return await self.sources.artifact(repository)
        except MoorError as error:
            raise SyncFailed(conditions.ARTIFACT_FAILED, str(error)) from None

    async def build(self, attempt: Attempt, spec: SyncSpec, root: Path) -> list[KubeObject]:
        try:
            return await desired_objects(attempt.sync, spec, root, self.api.discovery)
        except MoorError as error:
            raise SyncFailed(conditions.BUILD_FAILED, f"revision {attempt.revision}: {error}") from None

    def refuse_empty_prune(
        self, attempt: Attempt, spec: SyncSpec, desired: Sequence[KubeObject], inventory: list[ObjectRef]
    ) -> None:
        if desired or not inventory or not spec.prune or spec.allow_empty:
            return
        message = (
            f"revision {attempt.revision}: path {spec.path!r} renders no objects; refusing to prune "
            f"all {len(inventory)} objects (set spec.allowEmpty: true to allow it)"
        )
        raise SyncFailed(conditions.BUILD_FAILED, message)

    async def watch(self, desired: Sequence[KubeObject], inventory: Sequence[ObjectRef]) -> None:
        """Makes sure the live cache watches every kind this Sync touches that the cluster serves."""
        resources: dict[tuple[str, str], ResourceType] = {}
        watched: set[tuple[str, str]] = set()
        for ref in [*(ObjectRef.of(obj) for obj in desired), *inventory]:
            kind = (ref.group, ref.kind)
            if kind in resources or kind in watched:
                continue
            if self.live.is_watching(*kind):
                watched.add(kind)  # maybe started by another Sync a moment ago: wait for its first list below
            elif (resource := await self.api.discovery.resolve_ref(ref)) is not None:
                resources[kind] = resource
        await self.live.watch_kinds(resources.values())
        for kind in watched:
            await self.live.wait_synced(*kind)

    def plan(self, attempt: Attempt, desired: Sequence[KubeObject], inventory: Sequence[ObjectRef]) -> Plan:
        live = {}
        for ref in [*(ObjectRef.of(obj) for obj in desired), *inventory]:
            obj = self.live.get(ref)
            if obj is not None:
                live[ref.identity] = obj
        try:
            return plan_changes(desired, live, inventory, sync_key=sync_key(attempt.sync))
        except MoorError as error:
            raise SyncFailed(conditions.BUILD_FAILED, f"revision {attempt.revision}: {error}") from None

    def applier(self, attempt: Attempt, spec: SyncSpec) -> Applier:
        account = spec.service_account_name
        impersonation = Impersonation.service_account(attempt.ref.namespace, account) if account else None
        api = self.api.as_user(impersonation)
        return Applier(api, concurrency=self.apply_concurrency, force=spec.force)

    async def apply(
        self, attempt: Attempt, spec: SyncSpec, changes: Sequence[ObjectChange], take_over: Sequence[ObjectRef] = ()
    ) -> None:
        writes = [change.desired for change in changes if change.desired is not None]
        if not writes:
            return
        existing = [change.ref for change in changes if change.action is Action.UPDATE]
        try:
            attempt.outcome = await self.applier(attempt, spec).apply_set(writes, existing, take_over=take_over)
        except ChangeSetRejected as error:
            raise SyncFailed(conditions.VALIDATION_FAILED, f"revision {attempt.revision}: {error}") from None
        except ApiError as error:
            raise SyncFailed(conditions.APPLY_FAILED, f"revision {attempt.revision}: {error}") from None

    async def prune(self, attempt: Attempt, spec: SyncSpec, plan: Plan) -> None:
        doomed = [change.ref for change in plan.prunes]
        if not doomed:
            return
        failures = await self.applier(attempt, spec).delete_all(doomed, attempt.outcome)
        if failures:
            listed = "; ".join(str(failure) for failure in failures)
            raise SyncFailed(conditions.PRUNE_FAILED, f"revision {attempt.revision}: could not prune {listed}")

    async def check_health(self, attempt: Attempt, spec: SyncSpec, refs: Sequence[ObjectRef]) -> None:
        health = await wait_until_healthy(
            self.live, refs, attempt.outcome.applied_objects, spec.timeout.total_seconds()
        )
        if health.state is not HealthState.HEALTHY:
            waited = format_duration(spec.timeout)
            message = f"revision {attempt.revision}: not healthy after {waited}: {health.message}"
            raise SyncFailed(conditions.HEALTH_CHECK_FAILED, message)

    # -- recording ---------------------------------------------------------------------------------

    async def mark_progress(self, attempt: Attempt, message: str) -> None:
        status = attempt.status
        status["conditions"] = readiness.reconciling(status.get("conditions"), message, attempt.generation)
        status["lastAttemptedRevision"] = attempt.revision
        attempt.sync = await write_status(self.api, attempt.sync, status)
        attempt.status = dict(attempt.sync.get("status") or status)

    async def record_success(self, attempt: Attempt) -> None:
        status = attempt.status
        outcome = attempt.outcome
        message = f"Applied revision: {attempt.revision}"
        status["conditions"] = readiness.ready(
            status.get("conditions"), conditions.SUCCEEDED, message, attempt.generation
        )
        status["lastAttemptedRevision"] = attempt.revision
        previous_drift = status.get("drift") or []
        self.record_drift(attempt)
        only_drift = bool(attempt.corrected) and settled(attempt.status, attempt.revision, attempt.generation)
        self.finish(attempt, "DriftCorrected" if only_drift else "Succeeded")
        await write_status(self.api, attempt.sync, status)
        self.count(attempt)
        if attempt.corrected:
            corrected = "; ".join(str(drift) for drift in attempt.corrected)
            await self.events.emit(attempt.sync, WARNING, "DriftCorrected", f"put back the Git state: {corrected}")
            log.info("%s: corrected drift: %s", attempt.ref, corrected)
        if attempt.drifted and status.get("drift") != previous_drift:
            detected = "; ".join(str(drift) for drift in attempt.drifted)
            await self.events.emit(attempt.sync, WARNING, conditions.DRIFT_DETECTED, f"left as is: {detected}")
            log.info("%s: drift detected: %s", attempt.ref, detected)
        if attempt.changed_anything and not only_drift:
            summary = (
                f"revision {attempt.revision}: {len(outcome.created)} created, {len(outcome.configured)} configured, "
                f"{len(outcome.deleted)} pruned"
            )
            await self.events.emit(attempt.sync, NORMAL, "Applied", summary)
            log.info("%s: %s", attempt.ref, summary)

    def record_drift(self, attempt: Attempt) -> None:
        """`status.drift` and the Drifted condition show drift left in place; both vanish when there is none."""
        status = attempt.status
        if not attempt.drifted:
            status.pop("drift", None)
            status["conditions"] = conditions.remove_condition(status.get("conditions"), conditions.DRIFTED)
            return
        status["drift"] = [drift.to_dict() for drift in attempt.drifted]
        objects = len({drift.ref for drift in attempt.drifted})
        message = f"{objects} object(s) differ from Git: " + "; ".join(str(d) for d in attempt.drifted[:5])
        drifted = Condition(conditions.DRIFTED, conditions.TRUE, conditions.DRIFT_DETECTED, message, attempt.generation)
        status["conditions"] = set_condition(status.get("conditions"), drifted)

    def count(self, attempt: Attempt, failure: SyncFailed | None = None) -> None:
        if self.metrics is None:
            return
        ref = attempt.ref
        outcome = attempt.outcome
        self.metrics.applied.labels(ref.namespace, ref.name).inc(len(outcome.created) + len(outcome.configured))
        self.metrics.pruned.labels(ref.namespace, ref.name).inc(len(outcome.deleted))
        self.metrics.drift_corrections.labels(ref.namespace, ref.name).inc(len({d.ref for d in attempt.corrected}))
        if failure is None:
            self.metrics.drifted.labels(ref.namespace, ref.name).set(len({d.ref for d in attempt.drifted}))
        else:
            self.metrics.failures.labels(SYNC.kind, ref.namespace, ref.name, failure.reason).inc()

    async def record_failure(self, attempt: Attempt, failure: SyncFailed) -> None:
        status = attempt.status
        before = conditions.get_condition(status.get("conditions"), conditions.READY)
        status["conditions"] = readiness.failed(
            status.get("conditions"), failure.reason, str(failure), attempt.generation, stalled=failure.stalled
        )
        if attempt.revision:
            status["lastAttemptedRevision"] = attempt.revision
        self.finish(attempt, failure.reason)
        await write_status(self.api, attempt.sync, status)
        self.count(attempt, failure)
        if before is None or before.message != str(failure):
            await self.events.emit(attempt.sync, WARNING, failure.reason, str(failure))
        log.warning("%s: %s", attempt.ref, failure)

    def finish(self, attempt: Attempt, result: str) -> None:
        """observedGeneration, the handled reconcile request, and a history entry when something happened."""
        status = attempt.status
        metadata = attempt.sync["metadata"]
        status["observedGeneration"] = attempt.generation
        requested = (metadata.get("annotations") or {}).get(RECONCILE_ANNOTATION)
        if requested:
            status["lastHandledReconcileAt"] = requested
        history: list[dict[str, Any]] = list(status.get("history") or [])
        last = history[0] if history else {}
        if attempt.changed_anything or last.get("revision") != attempt.revision or last.get("result") != result:
            entry = {
                "revision": attempt.revision,
                "author": attempt.author,
                "startedAt": format_time(attempt.started_at),
                "finishedAt": format_time(datetime.now(UTC)),
                "result": result,
                "applied": len(attempt.outcome.created) + len(attempt.outcome.configured),
                "pruned": len(attempt.outcome.deleted),
            }
            status["history"] = [entry, *history][:HISTORY_LENGTH]

    # -- finalizer ---------------------------------------------------------------------------------

    async def ensure_finalizer(self, sync: KubeObject) -> KubeObject:
        finalizers = list(sync["metadata"].get("finalizers") or [])
        if FINALIZER in finalizers:
            return sync
        patch = {
            "metadata": {"finalizers": [*finalizers, FINALIZER], "resourceVersion": sync["metadata"]["resourceVersion"]}
        }
        return await self.api.merge_patch(ObjectRef.of(sync), patch)

    async def finalize(self, sync: KubeObject) -> None:
        """On deletion: with prune on, delete what the Sync applied (never what it didn't), then let go."""
        finalizers = list(sync["metadata"].get("finalizers") or [])
        if FINALIZER not in finalizers:
            return
        try:
            spec: SyncSpec | None = SyncSpec.from_object(sync)
        except SpecError:
            spec = None
        if spec is not None and spec.prune and not spec.suspend:
            inventory = [ObjectRef.from_dict(entry) for entry in (sync.get("status") or {}).get("inventory") or []]
            await self.watch([], inventory)
            live = {ref.identity: obj for ref in inventory if (obj := self.live.get(ref)) is not None}
            plan = plan_changes([], live, inventory, sync_key=sync_key(sync))
            attempt = Attempt(sync, dict(sync.get("status") or {}))
            await self.prune(attempt, spec, plan)
            log.info("%s: deleted; pruned %d objects", attempt.ref, len(attempt.outcome.deleted))
        remaining = [name for name in finalizers if name != FINALIZER]
        patch = {"metadata": {"finalizers": remaining, "resourceVersion": sync["metadata"]["resourceVersion"]}}
        await self.api.merge_patch(ObjectRef.of(sync), patch)


def settled(status: dict[str, Any], revision: str, generation: int) -> bool:
    """True when this revision and spec were applied and became Ready: differences now are drift."""
    ready = conditions.get_condition(status.get("conditions"), conditions.READY)
    return (
        status.get("lastAppliedRevision") == revision
        and ready is not None
        and ready.is_true
        and ready.observed_generation == generation
    )
