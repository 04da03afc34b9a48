"""Drift: hand-made changes are caught from the watch, attributed to their field manager, then
corrected, reported, or left alone as the Sync asks."""

from __future__ import annotations

import base64
import json
import time
import urllib.request

from tests.support.git_fixtures import GitWorkspace
from tests.support.moor_fixtures import ControllerProcess, Moor, config_map, deployment, manifest, metric_value


def synced(moor: Moor, git_repo: GitWorkspace, sync_spec: str = "") -> None:
    web = deployment("web", replicas=2)
    web["metadata"]["labels"] = {"tier": "frontend"}
    git_repo.write("app.yaml", manifest(config_map("settings", {"color": "blue"}), web))
    git_repo.commit("app")
    git_repo.push()
    moor.source_and_sync(git_repo, sync_spec=sync_spec)
    moor.wait_condition("sync", "app", "True")


def replicas(moor: Moor) -> int:
    return int(moor.get("deployment", "web")["spec"]["replicas"])


def events(moor: Moor, reason: str) -> list[str]:
    listed = json.loads(moor.kubectl("get", "events", "-n", moor.namespace, "-o", "json").stdout)["items"]
    return [event["message"] for event in listed if event["reason"] == reason]


def test_correct_mode_puts_a_scaled_deployment_back_and_says_who(moor: Moor, git_repo: GitWorkspace) -> None:
    synced(moor, git_repo)
    moor.kubectl("scale", "deployment", "web", "-n", moor.namespace, "--replicas=5")
    moor.wait_for("replicas to be put back to 2", lambda: replicas(moor) == 2, timeout=10)
    messages = moor.wait_for("a DriftCorrected event", lambda: events(moor, "DriftCorrected"), timeout=10)
    assert "/spec/replicas" in messages[0] and "kubectl" in messages[0]
    assert "drift" not in moor.get("sync", "app")["status"], "nothing is left drifted"


def test_correct_mode_recreates_a_deleted_object(moor: Moor, git_repo: GitWorkspace) -> None:
    synced(moor, git_repo)
    uid = moor.get("configmap", "settings")["metadata"]["uid"]
    moor.kubectl("delete", "configmap", "settings", "-n", moor.namespace)
    recreated = moor.wait_for(
        "the ConfigMap to come back",
        lambda: (obj := moor.get("configmap", "settings")) and obj["metadata"]["uid"] != uid and obj,
        timeout=10,
    )
    assert recreated["data"] == {"color": "blue"}


def test_alert_mode_reports_drift_with_its_author_and_changes_nothing(moor: Moor, git_repo: GitWorkspace) -> None:
    synced(moor, git_repo, sync_spec="drift: {mode: alert}")
    moor.kubectl(
        "patch", "configmap", "settings", "-n", moor.namespace, "--type=merge", "-p", '{"data":{"color":"red"}}'
    )
    moor.kubectl("label", "deployment", "web", "-n", moor.namespace, "tier=backend", "--overwrite")
    condition = moor.wait_condition("sync", "app", "True", type_="Drifted", timeout=10)
    assert "2 object(s) differ from Git" in condition["message"]
    drift = {entry["name"]: entry for entry in moor.get("sync", "app")["status"]["drift"]}
    assert drift["settings"]["paths"] == ["/data/color"]
    assert drift["settings"]["manager"] == "kubectl-patch"
    assert drift["web"]["paths"] == ["/metadata/labels/tier"]
    assert drift["web"]["manager"] == "kubectl-label"
    assert drift["web"]["at"]
    assert moor.get("configmap", "settings")["data"] == {"color": "red"}, "alert mode changes nothing"
    assert moor.condition("sync", "app")["status"] == "True"

    shown = moor.cli("drift", "sync", "app")
    assert shown.returncode == 1
    assert "kubectl-patch" in shown.stdout and "/data/color" in shown.stdout
    as_json = json.loads(moor.cli("drift", "sync", "app", "-o", "json").stdout)
    assert {entry["name"] for entry in as_json} == {"settings", "web"}
    assert any("kubectl-patch" in message for message in events(moor, "DriftDetected"))

    # Putting the value back by hand clears the drift.
    moor.kubectl(
        "patch", "configmap", "settings", "-n", moor.namespace, "--type=merge", "-p", '{"data":{"color":"blue"}}'
    )
    moor.kubectl("label", "deployment", "web", "-n", moor.namespace, "tier=frontend", "--overwrite")
    moor.wait_for("the Drifted condition to go", lambda: moor.condition("sync", "app", "Drifted") is None, 10)
    assert moor.cli("drift", "sync", "app").returncode == 0


def secret_synced(moor: Moor, git_repo: GitWorkspace, sync_spec: str = "") -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "token"}, "stringData": {"token": "s3cr3t"}}
    git_repo.write("app.yaml", manifest(secret))
    git_repo.commit("a Secret declared with stringData")
    git_repo.push()
    moor.source_and_sync(git_repo, sync_spec=sync_spec)
    moor.wait_condition("sync", "app", "True")


def patch_token(moor: Moor, value: bytes) -> None:
    data = json.dumps({"data": {"token": base64.b64encode(value).decode()}})
    moor.kubectl("patch", "secret", "token", "-n", moor.namespace, "--type=merge", "-p", data)


def token(moor: Moor) -> bytes:
    return base64.b64decode(moor.get("secret", "token")["data"]["token"])


def test_a_secret_key_declared_in_string_data_and_changed_by_hand_is_drift(moor: Moor, git_repo: GitWorkspace) -> None:
    secret_synced(moor, git_repo, sync_spec="drift: {mode: alert}")
    patch_token(moor, b"changed")
    moor.wait_condition("sync", "app", "True", type_="Drifted", timeout=15)
    (entry,) = moor.get("sync", "app")["status"]["drift"]
    assert (entry["kind"], entry["name"], entry["paths"]) == ("Secret", "token", ["/data/token"])
    assert entry["manager"] == "kubectl-patch"
    assert token(moor) == b"changed", "alert mode changes nothing"
    assert b"s3cr3t" not in json.dumps(moor.get("sync", "app")).encode()


def test_correct_mode_puts_a_secret_key_declared_in_string_data_back(moor: Moor, git_repo: GitWorkspace) -> None:
    secret_synced(moor, git_repo)
    patch_token(moor, b"changed")
    moor.wait_for("the token to be put back", lambda: token(moor) == b"s3cr3t", timeout=15)
    messages = moor.wait_for("a DriftCorrected event", lambda: events(moor, "DriftCorrected"), timeout=10)
    assert "/data/token" in messages[0] and "kubectl-patch" in messages[0]


def test_ignore_mode_neither_reports_nor_corrects(moor: Moor, git_repo: GitWorkspace) -> None:
    synced(moor, git_repo, sync_spec="drift: {mode: ignore}")
    moor.kubectl("scale", "deployment", "web", "-n", moor.namespace, "--replicas=4")
    assert moor.reconcile(with_source=False).returncode == 0
    assert replicas(moor) == 4
    assert moor.condition("sync", "app", "Drifted") is None


def test_an_object_annotation_overrides_the_mode(moor: Moor, git_repo: GitWorkspace) -> None:
    annotated = config_map("hands-off", {"v": "1"}, annotations={"moor.dev/drift": "ignore"})
    git_repo.write("app.yaml", manifest(config_map("watched", {"v": "1"}), annotated))
    git_repo.commit("two maps")
    git_repo.push()
    moor.source_and_sync(git_repo)
    moor.wait_condition("sync", "app", "True")
    for name in ("watched", "hands-off"):
        moor.kubectl("patch", "configmap", name, "-n", moor.namespace, "--type=merge", "-p", '{"data":{"v":"2"}}')
    moor.wait_for("watched to be corrected", lambda: moor.get("configmap", "watched")["data"] == {"v": "1"}, 10)
    assert moor.reconcile(with_source=False).returncode == 0
    assert moor.get("configmap", "hands-off")["data"] == {"v": "2"}


def test_ignored_replicas_are_left_to_their_owner(moor: Moor, git_repo: GitWorkspace) -> None:
    synced(moor, git_repo, sync_spec="drift: {ignore: [{kind: Deployment, name: web, paths: [/spec/replicas]}]}")
    moor.kubectl("scale", "deployment", "web", "-n", moor.namespace, "--replicas=3")  # as an HPA would
    assert moor.reconcile(with_source=False).returncode == 0
    time.sleep(1)
    assert replicas(moor) == 3
    assert not events(moor, "DriftCorrected")
    # A new commit changing something else keeps the owner's replicas.
    git_repo.write("app.yaml", manifest(config_map("settings", {"color": "green"}), deployment("web", replicas=2)))
    git_repo.commit("new color")
    git_repo.push()
    assert moor.reconcile().returncode == 0
    assert moor.get("configmap", "settings")["data"] == {"color": "green"}
    assert replicas(moor) == 3


def test_metrics_count_applies_drift_and_requests(
    moor: Moor, git_repo: GitWorkspace, controller: ControllerProcess
) -> None:
    synced(moor, git_repo, sync_spec="drift: {mode: alert}")
    moor.kubectl("patch", "configmap", "settings", "-n", moor.namespace, "--type=merge", "-p", '{"data":{"c":"x"}}')
    moor.kubectl(
        "patch", "configmap", "settings", "-n", moor.namespace, "--type=merge", "-p", '{"data":{"color":"red"}}'
    )
    moor.wait_condition("sync", "app", "True", type_="Drifted", timeout=10)

    def scrape() -> str:
        with urllib.request.urlopen(controller.metrics_url, timeout=5) as response:
            return response.read().decode()

    text = moor.wait_for(
        "the drifted gauge",
        lambda: (
            (t := scrape()) and metric_value(t, "moor_drifted_objects", namespace=moor.namespace, name="app") == 1 and t
        ),
        timeout=10,
    )
    assert metric_value(text, "moor_applied_objects_total", namespace=moor.namespace, name="app") == 2
    assert metric_value(text, "moor_api_requests_total", verb="apply") >= 2
    assert metric_value(text, "moor_api_requests_total", verb="watch") >= 1
    assert metric_value(text, "moor_cache_objects") >= 2
    assert "moor_reconcile_duration_seconds_bucket" in text
