"""Reconciling a GitRepository: find the newest revision its ref names, fetch it, verify its signatures
if asked, say so in its status. A revision that fails verification never reaches `status.artifact`,
so every Sync of the repository stays at the last verified revision.

Whatever else goes wrong (the API server unreachable while reading a Secret or writing the status, an
unexpected error) ends as Ready=False with its reason and a retry, never as a Ready=True left standing
at the old revision.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from moor import source
from moor.controller.scheduling import Requeue, cluster_failed, jittered
from moor.controller.source_status import INVALID_SPEC, SourceReporter, replacing
from moor.controller.source_store import SourceStore, check_verify_mode
from moor.errors import MoorError
from moor.objects import KubeObject, ObjectRef
from moor.record.events import NORMAL, EventRecorder
from moor.record.metrics import Metrics
from moor.resources import GitRepositorySpec, SpecError, VerifySpec, conditions
from moor.resources.conditions import format_time

log = logging.getLogger(__name__)

FETCH_FAILED = "GitOperationFailed"
DEFAULT_INTERVAL = 60.0
"""Seconds before retrying a GitRepository whose spec gives no interval (it does not parse)."""


@dataclass
class GitRepositoryReconciler:
    sources: SourceStore
    events: EventRecorder
    metrics: Metrics | None = None

    def __post_init__(self) -> None:
        self.report = SourceReporter(self.sources.api, self.events, self.metrics)

    async def reconcile(self, repository: KubeObject, failures: int) -> Requeue:
        """One pass: resolve the ref, fetch the commit if it is new, verify it if asked, record the artifact.

        Never raises: an error no step expected is reported as Ready=False (ClusterUnreachable or
        ReconcileError) and retried with backoff."""
        status: dict[str, Any] = dict(repository.get("status") or {})
        try:
            return await self.run_pass(repository, status, failures)
        except Exception as error:
            await self.report_error(repository, error, status)
            return Requeue.after_error(error, _interval_of(repository), failures)

    async def report_error(
        self, repository: KubeObject, error: Exception, status: dict[str, Any] | None = None
    ) -> None:
        await self.report.report_error(repository, error, status)

    async def run_pass(self, repository: KubeObject, status: dict[str, Any], failures: int) -> Requeue:
        try:
            spec = GitRepositorySpec.from_object(repository)
            check_verify_mode(repository, spec)
        except SpecError as error:
            await self.report.failed(repository, status, INVALID_SPEC, str(error), stalled=True)
            return Requeue.never()
        if spec.suspend:
            return Requeue.never()
        try:
            access = await self.sources.access(repository, spec)
            verify = await self.sources.verification(repository, spec)
            artifact = await self.sources.latest(access, verify)
        except source.VerificationFailed as error:
            # Not transient: the refused revision stays refused, so look again at the usual pace.
            await self.report.failed(repository, status, conditions.VERIFICATION_FAILED, str(error), stalled=False)
            return Requeue.after(jittered(spec.interval.total_seconds()))
        except MoorError as error:
            if cluster_failed(error):  # reading its Secret: the cluster failed, not Git
                raise
            await self.report.failed(repository, status, FETCH_FAILED, str(error), stalled=False)
            return Requeue.backoff(spec.interval.total_seconds(), failures)

        await self._record_artifact(repository, status, spec.verify, artifact)
        message = f"stored artifact for revision {artifact.revision}"
        if artifact.signatures:
            message += f" ({artifact.signatures})"
        await self.report.ready(repository, status, message)
        return Requeue.after(jittered(spec.interval.total_seconds()))

    async def _record_artifact(
        self, repository: KubeObject, status: dict[str, Any], verify: VerifySpec | None, artifact: source.Artifact
    ) -> None:
        """Puts a new revision (and who signed it) into status.artifact, or its verification alone when
        only that changed (verify turned on, off, or another mode)."""
        previous: dict[str, Any] = dict(status.get("artifact") or {})
        verified = _verification_status(verify, artifact.signatures)
        if previous.get("revision") != artifact.revision:
            status["artifact"] = replacing(
                previous,
                {
                    "revision": artifact.revision,
                    "fetchedAt": format_time(datetime.now(UTC)),
                    "author": artifact.author,
                    "message": artifact.message[:1024],
                    "committedAt": format_time(artifact.committed_at),
                    **verified,
                },
            )
            signed = f", {artifact.signatures}" if artifact.signatures else ""
            await self.events.emit(
                repository,
                NORMAL,
                "NewArtifact",
                f"stored revision {artifact.revision}{signed}",
                revision=artifact.revision,
                author=artifact.author,
            )
            log.info("%s: new revision %s%s", ObjectRef.of(repository), artifact.revision, signed)
        elif _signers(previous) != _signers(verified):
            unverified = {key: value for key, value in previous.items() if key not in _VERIFICATION_FIELDS}
            status["artifact"] = replacing(previous, {**unverified, **verified})


_VERIFICATION_FIELDS = ("verified", "verification")


def _interval_of(repository: KubeObject) -> float:
    try:
        return GitRepositorySpec.from_object(repository).interval.total_seconds()
    except SpecError:
        return DEFAULT_INTERVAL


def _verification_status(verify: VerifySpec | None, signatures: source.Signatures | None) -> dict[str, Any]:
    """`verified` and `verification` of status.artifact: the mode and who signed what; empty unverified."""
    if verify is None or signatures is None:
        return {}
    found = [
        {"object": name, "method": signature.method, "signer": signature.signer, "key": signature.key}
        for name, signature in (("commit", signatures.commit), ("tag", signatures.tag))
        if signature is not None
    ]
    verification = {"mode": str(verify.mode), "verifiedAt": format_time(datetime.now(UTC)), "signatures": found}
    return {"verified": True, "verification": verification}


def _signers(artifact_status: dict[str, Any]) -> tuple[Any, Any]:
    """What a verification says, without when it was made."""
    verification = artifact_status.get("verification") or {}
    return verification.get("mode"), verification.get("signatures")
