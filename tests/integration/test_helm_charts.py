"""Syncs of charts from a HelmRepository: the real chart server (HTTPS, Basic auth, `helm package` and
`helm repo index`) serves the charts; a newer version inside the Sync's range rolls in like a new
commit; values from ConfigMaps and Secrets reach the chart, and a Secret's values are never shown; the
chart sees the cluster's API versions and whether it is an install or an upgrade."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from tests.support.cluster_fixtures import Kubectl
from tests.support.moor_fixtures import ControllerProcess, Moor, manifest
from tests.support.registry_fixtures import ChartServer

MONITORING_CRD = "servicemonitors.monitoring.coreos.com"

TEMPLATES = {
    "settings.yaml": """
apiVersion: v1
kind: ConfigMap
metadata:
  name: app-settings
data:
  version: {{ .Chart.Version | quote }}
  color: {{ .Values.color | quote }}
  size: {{ .Values.size | quote }}
  install: {{ .Release.IsInstall | quote }}
""",
    "credentials.yaml": """
{{- if .Values.password }}
apiVersion: v1
kind: Secret
metadata:
  name: app-credentials
stringData:
  password: {{ .Values.password | quote }}
{{- end }}
""",
    "check.yaml": """
{{- if .Values.breakIt }}
{{- fail (printf "refusing the password %s" .Values.password) }}
{{- end }}
""",
    "monitor.yaml": """
{{- if .Capabilities.APIVersions.Has "monitoring.coreos.com/v1" }}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: app
spec:
  selector: {matchLabels: {app: web}}
{{- end }}
""",
}


def write_chart(directory: Path, name: str, version: str, extra: dict[str, str] | None = None) -> Path:
    chart = directory / f"{name}-{version}"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text(f"apiVersion: v2\nname: {name}\nversion: {version}\n")
    (chart / "values.yaml").write_text("color: grey\nsize: small\npassword: ''\nbreakIt: false\n")
    (chart / "values-large.yaml").write_text("size: large\n")
    for file, text in (TEMPLATES | (extra or {})).items():
        (chart / "templates" / file).write_text(text)
    return chart


def chart_name(moor: Moor) -> str:
    """Unique to the test (the chart server is shared by the session): its namespace's hash suffix."""
    return f"web-{moor.namespace.rsplit('-', 1)[-1]}"


def repository_and_sync(moor: Moor, server: ChartServer, chart: str, version: str, **extra: Any) -> None:
    secret = {key: base64.b64encode(value).decode() for key, value in server.basic_auth_secret().items()}
    ca = base64.b64encode(server.ca_bundle.read_bytes()).decode()
    spec: dict[str, Any] = {
        "sourceRef": {"kind": "HelmRepository", "name": "charts"},
        "chart": {"name": chart, "version": version},
        "interval": "1h",
        "retryInterval": "2s",
        "timeout": "30s",
        **extra,
    }
    moor.apply(
        manifest(
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "chart-auth"}, "data": secret},
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "chart-ca"}, "data": {"ca.crt": ca}},
            {
                "apiVersion": "moor.dev/v1",
                "kind": "HelmRepository",
                "metadata": {"name": "charts"},
                "spec": {
                    "url": server.url,
                    "interval": "1h",
                    "secretRef": {"name": "chart-auth"},
                    "certSecretRef": {"name": "chart-ca"},
                },
            },
            {"apiVersion": "moor.dev/v1", "kind": "Sync", "metadata": {"name": "app"}, "spec": spec},
        )
    )


def settings(moor: Moor) -> dict[str, str]:
    return dict(((moor.get("configmap", "app-settings") or {}).get("data")) or {})


def patch_sync(moor: Moor, spec: dict[str, Any]) -> None:
    moor.kubectl("patch", "sync", "app", "-n", moor.namespace, "--type", "merge", "-p", json.dumps({"spec": spec}))


def applied_revision(moor: Moor) -> str:
    return str(((moor.get("sync", "app") or {}).get("status") or {}).get("lastAppliedRevision") or "")


def revision_prefix(chart: str, version: str) -> str:
    return f"{chart}@{version}@sha256:"


def test_a_chart_installs_and_a_newer_version_in_the_range_rolls_in(
    moor: Moor, chart_server: ChartServer, tmp_path: Path
) -> None:
    chart = chart_name(moor)
    chart_server.publish(write_chart(tmp_path, chart, "1.0.0"))
    repository_and_sync(moor, chart_server, chart, "^1.0.0", helm={"valuesFiles": ["values-large.yaml"]})

    moor.wait_condition("sync", "app", "True", revision=revision_prefix(chart, "1.0.0"), timeout=120)
    assert settings(moor) == {"version": "1.0.0", "color": "grey", "size": "large", "install": "true"}

    chart_server.publish(write_chart(tmp_path, chart, "2.0.0"))  # outside the range
    chart_server.publish(write_chart(tmp_path, chart, "1.1.0"))
    assert moor.reconcile().returncode == 0
    moor.wait_condition("sync", "app", "True", revision=revision_prefix(chart, "1.1.0"), timeout=120)
    assert applied_revision(moor).startswith(revision_prefix(chart, "1.1.0"))
    # the release was installed before: an upgrade now
    assert settings(moor) == {"version": "1.1.0", "color": "grey", "size": "large", "install": "false"}

    history = moor.cli("history", "sync", "app", "-o", "jsonl")
    assert history.returncode == 0, history.stderr
    revisions = [json.loads(line)["revision"] for line in history.stdout.splitlines() if line.strip()]
    assert any(revision.startswith(revision_prefix(chart, "1.0.0")) for revision in revisions)
    assert any(revision.startswith(revision_prefix(chart, "1.1.0")) for revision in revisions)
    assert not any(revision.startswith(revision_prefix(chart, "2.0.0")) for revision in revisions)


NEVER_READY = {
    "web.yaml": manifest(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web", "moor.dev/never-ready": "true"}},
                    "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
                },
            },
        }
    )
}


def test_a_new_chart_version_waits_for_approval_and_an_unhealthy_one_is_rolled_back(
    moor: Moor, chart_server: ChartServer, tmp_path: Path
) -> None:
    chart = chart_name(moor)
    chart_server.publish(write_chart(tmp_path, chart, "1.0.0"))
    gates = {"approval": {"mode": "manual"}, "rollback": {"onFailure": True}, "timeout": "10s"}
    repository_and_sync(moor, chart_server, chart, "^1.0.0", **gates)

    def pending() -> str:
        return str(((moor.get("sync", "app") or {}).get("status") or {}).get("pendingRevision") or "")

    moor.wait_condition("sync", "app", "True", type_="AwaitingApproval", revision=revision_prefix(chart, "1.0.0"))
    assert not moor.exists("configmap", "app-settings")
    assert moor.cli("approve", "sync", "app", "--revision", pending()).returncode == 0
    moor.wait_condition("sync", "app", "True", revision=revision_prefix(chart, "1.0.0"), timeout=120)
    healthy = applied_revision(moor)

    chart_server.publish(write_chart(tmp_path, chart, "1.1.0", NEVER_READY))
    moor.reconcile()
    moor.wait_condition("sync", "app", "True", type_="AwaitingApproval", revision=revision_prefix(chart, "1.1.0"))
    assert settings(moor)["version"] == "1.0.0"  # held until approved
    assert moor.cli("approve", "sync", "app", "--revision", pending()).returncode == 0
    condition = moor.wait_condition("sync", "app", "False", reason="RolledBack", timeout=120)
    assert revision_prefix(chart, "1.1.0") in condition["message"]
    status = (moor.get("sync", "app") or {})["status"]
    assert status["rollback"]["failedRevision"].startswith(revision_prefix(chart, "1.1.0"))
    assert status["lastAppliedRevision"] == healthy
    assert settings(moor)["version"] == "1.0.0"
    assert not moor.exists("deployment", "web"), "what the failed version added is removed"


def test_a_range_that_matches_nothing_fails_the_sync_naming_chart_and_range(
    moor: Moor, chart_server: ChartServer, tmp_path: Path
) -> None:
    chart = chart_name(moor)
    chart_server.publish(write_chart(tmp_path, chart, "1.0.0"))
    repository_and_sync(moor, chart_server, chart, ">=5.0.0 <6.0.0")
    condition = moor.wait_condition("sync", "app", "False", reason="ArtifactFailed", timeout=120)
    assert chart in condition["message"]
    assert ">=5.0.0 <6.0.0" in condition["message"]
    assert not moor.exists("configmap", "app-settings")


def test_values_from_config_maps_and_secrets_reach_the_chart_and_secret_values_are_never_shown(
    moor: Moor, chart_server: ChartServer, controller: ControllerProcess, tmp_path: Path
) -> None:
    marker = f"marker-{moor.namespace}-s3cr3t"
    chart = chart_name(moor)
    chart_server.publish(write_chart(tmp_path, chart, "1.0.0"))
    moor.apply(
        manifest(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "web-values"},
                "data": {"values.yaml": "color: blue\nsize: medium\n"},
            },
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "web-secrets"},
                "stringData": {"prod.yaml": f"password: {marker}\n"},
            },
        )
    )
    values_from = [
        {"kind": "ConfigMap", "name": "web-values"},
        {"kind": "Secret", "name": "web-secrets", "key": "prod.yaml"},
        {"kind": "ConfigMap", "name": "not-there", "optional": True},
    ]
    repository_and_sync(moor, chart_server, chart, "1.0.0", helm={"valuesFrom": values_from, "values": {"size": "xl"}})
    moor.wait_condition("sync", "app", "True", revision=revision_prefix(chart, "1.0.0"), timeout=120)
    assert settings(moor)["color"] == "blue"  # the ConfigMap over the chart's defaults
    assert settings(moor)["size"] == "xl"  # inline values last
    credentials = moor.get("secret", "app-credentials") or {}
    assert base64.b64decode(credentials["data"]["password"]).decode() == marker  # it reached the object

    # A render error that quotes the Secret's value: the failure is reported without it.
    patch_sync(moor, {"helm": {"values": {"size": "xl", "breakIt": True}}})
    failed = moor.wait_condition("sync", "app", "False", reason="BuildFailed", timeout=120)
    assert "refusing the password ***" in failed["message"]

    # A missing valuesFrom object that is not optional fails the Sync naming it.
    gone = {"kind": "Secret", "name": "gone"}
    patch_sync(moor, {"helm": {"values": {"size": "xl"}, "valuesFrom": [*values_from, gone]}})
    expected = f"the Secret {moor.namespace}/gone (key values.yaml) of spec.helm.valuesFrom does not exist"
    moor.wait_for(
        "the missing Secret named", lambda: expected in (moor.condition("sync", "app") or {}).get("message", "")
    )

    shown = {
        "status": json.dumps(moor.get("sync", "app")),
        "events": moor.kubectl("get", "events", "-n", moor.namespace, "-o", "json").stdout,
        "history": moor.kubectl("get", "syncrecords", "-n", moor.namespace, "-o", "json").stdout,
        "moor history": moor.cli("history", "sync", "app", "-o", "jsonl").stdout,
        "moor events": moor.cli("events", "sync", "app").stdout,
        "controller log": controller.log(),
    }
    leaked = [where for where, text in shown.items() if marker in text]
    assert leaked == []


def test_moor_diff_of_a_chart_with_secret_values_never_shows_them(
    moor: Moor, chart_server: ChartServer, tmp_path: Path
) -> None:
    marker = f"marker-{moor.namespace}-diff"
    chart = chart_name(moor)
    chart_server.publish(write_chart(tmp_path, chart, "1.0.0"))
    moor.apply(
        manifest(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "web-secrets"},
                "stringData": {"values.yaml": f"password: {marker}\n"},
            },
        )
    )
    repository_and_sync(
        moor,
        chart_server,
        chart,
        "1.0.0",
        helm={"valuesFrom": [{"kind": "Secret", "name": "web-secrets"}]},
        drift={"mode": "alert"},  # the hand edit stays, for the diff to show (correct mode puts it back at once)
    )
    moor.wait_condition("sync", "app", "True", revision=revision_prefix(chart, "1.0.0"), timeout=120)
    moor.kubectl(
        "patch", "secret", "app-credentials", "-n", moor.namespace, "-p", '{"stringData":{"password":"changed"}}'
    )
    diff = moor.cli("diff", "sync", "app")
    assert diff.returncode == 1, diff.stderr
    assert "app-credentials would be changed" in diff.stdout
    assert marker not in diff.stdout + diff.stderr


def test_the_chart_sees_api_versions_the_cluster_serves(
    moor: Moor, chart_server: ChartServer, kubectl: Kubectl, tmp_path: Path
) -> None:
    kubectl("delete", "crd", MONITORING_CRD, "--ignore-not-found", "--wait=true")
    chart = chart_name(moor)
    chart_server.publish(write_chart(tmp_path, chart, "1.0.0"))
    repository_and_sync(moor, chart_server, chart, "1.0.0")
    moor.wait_condition("sync", "app", "True", revision=revision_prefix(chart, "1.0.0"), timeout=120)
    assert settings(moor)["version"] == "1.0.0"
    assert kubectl("get", "crd", MONITORING_CRD, check=False).returncode != 0
    try:
        kubectl("apply", "-f", "-", input=manifest(monitoring_crd()))
        kubectl("wait", "--for=condition=Established", f"crd/{MONITORING_CRD}", "--timeout=60s")
        assert moor.reconcile(with_source=False).returncode == 0
        monitor = moor.wait_for(
            "the ServiceMonitor", lambda: moor.get("servicemonitors.monitoring.coreos.com", "app"), 120
        )
        assert monitor["metadata"]["labels"]["moor.dev/sync"] == f"{moor.namespace}.app"
    finally:
        kubectl("delete", "sync", "app", "-n", moor.namespace, "--wait=true", check=False)
        kubectl("delete", "crd", MONITORING_CRD, "--ignore-not-found", check=False)


def monitoring_crd() -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": MONITORING_CRD},
        "spec": {
            "group": "monitoring.coreos.com",
            "names": {"kind": "ServiceMonitor", "plural": "servicemonitors", "singular": "servicemonitor"},
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
