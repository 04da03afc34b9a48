"""The operations the dashboard (and the CLI) ask of a Sync: what is approved, where a rollback goes."""

from __future__ import annotations

import pytest

from moor.operations import OperationRefused, pending_revision, rollback_target

V1, V2, V3 = ("main@sha1:" + c * 40 for c in "123")


def sync(**status: object) -> dict:
    return {
        "apiVersion": "moor.dev/v1",
        "kind": "Sync",
        "metadata": {"name": "app", "namespace": "team"},
        "spec": {"sourceRef": {"name": "app"}, "path": ".", "approval": {"mode": "manual"}},
        "status": status,
    }


def record(revision: str, result: str = "Succeeded") -> dict:
    return {"spec": {"revision": revision, "result": result}}


def test_approval_names_the_waiting_revision_by_prefix_or_in_full() -> None:
    waiting = sync(pendingRevision=V2)
    assert pending_revision(waiting, "2222222") == V2
    assert pending_revision(waiting, V2) == V2
    with pytest.raises(OperationRefused, match="waits for revision"):
        pending_revision(waiting, V3)
    with pytest.raises(OperationRefused, match="no revision waiting"):
        pending_revision(sync(), V2)


def test_rollback_goes_to_the_last_healthy_earlier_revision() -> None:
    records = [record(V1), record(V2, "HealthCheckFailed"), record(V3)]
    assert rollback_target(sync(lastAppliedRevision=V3), records, None) == V1
    assert rollback_target(sync(lastAppliedRevision=V3), records, "1111111") == V1
    with pytest.raises(OperationRefused, match="not a revision this Sync applied successfully"):
        rollback_target(sync(lastAppliedRevision=V3), records, V2)
    with pytest.raises(OperationRefused, match="no earlier healthy revision"):
        rollback_target(sync(lastAppliedRevision=V1), [record(V1)], None)
