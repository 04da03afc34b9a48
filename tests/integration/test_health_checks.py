"""A Sync's own CEL health checks (spec.healthChecks) judge the custom resources it applies: a
cert-manager-like Certificate is Progressing until its status says Ready, a failing check fails the
revision (and rolls it back when asked), and an expression that does not compile is reported at once."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import yaml

from tests.support.git_fixtures import GitWorkspace
from tests.support.moor_fixtures import Moor, config_map, manifest


def certificates_crd(group: str) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"certificates.{group}"},
        "spec": {
            "group": group,
            "names": {"kind": "Certificate", "plural": "certificates", "singular": "certificate"},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                }
            ],
        },
    }


@pytest.fixture
def group(moor: Moor) -> Any:
    name = f"{moor.namespace}.certs.example.com"
    moor.kubectl("apply", "-f", "-", input=manifest(certificates_crd(name)))
    moor.wait_for(
        "the Certificate CRD established",
        lambda: moor.kubectl("get", f"certificates.{name}", "-n", moor.namespace, check=False).returncode == 0,
        60,
    )
    yield name
    moor.kubectl("delete", "crd", f"certificates.{name}", "--wait=false", check=False)


def certificate(group: str) -> dict[str, Any]:
    return {"apiVersion": f"{group}/v1", "kind": "Certificate", "metadata": {"name": "web-tls"}, "spec": {"dns": "x"}}


def checks(group: str) -> str:
    ready = "status.?conditions.orValue([]).exists(c, c.type == 'Ready' && c.status == '{}')"
    entry = {
        "apiVersion": f"{group}/v1",
        "kind": "Certificate",
        "inProgress": "status.?conditions.orValue([]).exists(c, c.type == 'Issuing' && c.status == 'True')",
        "failed": ready.format("False"),
        "current": ready.format("True"),
    }
    return yaml.safe_dump({"healthChecks": [entry]})


def set_status(moor: Moor, group: str, **conditions: str) -> None:
    listed = [
        {"type": kind, "status": status, "reason": "Test", "message": kind} for kind, status in conditions.items()
    ]
    moor.kubectl(
        "patch", f"certificates.{group}", "web-tls", "-n", moor.namespace, "--subresource=status",
        "--type=merge", "-p", json.dumps({"status": {"conditions": listed}}),
    )  # fmt: skip


def test_a_custom_resource_is_progressing_until_its_cel_check_says_current(
    moor: Moor, git_repo: GitWorkspace, group: str
) -> None:
    git_repo.write("app/cert.yaml", manifest(certificate(group)))
    git_repo.commit("a certificate")
    git_repo.push()
    moor.source_and_sync(git_repo, "./app", sync_spec=checks(group) + "timeout: 5m\n")
    moor.wait_for("the certificate applied", lambda: moor.exists(f"certificates.{group}", "web-tls"), 90)

    time.sleep(4)  # by the built-in rules an object without conditions is healthy as soon as it exists
    assert (moor.condition("sync", "app") or {}).get("status") != "True", "not current by its CEL check yet"
    set_status(moor, group, Issuing="True", Ready="False")
    time.sleep(3)  # inProgress is asked before failed: still waiting
    assert (moor.condition("sync", "app") or {}).get("status") != "False"
    set_status(moor, group, Ready="True")

    moor.wait_condition("sync", "app", "True", timeout=120)
    tree = json.loads(moor.cli("tree", "sync", "app", "-o", "json").stdout)
    row = next(row for row in tree if row["name"] == "web-tls")
    assert row["health"] == "Healthy" and "CEL health check" in row["message"], "moor tree judges it the same way"


def test_a_failing_cel_check_fails_the_revision_and_it_is_rolled_back(
    moor: Moor, git_repo: GitWorkspace, group: str
) -> None:
    git_repo.write("app/settings.yaml", manifest(config_map("settings", {"version": "1"})))
    git_repo.commit("version 1")
    git_repo.push()
    moor.source_and_sync(git_repo, "./app", sync_spec=checks(group) + "timeout: 5m\nrollback: {onFailure: true}\n")
    moor.wait_condition("sync", "app", "True", timeout=120)

    git_repo.write("app/cert.yaml", manifest(certificate(group)))
    git_repo.commit("a certificate that will fail")
    git_repo.push()
    moor.reconcile()
    moor.wait_for("the certificate applied", lambda: moor.exists(f"certificates.{group}", "web-tls"), 90)
    set_status(moor, group, Ready="False")

    condition = moor.wait_condition("sync", "app", "False", reason="RolledBack", timeout=120)
    assert "HealthCheckFailed" in condition["message"] or "failed its CEL health check" in condition["message"]
    moor.wait_for("the failed revision's certificate gone", lambda: not moor.exists(f"certificates.{group}", "web-tls"))


def test_an_expression_that_does_not_compile_is_reported_at_once(moor: Moor, git_repo: GitWorkspace) -> None:
    git_repo.write("app/settings.yaml", manifest(config_map("settings", {"version": "1"})))
    git_repo.commit("version 1")
    git_repo.push()
    bad = {"apiVersion": "example.com/v1", "kind": "Widget", "current": "status.conditions.exists("}
    moor.source_and_sync(git_repo, "./app", sync_spec=yaml.safe_dump({"healthChecks": [bad], "timeout": "30m"}))

    condition = moor.wait_condition("sync", "app", "False", timeout=60)
    assert "spec.healthChecks[0]" in condition["message"]
    assert "status.conditions.exists(" in condition["message"]
    assert not moor.exists("configmap", "settings"), "nothing is applied with a spec that cannot be used"


def test_a_sync_that_declares_itself_does_not_wait_for_its_own_health(moor: Moor, git_repo: GitWorkspace) -> None:
    spec = {"sourceRef": {"kind": "GitRepository", "name": "app"}, "path": "./app", "interval": "1h"}
    spec |= {"retryInterval": "2s", "timeout": "20s"}
    itself = {"apiVersion": "moor.dev/v1", "kind": "Sync", "metadata": {"name": "app"}, "spec": spec}
    git_repo.write("app/all.yaml", manifest(itself, config_map("settings", {"version": "1"})))
    git_repo.commit("a Sync that declares itself, waiting for health (the default)")
    git_repo.push()
    moor.source_and_sync(git_repo, "./app", sync_spec=yaml.safe_dump({"timeout": "20s"}))

    moor.wait_condition("sync", "app", "True", revision=git_repo.head, timeout=120)
    assert moor.exists("configmap", "settings")
