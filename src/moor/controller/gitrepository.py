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
from functools import partial
from typing import Any

from moor import source
from moor.controller.scheduling import Requeue
from moor.controller.source_status import SourceReporter, replacing, source_pass
from moor.controller.source_store import SourceStore, check_verify_mode
from moor.objects import KubeObject, ObjectRef
from moor.record.events import NORMAL, EventRecorder
from moor.record.metrics import Metrics
from moor.resources import GitRepositorySpec, VerifySpec
from moor.resources.conditions import format_time
from moor.resources.gitrepository import DEFAULT_INTERVAL

log = logging.getLogger(__name__)

FETCH_FAILED = "GitOperationFailed"


@dataclass
class GitRepositoryReconciler:
    sources: SourceStore
    events: EventRecorder
    metrics: Metrics | None = None

    def __post_init__(self) -> None:
        self.report = SourceReporter(self.sources.api, self.events, self.metrics)

    async def reconcile(self, repository: KubeObject, failures: int) -> Requeue:
        """One pass: resolve the ref, fetch the commit if it is new, verify it if asked, record the artifact."""
        return await source_pass(
            self.report,
            repository,
            failures,
            _read_spec,
            partial(self._fetch, repository),
            reason_of=lambda error: FETCH_FAILED,
            default_interval=DEFAULT_INTERVAL,
        )

    async def report_error(
        self, repository: KubeObject, error: Exception, status: dict[str, Any] | None = None
    ) -> None:
        await self.report.report_error(repository, error, status)

    async def _fetch(self, repository: KubeObject, spec: GitRepositorySpec, status: dict[str, Any]) -> str:
        access = await self.sources.access(repository, spec)
        verify = await self.sources.verification(repository, spec)
        artifact = await self.sources.latest(access, verify)
        await self._record_artifact(repository, status, spec.verify, artifact)
        message = f"stored artifact for revision {artifact.revision}"
        if artifact.signatures:
            message += f" ({artifact.signatures})"
        return message

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


def _read_spec(repository: KubeObject) -> GitRepositorySpec:
    spec = GitRepositorySpec.from_object(repository)
    check_verify_mode(repository, spec)
    return spec


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
