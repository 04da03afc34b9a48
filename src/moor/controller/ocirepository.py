"""Reconciling an OCIRepository: find the version its ref names (a tag, the highest tag in a semver
range, or a digest), pull it once into the artifact cache, say so in its status. Syncs use it as they use
a GitRepository: the revision `<tag>@sha256:<digest>` goes through the same history, approval, rollback
and alerts.

With `spec.verify`, the digest must carry a cosign signature by a trusted key before it is pulled; the
key that verified it goes into `status.artifact.verification` and the NewArtifact event.

An artifact that cannot be used (not validly signed: VerificationFailed; the registry unreachable or
refusing the credentials, a digest that does not match, a tarball Moor will not extract: their own
reasons) is Ready=False; `status.artifact` keeps the last good version, so every Sync of it stays there.
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
from moor.resources import SpecError, conditions
from moor.resources.conditions import format_time
from moor.resources.ocirepository import DEFAULT_INTERVAL, OCIRepositorySpec, OciVerifySpec
from moor.source.errors import SourceError, VerificationFailed
from moor.source.oci.cosign import CosignSignature

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
            keys = await self.registries.trusted_keys(repository, spec)
            version = await self.registries.latest(access, spec, keys)
        except VerificationFailed as error:
            # Not transient: the refused version stays refused, so look again at the usual pace.
            await self.report.failed(repository, status, conditions.VERIFICATION_FAILED, str(error), stalled=False)
            return Requeue.after(jittered(interval))
        except MoorError as error:
            if cluster_failed(error):  # reading its Secret: the cluster failed, not the registry
                raise
            reason = error.reason if isinstance(error, SourceError) else PULL_FAILED
            await self.report.failed(repository, status, reason, str(error), stalled=False)
            return Requeue.backoff(interval, failures)
        await self._record_artifact(repository, status, spec.verify, version)
        signed = f" ({version.signature})" if version.signature else ""
        await self.report.ready(repository, status, f"stored artifact for revision {version.artifact.revision}{signed}")
        return Requeue.after(jittered(interval))

    async def _record_artifact(
        self, repository: KubeObject, status: dict[str, Any], verify: OciVerifySpec | None, version: PulledVersion
    ) -> None:
        """Puts a new version (and who signed it) into status.artifact, or its verification alone when only
        that changed (verify turned on or off, another trusted key)."""
        previous: dict[str, Any] = dict(status.get("artifact") or {})
        revision = version.artifact.revision
        verified = _verification_status(verify, version.signature)
        if previous.get("revision") == revision:
            if _signer(previous) != _signer(verified):
                unverified = {key: value for key, value in previous.items() if key not in _VERIFICATION_FIELDS}
                status["artifact"] = replacing(previous, {**unverified, **verified})
            return
        current = {"revision": revision, "digest": version.digest, "fetchedAt": format_time(datetime.now(UTC))}
        if version.origin:
            current["source"] = version.origin
        if version.origin_revision:
            current["sourceRevision"] = version.origin_revision
        status["artifact"] = replacing(previous, {**current, **verified})
        origin = f" from {version.origin}" if version.origin else ""
        signed = f", {version.signature}" if version.signature else ""
        await self.events.emit(
            repository, NORMAL, "NewArtifact", f"stored revision {revision}{origin}{signed}", revision=revision
        )
        log.info("%s: new revision %s%s%s", ObjectRef.of(repository), revision, origin, signed)


_VERIFICATION_FIELDS = ("verified", "verification")


def _verification_status(verify: OciVerifySpec | None, signature: CosignSignature | None) -> dict[str, Any]:
    """`verified` and `verification` of status.artifact: the provider and the trusted key; empty unverified."""
    if verify is None or signature is None:
        return {}
    verification = {
        "provider": str(verify.provider),
        "key": signature.key,
        "verifiedAt": format_time(datetime.now(UTC)),
    }
    return {"verified": True, "verification": verification}


def _signer(artifact_status: dict[str, Any]) -> tuple[Any, Any]:
    """What a verification says, without when it was made."""
    verification = artifact_status.get("verification") or {}
    return verification.get("provider"), verification.get("key")


def _interval_of(repository: KubeObject) -> float:
    try:
        return OCIRepositorySpec.from_object(repository).interval.total_seconds()
    except SpecError:
        return DEFAULT_INTERVAL.total_seconds()
