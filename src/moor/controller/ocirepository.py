"""Reconciling an OCIRepository: find the version its ref names (a tag, the highest tag in a semver
range, or a digest), pull it once into the artifact cache, say so in its status. Syncs use it as they use
a GitRepository: the revision `<tag>@sha256:<digest>` goes through the same history, approval, rollback
and alerts.

An artifact that cannot be pulled (the registry unreachable or refusing the credentials, a digest that
does not match, a tarball Moor will not extract) is Ready=False with its reason; `status.artifact` keeps
the last good version, so every Sync of it stays there.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from moor.controller.registry_store import PulledVersion, RegistryStore
from moor.controller.scheduling import Requeue, cluster_failed, jittered
from moor.controller.source_status import INVALID_SPEC, SourceReporter, replacing
from moor.errors import MoorError
from moor.objects import KubeObject, ObjectRef
from moor.record.events import NORMAL, EventRecorder
from moor.record.metrics import Metrics
from moor.resources import SpecError
from moor.resources.conditions import format_time
from moor.resources.ocirepository import DEFAULT_INTERVAL, OCIRepositorySpec
from moor.source.errors import SourceError

log = logging.getLogger(__name__)

PULL_FAILED = "PullFailed"
"""The reason of a failure that is not the registry's or the artifact's (a Secret it names is missing);
those have their own (AuthenticationFailed, UnsafeArtifact, DigestMismatch, ...)."""


@dataclass
class OCIRepositoryReconciler:
    registries: RegistryStore
    events: EventRecorder
    metrics: Metrics | None = None

    def __post_init__(self) -> None:
        self.report = SourceReporter(self.registries.api, self.events, self.metrics)

    async def reconcile(self, repository: KubeObject, failures: int) -> Requeue:
        """One pass: resolve the ref, pull the version if it is new, record the artifact. Never raises: an
        error no step expected is Ready=False (ClusterUnreachable or ReconcileError), retried with backoff."""
        status: dict[str, Any] = dict(repository.get("status") or {})
        try:
            return await self._pass(repository, status, failures)
        except Exception as error:
            await self.report.report_error(repository, error, status)
            return Requeue.after_error(error, _interval_of(repository), failures)

    async def report_error(self, repository: KubeObject, error: Exception) -> None:
        await self.report.report_error(repository, error)

    async def _pass(self, repository: KubeObject, status: dict[str, Any], failures: int) -> Requeue:
        try:
            spec = OCIRepositorySpec.from_object(repository)
        except SpecError as error:
            await self.report.failed(repository, status, INVALID_SPEC, str(error), stalled=True)
            return Requeue.never()
        if spec.suspend:
            return Requeue.never()
        interval = spec.interval.total_seconds()
        try:
            access = await self.registries.access(repository, spec)
            version = await self.registries.latest(access, spec)
        except MoorError as error:
            if cluster_failed(error):  # reading its Secret: the cluster failed, not the registry
                raise
            reason = error.reason if isinstance(error, SourceError) else PULL_FAILED
            await self.report.failed(repository, status, reason, str(error), stalled=False)
            return Requeue.backoff(interval, failures)
        await self._record_artifact(repository, status, version)
        await self.report.ready(repository, status, f"stored artifact for revision {version.artifact.revision}")
        return Requeue.after(jittered(interval))

    async def _record_artifact(self, repository: KubeObject, status: dict[str, Any], version: PulledVersion) -> None:
        previous: dict[str, Any] = dict(status.get("artifact") or {})
        revision = version.artifact.revision
        if previous.get("revision") == revision:
            return
        current = {"revision": revision, "digest": version.digest, "fetchedAt": format_time(datetime.now(UTC))}
        if version.origin:
            current["source"] = version.origin
        if version.origin_revision:
            current["sourceRevision"] = version.origin_revision
        status["artifact"] = replacing(previous, current)
        origin = f" from {version.origin}" if version.origin else ""
        await self.events.emit(
            repository, NORMAL, "NewArtifact", f"stored revision {revision}{origin}", revision=revision
        )
        log.info("%s: new revision %s%s", ObjectRef.of(repository), revision, origin)


def _interval_of(repository: KubeObject) -> float:
    try:
        return OCIRepositorySpec.from_object(repository).interval.total_seconds()
    except SpecError:
        return DEFAULT_INTERVAL.total_seconds()
