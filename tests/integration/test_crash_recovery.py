"""kill -9 of `moor run` in the middle of applying or pruning; a restarted controller converges.

These tests run their own control plane and controller, so killing it disturbs no other test.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest

from moor import binaries
from moor.devcluster import ClusterInfo
from tests.support.cluster_fixtures import Kubectl
from tests.support.git_fixtures import GitWorkspace
from tests.support.moor_fixtures import ControllerProcess, Moor, config_map, deployment, manifest

OBJECTS = 300


def config_maps(version: str, count: int = OBJECTS) -> str:
    """`count` ConfigMaps item-0000… holding `version`."""
    return manifest(*(config_map(f"item-{i:04d}", {"version": version}) for i in range(count)))


def reconciling(moor: Moor) -> bool:
    condition = moor.condition("sync", "app", "Reconciling")
    return condition is not None and condition["status"] == "True"


def converged(moor: Moor, version: str, count: int) -> None:
    moor.wait_condition("sync", "app", "True", revision=None, timeout=120)
    items = json.loads(
        moor.kubectl("get", "configmaps", "-n", moor.namespace, "-l", "moor.dev/sync", "-o", "json").stdout
    )["items"]
    assert len(items) == count
    assert {item["data"]["version"] for item in items} == {version}
    status = moor.get("sync", "app")["status"]
    assert len(status["inventory"]) == count
    history_is_whole(moor)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kill_during_apply_then_restart_converges(
    private_cluster: ClusterInfo, tmp_path: Path, git_repo: GitWorkspace, seed: int
) -> None:
    kubectl = Kubectl(binaries.locate("kubectl"), private_cluster.kubeconfig)
    namespace = f"crash-apply-{seed}"
    kubectl("create", "namespace", namespace)
    moor = Moor(kubectl, private_cluster.kubeconfig, namespace)
    controller = ControllerProcess(private_cluster.kubeconfig, tmp_path / "controller", "--apply-concurrency", "1")
    controller.start()
    try:
        git_repo.write("items.yaml", config_maps("v1"))
        git_repo.commit("v1")
        git_repo.push()
        moor.source_and_sync(git_repo)
        moor.wait_for("the first apply to start", lambda: reconciling(moor), timeout=60)
        time.sleep(random.Random(seed).uniform(0.0, 0.4))
        controller.kill()

        controller.start()
        converged(moor, "v1", OBJECTS)

        # A new revision that changes half and removes the other half; kill in the middle again.
        git_repo.write("items.yaml", config_maps("v2", OBJECTS // 2))
        git_repo.commit("v2: half the items")
        git_repo.push()
        moor.kubectl(
            "annotate", "gitrepository", "app", "-n", namespace, f"moor.dev/reconcile={seed}-v2", "--overwrite"
        )
        moor.wait_for("the second apply to start", lambda: reconciling(moor), timeout=60)
        time.sleep(random.Random(seed * 7).uniform(0.0, 0.4))
        controller.kill()

        controller.start()
        converged(moor, "v2", OBJECTS // 2)
    finally:
        if controller.process and controller.process.poll() is None:
            assert controller.stop() == 0, "moor run exits 0 on SIGTERM"
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def history_is_whole(moor: Moor) -> list[dict]:
    """Records are numbered 1..n without a gap, none left InProgress, none recorded twice."""
    listed = json.loads(moor.kubectl("get", "syncrecords", "-n", moor.namespace, "-o", "json").stdout)["items"]
    specs = sorted((item["spec"] for item in listed), key=lambda spec: spec["sequence"])
    assert [spec["sequence"] for spec in specs] == list(range(1, len(specs) + 1))
    assert all(spec["result"] != "InProgress" for spec in specs), specs
    settled = [(spec["revision"], spec["result"]) for spec in specs if spec["result"] != "Interrupted"]
    assert len(settled) == len(set(settled)), f"an attempt was recorded twice: {settled}"
    return specs


@pytest.mark.parametrize("seed", range(1, 8))
def test_kill_during_a_failing_revision_and_its_rollback_then_restart_converges(
    private_cluster: ClusterInfo, tmp_path: Path, git_repo: GitWorkspace, seed: int
) -> None:
    kubectl = Kubectl(binaries.locate("kubectl"), private_cluster.kubeconfig)
    namespace = f"crash-rollback-{seed}"
    kubectl("create", "namespace", namespace)
    moor = Moor(kubectl, private_cluster.kubeconfig, namespace)
    controller = ControllerProcess(private_cluster.kubeconfig, tmp_path / "controller", "--apply-concurrency", "1")
    controller.start()
    chance = random.Random(seed)
    try:
        web = deployment("web")
        git_repo.write("items.yaml", config_maps("v1", 120))
        git_repo.write("web.yaml", manifest(web))
        git_repo.commit("v1")
        git_repo.push()
        moor.source_and_sync(git_repo, sync_spec="{rollback: {onFailure: true}, timeout: 3s}")
        moor.wait_condition("sync", "app", "True", timeout=90)

        git_repo.write("items.yaml", config_maps("v2", 60))  # changes 60, removes 60
        git_repo.write("web.yaml", manifest(deployment("web", never_ready=True)))
        v2 = git_repo.commit("v2: never ready")
        git_repo.push()
        moor.kubectl(
            "annotate", "gitrepository", "app", "-n", namespace, f"moor.dev/reconcile=v2-{seed}", "--overwrite"
        )
        # First kill: while v2 is being applied or waited on; second: around its rollback.
        moor.wait_for("v2 to start", lambda: reconciling(moor), timeout=60)
        time.sleep(chance.uniform(0.0, 2.0))
        controller.kill()
        controller.start()
        moor.wait_for(
            "a rollback to start",
            lambda: (
                (
                    (c := moor.condition("sync", "app", "Reconciling"))
                    and "v1" not in c["message"]
                    and c["status"] == "True"
                )
                or moor.condition("sync", "app")["reason"] == "RolledBack"
            ),
            timeout=90,
        )
        time.sleep(chance.uniform(0.0, 1.5))
        controller.kill()
        controller.start()

        moor.wait_condition("sync", "app", "False", reason="RolledBack", timeout=120)
        status = moor.get("sync", "app")["status"]
        assert status["rollback"]["failedRevision"].endswith(v2)
        items = json.loads(
            moor.kubectl("get", "configmaps", "-n", namespace, "-l", "moor.dev/sync", "-o", "json").stdout
        )["items"]
        assert len(items) == 120 and {item["data"]["version"] for item in items} == {"v1"}
        labels = moor.get("deployment", "web")["spec"]["template"]["metadata"]["labels"]
        assert "moor.dev/never-ready" not in labels
        assert len(status["inventory"]) == 121
        results = [spec["result"] for spec in history_is_whole(moor)]
        assert results[0] == "Succeeded" and results[-1] == "RolledBack", results
    finally:
        if controller.process and controller.process.poll() is None:
            assert controller.stop() == 0, "moor run exits 0 on SIGTERM"
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)
