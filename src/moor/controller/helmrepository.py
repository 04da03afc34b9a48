"""Reconciling a HelmRepository: read its index.yaml when it changed (a conditional GET; a 304 costs no
parse), keep what choosing a chart needs in memory for every Sync that uses it, say in its status how
many charts and versions it holds. A new index is a NewArtifact event, so the Syncs of it look again.

For `type: oci` there is no index: the repository is Ready once the registry answers with the
credentials given, and the counts are left out. An index that cannot be read (the host unreachable or
refusing the credentials, over the size cap, not YAML) is Ready=False with its reason; the last index
read stays in memory and `status.artifact` keeps naming it, so Syncs keep their chart.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from moor.controller.chart_store import ChartStore
from moor.controller.scheduling import Requeue
from moor.controller.source_status import SourceReporter, replacing, source_pass
from moor.errors import MoorError
from moor.objects import KubeObject, ObjectRef
from moor.record.events import NORMAL, EventRecorder
from moor.record.metrics import Metrics
from moor.resources.conditions import format_time
from moor.resources.helmrepository import DEFAULT_INTERVAL, HelmRepositorySpec, HelmRepositoryType
from moor.source.errors import RepositoryNotFound, SourceError
from moor.source.helm import ChartIndex

log = logging.getLogger(__name__)

FETCH_FAILED = "IndexFetchFailed"
"""The reason of a failure that is not the repository's (a Secret it names is missing); those have their
own (AuthenticationFailed, IndexTooLarge, InvalidIndex, HostUnreachable, ...)."""


@dataclass
class HelmRepositoryReconciler:
    charts: ChartStore
    events: EventRecorder
    metrics: Metrics | None = None

    def __post_init__(self) -> None:
        self.report = SourceReporter(self.charts.api, self.events, self.metrics)

    async def reconcile(self, repository: KubeObject, failures: int) -> Requeue:
        """One pass: read the index if it changed (or check the registry), record it."""
        return await source_pass(
            self.report,
            repository,
            failures,
            HelmRepositorySpec.from_object,
            partial(self._read, repository),
            reason_of=_reason_of,
            default_interval=DEFAULT_INTERVAL,
        )

    async def report_error(self, repository: KubeObject, error: Exception) -> None:
        await self.report.report_error(repository, error)

    def forget(self, repository: KubeObject) -> None:
        """A deleted repository's index leaves memory."""
        self.charts.forget(repository)

    async def _read(self, repository: KubeObject, spec: HelmRepositorySpec, status: dict[str, Any]) -> str:
        if spec.type is HelmRepositoryType.OCI:
            return await self._check_registry(repository, spec, status)
        return await self._read_index(repository, spec, status)

    async def _read_index(self, repository: KubeObject, spec: HelmRepositorySpec, status: dict[str, Any]) -> str:
        refreshed = await self.charts.refresh(repository, spec)
        index = refreshed.index
        status["charts"], status["versions"] = index.chart_count, index.version_count
        await self._record_index(repository, status, index)
        return _describe(index)

    async def _check_registry(self, repository: KubeObject, spec: HelmRepositorySpec, status: dict[str, Any]) -> str:
        """A cheap question the registry answers only with the credentials accepted: the tags under the
        repository's path (none there is an answer too)."""
        access = await self.charts.registry_access(repository, spec)
        async with access.client() as client:
            with contextlib.suppress(RepositoryNotFound):
                await client.tags(access.repository.repository)
        for field in ("charts", "versions", "artifact"):
            if field in status:
                status[field] = None
        return f"the registry {access.repository.registry} answers; charts are {spec.url}/<chart>:<version>"

    async def _record_index(self, repository: KubeObject, status: dict[str, Any], index: ChartIndex) -> None:
        previous: dict[str, Any] = dict(status.get("artifact") or {})
        if previous.get("revision") == index.revision:
            return
        current = {"revision": index.revision, "fetchedAt": format_time(datetime.now(UTC))}
        status["artifact"] = replacing(previous, current)
        message = f"new index {index.revision}: {_counts(index)}"
        await self.events.emit(repository, NORMAL, "NewArtifact", message, revision=index.revision)
        log.info("%s: %s", ObjectRef.of(repository), message)


def _describe(index: ChartIndex) -> str:
    text = f"index {index.revision} holds {_counts(index)}"
    if index.skipped_count:
        text += f"; {index.skipped_count} entries skipped, e.g. {index.skipped[0]}"
    return text


def _counts(index: ChartIndex) -> str:
    return f"{index.chart_count} charts, {index.version_count} versions"


def _reason_of(error: MoorError) -> str:
    return error.reason if isinstance(error, SourceError) else FETCH_FAILED
