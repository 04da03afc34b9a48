"""Hooks and waves are phases of a Sync's pass: Helm hooks by weight before and after the main objects,
Argo CD hooks and sync waves in a plain directory, delete policies, hooks with a generateName, test hooks
never applied, hooks outside the inventory, and a chart's crds/ kept when they leave the chart.

Jobs complete under the local cluster (kwok's stage finishes a Job's running Pod); a Job fails when its
Pod can be scheduled nowhere and its deadline passes."""

from __future__ import annotations

import json
from typing import Any

from tests.support.git_fixtures import GitWorkspace
from tests.support.moor_fixtures import Moor, deployment, manifest

CHART = "apiVersion: v2\nname: web\nversion: 0.1.0\n"


def job(name: str, annotations: dict[str, str], *, fails: bool = False) -> dict[str, Any]:
    """A Job named `name` (a name ending in `-` is a generateName)."""
    metadata: dict[str, Any] = {"generateName": name} if name.endswith("-") else {"name": name}
    metadata["annotations"] = annotations
    spec: dict[str, Any] = {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox:1.36"}]}
    body: dict[str, Any] = {"backoffLimit": 0, "template": {"spec": spec}}
    if fails:
        spec["nodeSelector"] = {"moor.dev/no-such-node": "true"}
        body["activeDeadlineSeconds"] = 2
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": body}


def helm_hook(name: str, hook: str, weight: int = 0, *, fails: bool = False) -> dict[str, Any]:
    return job(name, {"helm.sh/hook": hook, "helm.sh/hook-weight": str(weight)}, fails=fails)


def hooks_of(moor: Moor) -> list[tuple[str, str, str]]:
    status = (moor.get("sync", "app") or {}).get("status") or {}
    return [(entry["hook"], entry["name"], entry["result"]) for entry in status.get("hooks") or []]


def inventory_kinds(moor: Moor) -> set[str]:
    status = (moor.get("sync", "app") or {}).get("status") or {}
    return {entry["kind"] for entry in status.get("inventory") or []}


def jobs(moor: Moor) -> list[dict[str, Any]]:
    listed = moor.kubectl("get", "jobs", "-n", moor.namespace, "-o", "json").stdout
    items: list[dict[str, Any]] = json.loads(listed)["items"]
    return items


def records(moor: Moor) -> int:
    out = moor.kubectl("get", "syncrecords", "-n", moor.namespace, "-o", "name").stdout
    return len(out.split())


def completion(obj: dict[str, Any]) -> str:
    return str(obj["status"]["completionTime"])


def test_helm_hooks_run_by_weight_around_the_main_objects(moor: Moor, git_repo: GitWorkspace) -> None:
    git_repo.write("chart/Chart.yaml", CHART)
    git_repo.write(
        "chart/templates/hooks.yaml",
        manifest(
            helm_hook("first", "pre-install,pre-upgrade", -1),
            helm_hook("second", "pre-install,pre-upgrade", 0),
            helm_hook("generated-", "pre-install", 0),
            helm_hook("after", "post-install,post-upgrade", 0),
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "smoke", "annotations": {"helm.sh/hook": "test"}},
                "spec": {"containers": [{"name": "t", "image": "busybox:1.36"}]},
            },
        ),
    )
    git_repo.write("chart/templates/web.yaml", manifest(deployment("web")))
    git_repo.commit("a chart with hooks")
    git_repo.push()
    moor.source_and_sync(git_repo, "./chart", sync_spec="timeout: 2m")

    moor.wait_condition("sync", "app", "True", timeout=240)

    first, second, after = (moor.get("job", name) for name in ("first", "second", "after"))
    web = moor.get("deployment", "web")
    assert first and second and after and web
    assert completion(first) <= second["metadata"]["creationTimestamp"], "weight -1 completes before weight 0"
    assert completion(second) <= web["metadata"]["creationTimestamp"], "pre hooks complete before the main objects"
    available = next(c for c in web["status"]["conditions"] if c["type"] == "Available")
    assert available["lastTransitionTime"] <= after["metadata"]["creationTimestamp"], "post hooks after health"
    assert [(hook, result) for hook, _, result in hooks_of(moor)] == [
        ("pre-install", "Succeeded"),
        ("pre-install", "Succeeded"),
        ("pre-install", "Succeeded"),
        ("post-install", "Succeeded"),
    ]
    generated = [j for j in jobs(moor) if j["metadata"]["name"].startswith("generated-")]
    assert len(generated) == 1, "a hook with a generateName is created once"
    assert generated[0]["metadata"]["labels"].get("moor.dev/hook-of")
    assert "moor.dev/sync" not in generated[0]["metadata"]["labels"], "hooks are not watched as managed objects"
    assert not moor.exists("pod", "smoke"), "test hooks are for helm test, never applied by a sync"
    assert inventory_kinds(moor) == {"Deployment"}, "hooks are not in the prune inventory"
    tree = json.loads(moor.cli("tree", "sync", "app", "-o", "json").stdout)
    placed = {(row["phase"], row["wave"], row["name"]) for row in tree}
    assert {("pre", -1, "first"), ("pre", 0, "second"), ("main", 0, "web"), ("post", 0, "after")} <= placed
    recorded = json.loads(moor.cli("history", "sync", "app", "-o", "json").stdout)
    lines = [line for record in recorded for line in record.get("hooks") or []]
    assert f"pre-install Job {moor.namespace}/first (wave -1): Succeeded" in lines, "the record keeps its hooks"
    assert f"post-install Job {moor.namespace}/after (wave 0): Succeeded" in lines
    assert "HOOKS" in moor.cli("history", "sync", "app").stdout

    # An upgrade: the named pre-upgrade hooks are deleted and created again (before-hook-creation); the
    # pre-install-only hook does not run.
    uid = second["metadata"]["uid"]
    git_repo.write("chart/templates/web.yaml", manifest(deployment("web", replicas=2)))
    git_repo.commit("two replicas")
    git_repo.push()
    moor.reconcile()
    moor.wait_condition("sync", "app", "True", revision=git_repo.head, timeout=240)

    again = moor.get("job", "second")
    assert again and again["metadata"]["uid"] != uid, "before-hook-creation re-creates the hook"
    assert [hook for hook, _, _ in hooks_of(moor)] == ["pre-upgrade", "pre-upgrade", "post-upgrade"]
    assert len([j for j in jobs(moor) if j["metadata"]["name"].startswith("generated-")]) == 1
    assert moor.exists("job", "after"), "the hooks stay: left out of the prune inventory"


def test_a_failing_pre_upgrade_hook_fails_the_revision_and_the_previous_one_stays(
    moor: Moor, git_repo: GitWorkspace
) -> None:
    git_repo.write("chart/Chart.yaml", CHART)
    settings = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"version": "1"}}
    git_repo.write("chart/templates/settings.yaml", manifest(settings))
    git_repo.commit("version 1")
    git_repo.push()
    moor.source_and_sync(git_repo, "./chart", sync_spec="rollback: {onFailure: true}\ntimeout: 1m")
    moor.wait_condition("sync", "app", "True", timeout=180)

    failed_note = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "upgrade-failed", "annotations": {"moor.dev/phase": "fail"}},
        "data": {"failed": "true"},
    }
    settings["data"] = {"version": "2"}
    git_repo.write("chart/templates/settings.yaml", manifest(settings, failed_note))
    git_repo.write("chart/templates/migrate.yaml", manifest(helm_hook("migrate", "pre-upgrade", fails=True)))
    git_repo.commit("version 2 with a migration that fails")
    git_repo.push()
    moor.reconcile()

    condition = moor.wait_condition("sync", "app", "False", reason="RolledBack", timeout=240)

    assert "HookFailed" in condition["message"]
    live = moor.get("configmap", "settings")
    assert live and live["data"] == {"version": "1"}, "the main objects of the failed revision were never applied"
    assert ("pre-upgrade", "migrate", "Failed") in hooks_of(moor)
    assert moor.exists("configmap", "upgrade-failed"), "the fail hook ran"
    history = moor.cli("history", "sync", "app")
    assert "HookFailed" in history.stdout or "RolledBack" in history.stdout


def test_a_random_hook_name_does_not_make_every_reconcile_a_change(moor: Moor, git_repo: GitWorkspace) -> None:
    git_repo.write("chart/Chart.yaml", CHART)
    random_hook = """
apiVersion: batch/v1
kind: Job
metadata:
  name: migrate-{{ randAlphaNum 6 | lower }}
  annotations: {"helm.sh/hook": "pre-install,pre-upgrade"}
spec:
  backoffLimit: 0
  template: {spec: {restartPolicy: Never, containers: [{name: m, image: busybox:1.36}]}}
"""
    git_repo.write("chart/templates/migrate.yaml", random_hook)
    git_repo.write("chart/templates/web.yaml", manifest(deployment("web")))
    git_repo.commit("a hook with a random name")
    git_repo.push()
    moor.source_and_sync(git_repo, "./chart")
    moor.wait_condition("sync", "app", "True", timeout=180)
    before = (records(moor), len(jobs(moor)))

    for _ in range(2):  # the first renders again as an upgrade, with another random name
        assert moor.reconcile(with_source=False).returncode == 0

    assert (records(moor), len(jobs(moor))) == before, "no new record, no hook run again"


def test_argo_cd_hooks_and_sync_waves_in_a_plain_directory(moor: Moor, git_repo: GitWorkspace) -> None:
    def config(name: str, annotations: dict[str, str]) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "annotations": annotations}}

    early = deployment("early")
    early["metadata"]["annotations"] = {"argocd.argoproj.io/sync-wave": "-1"}
    git_repo.write(
        "app/all.yaml",
        manifest(
            job("prepare", {"argocd.argoproj.io/hook": "PreSync"}),
            early,
            config("middle", {"argocd.argoproj.io/sync-wave": "0"}),
            config("late", {"argocd.argoproj.io/sync-wave": "1"}),
            job(
                "report",
                {"argocd.argoproj.io/hook": "PostSync", "argocd.argoproj.io/hook-delete-policy": "HookSucceeded"},
            ),
            config("ignored", {"argocd.argoproj.io/hook": "Skip"}),
            job("during", {"argocd.argoproj.io/hook": "Sync", "argocd.argoproj.io/sync-wave": "0"}),
            config("seed", {"moor.dev/phase": "pre", "moor.dev/wave": "-5"}),  # Moor's spelling, first of all
        ),
    )
    git_repo.commit("an Argo CD application")
    git_repo.push()
    moor.source_and_sync(git_repo, "./app", sync_spec="timeout: 2m")

    moor.wait_condition("sync", "app", "True", timeout=240)

    prepare, early_live, late = (
        moor.get("job", "prepare"),
        moor.get("deployment", "early"),
        moor.get("configmap", "late"),
    )
    assert prepare and early_live and late
    assert completion(prepare) <= early_live["metadata"]["creationTimestamp"], "PreSync before wave -1"
    available = next(c for c in early_live["status"]["conditions"] if c["type"] == "Available")
    assert available["lastTransitionTime"] <= late["metadata"]["creationTimestamp"], "wave -1 healthy before wave 1"
    assert moor.exists("configmap", "middle")
    assert not moor.exists("configmap", "ignored"), "Skip is never applied"
    ran = hooks_of(moor)
    assert [name for _, name, _ in ran] == ["seed", "prepare", "during", "report"]
    assert all(result == "Succeeded" for _, _, result in ran)
    during = moor.get("job", "during")
    assert during and completion(during) <= late["metadata"]["creationTimestamp"], "a Sync hook runs in its wave"
    moor.wait_for("the PostSync hook deleted (HookSucceeded)", lambda: not moor.exists("job", "report"))
    assert inventory_kinds(moor) == {"Deployment", "ConfigMap"}
    kept = {entry["name"] for entry in (moor.get("sync", "app") or {})["status"]["inventory"]}
    assert kept == {"early", "middle", "late"}, "hooks, Sync hooks and skipped objects are not inventoried"


def test_hooks_with_a_generate_name_in_a_plain_directory(moor: Moor, git_repo: GitWorkspace) -> None:
    git_repo.write(
        "app/all.yaml",
        manifest(
            job("migrate-", {"argocd.argoproj.io/hook": "PreSync"}),
            job("migrate-", {"argocd.argoproj.io/hook": "PreSync"}),  # two alike: told apart by position
            deployment("web"),
        ),
    )
    git_repo.commit("hooks with only a generateName")
    git_repo.push()
    moor.source_and_sync(git_repo, "./app", sync_spec="timeout: 2m")

    moor.wait_condition("sync", "app", "True", timeout=240)

    generated = [j for j in jobs(moor) if j["metadata"]["name"].startswith("migrate-")]
    assert len(generated) == 2, "each hook with a generateName is created, once"
    assert [result for _, _, result in hooks_of(moor)] == ["Succeeded", "Succeeded"]
    assert inventory_kinds(moor) == {"Deployment"}
    assert "2 hook(s) would run" in moor.cli("diff", "sync", "app").stdout


def test_an_object_with_only_a_generate_name_must_be_a_hook(moor: Moor, git_repo: GitWorkspace) -> None:
    unnamed = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "settings-"}}
    git_repo.write("app/all.yaml", manifest(unnamed))
    git_repo.commit("a generateName that is not a hook")
    git_repo.push()
    moor.source_and_sync(git_repo, "./app")

    condition = moor.wait_condition("sync", "app", "False", timeout=60)
    assert "generateName" in condition["message"] and "only hooks" in condition["message"]


def crd(group: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group,
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
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


def chart_with_crd(moor: Moor, git_repo: GitWorkspace, sync_spec: str) -> str:
    group = f"{moor.namespace}.example.com"
    widget = {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "one"}, "spec": {"size": 1}}
    git_repo.write("chart/Chart.yaml", CHART)
    git_repo.write("chart/crds/widgets.yaml", manifest(crd(group)))
    git_repo.write("chart/templates/widget.yaml", manifest(widget))
    git_repo.commit("a chart with a CRD")
    git_repo.push()
    moor.source_and_sync(git_repo, "./chart", sync_spec=sync_spec)
    moor.wait_condition("sync", "app", "True", timeout=180)
    assert moor.exists("widget." + group, "one"), "the CRD went first, so its custom resource could follow"
    git_repo.remove("chart/crds/widgets.yaml")
    git_repo.remove("chart/templates/widget.yaml")
    git_repo.write(
        "chart/templates/settings.yaml", manifest({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "s"}})
    )
    git_repo.commit("no more widgets")
    git_repo.push()
    moor.reconcile()
    moor.wait_condition("sync", "app", "True", revision=git_repo.head, timeout=180)
    return f"widgets.{group}"


def test_a_charts_crds_stay_when_they_leave_the_chart(moor: Moor, git_repo: GitWorkspace) -> None:
    name = chart_with_crd(moor, git_repo, "prune: true")
    try:
        live = moor.kubectl("get", "crd", name, "-o", "json", check=False)
        assert live.returncode == 0, "a chart's CRD is never pruned unless the Sync opts in"
        assert '"moor.dev/prune": "disabled"' in live.stdout
    finally:
        moor.kubectl("delete", "crd", name, "--wait=false", check=False)


def test_a_charts_crds_are_pruned_when_the_sync_opts_in(moor: Moor, git_repo: GitWorkspace) -> None:
    name = chart_with_crd(moor, git_repo, "prune: true\nhelm: {pruneCRDs: true}")
    moor.wait_for("the CRD pruned", lambda: moor.kubectl("get", "crd", name, check=False).returncode != 0, 60)


def test_a_sync_blocked_on_a_hook_says_which_and_why(moor: Moor, git_repo: GitWorkspace) -> None:
    stuck = job("migrate", {"argocd.argoproj.io/hook": "PreSync"})
    stuck["spec"]["template"]["spec"]["nodeSelector"] = {"moor.dev/no-such-node": "true"}  # never runs
    git_repo.write("app/all.yaml", manifest(stuck, deployment("web")))
    git_repo.commit("a PreSync hook that never runs")
    git_repo.push()
    moor.source_and_sync(git_repo, "./app", sync_spec="timeout: 20s")

    told = f"waiting for PreSync hook Job {moor.namespace}/migrate (wave 0) to complete"

    def waiting_told() -> dict[str, Any] | None:
        condition = moor.condition("sync", "app")
        return condition if condition and condition["status"] == "Unknown" and told in condition["message"] else None

    waiting = moor.wait_for("the Sync saying which hook it waits for", waiting_told, 120)  # after "applying ..."
    assert "running" in waiting["message"] or "0 succeeded" in waiting["message"]

    failed = moor.wait_condition("sync", "app", "False", reason="HookFailed", timeout=120)
    assert f"PreSync hook Job {moor.namespace}/migrate (wave 0) failed: not done after" in failed["message"]
    assert not moor.exists("deployment", "web"), "nothing of the main phase is written while a pre hook fails"


def test_a_revision_the_api_server_rejects_runs_no_hook(moor: Moor, git_repo: GitWorkspace) -> None:
    invalid = deployment("web")
    invalid["spec"]["replicas"] = "lots"
    git_repo.write("app/all.yaml", manifest(job("migrate", {"argocd.argoproj.io/hook": "PreSync"}), invalid))
    git_repo.commit("a migration, and a Deployment the API server refuses")
    git_repo.push()
    moor.source_and_sync(git_repo, "./app")

    moor.wait_condition("sync", "app", "False", reason="ValidationFailed", timeout=120)

    assert not moor.exists("job", "migrate"), "every object is dry-run before any hook runs"
