"""A Sync's resource tree: managed objects, the cluster's children under them by ownerReferences, drift badges."""

from __future__ import annotations

from moor.objects import ObjectRef
from moor.web.ui.resource_tree import build_tree, worst


def obj(kind: str, name: str, uid: str, owner: str = "", api_version: str = "v1", **extra: object) -> dict:
    metadata: dict = {"name": name, "namespace": "team", "uid": uid}
    if owner:
        metadata["ownerReferences"] = [{"uid": owner}]
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, **extra}


def test_children_hang_under_their_owner_and_drift_is_marked() -> None:
    deployment = obj("Deployment", "web", "d1", api_version="apps/v1", spec={"replicas": 1}, status={})
    config = obj("ConfigMap", "settings", "c1")
    sync = {
        "status": {
            "inventory": [
                {"group": "apps", "version": "v1", "kind": "Deployment", "namespace": "team", "name": "web"},
                {"group": "", "version": "v1", "kind": "ConfigMap", "namespace": "team", "name": "settings"},
                {"group": "", "version": "v1", "kind": "ConfigMap", "namespace": "team", "name": "gone"},
            ],
            "drift": [
                {
                    "group": "",
                    "kind": "ConfigMap",
                    "namespace": "team",
                    "name": "settings",
                    "paths": ["/data/color"],
                    "manager": "kubectl-patch",
                    "at": "2026-01-01T00:00:00Z",
                }
            ],
        }
    }
    live = {("apps", "Deployment", "team", "web"): deployment, ("", "ConfigMap", "team", "settings"): config}
    children = [
        obj("ReplicaSet", "web-1", "r1", owner="d1", api_version="apps/v1"),
        obj("Pod", "web-1-a", "p1", owner="r1"),
        obj("Pod", "stranger", "p2", owner="zz"),
    ]
    tree = build_tree(sync, lambda ref: live.get(ref.identity), children)
    web, settings, gone = tree
    assert [n.ref.kind for n in web.walk()] == ["Deployment", "ReplicaSet", "Pod"]
    assert web.managed and not web.children[0].managed
    assert settings.drift is not None and settings.drift.paths == ("/data/color",)
    assert settings.drift.manager == "kubectl-patch"
    assert gone.health == "Missing" and gone.ref == ObjectRef("", "v1", "ConfigMap", "team", "gone")
    assert worst(tree) == "Missing"
