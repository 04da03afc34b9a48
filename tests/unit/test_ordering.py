"""Apply order puts what others depend on first; deletion order is its exact reverse."""

from __future__ import annotations

from typing import Any

from moor.objects import ObjectRef
from moor.ordering import UNLISTED, apply_rank, in_apply_order, in_deletion_order


def obj(api_version: str, kind: str, name: str, namespace: str = "") -> dict[str, Any]:
    metadata = {"name": name} | ({"namespace": namespace} if namespace else {})
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata}


MIXED = [
    obj("example.com/v1", "Widget", "w1", "shop"),
    obj("apps/v1", "Deployment", "web", "shop"),
    obj("batch/v1", "CronJob", "nightly", "shop"),
    obj("v1", "Service", "web", "shop"),
    obj("v1", "PersistentVolumeClaim", "data", "shop"),
    obj("v1", "ConfigMap", "settings", "shop"),
    obj("v1", "Secret", "token", "shop"),
    obj("rbac.authorization.k8s.io/v1", "RoleBinding", "web", "shop"),
    obj("rbac.authorization.k8s.io/v1", "Role", "web", "shop"),
    obj("v1", "ServiceAccount", "web", "shop"),
    obj("storage.k8s.io/v1", "StorageClass", "fast"),
    obj("scheduling.k8s.io/v1", "PriorityClass", "high"),
    obj("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "reader"),
    obj("rbac.authorization.k8s.io/v1", "ClusterRole", "reader"),
    obj("apiextensions.k8s.io/v1", "CustomResourceDefinition", "widgets.example.com"),
    obj("v1", "Namespace", "shop"),
    obj("example.com/v1", "Widget", "w2", "shop"),
]


def kinds(items: list[dict[str, Any]]) -> list[str]:
    return [item["kind"] for item in items]


def test_apply_order_puts_namespaces_and_crds_first_and_workloads_after_custom_resources() -> None:
    assert kinds(in_apply_order(MIXED)) == [
        "Namespace",
        "CustomResourceDefinition",
        "PriorityClass",
        "StorageClass",
        "ClusterRole",
        "ClusterRoleBinding",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "Secret",
        "ConfigMap",
        "PersistentVolumeClaim",
        "Service",
        "Widget",
        "Widget",
        "Deployment",
        "CronJob",
    ]


def test_objects_of_one_rank_keep_their_order() -> None:
    widgets = [item["metadata"]["name"] for item in in_apply_order(MIXED) if item["kind"] == "Widget"]
    assert widgets == ["w1", "w2"]


def test_deletion_order_is_the_reverse_of_apply_order() -> None:
    deleted = in_deletion_order(MIXED)
    assert deleted == in_apply_order(MIXED)[::-1]
    assert kinds(deleted)[2:4] == ["Widget", "Widget"]  # workloads, then custom resources, before their CRD
    assert kinds(deleted)[-2:] == ["CustomResourceDefinition", "Namespace"]  # contents before the Namespace


def test_refs_from_an_inventory_sort_the_same_way() -> None:
    refs = [ObjectRef.of(item) for item in MIXED]
    assert in_deletion_order(refs) == [ObjectRef.of(item) for item in in_deletion_order(MIXED)]


def test_a_kind_is_known_by_its_group_too() -> None:
    assert apply_rank("", "Deployment") == UNLISTED < apply_rank("apps", "Deployment")


def test_inputs_are_not_changed() -> None:
    before = list(MIXED)
    in_apply_order(MIXED)
    in_deletion_order(MIXED)
    assert before == MIXED


def test_webhooks_and_api_services_go_after_workloads() -> None:
    objects = [
        obj("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", "m"),
        obj("example.com/v1", "Widget", "w", "ns"),
        obj("apps/v1", "Deployment", "web", "ns"),
        obj("apiregistration.k8s.io/v1", "APIService", "v1.example.com"),
    ]
    assert kinds(in_apply_order(objects)) == ["Widget", "Deployment", "APIService", "MutatingWebhookConfiguration"]
    assert kinds(in_deletion_order(objects))[0] == "MutatingWebhookConfiguration"
