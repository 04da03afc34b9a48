"""The local control plane behaves like a real cluster: workloads run, controllers clean up, RBAC holds,
and bad input to `moor cluster up` fails with one clear sentence and leaves nothing running."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from moor.devcluster import (
    NEVER_READY_LABEL,
    ClusterAlreadyRunning,
    ClusterInfo,
    ComponentCrashed,
    PortInUse,
    cluster_status,
    start_cluster,
)
from moor.devcluster.processes import pids_mentioning
from tests.support.cluster_fixtures import Kubectl

pytestmark = pytest.mark.cluster


def deployment(name: str, replicas: int, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name, **(labels or {})}},
                "spec": {"containers": [{"name": "main", "image": "registry.example/web:1.0"}]},
            },
        },
    }


def create(kubectl: Kubectl, namespace: str, *objects: dict[str, Any]) -> None:
    kubectl("create", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(objects))


def get(kubectl: Kubectl, namespace: str, *what: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(kubectl("get", "-n", namespace, *what, "-o", "json").stdout)
    return result


def eventually(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {timeout:.0f}s waiting for {what}")
        time.sleep(0.25)


def condition(obj: dict[str, Any], kind: str) -> str | None:
    for entry in obj.get("status", {}).get("conditions", []):
        if entry["type"] == kind:
            return str(entry["status"])
    return None


def pods_of(kubectl: Kubectl, namespace: str, app: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = get(kubectl, namespace, "pods", "-l", f"app={app}")["items"]
    return items


def test_a_deployment_gets_pods_on_kwok_nodes_and_becomes_available(
    cluster: ClusterInfo, kubectl: Kubectl, namespace: str
) -> None:
    create(kubectl, namespace, deployment("web", replicas=3))

    kubectl("wait", "-n", namespace, "--for=condition=Available", "deployment/web", "--timeout=60s")

    nodes = json.loads(kubectl("get", "nodes", "-o", "json").stdout)["items"]
    kwok_nodes = {n["metadata"]["name"] for n in nodes if n["metadata"]["annotations"].get("kwok.x-k8s.io/node")}
    assert kwok_nodes == set(cluster.nodes)
    pods = pods_of(kubectl, namespace, "web")
    assert len(pods) == 3
    for pod in pods:
        assert pod["spec"]["nodeName"] in kwok_nodes
        assert pod["status"]["phase"] == "Running"
        assert condition(pod, "Ready") == "True"


def test_a_deployment_of_never_ready_pods_stays_unavailable(kubectl: Kubectl, namespace: str) -> None:
    create(kubectl, namespace, deployment("sick", replicas=2, labels={NEVER_READY_LABEL: "true"}))

    def both_running() -> bool:
        pods = pods_of(kubectl, namespace, "sick")
        return len(pods) == 2 and all(pod["status"].get("phase") == "Running" for pod in pods)

    eventually(both_running, "the never-ready pods to run")
    time.sleep(3)  # time enough for a Ready pod to have been counted available

    pods = pods_of(kubectl, namespace, "sick")
    assert [pod["status"]["phase"] for pod in pods] == ["Running", "Running"]
    assert [condition(pod, "Ready") for pod in pods] == ["False", "False"]
    live = get(kubectl, namespace, "deployment/sick")
    assert live["status"].get("availableReplicas", 0) == 0
    assert condition(live, "Available") == "False"


def test_a_job_completes(kubectl: Kubectl, namespace: str) -> None:
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "migrate"},
        "spec": {
            "template": {
                "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "registry.example/m:1"}]}
            }
        },
    }
    create(kubectl, namespace, job)

    kubectl("wait", "-n", namespace, "--for=condition=Complete", "job/migrate", "--timeout=60s")

    pods = get(kubectl, namespace, "pods", "-l", "job-name=migrate")["items"]
    assert [pod["status"]["phase"] for pod in pods] == ["Succeeded"]


def test_deleting_a_namespace_completes(kubectl: Kubectl, namespace: str) -> None:
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}, "data": {"a": "1"}}
    create(kubectl, namespace, deployment("web", replicas=2), config)
    kubectl("wait", "-n", namespace, "--for=condition=Available", "deployment/web", "--timeout=60s")

    kubectl("delete", "namespace", namespace, "--timeout=90s", timeout=120)

    gone = kubectl("get", "namespace", namespace, check=False)
    assert gone.returncode != 0
    assert "NotFound" in gone.stderr


def test_deleting_an_owner_removes_its_dependents(kubectl: Kubectl, namespace: str) -> None:
    create(kubectl, namespace, deployment("web", replicas=2))
    kubectl("wait", "-n", namespace, "--for=condition=Available", "deployment/web", "--timeout=60s")
    assert kubectl("get", "-n", namespace, "replicasets,pods", "-l", "app=web", "-o", "name").stdout.split()

    kubectl("delete", "-n", namespace, "deployment/web", "--cascade=background")

    eventually(
        lambda: not kubectl("get", "-n", namespace, "replicasets,pods", "-l", "app=web", "-o", "name").stdout.split(),
        "the garbage collector to delete the ReplicaSet and its Pods",
    )


def test_a_service_account_needs_a_role_to_read_secrets(kubectl: Kubectl, namespace: str) -> None:
    kubectl("create", "serviceaccount", "nobody", "-n", namespace)
    kubectl("create", "serviceaccount", "reader", "-n", namespace)
    kubectl("create", "role", "read-secrets", "--verb=get,list", "--resource=secrets", "-n", namespace)
    kubectl(
        "create", "rolebinding", "reader-reads", "--role=read-secrets",
        f"--serviceaccount={namespace}:reader", "-n", namespace,
    )  # fmt: skip

    denied = kubectl("get", "secrets", "-n", namespace, f"--as=system:serviceaccount:{namespace}:nobody", check=False)
    allowed = kubectl("get", "secrets", "-n", namespace, f"--as=system:serviceaccount:{namespace}:reader", check=False)

    assert denied.returncode != 0
    assert "Forbidden" in denied.stderr
    assert allowed.returncode == 0, allowed.stderr


# Bad input. Each of these starts (part of) its own cluster, so they are few.


def moor(*args: str) -> subprocess.CompletedProcess[str]:
    """The `moor` command line as a user runs it: a separate process."""
    code = "from moor.cli.main import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300, check=False)


def test_a_second_up_in_a_running_clusters_dir_is_refused(cluster: ClusterInfo) -> None:
    with pytest.raises(ClusterAlreadyRunning) as refused:
        start_cluster(cluster.directory)
    assert str(cluster.directory) in str(refused.value)
    assert "moor cluster down" in str(refused.value)

    result = moor("cluster", "up", "--dir", str(cluster.directory))

    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and "already holds a running cluster" in result.stderr
    assert cluster_status(cluster.directory).running


def test_a_port_in_use_is_named_and_nothing_is_left_running(tmp_path: Path) -> None:
    directory = tmp_path / "cluster"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        with pytest.raises(PortInUse) as failed:
            start_cluster(directory, ports={"kube-apiserver": port})

    message = str(failed.value)
    assert "kube-apiserver" in message
    assert f"127.0.0.1:{port}" in message
    assert str(directory / "logs" / "kube-apiserver.log") in message
    assert pids_mentioning(str(directory)) == []


def test_a_component_that_crashes_is_named_with_its_log(tmp_path: Path) -> None:
    directory = tmp_path / "cluster"

    with pytest.raises(ComponentCrashed) as failed:
        start_cluster(directory, extra_args={"kube-apiserver": ["--no-such-flag"]})

    message = str(failed.value)
    assert message.startswith("kube-apiserver exited with code")
    assert str(directory / "logs" / "kube-apiserver.log") in message
    assert "unknown flag: --no-such-flag" in message  # the tail of its log
    assert pids_mentioning(str(directory)) == []
    assert not cluster_status(directory).components


def test_up_status_down_from_the_command_line(cluster: ClusterInfo, tmp_path: Path, kubectl: Kubectl) -> None:
    directory = tmp_path / "second"

    up = moor("cluster", "up", "--dir", str(directory))
    try:
        assert up.returncode == 0, up.stderr
        assert "cluster ready" in up.stdout
        status = moor("cluster", "status", "--dir", str(directory))
        assert status.returncode == 0
        for component in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"):
            assert component in status.stdout
        nodes = Kubectl(kubectl.binary, directory / "kubeconfig")("get", "nodes", "--no-headers").stdout
        assert [line.split()[1] for line in nodes.splitlines()] == ["Ready", "Ready"]
        assert cluster_status(cluster.directory).running  # two clusters run side by side
    finally:
        down = moor("cluster", "down", "--dir", str(directory))

    assert down.returncode == 0, down.stderr
    assert pids_mentioning(str(directory)) == []
    after = moor("cluster", "status", "--dir", str(directory))
    assert after.returncode == 1
