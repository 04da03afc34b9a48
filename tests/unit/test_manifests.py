"""The example app and the in-cluster install, rendered by the real kustomize."""

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from moor import binaries
from moor.resources import GitRepositorySpec, SyncSpec

ROOT = Path(__file__).resolve().parents[2]
GUESTBOOK = ROOT / "examples" / "guestbook"
ENVIRONMENTS = {"dev": 1, "staging": 2, "production": 3}


def kustomize_build(directory: Path) -> list[dict[str, Any]]:
    kustomize = binaries.locate("kustomize")
    result = subprocess.run(
        [str(kustomize), "build", str(directory)], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return [document for document in yaml.safe_load_all(result.stdout) if document]


def by_kind(objects: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    kinds: dict[str, list[dict[str, Any]]] = {}
    for obj in objects:
        kinds.setdefault(obj["kind"], []).append(obj)
    return kinds


def test_the_base_sets_no_namespace() -> None:
    objects = kustomize_build(GUESTBOOK / "base")
    assert sorted((obj["kind"], obj["metadata"]["name"]) for obj in objects) == [
        ("ConfigMap", "web-config"),
        ("Deployment", "web"),
        ("Service", "web"),
    ]
    assert all("namespace" not in obj["metadata"] for obj in objects)
    [deployment] = [obj for obj in objects if obj["kind"] == "Deployment"]
    assert deployment["spec"]["replicas"] == 2


@pytest.mark.parametrize(("environment", "replicas"), ENVIRONMENTS.items())
def test_each_overlay_renders_its_own_namespace_and_settings(environment: str, replicas: int) -> None:
    namespace = f"guestbook-{environment}"
    kinds = by_kind(kustomize_build(GUESTBOOK / "overlays" / environment))
    assert sorted(kinds) == ["ConfigMap", "Deployment", "Namespace", "Service"]
    assert [obj["metadata"]["name"] for obj in kinds["Namespace"]] == [namespace]
    for kind in ("ConfigMap", "Deployment", "Service"):
        assert [obj["metadata"]["namespace"] for obj in kinds[kind]] == [namespace]

    [deployment] = kinds["Deployment"]
    [config] = kinds["ConfigMap"]
    [service] = kinds["Service"]
    assert deployment["spec"]["replicas"] == replicas
    assert config["data"]["GUESTBOOK_ENVIRONMENT"] == environment
    assert environment in config["data"]["PODINFO_UI_MESSAGE"]

    pod = deployment["spec"]["template"]
    [container] = pod["spec"]["containers"]
    assert container["envFrom"] == [{"configMapRef": {"name": config["metadata"]["name"]}}]
    assert container["readinessProbe"]["httpGet"]["port"] == "http"
    assert container["livenessProbe"]["httpGet"]["port"] == "http"
    assert set(container["resources"]) == {"requests", "limits"}
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod["metadata"]["labels"].items()
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()


def test_production_gets_more_resources_than_dev() -> None:
    def memory_limit(environment: str) -> str:
        [deployment] = by_kind(kustomize_build(GUESTBOOK / "overlays" / environment))["Deployment"]
        return str(deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"])

    assert (memory_limit("dev"), memory_limit("production")) == ("128Mi", "256Mi")


def test_the_example_sync_pair_reads_as_valid_specs() -> None:
    documents = list(yaml.safe_load_all((ROOT / "examples" / "sync.yaml").read_text()))
    [source] = [doc for doc in documents if doc["kind"] == "GitRepository"]
    [sync] = [doc for doc in documents if doc["kind"] == "Sync"]
    source_spec = GitRepositorySpec.from_object(source)
    sync_spec = SyncSpec.from_object(sync)
    assert source_spec.ref.branch == "main"
    assert sync_spec.source_ref.name == source["metadata"]["name"]
    assert sync_spec.source_ref.namespace == source["metadata"]["namespace"]
    assert (GUESTBOOK.parent / sync_spec.path / "kustomization.yaml").is_file()


def test_the_controller_manifests_install_the_controller() -> None:
    kinds = by_kind(kustomize_build(ROOT / "src" / "moor" / "manifests"))
    assert sorted(kinds) == [
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "Namespace",
        "Role",
        "RoleBinding",
        "ServiceAccount",
    ]
    assert [obj["metadata"]["name"] for obj in kinds["Namespace"]] == ["moor-system"]
    [deployment] = kinds["Deployment"]
    assert deployment["metadata"]["namespace"] == "moor-system"
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "moor"
    assert pod["securityContext"]["runAsNonRoot"] is True
    [container] = pod["containers"]
    assert container["image"] == "moor:0.1.0"
    assert container["command"] + container["args"] == ["moor", "run"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert {port["name"]: port["containerPort"] for port in container["ports"]} == {"healthz": 9440, "metrics": 8080}
    assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "healthz"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "healthz"}
    assert set(container["resources"]) == {"requests", "limits"}
    mounted = {mount["mountPath"] for mount in container["volumeMounts"]}
    assert {"/tmp", "/home/moor", "/var/cache/moor"} <= mounted


def test_the_controller_role_is_least_privilege_and_cluster_admin_is_a_separate_binding() -> None:
    kinds = by_kind(kustomize_build(ROOT / "src" / "moor" / "manifests"))
    [role] = kinds["ClusterRole"]
    assert role["metadata"]["name"] == "moor-controller"
    for rule in role["rules"]:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"], rule
        if "delete" in rule["verbs"]:  # only its history records and its own rollback snapshots
            assert set(rule["resources"]) <= {"syncrecords", "secrets"}, rule
    granted = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert ("moor.dev", "syncs/status", "patch") in granted
    assert ("moor.dev", "gitrepositories", "watch") in granted
    assert ("", "secrets", "watch") in granted
    assert ("moor.dev", "syncs", "delete") not in granted
    assert ("", "serviceaccounts", "impersonate") in granted
    assert ("", "events", "create") in granted

    bindings = {obj["metadata"]["name"]: obj for obj in kinds["ClusterRoleBinding"]}
    assert bindings["moor-apply"]["roleRef"]["name"] == "cluster-admin"
    assert bindings["moor-controller"]["roleRef"]["name"] == "moor-controller"
    for binding in bindings.values():
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "moor", "namespace": "moor-system"}]
    [leases] = kinds["Role"]
    assert leases["metadata"]["namespace"] == "moor-system"
    assert leases["rules"][0]["resources"] == ["leases"]
