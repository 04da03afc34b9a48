"""The GitOps engine end to end: Git -> GitRepository -> Sync -> objects in a real cluster."""

from __future__ import annotations

import json

from tests.support.git_fixtures import GitWorkspace
from tests.support.moor_fixtures import Moor, config_map, deployment, manifest


def test_a_commit_is_applied_and_reported_ready(moor: Moor, git_repo: GitWorkspace) -> None:
    git_repo.write("app/config.yaml", manifest(config_map("settings", {"color": "blue"})))
    git_repo.write("app/web.yaml", manifest(deployment("web", replicas=2)))
    commit = git_repo.commit("first version")
    git_repo.push()

    moor.source_and_sync(git_repo, "./app")
    moor.wait_condition("sync", "app", "True", revision=commit)

    assert moor.get("configmap", "settings")["data"] == {"color": "blue"}
    web = moor.get("deployment", "web")
    assert web["metadata"]["labels"]["moor.dev/sync"] == f"{moor.namespace}.app"
    assert web["status"].get("availableReplicas") == 2
    status = moor.get("sync", "app")["status"]
    assert status["lastAppliedRevision"] == f"main@sha1:{commit}"
    assert {(entry["kind"], entry["name"]) for entry in status["inventory"]} == {
        ("ConfigMap", "settings"),
        ("Deployment", "web"),
    }
    assert status["history"][0]["result"] == "Succeeded"
    assert status["history"][0]["applied"] == 2
    source = moor.get("gitrepository", "app")["status"]["artifact"]
    assert source["revision"] == f"main@sha1:{commit}"
    assert source["message"].strip() == "first version"
    events = moor.kubectl("get", "events", "-n", moor.namespace, "-o", "json").stdout
    assert any(
        event["reason"] == "Applied" and event["involvedObject"]["name"] == "app"
        for event in json.loads(events)["items"]
    )


def test_a_new_commit_updates_and_prunes_what_left_git(moor: Moor, git_repo: GitWorkspace) -> None:
    git_repo.write("one.yaml", manifest(config_map("one", {"v": "1"})))
    git_repo.write("two.yaml", manifest(config_map("two", {"v": "1"})))
    git_repo.write("kept.yaml", manifest(config_map("kept", {"v": "1"}, annotations={"moor.dev/prune": "disabled"})))
    git_repo.commit("three maps")
    git_repo.push()
    moor.source_and_sync(git_repo)
    moor.wait_condition("sync", "app", "True")

    git_repo.write("one.yaml", manifest(config_map("one", {"v": "2"})))
    git_repo.remove("two.yaml")
    git_repo.remove("kept.yaml")
    second = git_repo.commit("change one, drop two and kept")
    git_repo.push()
    result = moor.reconcile()
    assert result.returncode == 0, result.stderr

    assert moor.get("configmap", "one")["data"] == {"v": "2"}
    assert not moor.exists("configmap", "two")
    assert moor.exists("configmap", "kept"), "an object with moor.dev/prune: disabled is never deleted"
    status = moor.get("sync", "app")["status"]
    assert status["lastAppliedRevision"].endswith(second)
    assert [entry["name"] for entry in status["inventory"]] == ["one"]


def test_objects_moor_never_applied_are_never_pruned(moor: Moor, git_repo: GitWorkspace) -> None:
    moor.kubectl("create", "configmap", "hand-made", "-n", moor.namespace, "--from-literal=a=b")
    git_repo.write("a.yaml", manifest(config_map("a", {"v": "1"})))
    git_repo.commit("a")
    git_repo.push()
    moor.source_and_sync(git_repo)
    moor.wait_condition("sync", "app", "True")
    git_repo.write("a.yaml", manifest(config_map("b", {"v": "1"})))
    git_repo.commit("rename a to b")
    git_repo.push()
    assert moor.reconcile().returncode == 0
    assert moor.exists("configmap", "b") and not moor.exists("configmap", "a")
    assert moor.exists("configmap", "hand-made")


def test_a_rejected_object_stops_the_whole_set(moor: Moor, git_repo: GitWorkspace) -> None:
    bad = deployment("broken")
    bad["spec"]["replicas"] = -3  # the API server refuses this (422)
    git_repo.write("good.yaml", manifest(config_map("good", {"v": "1"}), deployment("fine")))
    git_repo.write("bad.yaml", manifest(bad))
    git_repo.commit("one bad object")
    git_repo.push()
    moor.source_and_sync(git_repo)

    condition = moor.wait_condition("sync", "app", "False", reason="ValidationFailed")
    assert "Deployment.apps" in condition["message"] and "broken" in condition["message"]
    assert "replicas" in condition["message"]
    assert not moor.exists("configmap", "good"), "nothing is written when one object is rejected"
    assert not moor.exists("deployment", "fine")


def test_misspelled_fields_are_named_and_nothing_is_written(moor: Moor, git_repo: GitWorkspace) -> None:
    typo = deployment("typo")
    typo["spec"]["replica"] = 2  # not `replicas`
    source = {
        "apiVersion": "moor.dev/v1",
        "kind": "GitRepository",
        "metadata": {"name": "other"},
        "spec": {"url": "https://git.example.com/other.git", "intervall": "1m"},  # a custom resource's typo
    }
    git_repo.write("all.yaml", manifest(config_map("fine", {"v": "1"}), typo, source))
    git_repo.commit("two typos")
    git_repo.push()
    moor.source_and_sync(git_repo)

    condition = moor.wait_condition("sync", "app", "False", reason="ValidationFailed")
    assert "Deployment.apps" in condition["message"] and ".spec.replica: field not declared" in condition["message"]
    assert "GitRepository.moor.dev" in condition["message"] and ".spec.intervall" in condition["message"]
    assert not moor.exists("configmap", "fine")
    assert not moor.exists("deployment", "typo")
    assert not moor.exists("gitrepository", "other")


def test_unknown_kind_is_named_and_nothing_is_written(moor: Moor, git_repo: GitWorkspace) -> None:
    unknown = {"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g"}}
    git_repo.write("all.yaml", manifest(config_map("c", {"v": "1"}), unknown))
    git_repo.commit("unknown kind")
    git_repo.push()
    moor.source_and_sync(git_repo)
    condition = moor.wait_condition("sync", "app", "False", reason="ValidationFailed")
    assert "Gadget" in condition["message"] and "example.com/v1" in condition["message"]
    assert not moor.exists("configmap", "c")


def test_malformed_yaml_names_the_file(moor: Moor, git_repo: GitWorkspace) -> None:
    git_repo.write("ok.yaml", manifest(config_map("c", {"v": "1"})))
    git_repo.write("broken.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x\n")
    git_repo.commit("broken yaml")
    git_repo.push()
    moor.source_and_sync(git_repo)
    condition = moor.wait_condition("sync", "app", "False", reason="BuildFailed")
    assert "broken.yaml" in condition["message"]
    assert not moor.exists("configmap", "c")


def test_crd_and_its_custom_resources_in_one_commit(moor: Moor, git_repo: GitWorkspace) -> None:
    group = f"{moor.namespace}.example.com"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {"spec": {"type": "object", "properties": {"size": {"type": "integer"}}}},
                        }
                    },
                }
            ],
        },
    }
    widget = {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"size": 3}}
    git_repo.write("crd.yaml", manifest(crd))
    git_repo.write("widget.yaml", manifest(widget))
    git_repo.commit("crd and cr")
    git_repo.push()
    moor.source_and_sync(git_repo, sync_spec=f"targetNamespace: {moor.namespace}")
    try:
        moor.wait_condition("sync", "app", "True")
        assert moor.get(f"widgets.{group}", "w1")["spec"] == {"size": 3}
        history = moor.get("sync", "app")["status"]["history"]
        assert [entry["result"] for entry in history] == ["Succeeded"], "applied in one pass, no failed attempt"
    finally:
        moor.kubectl("delete", "crd", f"widgets.{group}", "--wait=false", check=False)


def test_a_namespace_and_its_objects_in_one_commit(moor: Moor, git_repo: GitWorkspace) -> None:
    target = f"{moor.namespace}-apps"
    namespace_object = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": target}}
    in_it = config_map("inside", {"v": "1"}, namespace=target)
    git_repo.write("ns.yaml", manifest(namespace_object, in_it))
    git_repo.commit("namespace and content")
    git_repo.push()
    moor.source_and_sync(git_repo)
    try:
        moor.wait_condition("sync", "app", "True")
        assert moor.get("configmap", "inside", namespace=target)["data"] == {"v": "1"}
    finally:
        moor.kubectl("delete", "namespace", target, "--wait=false", check=False)


def test_empty_render_refuses_to_prune_unless_allowed(moor: Moor, git_repo: GitWorkspace) -> None:
    git_repo.write("app/a.yaml", manifest(config_map("a", {"v": "1"})))
    git_repo.commit("one object")
    git_repo.push()
    moor.source_and_sync(git_repo, "./app")
    moor.wait_condition("sync", "app", "True")

    git_repo.remove("app/a.yaml")
    git_repo.write("app/README.md", "nothing here any more\n")
    git_repo.commit("empty the path")
    git_repo.push()
    assert moor.reconcile().returncode == 1
    condition = moor.condition("sync", "app")
    assert "renders no objects" in condition["message"] and "allowEmpty" in condition["message"]
    assert moor.exists("configmap", "a")

    moor.kubectl("patch", "sync", "app", "-n", moor.namespace, "--type=merge", "-p", '{"spec":{"allowEmpty":true}}')
    assert moor.reconcile(with_source=False).returncode == 0
    assert not moor.exists("configmap", "a")


def test_unhealthy_workload_makes_the_sync_not_ready(moor: Moor, git_repo: GitWorkspace) -> None:
    git_repo.write("web.yaml", manifest(deployment("stuck", never_ready=True)))
    git_repo.commit("a deployment whose pods never become ready")
    git_repo.push()
    moor.source_and_sync(git_repo, sync_spec="timeout: 5s")
    condition = moor.wait_condition("sync", "app", "False", reason="HealthCheckFailed")
    assert "stuck" in condition["message"]
    assert moor.exists("deployment", "stuck"), "the revision was applied; only its health failed"


def test_deleting_a_sync_with_prune_removes_its_objects(moor: Moor, git_repo: GitWorkspace) -> None:
    git_repo.write("a.yaml", manifest(config_map("a", {"v": "1"})))
    git_repo.commit("a")
    git_repo.push()
    moor.source_and_sync(git_repo)
    moor.wait_condition("sync", "app", "True")
    moor.kubectl("delete", "sync", "app", "-n", moor.namespace, "--timeout=60s")
    assert not moor.exists("sync", "app")
    assert not moor.exists("configmap", "a")


def test_deleting_a_sync_without_prune_leaves_its_objects(moor: Moor, git_repo: GitWorkspace) -> None:
    git_repo.write("a.yaml", manifest(config_map("a", {"v": "1"})))
    git_repo.commit("a")
    git_repo.push()
    moor.source_and_sync(git_repo, sync_spec="prune: false")
    moor.wait_condition("sync", "app", "True")
    moor.kubectl("delete", "sync", "app", "-n", moor.namespace, "--timeout=60s")
    assert moor.exists("configmap", "a")


def test_depends_on_waits_for_the_dependency(moor: Moor, git_repo: GitWorkspace) -> None:
    git_repo.write("infra/a.yaml", manifest(config_map("infra", {"v": "1"})))
    git_repo.write("app/b.yaml", manifest(config_map("app", {"v": "1"})))
    git_repo.commit("two paths")
    git_repo.push()
    moor.source_and_sync(git_repo, "./app", sync_spec="dependsOn: [{name: infra}]")
    condition = moor.wait_condition("sync", "app", "False", reason="DependencyNotReady")
    assert "infra" in condition["message"]
    assert not moor.exists("configmap", "app")

    moor.apply("""
        apiVersion: moor.dev/v1
        kind: Sync
        metadata: {name: infra}
        spec:
          sourceRef: {kind: GitRepository, name: app}
          path: ./infra
    """)
    moor.wait_condition("sync", "infra", "True")
    moor.wait_condition("sync", "app", "True", timeout=30)
    assert moor.exists("configmap", "app")


def test_suspend_stops_applying_until_resumed(moor: Moor, git_repo: GitWorkspace) -> None:
    git_repo.write("a.yaml", manifest(config_map("a", {"v": "1"})))
    git_repo.commit("v1")
    git_repo.push()
    moor.source_and_sync(git_repo)
    moor.wait_condition("sync", "app", "True")

    assert moor.cli("suspend", "sync", "app").returncode == 0
    git_repo.write("a.yaml", manifest(config_map("a", {"v": "2"})))
    git_repo.commit("v2")
    git_repo.push()
    assert moor.cli("reconcile", "source", "app").returncode == 0
    refused = moor.cli("reconcile", "sync", "app")
    assert refused.returncode == 2 and "suspended" in refused.stderr
    assert moor.get("configmap", "a")["data"] == {"v": "1"}

    assert moor.cli("resume", "sync", "app").returncode == 0
    moor.wait_for("the resumed Sync to apply v2", lambda: moor.get("configmap", "a")["data"] == {"v": "2"})


def test_target_namespace_places_namespaced_objects(moor: Moor, git_repo: GitWorkspace, kubectl) -> None:
    other = f"{moor.namespace}-t"
    kubectl("create", "namespace", other)
    try:
        git_repo.write("a.yaml", manifest(config_map("placed", {"v": "1"})))
        git_repo.commit("no namespace in git")
        git_repo.push()
        moor.source_and_sync(git_repo, sync_spec=f"targetNamespace: {other}")
        moor.wait_condition("sync", "app", "True")
        assert moor.exists("configmap", "placed", namespace=other)
        assert not moor.exists("configmap", "placed")
    finally:
        kubectl("delete", "namespace", other, "--wait=false", check=False)
