"""The verbs users bring from Flux's CLI and kubectl, through the real `moor` against the local control plane:
build sync, trace, events, export, create, check, uninstall, completion, and -o yaml."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import yaml

from moor.devcluster import ClusterInfo
from tests.support.cluster_fixtures import Kubectl
from tests.support.git_fixtures import GitWorkspace
from tests.support.moor_fixtures import (
    MOOR,
    ControllerProcess,
    Moor,
    config_map,
    deployment,
    free_port,
    manifest,
    moor_cli,
)


def synced_app(moor: Moor, git_repo: GitWorkspace) -> str:
    git_repo.write("app/config.yaml", manifest(config_map("settings", {"color": "blue"})))
    git_repo.write("app/web.yaml", manifest(config_map("other", {"a": "b"}), deployment("web")))
    sha = git_repo.commit("app")
    git_repo.push()
    moor.source_and_sync(git_repo, "./app")
    moor.wait_condition("sync", "app", "True")
    return sha


# -- build -----------------------------------------------------------------------------------------


def test_build_sync_renders_what_the_sync_applies(moor: Moor, git_repo: GitWorkspace, tmp_path: Path) -> None:
    synced_app(moor, git_repo)

    result = moor.cli("build", "sync", "app")

    assert result.returncode == 0, result.stderr
    objects = [document for document in yaml.safe_load_all(result.stdout) if document]
    assert {(obj["kind"], obj["metadata"]["name"]) for obj in objects} == {
        ("ConfigMap", "settings"),
        ("ConfigMap", "other"),
        ("Deployment", "web"),
    }
    assert {obj["metadata"]["namespace"] for obj in objects} == {moor.namespace}
    assert {obj["metadata"]["labels"]["moor.dev/sync"] for obj in objects} == {f"{moor.namespace}.app"}

    local = tmp_path / "local"
    local.mkdir()
    (local / "broken.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [x}\n")
    broken = moor.cli("build", "sync", "app", "--path", str(local))
    assert broken.returncode == 1 and "broken.yaml" in broken.stderr and "line" in broken.stderr

    missing = moor.cli("build", "sync", "nope")
    assert missing.returncode == 2 and "Sync" in missing.stderr and "nope" in missing.stderr
    assert "Traceback" not in missing.stderr


# -- trace -----------------------------------------------------------------------------------------


def test_trace_names_sync_source_revision_file_line_and_writers(moor: Moor, git_repo: GitWorkspace) -> None:
    sha = synced_app(moor, git_repo)
    moor.kubectl("annotate", "deployment", "web", "-n", moor.namespace, "team=shop")

    result = moor.cli("trace", "deployment", "web", "-o", "json")

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["sync"]["name"] == "app" and report["sync"]["ready"] == "True"
    assert report["source"]["url"] == git_repo.url and report["source"]["name"] == "app"
    assert sha in report["revision"]
    line = manifest(config_map("other", {"a": "b"}), deployment("web")).splitlines().index("---") + 2
    assert report["declaredIn"] == {"file": "app/web.yaml", "line": line, "document": 2}
    assert sha in report["lastApplied"]["revision"]
    assert report["object"]["labelled"] is True
    assert any(entry["manager"].startswith("kubectl") for entry in report["fieldManagers"])

    text = moor.cli("trace", "Deployments.apps", "web").stdout
    assert f"{moor.namespace}/app" in text and f"app/web.yaml line {line}" in text and "Changed by" in text

    as_yaml = yaml.safe_load(moor.cli("trace", "cm", "settings", "-o", "yaml").stdout)
    assert as_yaml["declaredIn"]["file"] == "app/config.yaml"

    unmanaged = moor.cli("trace", "configmap", "kube-root-ca.crt")
    assert unmanaged.returncode == 1 and "not managed by any Sync" in unmanaged.stderr


# -- events ----------------------------------------------------------------------------------------


def test_events_lists_moors_events_newest_last_and_watches(moor: Moor, git_repo: GitWorkspace) -> None:
    synced_app(moor, git_repo)

    result = moor.cli("events", "sync", "app")

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].split()[:3] == ["LAST", "SEEN", "TYPE"]
    assert "Applied" in result.stdout and f"Sync/{moor.namespace}/app" in result.stdout
    listed = json.loads(moor.cli("events", "-o", "json").stdout)
    assert listed and all(event["involvedObject"]["apiVersion"] == "moor.dev/v1" for event in listed)
    stamps = [event.get("lastTimestamp") or "" for event in listed]
    assert stamps == sorted(stamps), "newest last"

    env = {**os.environ, "KUBECONFIG": str(moor.kubeconfig), "NO_COLOR": "1"}
    argv = [*MOOR, "events", "sync", "app", "--watch", "-n", moor.namespace]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) as watcher:
        try:
            git_repo.write("app/config.yaml", manifest(config_map("settings", {"color": "green"})))
            new_sha = git_repo.commit("green")
            git_repo.push()
            assert moor.reconcile().returncode == 0
            assert watcher.stdout is not None
            deadline = time.monotonic() + 60
            seen = ""
            while new_sha[:12] not in seen and time.monotonic() < deadline:
                seen += watcher.stdout.readline()
            assert new_sha[:12] in seen, f"the new revision's Event was printed: {seen}"
        finally:
            watcher.terminate()

    wrong = moor.cli("events", "sync")
    assert wrong.returncode == 2 and "sync NAME" in wrong.stderr


# -- export and create -----------------------------------------------------------------------------


def test_export_prints_clean_objects_that_apply_again(moor: Moor, git_repo: GitWorkspace) -> None:
    synced_app(moor, git_repo)

    result = moor.cli("export", "all")

    assert result.returncode == 0, result.stderr
    documents = list(yaml.safe_load_all(result.stdout))
    assert [(obj["kind"], obj["metadata"]["name"]) for obj in documents] == [("GitRepository", "app"), ("Sync", "app")]
    for obj in documents:
        assert set(obj) == {"apiVersion", "kind", "metadata", "spec"}
        assert set(obj["metadata"]) <= {"name", "namespace", "labels", "annotations"}
    assert documents[1]["spec"]["path"] == "./app"
    moor.kubectl("apply", "--dry-run=server", "-f", "-", input=result.stdout)

    [sync] = list(yaml.safe_load_all(moor.cli("export", "syncs", "app").stdout))
    assert sync["kind"] == "Sync"
    missing = moor.cli("export", "syncs", "nope")
    assert missing.returncode == 2 and "nope" in missing.stderr


def test_create_source_and_sync_then_ready(moor: Moor, git_repo: GitWorkspace) -> None:
    git_repo.write("made/config.yaml", manifest(config_map("made", {"by": "create"})))
    git_repo.commit("made")
    git_repo.push()

    exported = moor.cli("create", "source", "git", "made", "--url", git_repo.url, "--branch", "main", "--export")
    assert exported.returncode == 0, exported.stderr
    source = yaml.safe_load(exported.stdout)
    assert source["kind"] == "GitRepository" and source["spec"]["ref"] == {"branch": "main"}
    assert source["metadata"]["namespace"] == moor.namespace
    assert not moor.exists("gitrepository", "made"), "--export applies nothing"

    created = moor.cli("create", "source", "git", "made", "--url", git_repo.url, "--branch", "main", "--interval", "1h")
    assert created.returncode == 0, created.stderr
    synced = moor.cli("create", "sync", "made", "--source", "made", "--path", "./made", "--interval", "1h")
    assert synced.returncode == 0, synced.stderr
    assert moor.get("configmap", "made")["data"] == {"by": "create"}

    invalid = moor.cli("create", "source", "git", "bad", "--url", "not a url", "--branch", "main")
    assert invalid.returncode == 2 and "spec.url" in invalid.stderr and "Traceback" not in invalid.stderr
    two_refs = moor.cli("create", "source", "git", "bad", "--url", git_repo.url, "--branch", "a", "--tag", "b")
    assert two_refs.returncode == 2


# -- -o yaml -----------------------------------------------------------------------------------------


def test_o_yaml_wherever_o_json(moor: Moor, git_repo: GitWorkspace) -> None:
    synced_app(moor, git_repo)
    for verb in (["get", "all"], ["tree", "sync", "app"], ["drift", "sync", "app"], ["history", "sync", "app"]):
        as_json = moor.cli(*verb, "-o", "json")
        as_yaml = moor.cli(*verb, "-o", "yaml")
        assert as_yaml.returncode == as_json.returncode, verb
        assert yaml.safe_load(as_yaml.stdout) == json.loads(as_json.stdout), verb


def test_completion_scripts_for_each_shell() -> None:
    for shell, marker in (("bash", "complete -o"), ("zsh", "#compdef moor"), ("fish", "complete --no-files")):
        result = subprocess.run([*MOOR, "completion", shell], capture_output=True, text=True, check=False)
        assert result.returncode == 0 and marker in result.stdout and "_MOOR_COMPLETE" in result.stdout, shell


# -- check and uninstall, on a cluster of their own --------------------------------------------------


def cli(cluster: ClusterInfo, *args: str, namespace: str = "default") -> subprocess.CompletedProcess[str]:
    return moor_cli(cluster.kubeconfig, *args, "-n", namespace)


def test_check_before_and_after_install_with_the_controllers_health(
    private_cluster: ClusterInfo, tmp_path: Path
) -> None:
    pre = cli(private_cluster, "check", "--pre")
    assert pre.returncode == 0, pre.stdout + pre.stderr
    assert "Kubernetes v1." in pre.stdout and "connected as" in pre.stdout

    no_controller = cli(private_cluster, "check")
    assert no_controller.returncode == 1
    assert "current" in no_controller.stdout and "--health-url" in no_controller.stdout

    port = free_port()
    controller = ControllerProcess(private_cluster.kubeconfig, tmp_path / "controller", "--health-port", str(port))
    controller.start()
    url = f"http://127.0.0.1:{port}/healthz"
    try:
        healthy = cli(private_cluster, "check", "--health-url", url)
        assert healthy.returncode == 0, healthy.stdout
        assert f"{url}: healthy" in healthy.stdout and "all checks passed" in healthy.stdout

        missing = str(tmp_path / "no-such-repo.git")
        created = cli(
            private_cluster, "create", "source", "git", "gone", "--url", f"file://{missing}", "--branch", "main"
        )
        assert created.returncode == 1, "created, but never Ready"
        unready = cli(private_cluster, "check", "--health-url", url)
        assert unready.returncode == 1 and "GitRepository default/gone" in unready.stdout
    finally:
        controller.stop()
    stopped = cli(private_cluster, "check", "--health-url", url)
    assert stopped.returncode == 1 and "does not answer" in stopped.stdout


def test_uninstall_keeps_what_moor_applied_unless_asked(
    private_cluster: ClusterInfo, tmp_path: Path, git_repo: GitWorkspace, kubectl: Kubectl
) -> None:
    kubeconfig = private_cluster.kubeconfig
    git_repo.write("app/config.yaml", manifest(config_map("kept", {"a": "b"}, namespace="default")))
    git_repo.commit("app")
    git_repo.push()
    assert moor_cli(kubeconfig, "install", "--with-controller").returncode == 0

    def synced() -> ControllerProcess:
        controller = ControllerProcess(kubeconfig, tmp_path / f"controller-{time.monotonic_ns()}")
        controller.start()
        for args in (
            ["create", "source", "git", "app", "--url", git_repo.url, "--branch", "main", "--interval", "1h"],
            ["create", "sync", "app", "--source", "app", "--path", "./app", "--interval", "1h"],
        ):
            result = cli(private_cluster, *args)
            assert result.returncode == 0, result.stdout + result.stderr
        return controller

    def configmap_exists() -> bool:
        return (
            Kubectl(kubectl.binary, kubeconfig)("get", "configmap", "kept", "-n", "default", check=False).returncode
            == 0
        )

    controller = synced()
    try:
        env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
        refused = subprocess.run(
            [*MOOR, "uninstall"], input="n\n", capture_output=True, text=True, env=env, check=False
        )
        assert refused.returncode == 1 and "Continue?" in refused.stderr
        assert cli(private_cluster, "get", "syncs").returncode == 0, "nothing removed when not confirmed"

        removed = cli(private_cluster, "uninstall", "--yes")
        assert removed.returncode == 0, removed.stdout + removed.stderr
        assert "Deployment.apps moor-system/moor deleted" in removed.stdout
        assert "CustomResourceDefinition.apiextensions.k8s.io syncs.moor.dev deleted" in removed.stdout
        assert "ClusterRole.rbac.authorization.k8s.io moor-controller deleted" in removed.stdout
        time.sleep(3)  # a controller still running must not prune on the Sync's deletion
        assert configmap_exists(), "what Moor applied is kept"
    finally:
        controller.stop()

    assert moor_cli(kubeconfig, "install").returncode == 0
    controller = synced()
    try:
        deleted = cli(private_cluster, "uninstall", "--yes", "--delete-objects")
        assert deleted.returncode == 0, deleted.stdout + deleted.stderr
        assert "ConfigMap default/kept deleted" in deleted.stdout
        assert not configmap_exists()
    finally:
        controller.stop()
