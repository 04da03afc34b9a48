"""kill -9 of `moor run` in the middle of applying or pruning; a restarted controller converges.

These tests run their own control plane and controller, so killing it disturbs no other test.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from moor import binaries
from moor.devcluster import ClusterInfo, start_cluster, stop_cluster
from tests.support.cluster_fixtures import Kubectl
from tests.support.git_fixtures import GitWorkspace
from tests.support.moor_fixtures import ControllerProcess, Moor, config_map, manifest, moor_cli

OBJECTS = 300


@pytest.fixture(scope="module")
def own_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterInfo]:
    directory = tmp_path_factory.mktemp("crash-cluster")
    info = start_cluster(directory)
    try:
        assert moor_cli(info.kubeconfig, "install").returncode == 0
        yield info
    finally:
        stop_cluster(directory)


def config_maps(version: str, count: int = OBJECTS) -> str:
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
    revisions = [(entry["revision"], entry["result"]) for entry in status["history"]]
    assert len(revisions) == len(set(revisions)), f"history has duplicates: {revisions}"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kill_during_apply_then_restart_converges(
    own_cluster: ClusterInfo, tmp_path: Path, git_repo: GitWorkspace, seed: int
) -> None:
    kubectl = Kubectl(binaries.locate("kubectl"), own_cluster.kubeconfig)
    namespace = f"crash-apply-{seed}"
    kubectl("create", "namespace", namespace)
    moor = Moor(kubectl, own_cluster.kubeconfig, namespace)
    controller = ControllerProcess(own_cluster.kubeconfig, tmp_path / "controller", "--apply-concurrency", "1")
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
