"""Transactions: health-gated revisions, automatic rollback, pins, reverts in Git, approval gates, history."""

from __future__ import annotations

import json

from tests.support.git_fixtures import GitWorkspace, run_git
from tests.support.moor_fixtures import Moor, config_map, deployment, manifest

ROLLBACK = "{rollback: {onFailure: true}, timeout: 4s}"


def publish(repo: GitWorkspace, message: str, **objects: dict) -> str:
    for name in list((repo.work).glob("*.yaml")):
        name.unlink()
    for name, obj in objects.items():
        repo.write(f"{name}.yaml", manifest(obj))
    sha = repo.commit(message)
    repo.push()
    return sha


def healthy_v1(repo: GitWorkspace) -> str:
    return publish(
        repo,
        "v1",
        web=deployment("web"),
        changed=config_map("changed", {"v": "1"}),
        removed=config_map("removed", {"v": "1"}),
    )


def records(moor: Moor) -> list[dict]:
    result = moor.cli("history", "sync", "app", "-o", "json")
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout))


def test_an_unhealthy_revision_is_rolled_back_and_stays_rolled_back(moor: Moor, git_repo: GitWorkspace) -> None:
    v1 = healthy_v1(git_repo)
    moor.source_and_sync(git_repo, sync_spec=ROLLBACK)
    moor.wait_condition("sync", "app", "True", revision=v1)
    assert moor.get("sync", "app")["status"]["lastHealthyRevision"].endswith(v1)

    v2 = publish(
        git_repo,
        "v2: pods that never become ready",
        web=deployment("web", never_ready=True),
        changed=config_map("changed", {"v": "2"}),
        added=config_map("added", {"v": "2"}),
    )
    assert moor.reconcile().returncode == 1
    condition = moor.wait_condition("sync", "app", "False", reason="RolledBack")
    assert v2 in condition["message"] and v1 in condition["message"]
    status = moor.get("sync", "app")["status"]
    assert status["rollback"]["failedRevision"].endswith(v2)
    assert status["rollback"]["reason"] == "HealthCheckFailed"
    assert status["lastAppliedRevision"].endswith(v1)
    labels = moor.get("deployment", "web")["spec"]["template"]["metadata"]["labels"]
    assert "moor.dev/never-ready" not in labels, "the changed Deployment is put back"
    assert moor.get("configmap", "changed")["data"] == {"v": "1"}, "changed fields are put back"
    assert not moor.exists("configmap", "added"), "objects the failed revision added are removed"
    assert moor.get("configmap", "removed")["data"] == {"v": "1"}, "objects it removed are restored"

    # No flapping: reconciling again keeps the last healthy state and does not retry v2.
    attempts_before = len(records(moor))
    assert moor.reconcile(with_source=False).returncode == 1
    assert moor.condition("sync", "app")["reason"] == "RolledBack"
    assert "moor.dev/never-ready" not in moor.get("deployment", "web")["spec"]["template"]["metadata"]["labels"]
    assert all(not r["revision"].endswith(v2) or r["result"] == "RolledBack" for r in records(moor)[attempts_before:])

    # Git moves on: the fixed revision is applied and the rollback is over.
    v3 = publish(git_repo, "v3: fixed", web=deployment("web", replicas=2), changed=config_map("changed", {"v": "3"}))
    assert moor.reconcile().returncode == 0
    status = moor.get("sync", "app")["status"]
    assert status["lastAppliedRevision"].endswith(v3) and "rollback" not in status
    assert [r["result"] for r in records(moor)][-1] == "Succeeded"


def test_a_rejected_revision_rolls_back_without_writing(moor: Moor, git_repo: GitWorkspace) -> None:
    v1 = healthy_v1(git_repo)
    moor.source_and_sync(git_repo, sync_spec=ROLLBACK)
    moor.wait_condition("sync", "app", "True", revision=v1)
    broken = deployment("web")
    broken["spec"]["replicas"] = -1
    publish(git_repo, "v2: rejected", web=broken, changed=config_map("changed", {"v": "2"}))
    assert moor.reconcile().returncode == 1
    moor.wait_condition("sync", "app", "False", reason="RolledBack")
    assert moor.get("sync", "app")["status"]["rollback"]["reason"] == "ValidationFailed"
    assert moor.get("configmap", "changed")["data"] == {"v": "1"}
    assert moor.exists("configmap", "removed")


def test_manual_pin_release_and_git_moving_past(moor: Moor, git_repo: GitWorkspace) -> None:
    v1 = publish(git_repo, "v1", a=config_map("a", {"v": "1"}))
    moor.source_and_sync(git_repo)
    moor.wait_condition("sync", "app", "True", revision=v1)
    v2 = publish(git_repo, "v2", a=config_map("a", {"v": "2"}))
    assert moor.reconcile().returncode == 0

    refused = moor.cli("rollback", "sync", "app", "--to", "0123456789abcdef")
    assert refused.returncode == 2 and "not a revision this Sync applied" in refused.stderr
    pinned = moor.cli("rollback", "sync", "app")
    assert pinned.returncode == 0, pinned.stderr
    moor.wait_for("the pin to apply v1", lambda: moor.get("configmap", "a")["data"] == {"v": "1"}, timeout=30)
    status = moor.get("sync", "app")["status"]
    assert status["pinnedRevision"].endswith(v1) and status["lastAppliedRevision"].endswith(v1)

    assert moor.cli("rollback", "sync", "app", "--release").returncode == 0
    moor.wait_for("release to follow Git", lambda: moor.get("configmap", "a")["data"] == {"v": "2"}, timeout=30)
    assert "pinnedRevision" not in moor.get("sync", "app")["status"]

    assert moor.cli("rollback", "sync", "app", "--to", v1[:10]).returncode == 0
    moor.wait_for("the pin to apply v1", lambda: moor.get("configmap", "a")["data"] == {"v": "1"}, timeout=30)
    v3 = publish(git_repo, "v3", a=config_map("a", {"v": "3"}))
    assert moor.reconcile().returncode == 0
    assert moor.get("configmap", "a")["data"] == {"v": "3"}, "Git moving past the pin releases it"
    assert moor.get("sync", "app")["status"]["lastAppliedRevision"].endswith(v3)
    assert "moor.dev/pin" not in (moor.get("sync", "app")["metadata"].get("annotations") or {})
    assert v2


def test_revert_pushes_a_commit_that_git_then_applies(moor: Moor, git_repo: GitWorkspace) -> None:
    v1 = publish(git_repo, "v1", a=config_map("a", {"v": "1"}))
    moor.source_and_sync(git_repo)
    moor.wait_condition("sync", "app", "True", revision=v1)
    publish(git_repo, "v2", a=config_map("a", {"v": "2"}), b=config_map("b", {"v": "2"}))
    assert moor.reconcile().returncode == 0

    result = moor.cli("rollback", "sync", "app", "--revert", "--author", "Rita Release <rita@example.com>")
    assert result.returncode == 0, result.stderr
    log = run_git("log", "--format=%an|%s", "-3", "main", cwd=git_repo.bare)
    assert log.splitlines()[0] == f"Rita Release|Revert to {v1[:12]}"
    assert moor.reconcile().returncode == 0
    assert moor.get("configmap", "a")["data"] == {"v": "1"}
    assert not moor.exists("configmap", "b")


def test_approval_gate_waits_approves_exactly_one_revision_and_newer_supersedes(
    moor: Moor, git_repo: GitWorkspace
) -> None:
    v1 = publish(git_repo, "v1", a=config_map("a", {"v": "1"}))
    moor.source_and_sync(git_repo, sync_spec="{approval: {mode: manual}}")
    waiting = moor.wait_condition("sync", "app", "True", type_="AwaitingApproval")
    assert v1 in waiting["message"] and "1 to create" in waiting["message"]
    assert not moor.exists("configmap", "a"), "nothing is applied before approval"

    wrong = moor.cli("approve", "sync", "app", "--revision", "deadbeefdeadbeef")
    assert wrong.returncode == 2 and "waits for revision" in wrong.stderr
    approved = moor.cli("approve", "sync", "app", "--revision", v1[:12])
    assert approved.returncode == 0, approved.stderr
    moor.wait_condition("sync", "app", "True", revision=v1)
    assert moor.get("configmap", "a")["data"] == {"v": "1"}
    assert moor.condition("sync", "app", "AwaitingApproval") is None

    v2 = publish(git_repo, "v2", a=config_map("a", {"v": "2"}))
    assert moor.cli("reconcile", "source", "app").returncode == 0
    moor.wait_condition("sync", "app", "True", type_="AwaitingApproval", revision=v2)
    v3 = publish(git_repo, "v3", a=config_map("a", {"v": "3"}))
    assert moor.cli("reconcile", "source", "app").returncode == 0
    moor.wait_condition("sync", "app", "True", type_="AwaitingApproval", revision=v3)
    superseded = moor.cli("approve", "sync", "app", "--revision", v2)
    assert superseded.returncode == 2 and v3 in superseded.stderr
    assert moor.get("configmap", "a")["data"] == {"v": "1"}
    assert moor.cli("approve", "sync", "app", "--revision", v3).returncode == 0
    moor.wait_condition("sync", "app", "True", revision=v3)
    assert moor.get("configmap", "a")["data"] == {"v": "3"}

    applied = [r for r in records(moor) if r["result"] == "Succeeded"]
    assert [r["revision"][-40:] for r in applied] == [v1, v3]
    assert all(r["approvedBy"] for r in applied), applied
    status_history = moor.get("sync", "app")["status"]["history"]
    assert status_history[0]["approvedBy"] == applied[-1]["approvedBy"]


def test_history_is_exported_as_json_lines(moor: Moor, git_repo: GitWorkspace) -> None:
    v1 = publish(git_repo, "v1", a=config_map("a", {"v": "1"}))
    moor.source_and_sync(git_repo)
    moor.wait_condition("sync", "app", "True", revision=v1)
    bad = config_map("a", {"v": "2"})
    bad["metadata"]["name"] = "Not_A_Valid_Name"
    publish(git_repo, "v2 bad", a=bad)
    assert moor.reconcile().returncode == 1
    assert moor.reconcile(with_source=False).returncode == 1

    lines = moor.cli("history", "sync", "app", "-o", "jsonl").stdout.splitlines()
    entries = [json.loads(line) for line in lines]
    assert [e["result"] for e in entries] == ["Succeeded", "ValidationFailed"]
    assert entries[1]["attempts"] >= 2, "a repeated failure is counted, not recorded twice"
    assert entries[0]["namespace"] == moor.namespace and entries[0]["author"]
    assert entries[0]["created"] == [f"ConfigMap {moor.namespace}/a"]
    table = moor.cli("history", "sync", "app").stdout
    assert "Succeeded" in table and "ValidationFailed" in table
    listed = moor.kubectl("get", "syncrecords", "-n", moor.namespace).stdout
    assert "Succeeded" in listed
