"""Reconciling a Sync: the story of one pass, from the source's revision to a healthy cluster.

choose the revision -> render it -> plan against the live cache -> pre hooks -> dry-run and apply (wave
by wave) -> prune -> wait for health -> post hooks -> record. Hooks run only when the revision or the
spec moved (never on a pass that found nothing to do, nor on a rollback); a failure after they started
runs the fail hooks. A revision that fails is replaced by the last healthy one when the Sync
asks for rollbacks; a new revision waits for `moor approve` when the Sync asks for approvals. A pass
where nothing changed sends no request at all (but a Helm chart's pass asks discovery, rate-limited and
shared by every Sync, so that the chart sees API versions served since).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moor.cluster.access import AccessReviewer
from moor.cluster.api import KubeApi
from moor.cluster.apply import Applier, ChangeSetRejected, Waves
from moor.cluster.cache import InformerNotSynced, LiveCache
from moor.cluster.client import ApiError
from moor.cluster.discovery import ResourceType
from moor.controller.ownership import CONFLICTS_FIELD, Claims, conflict_entries, conflict_message
from moor.controller.rendering import (
    decryption_keys,
    has_installed,
    helm_values_from,
    phased_objects,
    render_fingerprint,
    served_api_versions,
    sync_key,
)
from moor.controller.revision_choice import (
    APPROVED_BY_ANNOTATION,
    PIN_ANNOTATION,
    PINNED_SOURCE_ANNOTATION,
    Hold,
    choose_revision,
)
from moor.controller.scheduling import Requeue, UnexpectedFailure, cluster_failed, jittered
from moor.controller.source_store import SourceStore
from moor.controller.sync_hooks import HookRunner
from moor.controller.sync_memory import PlanInputs, RenderKey, SyncMemory
from moor.controller.sync_report import (
    DRIFT_CORRECTION,
    ROLLED_BACK,
    Attempt,
    RecordFailed,
    SyncFailed,
    SyncReporter,
)
from moor.controller.tenancy import TenancyPolicy, check_reads
from moor.errors import MoorError
from moor.health import HealthState
from moor.health.wait import wait_until_healthy
from moor.objects import KubeObject, ObjectRef
from moor.plan import (
    Action,
    DesiredSet,
    ObjectChange,
    Phase,
    Phases,
    Plan,
    decide_drift,
    plan_changes,
)
from moor.record.git_notes import NoteTarget, last_healthy_revision, read_deployment_notes
from moor.record.snapshots import SnapshotStore
from moor.resources import (
    GITREPOSITORY,
    GROUP,
    SYNC,
    ApprovalMode,
    GitRepositorySpec,
    SpecError,
    SyncSpec,
    conditions,
    format_duration,
)
from moor.resources.sync import ChartRef
from moor.source import Artifact

log = logging.getLogger(__name__)

FINALIZER = "moor.dev/finalizer"
DEFAULT_RETRY_INTERVAL = 5.0
"""Seconds before retrying a Sync whose spec gives no retry interval (it does not parse, or is being deleted)."""
NO_HOOKS = Phases()
WATCH_DEADLINE = 30.0
"""Seconds a pass waits for the first list of a kind it touches before it fails with WatchFailed."""

Lookup = Callable[[str, str, str], KubeObject | None]
"""(kind, namespace, name) -> the custom resource as last seen by the controller's informers."""


class SourcePending(Exception):
    """The source has not finished its first fetch yet: not a failure, the Sync waits for it quietly."""


@dataclass
class SyncReconciler:
    api: KubeApi
    live: LiveCache
    sources: SourceStore
    report: SyncReporter
    snapshots: SnapshotStore
    lookup: Lookup
    claims: Claims
    apply_concurrency: int = 16
    tenancy: TenancyPolicy = field(default_factory=TenancyPolicy)
    access: AccessReviewer = field(init=False)
    hooks: HookRunner = field(init=False)
    memory: dict[str, SyncMemory] = field(init=False, default_factory=dict)
    """By the Sync's uid."""
    chart_choices: dict[str, tuple[ChartChoice, str]] = field(init=False, default_factory=dict)
    """By the Sync's uid: the chart revision its range chose from one index, reused while that index stays."""
    phases: dict[str, Phases] = field(init=False, default_factory=dict)
    """By the Sync's uid: the hooks of its last render (beside `memory.desired`, its main objects)."""
    remembered_from_git: set[str] = field(init=False, default_factory=set)
    """The uids of the Syncs whose deployment notes were read (once each, see `remember_from_git`)."""

    def __post_init__(self) -> None:
        self.access = AccessReviewer(self.api)
        self.hooks = HookRunner(self.applier, self.report, self.check_health)

    def memory_of(self, sync: KubeObject) -> SyncMemory:
        return self.memory.setdefault(str(sync["metadata"].get("uid", "")), SyncMemory())

    def forget(self, sync: KubeObject) -> None:
        """The Sync is gone: drop what its passes kept."""
        uid = str(sync["metadata"].get("uid", ""))
        self.memory.pop(uid, None)
        self.chart_choices.pop(uid, None)
        self.phases.pop(uid, None)
        self.remembered_from_git.discard(uid)

    async def reconcile(self, sync: KubeObject, failures: int) -> Requeue:
        """One pass. Whatever goes wrong ends as a failed attempt with a reason and a retry, never as an
        exception (unless even that failure cannot be reported, which is logged)."""
        attempt = Attempt(sync, dict(sync.get("status") or {}))
        try:
            return await self.run_pass(attempt, failures)
        except Exception as error:
            if isinstance(error, ApiError) and error.conflict:
                # The Sync changed under this pass (its finalizer patch was refused): the change wakes it.
                return Requeue.backoff(DEFAULT_RETRY_INTERVAL, failures)
            await self.report_error(attempt, error)
            return Requeue.after_error(error, retry_interval_of(sync), failures)

    async def report_error(self, attempt: Attempt, error: Exception) -> None:
        """An error no step turned into a SyncFailed: reported as one (the cluster's failure, Moor's
        bookkeeping, or an unexpected error); when even that cannot be written, the log says so and the
        attempt's history record will say it was interrupted by this."""
        failure = failure_of(error)
        if not isinstance(error, MoorError):
            log.error("%s: unexpected error", attempt.ref, exc_info=error)
        try:
            await self.report.failed(attempt, failure)
        except Exception as second:
            log.warning("%s: %s; the failure could not be recorded either: %s", attempt.ref, failure, second)
            self.report.interrupted(attempt, failure)

    async def run_pass(self, attempt: Attempt, failures: int) -> Requeue:
        sync = attempt.sync
        if sync["metadata"].get("deletionTimestamp"):
            try:
                await self.finalize(sync)
            except SyncFailed as failure:
                await self.report.failed(attempt, failure)
                return Requeue.backoff(DEFAULT_RETRY_INTERVAL, failures)
            return Requeue.never()
        try:
            spec = SyncSpec.from_object(sync)
        except SpecError as error:
            await self.report.failed(attempt, SyncFailed(conditions.VALIDATION_FAILED, str(error), stalled=True))
            return Requeue.never()
        attempt.sync = await self.ensure_finalizer(sync)
        if spec.suspend:
            return Requeue.never()

        try:
            await self.sync_once(attempt, spec)
        except SourcePending:
            # Its first fetch wakes this Sync when it ends; the retry is only a safety net.
            return Requeue.after(spec.retry_interval.total_seconds())
        except SyncFailed as failure:
            if failure.revision_failed and self.can_roll_back(attempt, spec):
                return await self.roll_back(attempt, spec, failure, failures)
            await self.report.failed(attempt, failure)
            if failure.stalled:
                return Requeue.never()
            return Requeue.backoff(spec.retry_interval.total_seconds(), failures)
        return Requeue.after(jittered(spec.interval.total_seconds()))

    async def sync_once(self, attempt: Attempt, spec: SyncSpec) -> None:
        """The happy path, top to bottom; each step raises SyncFailed with its reason."""
        self.tenancy.check_references(attempt.ref, spec)
        self.check_dependencies(spec)
        repository = self.source_of(spec)
        if spec.git_notes and spec.source_ref.kind == GITREPOSITORY.kind:
            attempt.note_target = lambda: self.note_target(repository)
            await self.remember_from_git(attempt, spec, repository)
        source_revision = await self.newest_revision(attempt.sync, spec, repository)
        choice = choose_revision(
            source_revision, attempt.status, attempt.annotations, manual_approval=spec.approval is ApprovalMode.MANUAL
        )
        if choice.pin_released:
            await self.release_pin(attempt)
        if choice.hold is Hold.AWAITING_APPROVAL:
            await self.await_approval(attempt, spec, repository, source_revision)
            return
        if choice.hold is Hold.PINNED:
            attempt.trigger = "pin"
            attempt.status["pinnedRevision"] = choice.revision
        else:
            attempt.status.pop("pinnedRevision", None)
        desired, phases = await self.desired_at(attempt, spec, repository, choice.revision)
        await self.converge(attempt, spec, desired, phases)
        if choice.hold is Hold.AFTER_FAILURE:
            # Still holding the last healthy revision: the failure stays reported until Git moves on.
            rollback = attempt.status.get("rollback") or {}
            failure = SyncFailed(str(rollback.get("reason") or ROLLED_BACK), str(rollback.get("message") or ""))
            await self.report.rolled_back(attempt, source_revision, failure)
            return
        attempt.status.pop("rollback", None)
        await self.report.succeeded(attempt, approved_by=self.approver(attempt, choice.hold))

    async def converge(
        self,
        attempt: Attempt,
        spec: SyncSpec,
        desired: DesiredSet,
        phases: Phases = NO_HOOKS,
        *,
        rolling_back: bool = False,
    ) -> None:
        """Makes the cluster equal to `desired`: plan, pre hooks, apply by wave, prune, check health, post
        hooks. A failure once hooks are due runs the fail hooks before it is reported."""
        inventory = self.inventory_of(attempt)
        self.refuse_empty_prune(attempt, spec, desired, inventory)
        await self.watch(desired.refs, inventory)
        await self.check_reads(attempt, spec, desired, inventory)
        plan = await self.plan(attempt, desired, inventory, take_over=spec.force)
        self.refuse_contested(attempt, plan)
        git_moved = rolling_back or not settled(attempt.status, attempt.revision, attempt.generation)
        hooks_due = git_moved and not rolling_back and bool(phases.hooks)
        decision = decide_drift(
            plan,
            inventory=inventory,
            git_moved=git_moved,
            mode=str(spec.drift.mode),
            ignored_paths=lambda ref: spec.drift.ignored_paths(ref.kind, ref.namespace, ref.name),
        )
        if not git_moved and decision.corrected:
            attempt.trigger = DRIFT_CORRECTION
        reporting: asyncio.Future[None] | None = None
        inventory_recorded: asyncio.Future[None] | None = None
        if decision.writes or plan.prunes or git_moved:
            known = set(inventory)
            grows = not known.issuperset(desired.inventory)
            # The inventory grows to hold every object this pass may create before the first write, so a
            # crash mid-apply cannot leave an object that a later revision would forget to prune. The
            # status is written while the dry runs go out.
            grown = sorted(known.union(desired.inventory), key=ObjectRef.sort_key) if grows else inventory
            attempt.status["inventory"] = [ref.to_dict() for ref in grown]
            message = f"applying revision {attempt.revision}: {plan.summary()}"
            approved_by = attempt.annotations.get(APPROVED_BY_ANNOTATION, "")
            reporting = asyncio.ensure_future(self.report.progress(attempt, message, approved_by=approved_by))
            inventory_recorded = reporting if grows else None
        take_over = [change.ref for change in decision.writes] if rolling_back else [d.ref for d in decision.corrected]
        if hooks_due:
            attempt.status["hooks"] = attempt.hooks = []
        try:
            try:
                if hooks_due and reporting is not None:
                    await self.recorded_before_writes(reporting)
                    reporting = inventory_recorded = None
                waves = self.hooks.waves(attempt, spec, desired, phases if hooks_due else NO_HOOKS, decision.writes)
                await self.apply(
                    attempt, spec, decision.writes, take_over, before_writes=inventory_recorded, waves=waves
                )
                # Kinds whose CRD this pass created: watched from now on; the next plan waits for their list.
                await self.watch(desired.refs, inventory, wait=False)
                if spec.prune or rolling_back:
                    await self.prune(attempt, spec, plan)
            except BaseException:
                if reporting is not None:  # let it finish, but never let its error hide this one (or a cancel)
                    await asyncio.gather(reporting, return_exceptions=True)
                raise
            if reporting is not None:
                await reporting

            attempt.status["inventory"] = list(desired.inventory_entries)
            attempt.status["lastAppliedRevision"] = attempt.revision
            attempt.corrected = list(decision.corrected)
            attempt.drifted = list(decision.reported)
            keeps_healthy = spec.wait or spec.rollback_on_failure
            post_due = hooks_due and bool(phases.waves_of(Phase.POST))
            if keeps_healthy or post_due:
                await self.check_health(attempt, spec, desired.refs)
            if hooks_due:
                await self.hooks.run(attempt, spec, phases, Phase.POST)
        except SyncFailed:
            if hooks_due:
                await self.hooks.run_after_failure(attempt, spec, phases)
            raise
        if keeps_healthy and attempt.status.get("lastHealthyRevision") != attempt.revision:
            await self.save_snapshot(attempt, desired)
            attempt.status["lastHealthyRevision"] = attempt.revision

    # -- phases and hooks --------------------------------------------------------------------------

    async def recorded_before_writes(self, reporting: asyncio.Future[None]) -> None:
        """The progress status, awaited before a hook is written (as `apply` awaits it before the first write)."""
        try:
            await progress_recorded(reporting)
        except ProgressNotRecorded as error:
            raise SyncFailed(conditions.RECORD_FAILED, str(error)) from None

    # -- rollback, pins and approvals --------------------------------------------------------------

    def can_roll_back(self, attempt: Attempt, spec: SyncSpec) -> bool:
        healthy = attempt.status.get("lastHealthyRevision")
        return bool(spec.rollback_on_failure and healthy and healthy != attempt.revision)

    async def roll_back(self, attempt: Attempt, spec: SyncSpec, failure: SyncFailed, failures: int) -> Requeue:
        """Puts back the last healthy revision's state: objects the failed revision added go, objects it
        removed come back, changed fields return. The failed revision is not retried until Git moves on."""
        failed_revision = attempt.revision
        healthy = str(attempt.status["lastHealthyRevision"])
        log.warning("%s: revision %s failed (%s); rolling back to %s", attempt.ref, failed_revision, failure, healthy)
        attempt.revision, attempt.trigger = healthy, "rollback"
        try:
            snapshot = await self.snapshots.load(attempt.sync, healthy)
            if snapshot is not None:
                desired = DesiredSet.of(snapshot.objects)
            else:
                repository = self.source_of(spec)
                desired, _ = await self.desired_at(attempt, spec, repository, healthy)
            await self.converge(attempt, spec, desired, rolling_back=True)
        except SyncFailed as second:
            attempt.revision = failed_revision
            message = f"{failure}; the rollback to {healthy} failed too: {second}"
            await self.report.failed(attempt, SyncFailed(failure.reason, message))
            return Requeue.backoff(spec.retry_interval.total_seconds(), failures)
        await self.report.rolled_back(attempt, failed_revision, failure)
        return Requeue.after(jittered(spec.interval.total_seconds()))

    async def await_approval(
        self, attempt: Attempt, spec: SyncSpec, repository: KubeObject, source_revision: str
    ) -> None:
        """Plans the new revision without writing anything, and says what approving it would change."""
        desired, _ = await self.desired_at(attempt, spec, repository, source_revision)
        inventory = self.inventory_of(attempt)
        await self.watch(desired.refs, inventory)
        await self.check_reads(attempt, spec, desired, inventory)
        plan = await self.plan(attempt, desired, inventory, take_over=spec.force)
        await self.report.awaiting_approval(attempt, plan.summary())

    def approver(self, attempt: Attempt, hold: Hold) -> str:
        if hold is not Hold.LATEST:
            return ""
        return attempt.annotations.get(APPROVED_BY_ANNOTATION, "")

    async def release_pin(self, attempt: Attempt) -> None:
        """Git moved past a pinned revision: the pin goes, the Sync follows Git again."""
        patch = {"metadata": {"annotations": {PIN_ANNOTATION: None, PINNED_SOURCE_ANNOTATION: None}}}
        attempt.sync = await self.api.merge_patch(attempt.ref, patch)
        log.info("%s: Git moved past the pinned revision; following Git again", attempt.ref)

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
        repository = self.lookup(source_ref.kind, source_ref.namespace, source_ref.name)
        where = f"{source_ref.kind} {source_ref.namespace}/{source_ref.name}"
        if repository is None:
            raise SyncFailed(conditions.ARTIFACT_FAILED, f"source {where} does not exist")
        revision = ((repository.get("status") or {}).get("artifact") or {}).get("revision")
        ready = conditions.get_condition((repository.get("status") or {}).get("conditions"), conditions.READY)
        if not revision and not (spec.chart is not None and ready is not None and ready.is_true):
            # A HelmRepository of type oci has no index, so no artifact: Ready says its registry answers.
            if ready is None:
                raise SourcePending(where)
            detail = f": {ready.message}" if ready and ready.message else ""
            raise SyncFailed(conditions.SOURCE_NOT_READY, f"source {where} has no artifact yet{detail}")
        return repository

    async def remember_from_git(self, attempt: Attempt, spec: SyncSpec, repository: KubeObject) -> None:
        """A Sync with no history in this cluster (a rebuilt one) takes its last healthy revision from the
        deployment notes in Git, so a failing first revision rolls back as it would have in the lost
        cluster. Read once per Sync; a repository that cannot be read is logged and the pass goes on."""
        status, uid = attempt.status, str(attempt.sync["metadata"].get("uid", ""))
        keeps_healthy = spec.wait or spec.rollback_on_failure
        if not keeps_healthy or status.get("lastHealthyRevision") or status.get("historySequence"):
            return
        if uid in self.remembered_from_git:
            return
        self.remembered_from_git.add(uid)
        try:
            target = await self.note_target(repository)
            notes = await read_deployment_notes(target.url, target.auth, timeout=target.timeout)
        except MoorError as error:
            log.warning("%s: the deployment notes in Git could not be read: %s", attempt.ref, error)
            return
        ref = attempt.ref
        healthy = last_healthy_revision(notes, self.report.notes.cluster, ref.namespace, ref.name)
        if healthy:
            status["lastHealthyRevision"] = healthy
            log.info("%s: the deployment notes in Git say %s was the last healthy revision", ref, healthy)

    async def note_target(self, repository: KubeObject) -> NoteTarget:
        """Where deployment notes of a Sync of `repository` are pushed: its URL, with its credentials."""
        access = await self.sources.access(repository, GitRepositorySpec.from_object(repository))
        return NoteTarget(access.url, access.auth, access.timeout)

    async def newest_revision(self, sync: KubeObject, spec: SyncSpec, repository: KubeObject) -> str:
        """The source's newest revision: the one its status names, or for a chart of a HelmRepository the
        newest version its range admits (a new one inside the range rolls in like a new commit)."""
        if spec.chart is None:
            return str(repository["status"]["artifact"]["revision"])
        uid = str(sync["metadata"].get("uid", ""))
        choice = ChartChoice.of(repository, spec.chart)
        known = self.chart_choices.get(uid)
        if choice.index and known is not None and known[0] == choice:  # the same index: the same choice
            return known[1]
        try:
            chart = await self.sources.charts.chart(repository, spec.chart.name, spec.chart.version)
        except MoorError as error:
            if cluster_failed(error):
                raise
            raise SyncFailed(conditions.ARTIFACT_FAILED, str(error)) from None
        self.chart_choices[uid] = (choice, chart.artifact.revision)
        return chart.artifact.revision

    async def desired_at(
        self, attempt: Attempt, spec: SyncSpec, repository: KubeObject, revision: str
    ) -> tuple[DesiredSet, Phases]:
        """The objects and hooks of `revision` (Git's newest or an earlier one), rendered and prepared."""
        artifact = await self.fetch(repository, revision)
        attempt.revision, attempt.author, attempt.message = artifact.revision, artifact.author, artifact.message
        attempt.commit_times[artifact.revision] = artifact.committed_at
        return await self.build(attempt, spec, artifact.path)

    async def fetch(self, repository: KubeObject, revision: str) -> Artifact:
        try:
            return await self.sources.artifact(repository, revision)
        except MoorError as error:
            if cluster_failed(error):
                raise
            raise SyncFailed(conditions.ARTIFACT_FAILED, str(error)) from None

    async def build(self, attempt: Attempt, spec: SyncSpec, root: Path) -> tuple[DesiredSet, Phases]:
        """Renders `root` for the Sync, or reuses the last render when nothing it depends on changed."""
        memory = self.memory_of(attempt.sync)
        uid = str(attempt.sync["metadata"].get("uid", ""))
        try:
            keys = await decryption_keys(attempt.sync, spec, self.sources)
            values_from = await helm_values_from(attempt.sync, spec, self.api)
            if spec.chart is not None or spec.helm is not None:
                # A chart sees the cluster's API versions: CRDs installed since the last pass count.
                await self.api.discovery.refresh(force=False)
            cluster_side = render_fingerprint(
                values_from, served_api_versions(self.api.discovery), has_installed(attempt.sync)
            )
            key = RenderKey(str(root), attempt.generation, f"{keys.fingerprint if keys else ''}/{cluster_side}")
            if memory.render_key == key and uid in self.phases:
                return memory.desired, self.phases[uid]
            objects, phases = await phased_objects(
                attempt.sync, spec, root, self.api.discovery, keys, values_from=values_from
            )
            desired = DesiredSet.of(objects)
        except MoorError as error:
            if cluster_failed(error):  # reading a decryption key or discovery: not the revision's fault
                raise
            message = f"revision {attempt.revision}: {error}"
            raise SyncFailed(conditions.BUILD_FAILED, message, revision_failed=True) from None
        # Objects of a kind the cluster does not serve yet were placed from their arriving CRD: render
        # again once it is served, so that discovery has the last word on their scope.
        known = self.api.discovery.known_namespaced
        served = all(known(str(obj["apiVersion"]), str(obj["kind"])) is not None for obj in desired.objects)
        memory.render_key, memory.desired = (key if served else None), desired
        self.phases[uid] = phases
        return desired, phases

    def refuse_empty_prune(
        self, attempt: Attempt, spec: SyncSpec, desired: DesiredSet, inventory: Sequence[ObjectRef]
    ) -> None:
        if desired or not inventory or not spec.prune or spec.allow_empty:
            return
        message = (
            f"revision {attempt.revision}: path {spec.path!r} renders no objects; refusing to prune "
            f"all {len(inventory)} objects (set spec.allowEmpty: true to allow it)"
        )
        raise SyncFailed(conditions.BUILD_FAILED, message, revision_failed=True)

    async def watch(self, desired: Sequence[ObjectRef], inventory: Sequence[ObjectRef], *, wait: bool = True) -> None:
        """Makes sure the live cache watches every kind this Sync touches that the cluster serves, and (with
        `wait`) that each kind's first list has arrived: a kind that may not be listed, or whose list does
        not arrive within WATCH_DEADLINE seconds, fails the pass (WatchFailed) instead of holding it."""
        resources: dict[tuple[str, str], ResourceType] = {}
        watched: set[tuple[str, str]] = set()
        kinds = {(ref.group, ref.kind): ref for refs in (desired, inventory) for ref in refs}
        for kind, ref in kinds.items():
            if self.live.is_watching(*kind):
                watched.add(kind)  # maybe started by another Sync a moment ago: wait for its first list below
            elif (resource := await self.api.discovery.resolve_ref(ref)) is not None:
                resources[kind] = resource
        try:
            await self.live.watch_kinds(resources.values(), wait=wait, within=WATCH_DEADLINE)
            for kind in watched if wait else ():
                await self.live.wait_synced(*kind, within=WATCH_DEADLINE)
        except InformerNotSynced as error:
            if cluster_failed(error):  # the API server did not answer: reported as such, retried soon
                raise
            raise SyncFailed(conditions.WATCH_FAILED, str(error)) from None

    async def check_reads(
        self, attempt: Attempt, spec: SyncSpec, desired: DesiredSet, inventory: Sequence[ObjectRef]
    ) -> None:
        """A Sync acting as a ServiceAccount sees the shared cache only where that account may read."""
        account = self.tenancy.service_account(attempt.ref, spec)
        if account is not None:
            refs = [*desired.refs, *inventory]
            await check_reads(self.access, self.api.discovery, account, refs, attempt.revision)

    async def plan(
        self, attempt: Attempt, desired: DesiredSet, inventory: tuple[ObjectRef, ...], *, take_over: bool = False
    ) -> Plan:
        """The plan of this pass, compared under the API's schemas; the last one again (without asking for
        the schemas, so without a request) when nothing it depends on changed. A plan that found contested
        objects is made anew each time: their owner may have released them since."""
        memory = self.memory_of(attempt.sync)
        key = sync_key(attempt.sync)
        inputs = PlanInputs(desired, self.live.changes_of(key), inventory)
        last, last_inputs = memory.plan, memory.plan_inputs
        if last is not None and last_inputs is not None and not last.contested and inputs.same_as(last_inputs):
            return last
        schemas = await self.api.schemas.for_api_versions({ref.api_version for ref in desired.refs})
        live = {}
        for ref in [*desired.refs, *inventory]:
            obj = self.live.get(ref)
            if obj is not None:
                live[ref.identity] = obj
        plan = plan_changes(
            desired,
            live,
            inventory,
            sync_key=key,
            remembered=memory.comparisons,
            schemas=schemas,
            still_claimed=self.claims.still_claimed,
            waiting_for=lambda identity: self.claims.waiting_for(identity, key),
            take_over=take_over,
        )
        memory.plan_inputs, memory.plan = inputs, plan
        return plan

    def refuse_contested(self, attempt: Attempt, plan: Plan) -> None:
        """Nothing is written while another Sync owns objects this one declares; the status lists them."""
        if not plan.contested:
            attempt.status.pop(CONFLICTS_FIELD, None)
            return
        entries = conflict_entries(plan.contested, self.claims)
        attempt.status[CONFLICTS_FIELD] = entries
        raise SyncFailed(conditions.OWNERSHIP_CONFLICT, conflict_message(attempt.revision, entries))

    def inventory_of(self, attempt: Attempt) -> tuple[ObjectRef, ...]:
        return self.memory_of(attempt.sync).inventory_of(list(attempt.status.get("inventory") or []))

    def applier(self, attempt: Attempt, spec: SyncSpec) -> Applier:
        account = self.tenancy.service_account(attempt.ref, spec)
        api = self.api.as_user(account.impersonation if account else None)
        return Applier(api, concurrency=self.apply_concurrency, force=spec.force)

    async def apply(
        self,
        attempt: Attempt,
        spec: SyncSpec,
        changes: Sequence[ObjectChange],
        take_over: Sequence[ObjectRef] = (),
        *,
        before_writes: asyncio.Future[None] | None = None,
        waves: Waves | None = None,
    ) -> None:
        """Dry-runs and writes `changes` (by `waves`, if given); `before_writes` (the progress status) is
        written before the first write."""
        writes = [change.desired for change in changes if change.desired is not None]
        if not writes and waves is None:
            return
        existing = [change.ref for change in changes if change.action is Action.UPDATE]
        recorded = (lambda: progress_recorded(before_writes)) if before_writes is not None else None
        try:
            attempt.outcome = await self.applier(attempt, spec).apply_set(
                writes, existing, take_over=take_over, before_writes=recorded, waves=waves
            )
        except ChangeSetRejected as error:
            message = f"revision {attempt.revision}: {error}"
            raise SyncFailed(conditions.VALIDATION_FAILED, message, revision_failed=True) from None
        except ProgressNotRecorded as error:
            raise SyncFailed(conditions.RECORD_FAILED, str(error)) from None
        except ApiError as error:
            if cluster_failed(error):  # the cluster failed, not the revision: no rollback, a short retry
                raise
            message = f"revision {attempt.revision}: {error}"
            raise SyncFailed(conditions.APPLY_FAILED, message, revision_failed=True) from None

    async def prune(self, attempt: Attempt, spec: SyncSpec, plan: Plan) -> None:
        doomed = [change.ref for change in plan.prunes]
        if not doomed:
            return
        failures = await self.applier(attempt, spec).delete_all(doomed, attempt.outcome)
        if failures:
            listed = "; ".join(str(failure) for failure in failures)
            raise SyncFailed(conditions.PRUNE_FAILED, f"revision {attempt.revision}: could not prune {listed}")

    async def check_health(
        self,
        attempt: Attempt,
        spec: SyncSpec,
        refs: Sequence[ObjectRef],
        applied: Mapping[ObjectRef, int] | None = None,
        *,
        what: str = "",
    ) -> None:
        """Waits until `refs` are healthy (`what` names them in the failure: a wave, or the whole set)."""
        versions = attempt.outcome.applied_versions if applied is None else applied
        refs = waited_for(refs)
        health = await wait_until_healthy(self.live, refs, versions, spec.timeout.total_seconds(), spec.health_checks)
        attempt.health = health.message
        if health.state is HealthState.FAILED:  # the wait stopped as soon as an object failed
            subject = f"{what} not healthy: " if what else ""
            message = f"revision {attempt.revision}: {subject}{health.message}"
            raise SyncFailed(conditions.HEALTH_CHECK_FAILED, message, revision_failed=True)
        if health.state is not HealthState.HEALTHY:
            waited = format_duration(spec.timeout)
            subject = f"{what} " if what else ""
            message = f"revision {attempt.revision}: {subject}not healthy after {waited}: {health.message}"
            raise SyncFailed(conditions.HEALTH_CHECK_FAILED, message, revision_failed=True)

    async def save_snapshot(self, attempt: Attempt, desired: DesiredSet) -> None:
        """Keeps what a healthy revision applied, for a rollback that needs no Git; a failure to keep it is
        reported in the status (the revision is not marked healthy until its snapshot is saved)."""
        try:
            await self.snapshots.save(attempt.sync, attempt.revision, desired.objects)
        except ApiError as error:
            if cluster_failed(error):
                raise
            revision = attempt.revision
            message = f"revision {revision} is applied and healthy, but its snapshot could not be saved: {error}"
            raise SyncFailed(conditions.RECORD_FAILED, message) from None

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
            key = sync_key(sync)
            plan = plan_changes(
                [], live, inventory, sync_key=key, waiting_for=lambda identity: self.claims.waiting_for(identity, key)
            )
            attempt = Attempt(sync, dict(sync.get("status") or {}))
            await self.prune(attempt, spec, plan)
            log.info("%s: deleted; pruned %d objects", attempt.ref, len(attempt.outcome.deleted))
        remaining = [name for name in finalizers if name != FINALIZER]
        patch = {"metadata": {"finalizers": remaining, "resourceVersion": sync["metadata"]["resourceVersion"]}}
        await self.api.merge_patch(ObjectRef.of(sync), patch)


@dataclass(frozen=True)
class ChartChoice:
    """What decides a HelmRepository chart's newest revision: the repository, its index, the chart and range."""

    repository: str
    index: str
    """The index's revision in the repository's status ('' for an OCI repository, which has none)."""
    chart: ChartRef

    @classmethod
    def of(cls, repository: KubeObject, chart: ChartRef) -> ChartChoice:
        index = ((repository.get("status") or {}).get("artifact") or {}).get("revision") or ""
        return cls(str(repository["metadata"].get("uid", "")), str(index), chart)


class ProgressNotRecorded(MoorError):
    """The status could not be written before the writes: nothing is written; a failure of Moor, not of the revision."""


async def progress_recorded(progress: asyncio.Future[None]) -> None:
    try:
        await asyncio.shield(progress)
    except ApiError as error:
        if cluster_failed(error):
            raise
        raise ProgressNotRecorded(f"could not write the status before applying: {error}") from None


def waited_for(refs: Sequence[ObjectRef]) -> list[ObjectRef]:
    """The objects whose health a pass waits for: all but Syncs. A Sync is Ready only once its own pass
    ends, so a Sync that declares itself (the bootstrap Sync), or Syncs that declare each other, would wait
    for one another until the timeout; a Sync that needs another Ready says so with dependsOn."""
    return [ref for ref in refs if (ref.group, ref.kind) != (GROUP, SYNC.kind)]


def failure_of(error: Exception) -> SyncFailed:
    """The SyncFailed an error that escaped every step stands for."""
    if isinstance(error, RecordFailed):
        return SyncFailed(conditions.RECORD_FAILED, str(error))
    unexpected = UnexpectedFailure.of(error)
    return SyncFailed(unexpected.reason, unexpected.message)


def retry_interval_of(sync: KubeObject) -> float:
    try:
        return SyncSpec.from_object(sync).retry_interval.total_seconds()
    except SpecError:
        return DEFAULT_RETRY_INTERVAL


def settled(status: dict[str, Any], revision: str, generation: int) -> bool:
    """True when this revision and spec were applied and reported (Ready, or held after a rollback):
    differences found now are drift, not changes Git asks for."""
    ready = conditions.get_condition(status.get("conditions"), conditions.READY)
    return (
        status.get("lastAppliedRevision") == revision
        and ready is not None
        and (ready.is_true or ready.reason == ROLLED_BACK)
        and ready.observed_generation == generation
    )
