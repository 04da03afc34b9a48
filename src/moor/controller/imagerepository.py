"""Reconciling an ImageRepository: list the image's tags, keep the valid ones not excluded, say so in its status.

Status: `canonicalImageName`, `tagCount`, `newestTags` (10, highest first), `lastScanTime` and
`revision` (of the sorted tag list), Ready with a reason. A failed scan (registry unreachable, refusing
the credentials, answering garbage, too much, too slowly, or sending the list to another host) is
Ready=False with its reason; the tags of the last good scan stay, so no policy moves on a failure.
Tags that are not valid tag names are dropped and the Ready message counts them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from moor.controller.image_store import ImageStore
from moor.controller.scheduling import Requeue
from moor.controller.source_status import SourceReporter, source_pass
from moor.errors import MoorError
from moor.objects import KubeObject, ObjectRef
from moor.record.events import EventRecorder
from moor.record.metrics import Metrics
from moor.resources.conditions import format_time
from moor.resources.imagerepository import DEFAULT_INTERVAL, ImageRepositorySpec
from moor.source.errors import SourceError

SCAN_FAILED = "ScanFailed"
"""The reason of a failure that is not the registry's (a Secret it names is missing); the registry's
failures have their own (AuthenticationFailed, RepositoryNotFound, RegistryError, Timeout, ...)."""


@dataclass
class ImageRepositoryReconciler:
    images: ImageStore
    events: EventRecorder
    metrics: Metrics | None = None

    def __post_init__(self) -> None:
        self.report = SourceReporter(self.images.api, self.events, self.metrics)

    async def reconcile(self, repository: KubeObject, failures: int) -> Requeue:
        """One scan of the image's tags, recorded in the status."""
        return await source_pass(
            self.report,
            repository,
            failures,
            ImageRepositorySpec.from_object,
            partial(self._scan, repository),
            reason_of=_reason_of,
            default_interval=DEFAULT_INTERVAL,
        )

    async def report_error(self, repository: KubeObject, error: Exception) -> None:
        await self.report.report_error(repository, error)

    def forget(self, repository: KubeObject) -> None:
        ref = ObjectRef.of(repository)
        self.images.forget(ref.namespace, ref.name)

    async def _scan(self, repository: KubeObject, spec: ImageRepositorySpec, status: dict[str, Any]) -> str:
        scanned = await self.images.scan(repository, spec)
        kept = scanned.kept
        newest = list(kept.newest)
        status.update(
            canonicalImageName=str(scanned.image),
            tagCount=len(kept.tags),
            newestTags=newest,
            lastScanTime=format_time(scanned.scanned_at),
            revision=kept.revision,
        )
        message = f"found {len(kept.tags)} tag{'' if len(kept.tags) == 1 else 's'}"
        if newest:
            message += f", the newest {newest[0]}"
        if scanned.unchanged:
            message += " (unchanged, the registry says)"
        if kept.invalid:
            message += f"; dropped {kept.invalid} that are not valid tag names"
        return message


def _reason_of(error: MoorError) -> str:
    return error.reason if isinstance(error, SourceError) else SCAN_FAILED
