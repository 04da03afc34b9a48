"""What a person asks of a Sync (reconcile now, suspend, resume, approve, roll back, pin, release), written once.

Each operation is one merge patch of the Sync, the same the CLI verbs send; the controller does the
rest on its next pass. The caller decides who may ask (RBAC through the API server for the CLI, a
SubjectAccessReview for the dashboard); these functions only check that the request makes sense.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

from moor.cluster.api import KubeApi
from moor.controller.revision_choice import (
    APPROVED_BY_ANNOTATION,
    APPROVED_REVISION_ANNOTATION,
    PIN_ANNOTATION,
    PINNED_SOURCE_ANNOTATION,
)
from moor.controller.source_store import SourceStore
from moor.errors import MoorError
from moor.objects import RECONCILE_ANNOTATION, KubeObject, ObjectRef
from moor.resources import ApprovalMode, SyncSpec
from moor.resources.reconcile_request import reconcile_request, reconcile_token
from moor.source import ArtifactCache, revision_commit

HEALTHY_RESULTS = ("Succeeded", "DriftCorrected")


class OperationRefused(MoorError):
    """The request does not fit the Sync as it is (nothing waits for approval, no earlier revision...)."""


async def request_reconcile(api: KubeApi, ref: ObjectRef) -> str:
    """Asks the controller to reconcile `ref` now; returns the token it reports as lastHandledReconcileAt."""
    token = reconcile_token()
    await api.merge_patch(ref, reconcile_request(token))
    return token


async def set_suspend(api: KubeApi, ref: ObjectRef, suspend: bool) -> None:
    """Suspends or resumes `ref`; a resumed object is reconciled at once."""
    await api.merge_patch(ref, {"spec": {"suspend": suspend}})
    if not suspend:
        await request_reconcile(api, ref)


def pending_revision(sync: KubeObject, wanted: str) -> str:
    """The revision the Sync waits with, when `wanted` names it (in full, or its commit or a 7+ prefix of it)."""
    metadata = sync["metadata"]
    where = f"Sync {metadata.get('namespace', '')}/{metadata['name']}"
    if SyncSpec.from_object(sync).approval is not ApprovalMode.MANUAL:
        raise OperationRefused(f"{where} applies new revisions without approval (spec.approval.mode is auto)")
    pending = str((sync.get("status") or {}).get("pendingRevision") or "")
    if not pending:
        raise OperationRefused(f"{where} has no revision waiting for approval")
    commit = wanted.rpartition(":")[2] if ":" in wanted else wanted
    if wanted != pending and not (len(commit) >= 7 and revision_commit(pending).startswith(commit)):
        raise OperationRefused(f"{where} waits for revision {pending}, not {wanted}")
    return pending


async def approve(api: KubeApi, sync: KubeObject, wanted: str, approver: str) -> str:
    """Lets the waiting revision `wanted` through, recording `approver`; returns the full revision."""
    pending = pending_revision(sync, wanted)
    annotations = {APPROVED_REVISION_ANNOTATION: pending, APPROVED_BY_ANNOTATION: approver}
    await api.merge_patch(
        ObjectRef.of(sync), {"metadata": {"annotations": {**annotations, RECONCILE_ANNOTATION: reconcile_token()}}}
    )
    return pending


def rollback_target(sync: KubeObject, records: Sequence[KubeObject], wanted: str | None) -> str:
    """The full revision to return to: `wanted` (or, None, the last healthy one before the current), which
    must be one the Sync once applied successfully."""
    metadata = sync["metadata"]
    healthy = [str(r["spec"]["revision"]) for r in records if r["spec"].get("result") in HEALTHY_RESULTS]
    current = (sync.get("status") or {}).get("lastAppliedRevision")
    if wanted is None:
        earlier = [revision for revision in reversed(healthy) if revision != current]
        if not earlier:
            raise OperationRefused(f"Sync {metadata['namespace']}/{metadata['name']} has no earlier healthy revision")
        return earlier[0]
    commit = wanted.rpartition(":")[2]
    matches = {revision for revision in healthy if revision == wanted or revision_commit(revision).startswith(commit)}
    if len(matches) != 1:
        known = ", ".join(sorted({revision_commit(r)[:12] for r in healthy})) or "none"
        problem = "matches several revisions" if matches else "is not a revision this Sync applied successfully"
        raise OperationRefused(f"{wanted!r} {problem} (healthy revisions: {known})")
    return matches.pop()


async def source_revision(api: KubeApi, repository: KubeObject, spec: SyncSpec) -> str:
    """The revision the Sync's source offers now, which a pin holds against: the newest version of its
    chart in range for a HelmRepository, the source's artifact otherwise."""
    if spec.chart is None:
        return str(((repository.get("status") or {}).get("artifact") or {}).get("revision", ""))
    with tempfile.TemporaryDirectory(prefix="moor-pin-") as scratch:
        return (await SourceStore(api, ArtifactCache(Path(scratch))).newest(repository, spec)).revision


async def pin(api: KubeApi, ref: ObjectRef, revision: str, offered: str) -> None:
    """Holds the Sync at `revision` until released or until its source offers something newer than `offered`."""
    annotations = {PIN_ANNOTATION: revision, PINNED_SOURCE_ANNOTATION: offered, RECONCILE_ANNOTATION: reconcile_token()}
    await api.merge_patch(ref, {"metadata": {"annotations": annotations}})


async def release(api: KubeApi, ref: ObjectRef) -> None:
    """Removes a pin: the Sync follows its source again."""
    annotations = {PIN_ANNOTATION: None, PINNED_SOURCE_ANNOTATION: None, RECONCILE_ANNOTATION: reconcile_token()}
    await api.merge_patch(ref, {"metadata": {"annotations": annotations}})
