"""One pass over a source (GitRepository, OCIRepository, HelmRepository) and what it writes: Ready with
its reason, events, the failure metric, and `status.artifact` replaced without leaving stale fields.

`source_pass` is the shape every source reconciler shares: a spec that does not read is InvalidSpec
(stalled); a suspended source does nothing; a refused signature is looked at again at the usual pace
(the refused version stays refused); any other failure of the source is Ready=False with its reason and
a backoff; the cluster failing is retried soon; whatever else goes wrong ends as Ready=False too, never
as a Ready=True left standing at the old revision. When even that cannot be written, it is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol, TypeVar

from moor.cluster.api import KubeApi
from moor.controller.scheduling import Requeue, UnexpectedFailure, cluster_failed, jittered
from moor.errors import MoorError
from moor.objects import RECONCILE_ANNOTATION, KubeObject, ObjectRef
from moor.record import readiness
from moor.record.events import WARNING, EventRecorder
from moor.record.metrics import Metrics
from moor.record.status import write_status
from moor.resources import SpecError, conditions
from moor.source.errors import VerificationFailed

log = logging.getLogger(__name__)

INVALID_SPEC = "InvalidSpec"


class SourceSpec(Protocol):
    @property
    def interval(self) -> timedelta: ...

    @property
    def suspend(self) -> bool: ...


S = TypeVar("S", bound=SourceSpec)
Fetch = Callable[[S, dict[str, Any]], Awaitable[str]]
"""Does a pass's work for a spec, filling in the status, and returns the Ready message."""


@dataclass
class SourceReporter:
    api: KubeApi
    events: EventRecorder
    metrics: Metrics | None = None

    async def ready(self, source: KubeObject, status: dict[str, Any], message: str) -> None:
        """Ready=True with `message`, for the generation and reconcile request this pass handled."""
        generation = _generation(source)
        status["conditions"] = readiness.ready(status.get("conditions"), conditions.SUCCEEDED, message, generation)
        await self._write(source, status)

    async def failed(
        self, source: KubeObject, status: dict[str, Any], reason: str, message: str, *, stalled: bool
    ) -> None:
        """Ready=False with `reason`; a Warning event when the message is new; counted and logged."""
        before = conditions.get_condition(status.get("conditions"), conditions.READY)
        if self.metrics is not None:
            ref = ObjectRef.of(source)
            self.metrics.failures.labels(ref.kind, ref.namespace, ref.name, reason).inc()
        generation = _generation(source)
        status["conditions"] = readiness.failed(status.get("conditions"), reason, message, generation, stalled=stalled)
        await self._write(source, status)
        if before is None or before.message != message:
            await self.events.emit(source, WARNING, reason, message)
        log.warning("%s: %s", ObjectRef.of(source), message)

    async def report_error(self, source: KubeObject, error: Exception, status: dict[str, Any] | None = None) -> None:
        """An error no step expected, as Ready=False with its reason; when even that cannot be written, logged."""
        unexpected = UnexpectedFailure.of(error)
        if not isinstance(error, MoorError):
            log.error("%s: unexpected error", ObjectRef.of(source), exc_info=error)
        status = status if status is not None else dict(source.get("status") or {})
        try:
            await self.failed(source, status, unexpected.reason, unexpected.message, stalled=False)
        except Exception as second:
            ref = ObjectRef.of(source)
            log.warning("%s: %s; the failure could not be recorded either: %s", ref, unexpected.message, second)

    async def _write(self, source: KubeObject, status: dict[str, Any]) -> None:
        status["observedGeneration"] = _generation(source)
        handled = (source["metadata"].get("annotations") or {}).get(RECONCILE_ANNOTATION)
        if handled:
            status["lastHandledReconcileAt"] = handled
        await write_status(self.api, source, status)


async def source_pass(
    report: SourceReporter,
    source: KubeObject,
    failures: int,
    read_spec: Callable[[KubeObject], S],
    fetch: Fetch[S],
    *,
    reason_of: Callable[[MoorError], str],
    default_interval: timedelta,
) -> Requeue:
    """One reconcile of `source` (see the module's docstring); never raises. `reason_of` names the
    condition reason of a failure of the source itself."""
    status: dict[str, Any] = dict(source.get("status") or {})
    interval = default_interval.total_seconds()
    try:
        try:
            spec = read_spec(source)
        except SpecError as error:
            await report.failed(source, status, INVALID_SPEC, str(error), stalled=True)
            return Requeue.never()
        if spec.suspend:
            return Requeue.never()
        interval = spec.interval.total_seconds()
        try:
            message = await fetch(spec, status)
        except VerificationFailed as error:
            await report.failed(source, status, conditions.VERIFICATION_FAILED, str(error), stalled=False)
            return Requeue.after(jittered(interval))
        except MoorError as error:
            if cluster_failed(error):  # reading a Secret: the cluster failed, not the source
                raise
            await report.failed(source, status, reason_of(error), str(error), stalled=False)
            return Requeue.backoff(interval, failures)
        await report.ready(source, status, message)
        return Requeue.after(jittered(interval))
    except Exception as error:
        await report.report_error(source, error, status)
        return Requeue.after_error(error, interval, failures)


def replacing(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """`new`, with every field of `old` it lacks set to None, so a status merge patch removes them."""
    return {**{key: None for key in old if key not in new}, **new}


def _generation(source: KubeObject) -> int:
    return int(source["metadata"].get("generation", 0))
