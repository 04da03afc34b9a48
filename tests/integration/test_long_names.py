"""Syncs with names near the 253-character limit work like any other: Ready, with a snapshot and a history."""

from __future__ import annotations

import json
from typing import Any

from moor.names import DNS_SUBDOMAIN_MAX, LABEL_VALUE_MAX
from tests.support.git_fixtures import GitWorkspace
from tests.support.moor_fixtures import Moor, config_map, manifest


def long_name(length: int, stem: str) -> str:
    """A valid object name of exactly `length` characters."""
    return ".".join([stem] * (length // (len(stem) + 1) + 1))[: length - 1] + "x"


def source_and_syncs(moor: Moor, repo: GitWorkspace, paths: dict[str, str]) -> None:
    """One GitRepository `app`, and a Sync named by each key of `paths` of the path its value names."""
    source = {"url": repo.url, "ref": {"branch": "main"}, "interval": "1h"}
    documents: list[dict[str, Any]] = [
        {"apiVersion": "moor.dev/v1", "kind": "GitRepository", "metadata": {"name": "app"}, "spec": source}
    ]
    for name, path in paths.items():
        spec = {
            "sourceRef": {"kind": "GitRepository", "name": "app"},
            "path": path,
            "interval": "1h",
            "retryInterval": "2s",
            "timeout": "60s",
        }
        documents.append({"apiVersion": "moor.dev/v1", "kind": "Sync", "metadata": {"name": name}, "spec": spec})
    moor.apply(manifest(*documents))


def records_of(moor: Moor, sync_name: str) -> list[dict[str, Any]]:
    listed = json.loads(moor.kubectl("get", "syncrecords", "-n", moor.namespace, "-o", "json").stdout)["items"]
    return [item for item in listed if item["spec"]["sync"] == sync_name]


def test_a_sync_with_a_240_character_name_syncs_a_typed_list_and_becomes_ready(
    moor: Moor, git_repo: GitWorkspace
) -> None:
    git_repo.write(
        "dashboards/dashboards.yaml",
        "apiVersion: v1\nkind: ConfigMapList\nitems:\n"
        "- metadata: {name: grafana-nodes, labels: {grafana_dashboard: '1'}}\n"
        "  data: {nodes.json: '{}'}\n"
        "- metadata: {name: grafana-pods, labels: {grafana_dashboard: '1'}}\n"
        "  data: {pods.json: '{}'}\n",
    )
    commit = git_repo.commit("dashboards as a ConfigMapList, as monitoring stacks ship them")
    git_repo.push()
    name = long_name(240, "dashboards")
    source_and_syncs(moor, git_repo, {name: "./dashboards"})

    moor.wait_condition("sync", name, "True", revision=commit, timeout=90)

    assert moor.get("configmap", "grafana-nodes")["data"] == {"nodes.json": "{}"}
    assert moor.get("configmap", "grafana-pods")["data"] == {"pods.json": "{}"}
    secrets = json.loads(moor.kubectl("get", "secrets", "-n", moor.namespace, "-o", "json").stdout)["items"]
    snapshots = [item for item in secrets if item.get("type") == "moor.dev/healthy-state"]
    assert len(snapshots) == 1
    snapshot = snapshots[0]["metadata"]
    assert len(snapshot["name"]) <= DNS_SUBDOMAIN_MAX and snapshot["name"].endswith(".moor-healthy-state")
    assert snapshot["ownerReferences"][0]["name"] == name
    assert snapshot["annotations"]["moor.dev/revision"].endswith(commit)
    [record] = records_of(moor, name)
    assert record["spec"]["result"] == "Succeeded"
    assert record["metadata"]["name"].endswith(".000001")
    assert len(record["metadata"]["labels"]["moor.dev/sync-name"]) <= LABEL_VALUE_MAX
    history = moor.cli("history", "sync", name, "-o", "jsonl")
    assert history.returncode == 0, history.stderr
    assert commit in history.stdout


def test_two_long_names_sharing_a_prefix_keep_their_own_history(moor: Moor, git_repo: GitWorkspace) -> None:
    git_repo.write("blue/config.yaml", manifest(config_map("blue", {"color": "blue"})))
    git_repo.write("green/config.yaml", manifest(config_map("green", {"color": "green"})))
    git_repo.commit("two apps")
    git_repo.push()
    prefix = long_name(240, "shop")
    blue, green = prefix + ".blue", prefix + ".green"
    source_and_syncs(moor, git_repo, {blue: "./blue", green: "./green"})

    moor.wait_condition("sync", blue, "True", timeout=90)
    moor.wait_condition("sync", green, "True", timeout=90)

    for name in (blue, green):
        records = records_of(moor, name)
        assert [record["spec"]["result"] for record in records] == ["Succeeded"], records
    assert records_of(moor, blue)[0]["metadata"]["name"] != records_of(moor, green)[0]["metadata"]["name"]
