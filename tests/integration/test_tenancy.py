"""Multi-tenancy: a Sync that acts as a ServiceAccount can do exactly what that ServiceAccount may do.

Each test gives its namespace a ServiceAccount `tenant` with a Role, as a platform team would. The last
tests run their own control plane and a controller started the way a multi-tenant platform runs it
(`--default-service-account tenant --no-cross-namespace-refs`, a small `--max-artifact-size`).
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from moor import binaries
from moor.devcluster import ClusterInfo
from tests.support.cluster_fixtures import Kubectl, namespace_name
from tests.support.git_fixtures import GitWorkspace
from tests.support.moor_fixtures import ControllerProcess, Moor, config_map, free_port, manifest, metric_value

RBAC = "rbac.authorization.k8s.io"
ALL_VERBS = ["get", "list", "watch", "create", "update", "patch", "delete"]


def give_tenant(moor: Moor, rules: list[dict[str, Any]]) -> None:
    """The ServiceAccount `tenant` in the test's namespace, bound to a Role with `rules`."""
    moor.apply(
        manifest(
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "tenant"}},
            {"apiVersion": f"{RBAC}/v1", "kind": "Role", "metadata": {"name": "tenant"}, "rules": rules},
            {
                "apiVersion": f"{RBAC}/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "tenant"},
                "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "tenant"},
                "subjects": [{"kind": "ServiceAccount", "name": "tenant", "namespace": moor.namespace}],
            },
        )
    )


CONFIG_MAPS_ONLY = [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ALL_VERBS}]


def escalation(namespace: str) -> dict[str, Any]:
    """What a tenant must never be able to apply: itself bound to cluster-admin."""
    return {
        "apiVersion": f"{RBAC}/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": f"escalate-{namespace}"},
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "tenant", "namespace": namespace}],
    }


def names(moor: Moor, resource: str, namespace: str | None = None) -> set[str]:
    listing = moor.kubectl("get", resource, "-n", namespace or moor.namespace, "-o", "json").stdout
    return {item["metadata"]["name"] for item in json.loads(listing)["items"]}


@pytest.fixture
def other_namespace(moor: Moor) -> Iterator[str]:
    """A second namespace, where the tenant has no rights at all."""
    name = namespace_name(f"other-{moor.namespace}")
    moor.kubectl("create", "namespace", name)
    yield name
    moor.kubectl("delete", "namespace", name, "--wait=false", check=False)


def test_a_tenant_sync_applies_and_prunes_what_its_role_allows(moor: Moor, git_repo: GitWorkspace) -> None:
    give_tenant(moor, CONFIG_MAPS_ONLY)
    git_repo.write("a.yaml", manifest(config_map("a", {"v": "1"})))
    git_repo.write("b.yaml", manifest(config_map("b", {"v": "1"})))
    git_repo.commit("two maps")
    git_repo.push()
    moor.source_and_sync(git_repo, sync_spec="serviceAccountName: tenant")
    moor.wait_condition("sync", "app", "True")
    assert {"a", "b"} <= names(moor, "configmaps")

    git_repo.remove("b.yaml")
    git_repo.commit("drop b")
    git_repo.push()
    assert moor.reconcile().returncode == 0
    assert "b" not in names(moor, "configmaps"), "pruned as the tenant, whose Role may delete ConfigMaps"


def test_a_cluster_role_binding_in_git_is_refused_and_nothing_is_written(moor: Moor, git_repo: GitWorkspace) -> None:
    give_tenant(moor, CONFIG_MAPS_ONLY)
    binding = escalation(moor.namespace)
    git_repo.write("app.yaml", manifest(config_map("innocent", {"v": "1"}), binding))
    git_repo.commit("escalate")
    git_repo.push()
    moor.source_and_sync(git_repo, sync_spec="serviceAccountName: tenant")

    condition = moor.wait_condition("sync", "app", "False", reason="AccessDenied")
    message = condition["message"]
    assert f"ClusterRoleBinding.{RBAC} {binding['metadata']['name']}" in message
    assert "forbidden" in message
    assert f"ServiceAccount {moor.namespace}/tenant" in message
    assert "nothing was written" in message
    assert moor.kubectl("get", "clusterrolebinding", binding["metadata"]["name"], check=False).returncode != 0
    assert "innocent" not in names(moor, "configmaps")


def test_an_object_in_another_namespace_is_refused(moor: Moor, git_repo: GitWorkspace, other_namespace: str) -> None:
    give_tenant(moor, CONFIG_MAPS_ONLY)
    elsewhere = config_map("planted", {"v": "1"}, namespace=other_namespace)
    git_repo.write("app.yaml", manifest(config_map("mine", {"v": "1"}), elsewhere))
    git_repo.commit("reach into another namespace")
    git_repo.push()
    moor.source_and_sync(git_repo, sync_spec="serviceAccountName: tenant")

    message = moor.wait_condition("sync", "app", "False", reason="AccessDenied")["message"]
    assert f"ConfigMap {other_namespace}/planted" in message
    assert f"may not get configmaps in namespace {other_namespace}" in message
    assert "planted" not in names(moor, "configmaps", other_namespace)
    assert "mine" not in names(moor, "configmaps")


def test_a_write_the_role_forbids_is_caught_by_the_dry_run(moor: Moor, git_repo: GitWorkspace) -> None:
    """The tenant may read Secrets but not write them: the dry run, sent as the tenant, refuses the set."""
    give_tenant(
        moor,
        [*CONFIG_MAPS_ONLY, {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"]}],
    )
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "token"}, "stringData": {"k": "v"}}
    git_repo.write("app.yaml", manifest(config_map("harmless", {"v": "1"}), secret))
    git_repo.commit("a secret the tenant may not write")
    git_repo.push()
    moor.source_and_sync(git_repo, sync_spec="serviceAccountName: tenant")

    message = moor.wait_condition("sync", "app", "False", reason="ValidationFailed")["message"]
    assert f"Secret {moor.namespace}/token" in message
    assert "forbidden" in message and f"system:serviceaccount:{moor.namespace}:tenant" in message
    assert "harmless" not in names(moor, "configmaps"), "nothing is written when the dry run refuses one object"
    assert "token" not in names(moor, "secrets")


def test_granting_the_missing_right_lets_the_sync_through(moor: Moor, git_repo: GitWorkspace) -> None:
    """A denial is remembered for a few seconds only: fixing the Role is enough, no restart needed."""
    give_tenant(moor, [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ALL_VERBS}])
    git_repo.write("app.yaml", manifest(config_map("late", {"v": "1"})))
    git_repo.commit("a map")
    git_repo.push()
    moor.source_and_sync(git_repo, sync_spec="serviceAccountName: tenant")
    message = moor.wait_condition("sync", "app", "False", reason="AccessDenied")["message"]
    assert f"may not get configmaps in namespace {moor.namespace}" in message

    give_tenant(moor, CONFIG_MAPS_ONLY)
    moor.wait_condition("sync", "app", "True", timeout=90)
    assert "late" in names(moor, "configmaps")


# -- a controller run for tenants: its own control plane ------------------------------------------------


@pytest.fixture(scope="module")
def hardened_controller(
    private_cluster: ClusterInfo, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControllerProcess]:
    port = free_port()
    controller = ControllerProcess(
        private_cluster.kubeconfig,
        tmp_path_factory.mktemp("hardened-controller"),
        "--default-service-account",
        "tenant",
        "--no-cross-namespace-refs",
        "--max-artifact-size",
        "256Ki",
        "--metrics-port",
        str(port),
    )
    controller.metrics_url = f"http://127.0.0.1:{port}/metrics"
    controller.start()
    yield controller
    controller.stop()


@pytest.fixture
def tenant(
    hardened_controller: ControllerProcess, private_cluster: ClusterInfo, request: pytest.FixtureRequest
) -> Iterator[Moor]:
    """A namespace of the hardened controller's cluster, its ServiceAccount `tenant` allowed ConfigMaps only."""
    kubectl = Kubectl(binaries.locate("kubectl"), private_cluster.kubeconfig)
    namespace = namespace_name(request.node.name)
    kubectl("create", "namespace", namespace)
    moor = Moor(kubectl, private_cluster.kubeconfig, namespace)
    give_tenant(moor, CONFIG_MAPS_ONLY)
    yield moor
    kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def test_a_sync_without_service_account_acts_as_the_default_one(tenant: Moor, git_repo: GitWorkspace) -> None:
    binding = escalation(tenant.namespace)
    git_repo.write("map.yaml", manifest(config_map("settings", {"v": "1"})))
    git_repo.write("binding.yaml", manifest(binding))
    git_repo.commit("a map and an escalation")
    git_repo.push()
    tenant.source_and_sync(git_repo)  # no serviceAccountName

    message = tenant.wait_condition("sync", "app", "False", reason="AccessDenied")["message"]
    assert f"ServiceAccount {tenant.namespace}/tenant" in message and "forbidden" in message
    assert f"ClusterRoleBinding.{RBAC} {binding['metadata']['name']}" in message
    assert tenant.kubectl("get", "clusterrolebinding", binding["metadata"]["name"], check=False).returncode != 0
    assert "settings" not in names(tenant, "configmaps")

    git_repo.remove("binding.yaml")
    git_repo.commit("only the map")
    git_repo.push()
    assert tenant.reconcile().returncode == 0
    assert "settings" in names(tenant, "configmaps")


def api_requests(controller: ControllerProcess) -> dict[str, float]:
    with urllib.request.urlopen(controller.metrics_url, timeout=10) as response:
        text = response.read().decode()
    verbs = ("get", "list", "watch", "create", "update", "patch", "apply", "dry-run", "delete")
    return {verb: metric_value(text, "moor_api_requests_total", verb=verb) for verb in verbs}


def settled_requests(controller: ControllerProcess, quiet: float = 2.0, within: float = 60.0) -> dict[str, float]:
    """The controller's request counts once it has sent none for `quiet` seconds: the passes that earlier
    tests' Syncs (or this one's first apply) set off on the shared controller have ended."""
    deadline = time.monotonic() + within
    counts = api_requests(controller)
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = api_requests(controller)
        if now == counts:
            return now
        counts = now
    raise AssertionError(f"the controller kept sending requests for {within:.0f}s: {counts}")


def test_a_tenant_pass_where_nothing_changed_sends_no_request_per_object(
    tenant: Moor, git_repo: GitWorkspace, hardened_controller: ControllerProcess
) -> None:
    """Reads are checked per kind and namespace, cached: forty objects cost no more than one."""
    git_repo.write("maps.yaml", manifest(*(config_map(f"map-{n:02d}", {"n": str(n)}) for n in range(40))))
    git_repo.commit("forty maps")
    git_repo.push()
    tenant.source_and_sync(git_repo)
    tenant.wait_condition("sync", "app", "True")

    # The first pass after an apply may still confirm a write by dry run and finish its bookkeeping
    # (the healthy snapshot, an Event): the passes measured are the ones after it.
    assert tenant.reconcile(with_source=False).returncode == 0
    before = settled_requests(hardened_controller)
    for _ in range(2):
        assert tenant.reconcile(with_source=False).returncode == 0
    after = api_requests(hardened_controller)
    sent = {verb: after[verb] - before[verb] for verb in before if after[verb] != before[verb]}
    assert "apply" not in sent and "dry-run" not in sent, sent
    # Each pass reads its Sync and patches its status, and may renew an expired access review or write
    # an Event: a handful, never one per object (40 objects checked one by one: at least 80 requests).
    assert sum(sent.values()) < 20, f"two passes over 40 unchanged objects sent {sent}"


def test_a_source_in_another_namespace_is_refused(tenant: Moor, git_repo: GitWorkspace) -> None:
    git_repo.write("map.yaml", manifest(config_map("settings", {"v": "1"})))
    git_repo.commit("a map")
    git_repo.push()
    tenant.source_and_sync(git_repo, name="shared")  # a GitRepository that would be usable from this namespace
    tenant.wait_condition("sync", "shared", "True")
    thief = Moor(tenant.kubectl, tenant.kubeconfig, namespace_name(f"thief-{tenant.namespace}"))
    thief.kubectl("create", "namespace", thief.namespace)
    try:
        give_tenant(thief, CONFIG_MAPS_ONLY)
        thief.apply(
            manifest(
                {
                    "apiVersion": "moor.dev/v1",
                    "kind": "Sync",
                    "metadata": {"name": "borrowed"},
                    "spec": {
                        "sourceRef": {"kind": "GitRepository", "name": "shared", "namespace": tenant.namespace},
                        "path": ".",
                        "dependsOn": [{"name": "shared", "namespace": tenant.namespace}],
                        "retryInterval": "2s",
                    },
                }
            )
        )
        condition = thief.wait_condition("sync", "borrowed", "False", reason="AccessDenied")
        message = condition["message"]
        assert f"spec.sourceRef names GitRepository {tenant.namespace}/shared" in message
        assert f"spec.dependsOn names Sync {tenant.namespace}/shared" in message
        assert "--no-cross-namespace-refs" in message
        stalled = thief.condition("sync", "borrowed", "Stalled")
        assert stalled is not None and stalled["status"] == "True" and stalled["reason"] == "AccessDenied"
        assert "settings" not in names(thief, "configmaps")
    finally:
        thief.kubectl("delete", "namespace", thief.namespace, "--wait=false", check=False)


def test_an_oversized_revision_is_refused_before_checkout(
    tenant: Moor, git_repo: GitWorkspace, hardened_controller: ControllerProcess
) -> None:
    git_repo.write("map.yaml", manifest(config_map("settings", {"v": "1"})))
    git_repo.write("blob.bin", "0" * (300 * 1024))  # compresses to almost nothing: the tree check catches it
    commit = git_repo.commit("a map and 300 KiB of padding")
    git_repo.push()
    tenant.source_and_sync(git_repo)

    condition = tenant.wait_condition("gitrepository", "app", "False")
    assert commit in condition["message"]
    assert "is too large: its files take more than 256 KiB" in condition["message"]
    assert "--max-artifact-size" in condition["message"]
    sync = tenant.condition("sync", "app")
    assert sync is not None and sync["status"] != "True"
    assert "settings" not in names(tenant, "configmaps")
    stored = [path.name for path in (hardened_controller.directory / "artifacts").iterdir()]
    assert not any(commit in name for name in stored), "a refused revision is never stored"
