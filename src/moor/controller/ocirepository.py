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
from functools import partial
from typing import Any

from moor.controller.registry_store import PulledVersion, RegistryStore
from moor.controller.scheduling import Requeue
from moor.controller.source_status import SourceReporter, replacing, source_pass
from moor.errors import MoorError
from moor.objects import KubeObject, ObjectRef
from moor.record.events import NORMAL, EventRecorder
from moor.record.metrics import Metrics
from moor.resources.conditions import format_time
from moor.resources.ocirepository import DEFAULT_INTERVAL, OCIRepositorySpec, OciVerifySpec
from moor.source.errors import SourceError
from moor.source.oci.cosign_keys import CosignSignature

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
        """One pass: resolve the ref, verify the version if asked, pull it if it is new, record it."""
        return await source_pass(
            self.report,
            repository,
            failures,
            OCIRepositorySpec.from_object,
            partial(self._pull, repository),
            reason_of=_reason_of,
            default_interval=DEFAULT_INTERVAL,
        )

    async def report_error(self, repository: KubeObject, error: Exception) -> None:
        await self.report.report_error(repository, error)

    async def _pull(self, repository: KubeObject, spec: OCIRepositorySpec, status: dict[str, Any]) -> str:
        access = await self.registries.access(repository, spec)
        keys = await self.registries.trusted_keys(repository, spec)
        version = await self.registries.latest(access, spec, keys)
        await self._record_artifact(repository, status, spec.verify, version)
        signed = f" ({version.signature})" if version.signature else ""
        return f"stored artifact for revision {version.artifact.revision}{signed}"

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


def _reason_of(error: MoorError) -> str:
    return error.reason if isinstance(error, SourceError) else PULL_FAILED
