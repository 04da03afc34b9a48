"""The CRDs in a real API server: good specs are accepted and defaulted, bad ones refused with a reason."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from moor import binaries
from moor.crds import load_crds
from tests.support.cluster_fixtures import Kubectl

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
COMMIT = "3f2a" * 10


@pytest.fixture(scope="module")
def crds(cluster: object, kubectl: Kubectl) -> None:
    """Installs Moor's CRDs once; they stay for the rest of the session (other tests use them too)."""
    kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=moor",
        "-f",
        "-",
        input=yaml.safe_dump_all(load_crds()),
    )
    names = [f"crd/{crd['metadata']['name']}" for crd in load_crds()]
    kubectl("wait", "--for=condition=Established", "--timeout=60s", *names)


def gitrepository(name: str = "apps", **spec: Any) -> dict[str, Any]:
    spec.setdefault("url", "https://git.example.com/org/apps.git")
    spec.setdefault("ref", {"branch": "main"})
    return {"apiVersion": "moor.dev/v1", "kind": "GitRepository", "metadata": {"name": name}, "spec": spec}


def sync(name: str = "guestbook", **spec: Any) -> dict[str, Any]:
    spec.setdefault("sourceRef", {"name": "apps"})
    return {"apiVersion": "moor.dev/v1", "kind": "Sync", "metadata": {"name": name}, "spec": spec}


def create(kubectl: Kubectl, namespace: str, *objects: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    return kubectl("create", "-n", namespace, "-f", "-", check=False, input=yaml.safe_dump_all(objects))


def read(kubectl: Kubectl, namespace: str, resource: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(kubectl("get", "-n", namespace, resource, "-o", "json").stdout)
    return result


def refused(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, f"the API server accepted it:\n{result.stdout}"
    return result.stderr


def test_the_api_examples_are_accepted(crds: None, kubectl: Kubectl, namespace: str) -> None:
    source = gitrepository(
        interval="1m",
        timeout="60s",
        secretRef={"name": "git-auth"},
        verify={"mode": "HEAD", "secretRef": {"name": "trusted-keys"}},
        suspend=False,
    )
    target = sync(
        sourceRef={"kind": "GitRepository", "name": "apps", "namespace": namespace},
        path="./guestbook",
        helm={"valuesFiles": ["values-production.yaml"], "values": {}, "releaseName": "guestbook"},
        targetNamespace="guestbook",
        interval="5m",
        retryInterval="30s",
        timeout="3m",
        prune=True,
        allowEmpty=False,
        wait=True,
        force=False,
        dependsOn=[{"name": "infra"}],
        serviceAccountName="tenant-a",
        drift={"mode": "correct", "ignore": [{"kind": "Deployment", "name": "web", "paths": ["/spec/replicas"]}]},
        rollback={"onFailure": True},
        approval={"mode": "auto"},
        suspend=False,
    )
    result = create(kubectl, namespace, source, target)
    assert result.returncode == 0, result.stderr
    assert read(kubectl, namespace, "sync/guestbook")["spec"] == target["spec"]


@pytest.mark.parametrize(
    "ref", [{"tag": "v1.4.2"}, {"semver": ">=1.0.0 <2.0.0"}, {"commit": COMMIT}], ids=["tag", "semver", "commit"]
)
def test_each_kind_of_ref_is_accepted(crds: None, kubectl: Kubectl, namespace: str, ref: dict[str, str]) -> None:
    result = create(kubectl, namespace, gitrepository(url="git@example.com:org/apps.git", ref=ref))
    assert result.returncode == 0, result.stderr


def test_the_api_server_fills_in_the_defaults(crds: None, kubectl: Kubectl, namespace: str) -> None:
    source = gitrepository(verify={"secretRef": {"name": "keys"}})
    minimal = sync(drift={}, rollback={}, approval={})
    assert create(kubectl, namespace, source, minimal).returncode == 0

    assert read(kubectl, namespace, "gitrepository/apps")["spec"] == {
        "url": "https://git.example.com/org/apps.git",
        "ref": {"branch": "main"},
        "interval": "1m",
        "timeout": "60s",
        "verify": {"mode": "HEAD", "secretRef": {"name": "keys"}},
        "suspend": False,
    }
    assert read(kubectl, namespace, "sync/guestbook")["spec"] == {
        "sourceRef": {"kind": "GitRepository", "name": "apps"},
        "path": "./",
        "interval": "5m",
        "retryInterval": "30s",
        "timeout": "3m",
        "prune": True,
        "allowEmpty": False,
        "wait": True,
        "force": False,
        "drift": {"mode": "correct"},
        "rollback": {"onFailure": False},
        "approval": {"mode": "auto"},
        "suspend": False,
    }


@pytest.mark.parametrize(
    ("obj", "reason"),
    [
        (
            gitrepository(ref={"branch": "main", "tag": "v1"}),
            "ref must set exactly one of branch, tag, semver or commit",
        ),
        (gitrepository(ref={}), "ref must set exactly one of branch, tag, semver or commit"),
        (gitrepository(ref={"commit": "abc123"}), "spec.ref.commit in body should match"),
        (gitrepository(ref={"branch": "-upload-pack=x"}), "spec.ref.branch in body should match"),
        (gitrepository(interval="5 minutes"), "spec.interval in body should match"),
        (gitrepository(interval="0s"), "interval must be longer than zero"),
        (gitrepository(url="ftp://example.com/apps.git"), "url must be an http(s)://, ssh:// or file:// URL"),
        (gitrepository(url="ssh://-oProxyCommand=x/apps"), "url must be an http(s)://, ssh:// or file:// URL"),
        (gitrepository(verify={"mode": "Commit", "secretRef": {"name": "k"}}), 'Unsupported value: "Commit"'),
        (gitrepository(verify={"mode": "HEAD"}), "spec.verify.secretRef: Required value"),
        (gitrepository(secretRef={"name": "Git_Auth"}), "spec.secretRef.name in body should match"),
        (sync(drift={"mode": "fix"}), 'spec.drift.mode: Unsupported value: "fix"'),
        (sync(approval={"mode": "yes"}), 'spec.approval.mode: Unsupported value: "yes"'),
        (sync(sourceRef={"kind": "Bucket", "name": "apps"}), 'spec.sourceRef.kind: Unsupported value: "Bucket"'),
        (sync(sourceRef={}), "spec.sourceRef.name: Required value"),
        (sync(timeout="3min"), "spec.timeout in body should match"),
        (sync(retryInterval="-30s"), "spec.retryInterval in body should match"),
        (sync(path="./apps/../../etc"), "path must not contain '..' segments"),
        (sync(helm={"valuesFiles": ["../values.yaml"]}), "valuesFiles must not contain '..' segments"),
        (sync(path="/etc"), "path must be relative to the repository root: absolute paths are not allowed"),
        (sync(helm={"valuesFiles": ["/etc/passwd"]}), "valuesFiles must be relative to the chart: absolute paths"),
        (sync(targetNamespace="Guest_Book"), "spec.targetNamespace in body should match"),
        (sync(drift={"ignore": [{"kind": "Deployment", "paths": ["spec/replicas"]}]}), "should match"),
        (sync(prune="yes"), "spec.prune: Invalid value"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_bad_specs_are_refused_with_a_reason(
    crds: None, kubectl: Kubectl, namespace: str, obj: dict[str, Any], reason: str
) -> None:
    assert reason in refused(create(kubectl, namespace, obj))


def test_a_malformed_duration_gets_one_error_not_two(crds: None, kubectl: Kubectl, namespace: str) -> None:
    message = refused(create(kubectl, namespace, gitrepository(interval="5 minutes")))
    assert "spec.interval in body should match" in message
    assert "longer than zero" not in message


def test_get_shows_revision_ready_and_message(crds: None, kubectl: Kubectl, namespace: str) -> None:
    assert create(kubectl, namespace, gitrepository(), sync()).returncode == 0
    revision = f"main@sha1:{COMMIT}"
    status = {
        "observedGeneration": 1,
        "lastAppliedRevision": revision,
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "observedGeneration": 1,
                "lastTransitionTime": "2026-11-26T10:00:00Z",
                "reason": "Succeeded",
                "message": f"Applied revision {revision}",
            }
        ],
    }
    kubectl(
        "patch",
        "-n",
        namespace,
        "sync/guestbook",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )

    table = kubectl("get", "syncs", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "REVISION", "READY", "STATUS", "AGE"]
    assert table[1].split()[:6] == ["guestbook", revision, "True", "Applied", "revision", revision]

    wide = kubectl("get", "syncs", "-n", namespace, "-o", "wide").stdout.splitlines()
    assert wide[0].split()[:4] == ["NAME", "SOURCE", "PATH", "REVISION"]

    waited = kubectl("wait", "-n", namespace, "--for=condition=Ready", "sync/guestbook", "--timeout=10s")
    assert "condition met" in waited.stdout

    assert kubectl("get", "moor", "-n", namespace, "-o", "name").stdout.split() == [
        "gitrepository.moor.dev/apps",
        "sync.moor.dev/guestbook",
    ]


def test_status_is_a_subresource_and_stays_open(crds: None, kubectl: Kubectl, namespace: str) -> None:
    # Suspended, so a controller running in the same cluster leaves its status to this test.
    assert create(kubectl, namespace, gitrepository(suspend=True)).returncode == 0
    status = {
        "artifact": {"revision": f"main@sha1:{COMMIT}", "fetchedAt": "2026-11-26T10:00:00Z", "verified": False},
        "futureField": {"kept": True},
    }
    kubectl(
        "patch",
        "-n",
        namespace,
        "gitrepository/apps",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )
    # A status written through the main resource is ignored; a spec change bumps the generation.
    kubectl(
        "patch",
        "-n",
        namespace,
        "gitrepository/apps",
        "--type=merge",
        "-p",
        json.dumps({"spec": {"interval": "2m"}, "status": {"artifact": {"revision": "other"}}}),
    )
    live = read(kubectl, namespace, "gitrepository/apps")
    assert live["status"] == status
    assert live["metadata"]["generation"] == 2
    assert (
        kubectl("get", "gitrepositories", "-n", namespace).stdout.splitlines()[1].split()[1]
        == status["artifact"]["revision"]
    )


def test_helm_values_keep_any_shape(crds: None, kubectl: Kubectl, namespace: str) -> None:
    values = {"replicaCount": 3, "image": {"tag": "1.2.3"}, "extra": [{"name": "a", "value": None}]}
    assert create(kubectl, namespace, sync(helm={"values": values})).returncode == 0
    assert read(kubectl, namespace, "sync/guestbook")["spec"]["helm"]["values"] == values


def in_namespace(objects: list[dict[str, Any]], namespace: str) -> list[dict[str, Any]]:
    """The objects moved into the test's namespace, without Namespace objects of their own."""
    moved = []
    for obj in objects:
        if obj["kind"] == "Namespace":
            continue
        if obj["kind"] in ("ClusterRoleBinding", "RoleBinding"):
            for subject in obj.get("subjects", []):
                subject["namespace"] = namespace
        if obj["kind"] not in ("ClusterRole", "ClusterRoleBinding"):
            obj["metadata"]["namespace"] = namespace
        moved.append(obj)
    return moved


def kustomize_build(directory: Path) -> list[dict[str, Any]]:
    kustomize = binaries.locate("kustomize")
    result = subprocess.run(
        [str(kustomize), "build", str(directory)], capture_output=True, text=True, check=True, timeout=60
    )
    return [document for document in yaml.safe_load_all(result.stdout) if document]


@pytest.mark.parametrize(
    "directory",
    ["src/moor/manifests", "examples/guestbook/overlays/dev", "examples/guestbook/overlays/production"],
)
def test_the_shipped_manifests_pass_server_side_validation(
    crds: None, kubectl: Kubectl, namespace: str, directory: str
) -> None:
    objects = in_namespace(kustomize_build(ROOT / directory), namespace)
    result = kubectl("apply", "--dry-run=server", "-f", "-", check=False, input=yaml.safe_dump_all(objects))
    assert result.returncode == 0, result.stderr


def test_the_example_sync_pair_is_accepted(crds: None, kubectl: Kubectl, namespace: str) -> None:
    objects = in_namespace(list(yaml.safe_load_all((ROOT / "examples" / "sync.yaml").read_text())), namespace)
    result = kubectl("apply", "-f", "-", check=False, input=yaml.safe_dump_all(objects))
    assert result.returncode == 0, result.stderr
