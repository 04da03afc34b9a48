"""Comparison follows the API server's published schema, in the controller and in `moor diff` alike.

A custom resource whose field is named like a built-in quantity map (`spec.default`) holds a string
that parses as the same number in its old and new value ("1.1" and "1.10"): the schema says it is a
string, so the change is planned, shown by `moor diff` and applied. The schema cache reads each
group-version's document once per hash, and a document it cannot read leaves the kinds to the field
name rules instead of failing anything.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from moor.cluster.client import KubeClient
from moor.cluster.config import load_kubeconfig
from moor.cluster.openapi import SchemaCache
from tests.support.fault_proxy import FaultProxy
from tests.support.git_fixtures import GitWorkspace
from tests.support.moor_fixtures import Moor, manifest


def release_crd(group: str) -> dict[str, Any]:
    spec_schema = {
        "type": "object",
        "properties": {
            "default": {"type": "object", "properties": {"version": {"type": "string"}}},
            "limits": {"type": "object", "additionalProperties": {"type": "string"}},
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"releases.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "releases", "singular": "release", "kind": "Release"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": spec_schema}}},
                }
            ],
        },
    }


def release(group: str, version: str) -> dict[str, Any]:
    spec = {"default": {"version": version}, "limits": {"cpu": "0.5"}}
    return {"apiVersion": f"{group}/v1", "kind": "Release", "metadata": {"name": "app"}, "spec": spec}


def test_a_string_that_reads_as_the_same_number_is_still_a_change(moor: Moor, git_repo: GitWorkspace) -> None:
    group = f"{moor.namespace}.example.com"
    git_repo.write("crd.yaml", manifest(release_crd(group)))
    git_repo.write("release.yaml", manifest(release(group, "1.1")))
    git_repo.commit("release 1.1")
    git_repo.push()
    moor.source_and_sync(git_repo, sync_spec=f"targetNamespace: {moor.namespace}")
    try:
        moor.wait_condition("sync", "app", "True")
        assert moor.get(f"releases.{group}", "app")["spec"]["default"] == {"version": "1.1"}

        git_repo.write("release.yaml", manifest(release(group, "1.10")))
        commit = git_repo.commit("release 1.10")
        git_repo.push()
        shown = moor.cli("diff", "sync", "app", "--path", str(git_repo.work))
        assert shown.returncode == 1, shown.stdout + shown.stderr
        assert f"Release.{group} {moor.namespace}/app would be changed" in shown.stdout
        assert '/spec/default/version: Git declares "1.10", the cluster has "1.1"' in shown.stdout
        assert "/spec/limits" not in shown.stdout, "only what differs"

        result = moor.reconcile()
        assert result.returncode == 0, result.stdout + result.stderr
        moor.wait_condition("sync", "app", "True", revision=commit)
        assert moor.get(f"releases.{group}", "app")["spec"]["default"] == {"version": "1.10"}
        clean = moor.cli("diff", "sync", "app", "--path", str(git_repo.work))
        assert clean.returncode == 0 and "no differences" in clean.stdout, clean.stdout + clean.stderr
    finally:
        moor.kubectl("delete", "crd", f"releases.{group}", "--wait=false", check=False)


async def test_each_document_is_read_once_and_an_unreadable_one_means_no_schema(
    fault_proxy: FaultProxy, caplog: pytest.LogCaptureFixture
) -> None:
    refused = fault_proxy.respond(403, r"^/openapi/v3/apis/apps/v1$")
    async with KubeClient(load_kubeconfig(Path(fault_proxy.kubeconfig))) as client:
        cache = SchemaCache(client, max_age=3)
        with caplog.at_level(logging.WARNING, logger="moor.cluster.openapi"):
            schemas = await cache.for_api_versions(["v1", "apps/v1"])
        assert refused.hits == 1
        assert schemas.for_kind("apps/v1", "Deployment") is None, "no schema: compared by field names"
        config_map = schemas.for_kind("v1", "ConfigMap")
        assert config_map is not None and config_map.field("metadata").field("finalizers").list_type.value == "set"
        assert "OpenAPI schema of apps/v1" in caplog.text

        sent = len(fault_proxy.log)
        assert await cache.for_api_versions(["v1", "apps/v1"]) is schemas
        assert len(fault_proxy.log) == sent, "nothing read again while the index is fresh"

        fault_proxy.clear()
        await asyncio.sleep(3.2)
        deployment = (await cache.for_api_versions(["v1", "apps/v1"])).for_kind("apps/v1", "Deployment")
        assert deployment is not None, "a failed document is tried again once the index is due"
        containers = deployment.field("spec").field("template").field("spec").field("containers")
        assert containers.list_keys == ("name",)
        read_again = [path for _, path, _ in fault_proxy.log[sent:] if path.startswith("/openapi/v3/api/v1")]
        assert read_again == [], "an unchanged document is not read again"

        no_index = fault_proxy.respond(403, r"^/openapi/v3$")
        blind = SchemaCache(client, max_age=600, min_refresh_interval=0)
        for _ in range(3):
            assert (await blind.for_api_versions(["v1"])).group_versions == {}, "no index: compared by names"
        assert no_index.hits == 1, "an index that cannot be read is not asked for at every pass"
        assert "cannot read the API's OpenAPI index" in caplog.text
