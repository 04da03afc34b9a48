"""Deployment notes as documents: what a SyncRecord becomes in Git, and what is read back."""

from __future__ import annotations

import json

from moor.record.git_notes import NOTE_SCHEMA, DeploymentNote, last_healthy_revision

RECORD = {
    "apiVersion": "moor.dev/v1alpha1",
    "kind": "SyncRecord",
    "metadata": {"name": "guestbook.000007", "namespace": "moor-system"},
    "spec": {
        "sync": "guestbook",
        "sequence": 7,
        "result": "Succeeded",
        "revision": "main@sha1:4f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39",
        "author": "Ada <ada@example.com>",
        "message": "Scale web to 3",
        "approvedBy": "grace",
        "trigger": "new revision",
        "startedAt": "2026-12-01T10:00:00Z",
        "finishedAt": "2026-12-01T10:00:09Z",
        "created": ["apps/v1/Deployment/guestbook/web"],
    },
}


def test_a_record_becomes_one_self_describing_json_line() -> None:
    note = DeploymentNote.from_record(RECORD, cluster="prod-eu")

    line = note.to_json()
    document = json.loads(line)

    assert "\n" not in line
    assert document["schema"] == NOTE_SCHEMA
    assert document["cluster"] == "prod-eu"
    assert document["sync"] == "guestbook"
    assert document["namespace"] == "moor-system"
    assert document["result"] == "Succeeded"
    assert document["approvedBy"] == "grace"
    assert document["commit"] == "4f2a9c1e8b7d6a5f4e3d2c1b0a9f8e7d6c5b4a39"
    assert (document["startedAt"], document["finishedAt"]) == ("2026-12-01T10:00:00Z", "2026-12-01T10:00:09Z")
    assert document["changes"]["created"] == ["apps/v1/Deployment/guestbook/web"]


def test_a_line_read_back_is_the_same_deployment() -> None:
    note = DeploymentNote.from_record(RECORD, cluster="prod-eu")

    again = DeploymentNote.from_json(note.to_json())

    assert again == note
    assert again is not None and again.as_audit_entry()["cluster"] == "prod-eu"


def test_lines_that_are_not_moor_documents_are_skipped() -> None:
    assert DeploymentNote.from_json("Reviewed-by: someone") is None
    assert DeploymentNote.from_json(json.dumps({"schema": "other/v1"})) is None
    assert DeploymentNote.from_json("[1, 2]") is None


def test_the_same_record_closed_differently_is_another_deployment() -> None:
    succeeded = DeploymentNote.from_record(RECORD, cluster="prod-eu")
    rolled_back = DeploymentNote.from_record({**RECORD, "spec": {**RECORD["spec"], "result": "RolledBack"}}, "prod-eu")
    elsewhere = DeploymentNote.from_record(RECORD, cluster="prod-us")

    assert len({succeeded.key, rolled_back.key, elsewhere.key}) == 3
    assert rolled_back.entry["action"] == "rollback"


def deployed(revision: str, result: str, *, cluster: str = "prod", sync: str = "web", **more: str) -> DeploymentNote:
    return DeploymentNote(cluster, {"namespace": "shop", "sync": sync, "revision": revision, "result": result, **more})


def test_the_last_healthy_revision_is_the_newest_success_of_this_cluster_s_sync() -> None:
    notes = [
        deployed("main@sha1:aaa", "Succeeded"),
        deployed("main@sha1:bbb", "DriftCorrected"),
        deployed("main@sha1:ccc", "HealthCheckFailed"),
        deployed("main@sha1:ddd", "Succeeded", cluster="staging"),
        deployed("main@sha1:eee", "Succeeded", sync="api"),
    ]
    assert last_healthy_revision(notes, "prod", "shop", "web") == "main@sha1:bbb"
    rolled_back = [*notes, deployed("main@sha1:fff", "RolledBack", rolledBackTo="main@sha1:aaa")]
    assert last_healthy_revision(rolled_back, "prod", "shop", "web") == "main@sha1:aaa"
    assert last_healthy_revision(notes, "prod", "shop", "cart") is None
