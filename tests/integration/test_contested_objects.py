"""An object belongs to one Sync: a second Sync that declares it reports the conflict instead of fighting
over it, and the owner hands it over (never deletes it) when it lets go."""

from __future__ import annotations

import time

from tests.support.git_fixtures import GitWorkspace
from tests.support.moor_fixtures import Moor, config_map, manifest


def two_syncs_declaring_one_object(moor: Moor, git_repo: GitWorkspace) -> None:
    git_repo.write("a/shared.yaml", manifest(config_map("shared", {"from": "a"})))
    git_repo.write("b/shared.yaml", manifest(config_map("shared", {"from": "b"})))
    git_repo.write("b/own.yaml", manifest(config_map("b-own", {"from": "b"})))
    git_repo.commit("two Syncs declare the same ConfigMap")
    git_repo.push()
    moor.source_and_sync(git_repo, "./a", name="a", sync_spec="interval: 5s")
    moor.wait_condition("sync", "a", "True")
    moor.source_and_sync(git_repo, "./b", name="b", sync_spec="interval: 5s")


def test_a_second_sync_reports_the_owner_and_writes_nothing(moor: Moor, git_repo: GitWorkspace) -> None:
    two_syncs_declaring_one_object(moor, git_repo)

    condition = moor.wait_condition("sync", "b", "False", reason="OwnershipConflict")
    assert f"ConfigMap {moor.namespace}/shared belongs to Sync {moor.namespace}/a" in condition["message"]
    assert not moor.exists("configmap", "b-own"), "nothing of a Sync with a conflict is written"
    # The object does not flip between the two: it stays as its owner declares it, labelled for it.
    for _ in range(8):
        shared = moor.get("configmap", "shared")
        assert shared["data"] == {"from": "a"}
        assert shared["metadata"]["labels"]["moor.dev/sync"] == f"{moor.namespace}.a"
        time.sleep(1)
    assert moor.condition("sync", "a")["status"] == "True"

    tree = moor.cli("tree", "sync", "b")
    assert f"ConfigMap {moor.namespace}/shared" in tree.stdout
    assert f"Conflict — declared here, but it belongs to Sync {moor.namespace}/a" in tree.stdout


def test_an_owner_deleted_with_prune_hands_the_object_over(moor: Moor, git_repo: GitWorkspace) -> None:
    two_syncs_declaring_one_object(moor, git_repo)
    moor.wait_condition("sync", "b", "False", reason="OwnershipConflict")

    moor.kubectl("delete", "sync", "a", "-n", moor.namespace, "--wait=true", "--timeout=60s")

    moor.wait_condition("sync", "b", "True", timeout=90)
    shared = moor.get("configmap", "shared")
    assert shared["data"] == {"from": "b"}
    assert shared["metadata"]["labels"]["moor.dev/sync"] == f"{moor.namespace}.b"
    assert moor.exists("configmap", "b-own")
    assert "conflicts" not in moor.get("sync", "b")["status"]


def test_an_object_that_left_the_owners_git_is_taken_over(moor: Moor, git_repo: GitWorkspace) -> None:
    two_syncs_declaring_one_object(moor, git_repo)
    moor.wait_condition("sync", "b", "False", reason="OwnershipConflict")

    git_repo.remove("a/shared.yaml")
    git_repo.write("a/other.yaml", manifest(config_map("a-other", {"from": "a"})))
    git_repo.commit("a lets go of the shared ConfigMap")
    git_repo.push()
    assert moor.cli("reconcile", "sync", "a", "--with-source").returncode == 0

    moor.wait_condition("sync", "b", "True", timeout=90)
    shared = moor.get("configmap", "shared")
    assert shared["data"] == {"from": "b"}, "kept by its former owner for the Sync waiting for it, not pruned"
    assert shared["metadata"]["labels"]["moor.dev/sync"] == f"{moor.namespace}.b"


def test_force_takes_an_object_over(moor: Moor, git_repo: GitWorkspace) -> None:
    two_syncs_declaring_one_object(moor, git_repo)
    moor.wait_condition("sync", "b", "False", reason="OwnershipConflict")

    moor.kubectl("patch", "sync", "b", "-n", moor.namespace, "--type=merge", "-p", '{"spec":{"force":true}}')

    moor.wait_condition("sync", "b", "True", timeout=90)
    assert moor.get("configmap", "shared")["data"] == {"from": "b"}
    condition = moor.wait_condition("sync", "a", "False", reason="OwnershipConflict", timeout=90)
    assert f"belongs to Sync {moor.namespace}/b" in condition["message"]
