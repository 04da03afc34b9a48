"""`moor audit` and `moor stats` against real history, and the delivery metrics on `moor run`'s endpoint."""

from __future__ import annotations

import json
import urllib.request

from tests.support.git_fixtures import GitWorkspace
from tests.support.moor_fixtures import ControllerProcess, Moor, config_map, manifest, metric_value


def publish(repo: GitWorkspace, message: str, name: str, value: str) -> str:
    repo.write("a.yaml", manifest(config_map(name, {"v": value})))
    sha = repo.commit(message, author="Jane Doe <jane@example.com>")
    repo.push()
    return sha


def metrics(controller: ControllerProcess) -> str:
    with urllib.request.urlopen(controller.metrics_url, timeout=10) as response:
        return str(response.read().decode())


def test_audit_lists_approved_deployments_and_failures_and_stats_measure_them(
    moor: Moor, git_repo: GitWorkspace, controller: ControllerProcess
) -> None:
    v1 = publish(git_repo, "v1", "a", "1")
    moor.source_and_sync(git_repo, sync_spec="{approval: {mode: manual}}")
    moor.wait_condition("sync", "app", "True", type_="AwaitingApproval")
    approved = moor.cli("approve", "sync", "app", "--revision", v1)
    assert approved.returncode == 0, approved.stderr
    moor.wait_condition("sync", "app", "True", revision=v1)
    v2 = publish(git_repo, "v2: not a valid name", "Not_A_Valid_Name", "2")
    assert moor.cli("reconcile", "source", "app").returncode == 0
    moor.wait_condition("sync", "app", "True", type_="AwaitingApproval", revision=v2)
    assert moor.cli("approve", "sync", "app", "--revision", v2).returncode == 0
    moor.wait_condition("sync", "app", "False", reason="ValidationFailed")

    result = moor.cli("audit", "-o", "jsonl")
    assert result.returncode == 0, result.stderr
    entries = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(e["action"], e["result"], e["commit"]) for e in entries] == [
        ("deployment", "Succeeded", v1),
        ("deployment", "ValidationFailed", v2),
    ]
    first = entries[0]
    assert first["namespace"] == moor.namespace and first["sync"] == "app"
    assert first["author"] == "Jane Doe <jane@example.com>"
    assert first["approvedBy"], "who approved it"
    assert first["commitMessage"] == "v1" and first["committedAt"]
    assert first["changes"] == {"created": [f"ConfigMap {moor.namespace}/a"], "updated": [], "pruned": []}
    assert "Not_A_Valid_Name" in entries[1]["detail"]

    everywhere = [json.loads(line) for line in moor.cli("audit", "-A", "-o", "jsonl").stdout.splitlines()]
    assert {e["commit"] for e in everywhere if e["namespace"] == moor.namespace} == {v1, v2}

    def commits(*args: str) -> list[str]:
        return [entry["commit"] for entry in json.loads(moor.cli("audit", "-o", "json", *args).stdout)]

    assert commits("--since", "2000-01-01") == commits("--since", "1h") == [v1, v2]
    assert commits("--since", "2099-01-01") == []
    table = moor.cli("audit")
    assert table.returncode == 0 and "deployment" in table.stdout and "ValidationFailed" in table.stdout
    bad = moor.cli("audit", "--since", "last tuesday")
    assert bad.returncode == 2 and bad.stderr.startswith("error: 'last tuesday' is neither")

    events = json.loads(moor.kubectl("get", "events", "-n", moor.namespace, "-o", "json").stdout)["items"]
    assert any(e["reason"] == "Approved" and v1 in e["message"] for e in events), "an Approved event"

    stats = moor.cli("stats", "-o", "json")
    assert stats.returncode == 0, stats.stderr
    [app] = [s for s in json.loads(stats.stdout)["syncs"] if s["name"] == "app"]
    assert (app["deployments"], app["changes"], app["failedChanges"]) == (1, 2, 1)
    assert app["changeFailureRate"] == 0.5
    assert app["leadTimeSeconds"]["count"] == 1 and app["leadTimeSeconds"]["p50"] > 0
    assert app["unrestoredFailures"] == 1
    assert "LEAD P50" in moor.cli("stats").stdout

    labels = {"namespace": moor.namespace, "name": "app"}
    moor.wait_for(
        "the delivery metrics on /metrics",
        lambda: metric_value(metrics(controller), "moor_change_failure_ratio", **labels) == 0.5,
        timeout=30,
    )
    text = metrics(controller)
    assert metric_value(text, "moor_deployments", **labels) == 1
    assert metric_value(text, "moor_lead_time_seconds", quantile="0.5", **labels) == app["leadTimeSeconds"]["p50"]
