"""The `moor` verbs a user runs against a Sync: get, tree, diff, reconcile, and kubectl's view of them."""

from __future__ import annotations

import json

from tests.support.git_fixtures import GitWorkspace
from tests.support.moor_fixtures import Moor, config_map, deployment, manifest


def synced_app(moor: Moor, git_repo: GitWorkspace) -> str:
    git_repo.write("app/config.yaml", manifest(config_map("settings", {"color": "blue"})))
    git_repo.write("app/web.yaml", manifest(deployment("web")))
    sha = git_repo.commit("app")
    git_repo.push()
    moor.source_and_sync(git_repo, "./app")
    moor.wait_condition("sync", "app", "True")
    return sha


def test_kubectl_wait_and_printer_columns(moor: Moor, git_repo: GitWorkspace) -> None:
    sha = synced_app(moor, git_repo)
    waited = moor.kubectl("wait", "--for=condition=Ready", "sync/app", "-n", moor.namespace, "--timeout=30s")
    assert "condition met" in waited.stdout
    table = moor.kubectl("get", "syncs", "-n", moor.namespace).stdout
    header, row = table.splitlines()[:2]
    assert header.split()[:4] == ["NAME", "REVISION", "READY", "STATUS"]
    assert sha in row and "True" in row


def test_get_lists_sources_and_syncs(moor: Moor, git_repo: GitWorkspace) -> None:
    sha = synced_app(moor, git_repo)
    result = moor.cli("get", "syncs")
    assert result.returncode == 0, result.stderr
    assert "app" in result.stdout and sha[:7] in result.stdout and "True" in result.stdout
    listed = json.loads(moor.cli("get", "all", "-o", "json").stdout)
    assert [obj["metadata"]["name"] for obj in listed["GitRepository"]] == ["app"]
    assert [obj["metadata"]["name"] for obj in listed["Sync"]] == ["app"]


def test_tree_shows_managed_objects_with_health(moor: Moor, git_repo: GitWorkspace) -> None:
    synced_app(moor, git_repo)
    rows = json.loads(moor.cli("tree", "sync", "app", "-o", "json").stdout)
    assert {(row["kind"], row["name"], row["health"]) for row in rows} == {
        ("ConfigMap", "settings", "Healthy"),
        ("Deployment", "web", "Healthy"),
    }
    text = moor.cli("tree", "sync", "app").stdout
    assert "Deployment.apps" in text and "web" in text and "Healthy" in text


def test_diff_shows_pending_changes_and_exit_codes(moor: Moor, git_repo: GitWorkspace, tmp_path) -> None:
    synced_app(moor, git_repo)
    clean = moor.cli("diff", "sync", "app")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "no differences" in clean.stdout

    local = tmp_path / "local"
    local.mkdir()
    (local / "config.yaml").write_text(manifest(config_map("settings", {"color": "green"})))
    changed = moor.cli("diff", "sync", "app", "--path", str(local))
    assert changed.returncode == 1, changed.stderr
    assert f"ConfigMap {moor.namespace}/settings would be changed" in changed.stdout
    assert "-  color: blue" in changed.stdout and "+  color: green" in changed.stdout
    assert "Deployment.apps" in changed.stdout and "pruned" in changed.stdout
    assert moor.get("configmap", "settings")["data"] == {"color": "blue"}, "diff writes nothing"

    missing = moor.cli("diff", "sync", "nope")
    assert missing.returncode == 2
    assert "Sync" in missing.stderr and "nope" in missing.stderr and "Traceback" not in missing.stderr


def test_reconcile_exit_codes(moor: Moor, git_repo: GitWorkspace) -> None:
    synced_app(moor, git_repo)
    assert moor.reconcile().returncode == 0
    git_repo.write("app/web.yaml", manifest(deployment("web", never_ready=True)))
    git_repo.commit("pods that never become ready")
    git_repo.push()
    moor.kubectl("patch", "sync", "app", "-n", moor.namespace, "--type=merge", "-p", '{"spec":{"timeout":"3s"}}')
    result = moor.reconcile()
    assert result.returncode == 1
    assert "not Ready" in result.stderr and "web" in result.stderr


def test_install_is_idempotent_and_says_so(moor: Moor) -> None:
    again = moor.cli("install")
    assert again.returncode == 0, again.stderr
    lines = again.stdout.splitlines()
    assert lines and all(line.endswith("unchanged") for line in lines), lines
    assert any("syncs.moor.dev" in line for line in lines)
