"""Preparing rendered objects: the Sync label, and the namespace each object will live in."""

from typing import Any

import pytest

from moor.plan import DuplicateObjectError, MissingNamespaceError, prepare_desired, with_arriving_kinds
from moor.sharding.assignment import bucket_label

KINDS = {
    ("apps/v1", "Deployment"): True,
    ("v1", "ConfigMap"): True,
    ("v1", "Namespace"): False,
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): False,
}


def is_namespaced(api_version: str, kind: str) -> bool | None:
    return KINDS.get((api_version, kind))


def obj(api_version: str, kind: str, name: str, namespace: str | None = None, **metadata: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, **metadata}
    if namespace is not None:
        meta["namespace"] = namespace
    return {"apiVersion": api_version, "kind": kind, "metadata": meta}


def test_every_object_gets_the_sync_label_and_keeps_its_own_labels() -> None:
    rendered = [obj("v1", "ConfigMap", "settings", "guestbook", labels={"app": "web", "moor.dev/sync": "x.y"})]
    [prepared] = prepare_desired(rendered, "moor-system.guestbook", None, is_namespaced)
    assert prepared["metadata"]["labels"] == {
        "app": "web",
        "moor.dev/sync": "moor-system.guestbook",
        "moor.dev/shard-bucket": bucket_label("moor-system.guestbook"),
    }
    assert rendered[0]["metadata"]["labels"]["moor.dev/sync"] == "x.y"  # the input is not modified


def test_namespaced_objects_without_a_namespace_get_the_target_namespace() -> None:
    [prepared] = prepare_desired([obj("apps/v1", "Deployment", "web")], "s.n", "guestbook", is_namespaced)
    assert prepared["metadata"]["namespace"] == "guestbook"


def test_the_target_namespace_wins_over_a_namespace_in_git() -> None:
    rendered = [obj("apps/v1", "Deployment", "web", "staging")]
    [prepared] = prepare_desired(rendered, "s.n", "guestbook", is_namespaced)
    assert prepared["metadata"]["namespace"] == "guestbook"


def test_without_a_target_namespace_objects_keep_their_own() -> None:
    rendered = [obj("apps/v1", "Deployment", "web", "staging")]
    [prepared] = prepare_desired(rendered, "s.n", None, is_namespaced)
    assert prepared["metadata"]["namespace"] == "staging"


def test_a_namespaced_object_with_nowhere_to_go_is_a_clear_error() -> None:
    with pytest.raises(MissingNamespaceError, match=r"Deployment.apps web declares no namespace"):
        prepare_desired([obj("apps/v1", "Deployment", "web")], "s.n", None, is_namespaced)


def test_cluster_scoped_objects_lose_a_namespace_and_never_get_one() -> None:
    rendered = [
        obj("v1", "Namespace", "guestbook", "oops"),
        obj("rbac.authorization.k8s.io/v1", "ClusterRole", "reader"),
    ]
    prepared = prepare_desired(rendered, "s.n", "guestbook", is_namespaced)
    assert ["namespace" in p["metadata"] for p in prepared] == [False, False]


def test_objects_of_unknown_kinds_are_left_for_the_api_server_to_judge() -> None:
    rendered = [obj("example.com/v1", "Widget", "w")]
    [prepared] = prepare_desired(rendered, "s.n", "guestbook", is_namespaced)
    assert "namespace" not in prepared["metadata"]
    assert prepared["metadata"]["labels"] == {"moor.dev/sync": "s.n", "moor.dev/shard-bucket": bucket_label("s.n")}


def test_the_same_object_declared_twice_is_an_error() -> None:
    rendered = [obj("apps/v1", "Deployment", "web", "a"), obj("apps/v1", "Deployment", "web", "b")]
    with pytest.raises(DuplicateObjectError, match=r"Deployment.apps guestbook/web is declared more than once"):
        prepare_desired(rendered, "s.n", "guestbook", is_namespaced)


def test_order_is_kept() -> None:
    rendered = [obj("v1", "ConfigMap", name, "ns") for name in ("c", "a", "b")]
    assert [p["metadata"]["name"] for p in prepare_desired(rendered, "s.n", None, is_namespaced)] == ["c", "a", "b"]


def test_custom_resources_take_their_scope_from_a_crd_in_the_same_change() -> None:
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced", "names": {"kind": "Widget", "plural": "widgets"}},
    }
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    gadget = {"apiVersion": "other.com/v1", "kind": "Gadget", "metadata": {"name": "g"}}

    def cluster_knows_crds_only(api_version: str, kind: str) -> bool | None:
        return False if kind == "CustomResourceDefinition" else None

    scope = with_arriving_kinds(cluster_knows_crds_only, [crd, widget, gadget])
    assert scope("example.com/v1", "Widget") is True
    assert scope("other.com/v1", "Gadget") is None, "an unknown kind stays unknown"
    prepared = prepare_desired([crd, widget], "ns.app", None, scope, "apps")
    assert prepared[1]["metadata"]["namespace"] == "apps"
