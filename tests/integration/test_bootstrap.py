"""`moor bootstrap git`: a cluster set up from a path of a repository; rerun, nothing changes; the
cluster destroyed and a fresh one bootstrapped from the same repository comes back whole, in order.

Each test runs its own control planes (the cluster is destroyed on purpose) and its own `moor run`
beside them: the Deployment bootstrap writes into Git cannot run here (no image can be built, kwok
has no real kubelet), so the controller runs out of cluster, as `moor run` does on a laptop.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from moor.binaries import locate
from moor.cli.bootstrap import bootstrap
from moor.cli.main import MoorGroup
from moor.devcluster import ClusterInfo, start_cluster, stop_cluster
from tests.support.git_fixtures import GitWorkspace, run_git
from tests.support.moor_fixtures import ControllerProcess, config_map, moor_cli

pytestmark = [pytest.mark.cluster, pytest.mark.git]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CONFIG_MAPS = 200
WAIT = "240s"


def sync(name: str, path: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "moor.dev/v1",
        "kind": "Sync",
        "metadata": {"name": name, "namespace": "moor-system"},
        "spec": {"sourceRef": {"kind": "GitRepository", "name": "moor-system"}, "path": path, "prune": True, **spec},
    }


WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
            }
        ],
    },
}


def fill(repo: GitWorkspace) -> str:
    """A repository as a platform team keeps it: the guestbook example, infrastructure (a CRD and a
    Namespace) and apps that need it (Widgets and ConfigMaps), with a Sync each under clusters/dev."""
    shutil.copytree(EXAMPLES / "guestbook", repo.work / "guestbook")
    repo.write("infra/crd.yaml", yaml.safe_dump(WIDGET_CRD))
    repo.write(
        "infra/namespace.yaml", yaml.safe_dump({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
    )
    widgets = [
        {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": f"w{i}", "namespace": "shop"}}
        for i in range(5)
    ]
    maps = [
        {**config_map(f"c{i}", {"index": str(i)}), "metadata": {"name": f"c{i}", "namespace": "shop"}}
        for i in range(CONFIG_MAPS)
    ]
    repo.write("apps/objects.yaml", yaml.safe_dump_all([*widgets, *maps]))
    syncs = [
        sync("guestbook-dev", "./guestbook/overlays/dev"),
        sync("infra", "./infra"),
        sync("apps", "./apps", dependsOn=[{"name": "infra"}]),
    ]
    repo.write("clusters/dev/syncs.yaml", yaml.safe_dump_all(syncs))
    sha = repo.commit("the dev cluster")
    repo.push()
    return sha


def invoke(kubeconfig: Path, repo: GitWorkspace, *extra: str) -> Result:
    group = MoorGroup(commands={"bootstrap": bootstrap})
    argv = ["bootstrap", "git", "--url", repo.url, "--branch", "main", "--path", "clusters/dev", "--timeout", WAIT]
    return CliRunner().invoke(group, [*argv, *extra, "--kubeconfig", str(kubeconfig)], catch_exceptions=False)


def kubectl(info: ClusterInfo, *args: str, stdin: str | None = None) -> str:
    completed = subprocess.run(
        [str(locate("kubectl")), "--kubeconfig", str(info.kubeconfig), *args],
        input=stdin, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def items(info: ClusterInfo, kind: str, namespace: str = "") -> list[dict[str, Any]]:
    scope = ["-n", namespace] if namespace else ["-A"]
    return json.loads(kubectl(info, "get", kind, *scope, "-o", "json", "--show-managed-fields"))["items"]


class Cluster:
    """A fresh control plane with Moor's CRDs and its own `moor run`; `destroy` removes its data."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.info = start_cluster(directory / "cluster")
        assert moor_cli(self.info.kubeconfig, "install").returncode == 0
        self.controller = ControllerProcess(self.info.kubeconfig, directory / "controller")
        self.controller.start()

    def destroy(self) -> None:
        self.controller.stop()
        stop_cluster(self.directory / "cluster")
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture
def clusters(tmp_path: Path) -> Iterator[list[Cluster]]:
    made: list[Cluster] = []
    yield made
    for cluster in made:
        if cluster.directory.exists():
            cluster.destroy()


def ready_revisions(info: ClusterInfo) -> dict[str, str]:
    found = {}
    for item in items(info, "syncs.moor.dev"):
        ready = next(c for c in item["status"]["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "True", (item["metadata"]["name"], ready)
        found[item["metadata"]["name"]] = item["status"]["lastAppliedRevision"]
    return found


def records(info: ClusterInfo, sync_name: str) -> list[dict[str, Any]]:
    listed = [r["spec"] for r in items(info, "syncrecords.moor.dev", "moor-system") if r["spec"]["sync"] == sync_name]
    return sorted(listed, key=lambda spec: spec["sequence"])


def assert_rebuilt_in_order(info: ClusterInfo) -> None:
    """Every object there, each Sync applied once and right the first time, apps after infra."""
    assert len(items(info, "configmaps", "shop")) >= CONFIG_MAPS
    assert len(items(info, "widgets.example.com", "shop")) == 5
    assert items(info, "deployments", "guestbook-dev")
    infra, apps = records(info, "infra"), records(info, "apps")
    assert [r["result"] for r in infra] == ["Succeeded"], infra
    assert [r["result"] for r in apps] == ["Succeeded"], apps
    assert apps[0]["startedAt"] >= infra[0]["finishedAt"], "dependsOn: apps started before infra was done"


async def test_bootstrap_rerun_and_rebuild_of_a_destroyed_cluster(
    git_repo: GitWorkspace, tmp_path: Path, clusters: list[Cluster]
) -> None:
    declared = fill(git_repo)
    first = Cluster(tmp_path / "first")
    clusters.append(first)

    result = await asyncio.to_thread(invoke, first.info.kubeconfig, git_repo)

    assert result.exit_code == 0, result.output
    assert "committed and pushed" in result.output
    assert "every Sync is Ready" in result.output
    bootstrapped = git_repo.remote_rev_parse("main")
    assert run_git("--git-dir", git_repo.bare, "log", "--format=%P", "-1", bootstrapped) == declared
    components = git_repo.remote_file("clusters/dev/moor-system/components.yaml")
    assert "CustomResourceDefinition" in components and "kind: Deployment" in components
    revisions = ready_revisions(first.info)
    assert set(revisions) == {"moor-system", "guestbook-dev", "infra", "apps"}
    assert all(revision.endswith(bootstrapped) for revision in revisions.values())
    assert_rebuilt_in_order(first.info)

    again = await asyncio.to_thread(invoke, first.info.kubeconfig, git_repo)

    assert again.exit_code == 0, again.output
    assert f"unchanged at {bootstrapped[:12]}" in again.output
    assert git_repo.remote_rev_parse("main") == bootstrapped, "a rerun commits nothing"

    first.destroy()
    fresh = Cluster(tmp_path / "fresh")
    clusters.append(fresh)

    rebuilt = await asyncio.to_thread(invoke, fresh.info.kubeconfig, git_repo)

    assert rebuilt.exit_code == 0, rebuilt.output
    assert git_repo.remote_rev_parse("main") == bootstrapped
    assert ready_revisions(fresh.info) == revisions, "every Sync back at the same revision"
    assert_rebuilt_in_order(fresh.info)


async def test_adopt_takes_over_what_kubectl_applied_without_recreating_it(
    git_repo: GitWorkspace, tmp_path: Path, clusters: list[Cluster]
) -> None:
    git_repo.write(
        "clusters/dev/settings.yaml", yaml.safe_dump(config_map("settings", {"mode": "git"}, namespace="default"))
    )
    git_repo.commit("settings")
    git_repo.push()
    cluster = Cluster(tmp_path / "adopt")
    clusters.append(cluster)
    by_hand = config_map("settings", {"mode": "by-hand", "extra": "kept"}, namespace="default")
    by_hand["metadata"]["labels"] = {"team": "ops"}
    kubectl(cluster.info, "apply", "-f", "-", stdin=yaml.safe_dump(by_hand))
    before = items(cluster.info, "configmaps", "default")
    uid = next(item["metadata"]["uid"] for item in before if item["metadata"]["name"] == "settings")

    result = await asyncio.to_thread(invoke, cluster.info.kubeconfig, git_repo, "--adopt", "--without-controller")

    assert result.exit_code == 0, result.output
    adopted = next(i for i in items(cluster.info, "configmaps", "default") if i["metadata"]["name"] == "settings")
    assert adopted["metadata"]["uid"] == uid, "taken over, not re-created"
    assert adopted["data"]["mode"] == "git"
    owners = {entry["manager"]: entry for entry in adopted["metadata"]["managedFields"]}
    assert "f:mode" in json.dumps(owners["moor"]["fieldsV1"])
    assert "f:mode" not in json.dumps(owners.get("kubectl-client-side-apply", {}).get("fieldsV1", {}))
    assert adopted["data"]["extra"] == "kept" and adopted["metadata"]["labels"]["team"] == "ops", "nothing else touched"
