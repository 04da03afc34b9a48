"""Reconciling an ImagePolicy: choose the latest tag among its ImageRepository's scanned tags, record it.

Status (the contract ImageUpdates read): `latestTag`, `latestImage` (`host/path:tag`, or
`host/path:tag@sha256:…` with `spec.resolveDigest`), `latestDigest` (only then), `previousTag` (the
latestTag before the last change), Ready. `failedTags` is written only by the ImageUpdate controller
(tags whose rollout was rolled back): this reconciler never writes it (its status patch carries only
the keys it changed) and never chooses a tag it lists. The choice never goes backwards
(`moor.images.policy`): the tag it keeps is compared with the last choice that did not fail.

A policy is reconciled when its spec changes, when its ImageRepository's tags change (the runtime
queues it), and when failedTags changes. Until its ImageRepository was scanned in this process it
waits, and its status keeps the tag chosen before (after a restart, nothing moves until a scan).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from moor.controller.image_store import ImageStore
from moor.controller.scheduling import Requeue, cluster_failed
from moor.controller.source_status import INVALID_SPEC, SourceReporter
from moor.errors import MoorError
from moor.images.names import ImageName
from moor.objects import KubeObject, ObjectRef
from moor.record.events import NORMAL, EventRecorder
from moor.record.metrics import Metrics
from moor.resources import IMAGEREPOSITORY, SpecError, conditions
from moor.resources.imagepolicy import ImagePolicySpec
from moor.source.errors import SourceError

log = logging.getLogger(__name__)

Lookup = Callable[[str, str, str], KubeObject | None]

IMAGE_REPOSITORY_NOT_FOUND = "ImageRepositoryNotFound"
IMAGE_REPOSITORY_NOT_READY = "ImageRepositoryNotReady"
NO_MATCHING_TAG = "NoMatchingTag"
DIGEST_FAILED = "DigestResolutionFailed"
ACCESS_DENIED = "AccessDenied"
NEW_TAG = "NewTag"
RETRY_INTERVAL = 60.0
"""Seconds before a policy whose choice failed is looked at again (a scan that changes the tags is sooner)."""


class _PolicyFailed(MoorError):
    def __init__(self, reason: str, message: str, *, stalled: bool = False, retry: bool = True) -> None:
        super().__init__(message)
        self.reason = reason
        self.stalled = stalled
        self.retry = retry


@dataclass
class ImagePolicyReconciler:
    images: ImageStore
    events: EventRecorder
    lookup: Lookup
    metrics: Metrics | None = None
    cross_namespace: bool = True
    """False: an imageRepositoryRef into another namespace is refused (`--no-cross-namespace-refs`)."""

    def __post_init__(self) -> None:
        self.report = SourceReporter(self.images.api, self.events, self.metrics)

    async def reconcile(self, policy: KubeObject, failures: int) -> Requeue:
        """Chooses the latest tag and records it; never raises."""
        status: dict[str, Any] = dict(policy.get("status") or {})
        try:
            try:
                spec = ImagePolicySpec.from_object(policy)
            except SpecError as error:
                await self.report.failed(policy, status, INVALID_SPEC, str(error), stalled=True)
                return Requeue.never()
            if spec.suspend:
                return Requeue.never()
            try:
                message = await self._choose(policy, spec, status)
            except _PolicyFailed as failure:
                await self.report.failed(policy, status, failure.reason, str(failure), stalled=failure.stalled)
                return Requeue.backoff(RETRY_INTERVAL, failures) if failure.retry else Requeue.never()
            if message is None:
                return Requeue.never()
            await self.report.ready(policy, status, message)
            return Requeue.never()
        except Exception as error:
            await self.report.report_error(policy, error, status)
            return Requeue.after_error(error, RETRY_INTERVAL, failures)

    async def report_error(self, policy: KubeObject, error: Exception) -> None:
        await self.report.report_error(policy, error)

    async def _choose(self, policy: KubeObject, spec: ImagePolicySpec, status: dict[str, Any]) -> str | None:
        """Fills in the status with the chosen tag and returns the Ready message; None: wait for a scan."""
        own = ObjectRef.of(policy)
        namespace = spec.repository.namespace or own.namespace
        where = f"{IMAGEREPOSITORY.kind} {namespace}/{spec.repository.name}"
        if namespace != own.namespace and not self.cross_namespace:
            raise _PolicyFailed(
                ACCESS_DENIED,
                f"spec.imageRepositoryRef names the {where}, outside the policy's namespace: this controller "
                "refuses cross-namespace references (--no-cross-namespace-refs)",
                stalled=True,
                retry=False,
            )
        repository = self.lookup(IMAGEREPOSITORY.kind, namespace, spec.repository.name)
        if repository is None:
            raise _PolicyFailed(IMAGE_REPOSITORY_NOT_FOUND, f"the {where} does not exist", retry=False)
        scanned = self.images.scanned(namespace, spec.repository.name)
        if scanned is None:
            ready = conditions.get_condition((repository.get("status") or {}).get("conditions"), conditions.READY)
            if status.get("latestTag") and (ready is None or ready.status == conditions.TRUE):
                return None  # after a restart: keep the tag until the first scan
            said = f": {ready.message}" if ready is not None and ready.status != conditions.TRUE else ""
            raise _PolicyFailed(IMAGE_REPOSITORY_NOT_READY, f"the {where} has not been scanned yet{said}", retry=False)
        failed = {str(entry.get("tag")) for entry in status.get("failedTags") or [] if isinstance(entry, dict)}
        latest, previous = status.get("latestTag"), status.get("previousTag")
        current = next((tag for tag in (latest, previous) if tag and tag not in failed), None)
        tags = scanned.kept.tags
        tag = spec.policy.choose(tags, current=current, failed=failed)
        if tag is None:
            excluded = f" ({len(failed & set(tags))} more failed before)" if failed & set(tags) else ""
            raise _PolicyFailed(
                NO_MATCHING_TAG, f"none of the {len(tags)} tags of {scanned.image} fits the policy{excluded}"
            )
        digest = await self._digest(namespace, spec, tag, scanned.image) if spec.resolve_digest else None
        image = scanned.image.with_tag(tag, digest)
        changed = tag != latest
        status.update(latestTag=tag, latestImage=image, latestDigest=digest)
        if changed and latest:
            status["previousTag"] = latest
        if changed:
            went = f" ({current} is no longer in the repository)" if current and current not in tags else ""
            shown = f"{latest} -> {tag}" if latest else tag
            await self.events.emit(policy, NORMAL, NEW_TAG, f"latest tag of {scanned.image}: {shown}{went}")
            log.info("%s: latest tag %s", own, shown)
        return f"latest tag {tag} of {len(tags)} tags of {scanned.image}"

    async def _digest(self, namespace: str, spec: ImagePolicySpec, tag: str, image: ImageName) -> str:
        try:
            return await self.images.digest(namespace, spec.repository.name, tag)
        except SourceError as error:
            raise _PolicyFailed(DIGEST_FAILED, f"the digest of {image}:{tag} could not be read: {error}") from None
        except MoorError as error:
            if cluster_failed(error):
                raise
            raise _PolicyFailed(DIGEST_FAILED, f"the digest of {image}:{tag} could not be read: {error}") from None
