"""Reconciling a GitRepository: find the newest revision its ref names, fetch it, say so in its status."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from moor.controller.scheduling import Requeue, jittered
from moor.controller.sources import SourceStore
from moor.errors import MoorError
from moor.objects import RECONCILE_ANNOTATION, KubeObject, ObjectRef
from moor.record import readiness
from moor.record.events import NORMAL, WARNING, EventRecorder
from moor.record.status import write_status
from moor.resources import GitRepositorySpec, SpecError, conditions
from moor.resources.conditions import format_time

log = logging.getLogger(__name__)

FETCH_FAILED = "GitOperationFailed"
INVALID_SPEC = "InvalidSpec"


@dataclass
class GitRepositoryReconciler:
    sources: SourceStore
    events: EventRecorder

    async def reconcile(self, repository: KubeObject, failures: int) -> Requeue:
        """One pass: resolve the ref, fetch the commit if it is new, record the artifact."""
        ref = ObjectRef.of(repository)
        status: dict[str, Any] = dict(repository.get("status") or {})
        generation = int(repository["metadata"].get("generation", 0))
        handled = (repository["metadata"].get("annotations") or {}).get(RECONCILE_ANNOTATION)
        try:
            spec = GitRepositorySpec.from_object(repository)
        except SpecError as error:
            await self._fail(repository, status, INVALID_SPEC, str(error), stalled=True)
            return Requeue.never()
        if spec.suspend:
            return Requeue.never()
        try:
            access = await self.sources.access(repository, spec)
            artifact = await self.sources.latest(access)
        except MoorError as error:
            await self._fail(repository, status, FETCH_FAILED, str(error), stalled=False)
            return Requeue.backoff(spec.interval.total_seconds(), failures)

        previous = (status.get("artifact") or {}).get("revision")
        if previous != artifact.revision:
            status["artifact"] = {
                "revision": artifact.revision,
                "fetchedAt": format_time(datetime.now(UTC)),
                "author": artifact.author,
                "message": artifact.message[:1024],
                "committedAt": format_time(artifact.committed_at),
            }
            await self.events.emit(repository, NORMAL, "NewArtifact", f"stored revision {artifact.revision}")
            log.info("%s: new revision %s", ref, artifact.revision)
        message = f"stored artifact for revision {artifact.revision}"
        status["conditions"] = readiness.ready(status.get("conditions"), conditions.SUCCEEDED, message, generation)
        status["observedGeneration"] = generation
        if handled:
            status["lastHandledReconcileAt"] = handled
        await write_status(self.sources.api, repository, status)
        return Requeue.after(jittered(spec.interval.total_seconds()))

    async def _fail(
        self, repository: KubeObject, status: dict[str, Any], reason: str, message: str, *, stalled: bool
    ) -> None:
        generation = int(repository["metadata"].get("generation", 0))
        before = conditions.get_condition(status.get("conditions"), conditions.READY)
        status["conditions"] = readiness.failed(status.get("conditions"), reason, message, generation, stalled=stalled)
        status["observedGeneration"] = generation
        handled = (repository["metadata"].get("annotations") or {}).get(RECONCILE_ANNOTATION)
        if handled:
            status["lastHandledReconcileAt"] = handled
        await write_status(self.sources.api, repository, status)
        if before is None or before.message != message:
            await self.events.emit(repository, WARNING, reason, message)
        log.warning("%s: %s", ObjectRef.of(repository), message)
