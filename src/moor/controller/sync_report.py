"""What one pass over a Sync tells the world: status and conditions, events, metrics, history records.

When Moor cannot write this bookkeeping (the API server refuses the status, a SyncRecord or its
deletion), the error is a RecordFailed naming what could not be written, so the Sync's status says so
once it can be written again. An attempt that ends while the cluster is unreachable cannot close its
SyncRecord; the next attempt closes it as Interrupted, saying why ("interrupted: the API server was
unreachable: ...") rather than that the controller stopped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from moor.cluster.api import KubeApi
from moor.cluster.apply import ApplyOutcome
from moor.cluster.client import ApiError
from moor.controller.scheduling import cluster_failed
from moor.errors import MoorError
from moor.objects import RECONCILE_ANNOTATION, KubeObject, ObjectRef
from moor.plan import Drift
from moor.record import readiness, sync_status
from moor.record.events import NORMAL, WARNING, EventRecorder
from moor.record.git_notes import DeploymentNote, NoteTarget, push_deployment_note
from moor.record.history import HistoryStore, OpenRecord, record_ref
from moor.record.metrics import Metrics
from moor.record.status import write_status
from moor.resources import SYNC, conditions
from moor.resources.conditions import format_time
from moor.supervised import cancel_and_wait

log = logging.getLogger(__name__)

ROLLED_BACK = conditions.ROLLED_BACK
ROLLBACK = "rollback"
APPROVED = "Approved"
DRIFT_CORRECTED = conditions.DRIFT_CORRECTED
DRIFT_CORRECTION = "drift correction"
SETTLED_RESULTS = ("Succeeded", DRIFT_CORRECTED, ROLLED_BACK)
HOOK_FAILED = "HookFailed"
GIT_NOTE_FAILED = "GitNoteFailed"
DEFAULT_CLUSTER_NAME = "default"
"""A hook failed, or did not finish within the Sync's timeout: the revision failed."""
T = TypeVar("T")


class RecordFailed(MoorError):
    """Moor could not write its own record of an attempt: the Sync's status or a history record."""


async def recorded(what: str, write: Awaitable[T]) -> T:
    """Awaits one write of Moor's bookkeeping; a refusal becomes a RecordFailed naming `what` (a failure of
    the cluster itself stays what it is)."""
    try:
        return await write
    except ApiError as error:
        if cluster_failed(error):
            raise
        raise RecordFailed(f"could not write {what}: {error}") from None


@dataclass(frozen=True)
class Interruption:
    """A history record an attempt could not close, and why that attempt ended."""

    record: ObjectRef
    detail: str


class SyncFailed(Exception):
    """A pass that ends with Ready=False: the reason (a condition reason) and whether retrying can help.

    `revision_failed` marks failures of the revision itself (it does not render, the API rejects it,
    it is not healthy), which a rollback answers; other failures (a missing source, a dependency not
    Ready) are retried.
    """

    def __init__(self, reason: str, message: str, *, stalled: bool = False, revision_failed: bool = False) -> None:
        super().__init__(message)
        self.reason = reason
        self.stalled = stalled
        self.revision_failed = revision_failed


@dataclass
class Attempt:
    """The state of one pass over one Sync, turned into its status at the end."""

    sync: KubeObject
    status: dict[str, Any]
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    revision: str = ""
    author: str = ""
    message: str = ""
    trigger: str = "new revision"
    outcome: ApplyOutcome = field(default_factory=ApplyOutcome)
    corrected: list[Drift] = field(default_factory=list)
    drifted: list[Drift] = field(default_factory=list)
    health: str = ""
    record: OpenRecord | None = None
    retry: bool = False
    """True when this attempt continues the record of a failed attempt at the same revision."""
    commit_times: dict[str, datetime] = field(default_factory=dict)
    """revision -> its commit's time, for every revision this pass fetched (history and lead times)."""
    hooks: list[dict[str, Any]] = field(default_factory=list)
    """The hooks this pass ran, in order, each with its result (status.hooks and the record's hooks)."""
    note_target: Callable[[], Awaitable[NoteTarget]] | None = None
    """Where the finished record goes as a git note (spec.history.gitNotes), looked up only when it is written."""

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef.of(self.sync)

    @property
    def generation(self) -> int:
        return int(self.sync["metadata"].get("generation", 0))

    @property
    def annotations(self) -> dict[str, str]:
        return dict(self.sync["metadata"].get("annotations") or {})

    @property
    def changed_anything(self) -> bool:
        return bool(self.outcome.created or self.outcome.configured or self.outcome.deleted)


@dataclass
class NotePushes:
    """Deployment notes being pushed in the background: a pass never waits for a Git server."""

    cluster: str = DEFAULT_CLUSTER_NAME
    """The name deployment notes give this cluster (`moor run --cluster-name`)."""
    running: set[asyncio.Task[None]] = field(default_factory=set)

    def start(self, push: Awaitable[None]) -> None:
        task = asyncio.ensure_future(push)
        self.running.add(task)
        task.add_done_callback(self.running.discard)

    async def stop(self) -> None:
        """Cancels the pushes still running (at shutdown) and waits for them to end."""
        await cancel_and_wait(self.running)


@dataclass
class SyncReporter:
    api: KubeApi
    events: EventRecorder
    history: HistoryStore
    metrics: Metrics | None = None
    notes: NotePushes = field(default_factory=NotePushes)
    _interruptions: dict[tuple[str, str], Interruption] = field(default_factory=dict, init=False, repr=False)
    """By the Sync's namespace and name: the record its last attempt left open, and why."""

    async def progress(self, attempt: Attempt, message: str, approved_by: str = "") -> None:
        """Before the first write: Reconciling=True, and a history record opened for this attempt."""
        status = attempt.status
        await self._close_interrupted(attempt)
        open_record = status.pop("currentRecord", None)
        if open_record:
            left_open = record_ref(attempt.ref.namespace, attempt.ref.name, int(open_record))
            await recorded(f"SyncRecord {left_open.name}", self.history.close_if_open(left_open))
        last = (status.get("history") or [{}])[0]
        sequence = int(status.get("historySequence") or 0)
        if sequence and last.get("revision") == attempt.revision and last.get("result") not in SETTLED_RESULTS:
            # A retry of the same revision after a failure continues that revision's record.
            again = record_ref(attempt.ref.namespace, attempt.ref.name, sequence)
            attempt.record = await recorded(f"SyncRecord {again.name}", self.history.reopen(again))
            attempt.retry = attempt.record is not None
        if attempt.record is None:
            fields = {
                **self._record_fields(attempt),
                **_committed_at(attempt, attempt.revision),
                "approvedBy": approved_by,
            }
            attempt.record = await recorded(
                f"a SyncRecord of {attempt.ref}", self.history.open(attempt.sync, sequence, fields)
            )
        status["historySequence"] = attempt.record.sequence
        status["currentRecord"] = attempt.record.sequence
        status["conditions"] = readiness.reconciling(status.get("conditions"), message, attempt.generation)
        status["lastAttemptedRevision"] = attempt.revision
        attempt.sync = await recorded(f"the status of {attempt.ref}", write_status(self.api, attempt.sync, status))
        attempt.status = dict(attempt.sync.get("status") or status)
        if not attempt.retry and attempt.trigger not in (DRIFT_CORRECTION, ROLLBACK):
            # Notifications and commit statuses hear that this revision is on its way (pending).
            await self._emit(attempt, NORMAL, conditions.PROGRESSING, message)

    async def waiting(self, attempt: Attempt, message: str) -> None:
        """The pass waits on something that takes a while (a hook): Ready=Unknown and Reconciling say what."""
        status = attempt.status
        status["conditions"] = readiness.reconciling(status.get("conditions"), message, attempt.generation)
        attempt.sync = await recorded(f"the status of {attempt.ref}", write_status(self.api, attempt.sync, status))
        attempt.status = dict(attempt.sync.get("status") or status)

    async def succeeded(self, attempt: Attempt, approved_by: str = "") -> None:
        outcome = attempt.outcome
        before = attempt.status
        last = (before.get("history") or [{}])[0]
        first_success = last.get("revision") != attempt.revision or last.get("result") != "Succeeded"
        status = sync_status.applied(before, attempt.revision, attempt.generation)
        attempt.status = sync_status.with_drift(status, attempt.drifted, attempt.generation)
        only_drift = bool(attempt.corrected) and attempt.trigger == DRIFT_CORRECTION
        result = DRIFT_CORRECTED if only_drift else "Succeeded"
        await self._finish(attempt, result, approved_by=approved_by)
        self._count(attempt)
        if attempt.corrected:
            corrected = "; ".join(str(drift) for drift in attempt.corrected)
            await self._emit(attempt, WARNING, DRIFT_CORRECTED, f"put back the Git state: {corrected}")
            log.info("%s: corrected drift: %s", attempt.ref, corrected)
        if attempt.drifted and attempt.status.get("drift") != before.get("drift"):
            detected = "; ".join(str(drift) for drift in attempt.drifted)
            await self._emit(attempt, WARNING, conditions.DRIFT_DETECTED, f"left as is: {detected}")
            log.info("%s: drift detected: %s", attempt.ref, detected)
        if approved_by and first_success and not only_drift:
            await self._emit(attempt, NORMAL, APPROVED, f"revision {attempt.revision} approved by {approved_by}")
        if (attempt.changed_anything or attempt.record is not None) and not only_drift:
            # Also when the revision changed no object: it is applied (commit statuses wait for this).
            summary = (
                f"revision {attempt.revision}: {len(outcome.created)} created, {len(outcome.configured)} configured, "
                f"{len(outcome.deleted)} pruned"
            )
            await self._emit(attempt, NORMAL, "Applied", summary)
            log.info("%s: %s", attempt.ref, summary)

    async def failed(self, attempt: Attempt, failure: SyncFailed) -> None:
        before = conditions.get_condition(attempt.status.get("conditions"), conditions.READY)
        attempt.status = sync_status.failed(
            attempt.status,
            failure.reason,
            str(failure),
            attempt.generation,
            stalled=failure.stalled,
            revision=attempt.revision,
        )
        self._count(attempt, failure)  # counted even when the cluster cannot be told
        await self._finish(attempt, failure.reason, detail=str(failure), failed=True)
        if before is None or before.message != str(failure):
            await self._emit(attempt, WARNING, failure.reason, str(failure))
        log.warning("%s: %s", attempt.ref, failure)

    async def rolled_back(self, attempt: Attempt, failed_revision: str, failure: SyncFailed) -> None:
        """The failed revision is replaced by the last healthy one: Ready=False, reason RolledBack."""
        # Held at the last healthy revision, later passes report the same rollback: said once is enough.
        repeated = (attempt.status.get("rollback") or {}).get("failedRevision") == failed_revision
        repeated = repeated and not attempt.changed_anything
        status = sync_status.rolled_back(
            attempt.status,
            failed_revision=failed_revision,
            reason=failure.reason,
            detail=str(failure),
            rolled_back_to=attempt.revision,
            generation=attempt.generation,
            now=datetime.now(UTC),
        )
        attempt.status = sync_status.with_drift(status, attempt.drifted, attempt.generation)
        await self._finish(
            attempt, ROLLED_BACK, detail=str(failure), rolled_back_to=attempt.revision, revision=failed_revision
        )
        self._count(attempt, failure)
        message = sync_status.rolled_back_message(failed_revision, failure.reason, attempt.revision)
        if not repeated:
            await self._emit(attempt, WARNING, ROLLED_BACK, f"{message}: {failure}", revision=failed_revision)
        log.warning("%s: %s: %s", attempt.ref, message, failure)

    async def awaiting_approval(self, attempt: Attempt, summary: str) -> None:
        name = attempt.ref.name
        message = (
            f"revision {attempt.revision} waits for approval ({summary}); "
            f"run `moor approve sync {name} --revision {attempt.revision}`"
        )
        announced = attempt.status.get("pendingRevision") == attempt.revision
        status = sync_status.awaiting_approval(attempt.status, attempt.revision, message, attempt.generation)
        attempt.status = sync_status.observed(status, attempt.generation, self._reconcile_requested(attempt))
        await recorded(f"the status of {attempt.ref}", write_status(self.api, attempt.sync, attempt.status))
        if not announced:
            await self._emit(attempt, NORMAL, conditions.APPROVAL_REQUIRED, message)

    def interrupted(self, attempt: Attempt, failure: SyncFailed) -> None:
        """The attempt ended with `failure` and could not record it: its next attempt closes its record
        saying so."""
        if attempt.record is None:
            return
        if failure.reason == conditions.CLUSTER_UNREACHABLE:
            detail = f"interrupted: the API server was unreachable: {failure}"
        else:
            detail = f"interrupted: {failure.reason}: {failure}"
        self._interruptions[(attempt.ref.namespace, attempt.ref.name)] = Interruption(attempt.record.ref, detail)

    # -- parts -------------------------------------------------------------------------------------

    async def _close_interrupted(self, attempt: Attempt) -> None:
        interruption = self._interruptions.pop((attempt.ref.namespace, attempt.ref.name), None)
        if interruption is None:
            return
        try:
            await recorded(
                f"SyncRecord {interruption.record.name}",
                self.history.close_if_open(interruption.record, interruption.detail),
            )
        except BaseException:
            self._interruptions[(attempt.ref.namespace, attempt.ref.name)] = interruption
            raise
        current = attempt.status.get("currentRecord")
        if current is not None and record_ref(attempt.ref.namespace, attempt.ref.name, int(current)) == (
            interruption.record
        ):
            attempt.status.pop("currentRecord", None)

    async def _emit(self, attempt: Attempt, type_: str, reason: str, message: str, *, revision: str = "") -> None:
        await self.events.emit(
            attempt.sync, type_, reason, message, revision=revision or attempt.revision, author=attempt.author
        )

    @staticmethod
    def _reconcile_requested(attempt: Attempt) -> str:
        return attempt.annotations.get(RECONCILE_ANNOTATION, "")

    async def _finish(
        self,
        attempt: Attempt,
        result: str,
        *,
        detail: str = "",
        approved_by: str = "",
        rolled_back_to: str = "",
        revision: str = "",
        failed: bool = False,
    ) -> None:
        """observedGeneration, the status history and the durable record, written together with the status."""
        if attempt.record is None:
            await self._close_interrupted(attempt)
        revision = revision or attempt.revision
        outcome = attempt.outcome
        now = format_time(datetime.now(UTC))
        status = sync_status.observed(attempt.status, attempt.generation, self._reconcile_requested(attempt))
        worth_recording = sync_status.worth_recording(
            status, revision, result, has_record=attempt.record is not None, changed_anything=attempt.changed_anything
        )
        if worth_recording:
            entry = {
                "revision": revision,
                "author": attempt.author,
                "startedAt": format_time(attempt.started_at),
                "finishedAt": now,
                "result": result,
                "applied": len(outcome.created) + len(outcome.configured),
                "pruned": len(outcome.deleted),
                **({"approvedBy": approved_by} if approved_by else {}),
            }
            status = sync_status.with_history(status, entry, retry=attempt.retry)
        attempt.status = status
        fields = {
            **self._record_fields(attempt),
            **_committed_at(attempt, revision),
            "revision": revision,
            "finishedAt": now,
            "result": result,
            "detail": detail[:4096],
            "health": attempt.health,
            "created": [str(ref) for ref in outcome.created],
            "updated": [str(ref) for ref in outcome.configured],
            "pruned": [str(ref) for ref in outcome.deleted],
        }
        if attempt.hooks:
            fields["hooks"] = [hook_line(entry) for entry in attempt.hooks]
        if approved_by:
            fields["approvedBy"] = approved_by
        if rolled_back_to:
            fields["rolledBackTo"] = rolled_back_to
        opened = False
        closing: Awaitable[Any] | None = None
        unrecorded: RecordFailed | None = None
        ref = attempt.ref
        if attempt.record is not None:
            closing = recorded(f"SyncRecord {attempt.record.ref.name}", self.history.close(attempt.record, fields))
            status.pop("currentRecord", None)
        elif worth_recording:
            last_sequence = int(status.get("historySequence") or 0)
            try:
                record = await recorded(
                    f"a SyncRecord of {ref}", self.history.open(attempt.sync, last_sequence, fields)
                )
            except RecordFailed as error:
                unrecorded = error  # the status is written all the same, then the failure is raised
            else:
                status["historySequence"] = record.sequence
                closing = recorded(f"SyncRecord {record.ref.name}", self.history.close(record, fields))
                opened = True
        elif failed and status.get("historySequence"):
            # The same failure again: count it on its record rather than adding one per retry.
            repeated = record_ref(ref.namespace, ref.name, int(status["historySequence"]))
            closing = recorded(
                f"SyncRecord {repeated.name}",
                self.history.repeat(repeated, {"finishedAt": now, "detail": detail[:4096]}),
            )
        # The record's result and the status are written side by side: users wait for the status. Both are
        # awaited to the end whatever happens to the other.
        writes = await asyncio.gather(
            recorded(f"the status of {ref}", write_status(self.api, attempt.sync, status)),
            *([closing] if closing else []),
            return_exceptions=True,
        )
        for written in writes:
            if isinstance(written, BaseException):
                raise written
        if unrecorded is not None:
            raise unrecorded
        if opened or attempt.record is not None:
            newest = int(status["historySequence"])
            if attempt.note_target is not None:
                sequence = attempt.record.sequence if attempt.record is not None else newest
                finished = {"metadata": {"namespace": ref.namespace}, "spec": {"sync": ref.name, **fields}}
                finished["spec"]["sequence"] = sequence
                self.notes.start(self._push_note(attempt, attempt.note_target, finished))
            await recorded(
                f"the deletion of old SyncRecords of {ref}", self.history.trim(ref.namespace, ref.name, newest)
            )

    async def _push_note(
        self, attempt: Attempt, target_of: Callable[[], Awaitable[NoteTarget]], record: KubeObject
    ) -> None:
        """Writes one finished record as a git note on its commit; a failure is an Event and a log line."""
        note = DeploymentNote.from_record(record, self.notes.cluster)
        revision = str(record["spec"].get("revision") or "")
        try:
            target = await target_of()
            await push_deployment_note(target.url, target.auth, note.commit, note, timeout=target.timeout)
        except MoorError as error:  # NotePushFailed, a SourceError, the credentials' Secret missing
            message = f"the deployment note of {revision} could not be written to Git: {error}"
            log.warning("%s: %s", attempt.ref, message)
            await self.events.emit(attempt.sync, WARNING, GIT_NOTE_FAILED, message, revision=revision)

    @staticmethod
    def _record_fields(attempt: Attempt) -> dict[str, Any]:
        return {
            "revision": attempt.revision,
            "author": attempt.author,
            "message": attempt.message[:1024],
            "trigger": attempt.trigger,
            "startedAt": format_time(attempt.started_at),
        }

    def _count(self, attempt: Attempt, failure: SyncFailed | None = None) -> None:
        if self.metrics is None:
            return
        ref = attempt.ref
        outcome = attempt.outcome
        self.metrics.applied.labels(ref.namespace, ref.name).inc(len(outcome.created) + len(outcome.configured))
        self.metrics.pruned.labels(ref.namespace, ref.name).inc(len(outcome.deleted))
        self.metrics.drift_corrections.labels(ref.namespace, ref.name).inc(len({d.ref for d in attempt.corrected}))
        self.metrics.drifted.labels(ref.namespace, ref.name).set(len({d.ref for d in attempt.drifted}))
        if failure is not None:
            self.metrics.failures.labels(SYNC.kind, ref.namespace, ref.name, failure.reason).inc()


def _committed_at(attempt: Attempt, revision: str) -> dict[str, str]:
    """The record field `committedAt` of `revision`, when this pass fetched it."""
    committed = attempt.commit_times.get(revision)
    return {"committedAt": format_time(committed)} if committed is not None else {}


def hook_line(entry: dict[str, Any]) -> str:
    """One hook of status.hooks as a record keeps it: `pre-upgrade Job ns/migrate (wave 0): Succeeded`."""
    where = f"{entry.get('namespace')}/" if entry.get("namespace") else ""
    hook = f"{entry.get('hook')} {entry.get('kind')} {where}{entry.get('name')}"
    return f"{hook} (wave {entry.get('wave')}): {entry.get('result')}"
