"""Nothing escapes a reconcile, and recovery is fast and honest: a controller whose API server stalls,
goes away, freezes or refuses a list keeps reconciling, says why it cannot, and applies the commit pushed
meanwhile within seconds of the API server's return, without anyone poking it.

These tests run their own control plane and controllers (through the fault proxy, or against the real
API server that a test stops with SIGSTOP), so the faults disturb no other test.
"""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from moor import binaries
from moor.devcluster import ClusterInfo
from tests.support.cluster_fixtures import Kubectl
from tests.support.fault_proxy import FaultProxy
from tests.support.git_fixtures import GitWorkspace
from tests.support.moor_fixtures import (
    ControllerProcess,
    Moor,
    config_map,
    deployment,
    free_port,
    manifest,
    metric_value,
)

REQUEST_TIMEOUT = "2"
"""`moor run --request-timeout`: short, so that stalled requests fail within the test's time."""
RECOVERY = 25.0
"""After the API server answers again, the commit pushed meanwhile is applied within this many seconds."""


@pytest.fixture
def kubectl(private_cluster: ClusterInfo) -> Kubectl:
    """kubectl on the real API server (never through the proxy): what a user sees."""
    return Kubectl(binaries.locate("kubectl"), private_cluster.kubeconfig)


@pytest.fixture
def moor(request: pytest.FixtureRequest, kubectl: Kubectl, private_cluster: ClusterInfo) -> Moor:
    namespace = request.node.name.removeprefix("test_").replace("_", "-")[:50].rstrip("-")
    kubectl("create", "namespace", namespace)
    return Moor(kubectl, private_cluster.kubeconfig, namespace)


@pytest.fixture
def controllers(tmp_path: Path) -> Iterator[list[ControllerProcess]]:
    """The test's controllers, each stopped at the end if it still runs."""
    started: list[ControllerProcess] = []
    yield started
    for controller in started:
        if controller.process is not None and controller.process.poll() is None:
            controller.stop()


def start_controller(
    controllers: list[ControllerProcess], kubeconfig: Path, directory: Path, *extra: str
) -> ControllerProcess:
    controller = ControllerProcess(kubeconfig, directory, "--request-timeout", REQUEST_TIMEOUT, *extra)
    controller.start()
    controllers.append(controller)
    return controller


def publish(repo: GitWorkspace, version: str, count: int = 1) -> None:
    """Commits and pushes `count` ConfigMaps holding `version` (app-config, then item-0001...)."""
    names = ["app-config", *(f"item-{i:04d}" for i in range(1, count))]
    repo.write("app.yaml", manifest(*(config_map(name, {"version": version}) for name in names)))
    repo.commit(version)
    repo.push()


def applied_version(moor: Moor) -> str | None:
    live = moor.get("configmap", "app-config")
    return None if live is None else str((live.get("data") or {}).get("version"))


def synced_at(moor: Moor, version: str, timeout: float) -> None:
    moor.wait_for(f"version {version} applied", lambda: applied_version(moor) == version, timeout=timeout)


def set_up(moor: Moor, repo: GitWorkspace) -> None:
    """v1 in Git, a GitRepository polling every 5 s and a Sync of it, and v1 applied."""
    publish(repo, "v1")
    moor.source_and_sync(repo, source_spec="interval: 5s")
    synced_at(moor, "v1", timeout=60)
    moor.wait_condition("sync", "app", "True", timeout=60)


def records(moor: Moor) -> list[dict[str, Any]]:
    listing = json.loads(moor.kubectl("get", "syncrecords", "-n", moor.namespace, "-o", "json").stdout)
    return sorted((item["spec"] for item in listing["items"]), key=lambda spec: int(spec["sequence"]))


def test_writes_stalled_past_the_request_timeout_then_the_commit_pushed_meanwhile_is_applied_soon(
    moor: Moor, git_repo: GitWorkspace, fault_proxy: FaultProxy, controllers: list[ControllerProcess], tmp_path: Path
) -> None:
    start_controller(controllers, fault_proxy.kubeconfig, tmp_path / "controller")
    set_up(moor, git_repo)

    # Every write (status, apply) now gets no answer within the request timeout, for 45 s: the
    # GitRepository sees the new commit but cannot record it, again and again (its backoff would grow
    # past a minute if nothing capped it).
    fault_proxy.stall(".", seconds=20, method="PATCH")
    publish(git_repo, "v2")
    time.sleep(45)
    assert applied_version(moor) == "v1"
    fault_proxy.clear()

    synced_at(moor, "v2", timeout=RECOVERY)
    moor.wait_condition("sync", "app", "True", revision=git_repo.head, timeout=RECOVERY)


def test_an_unreachable_api_server_is_retried_as_soon_as_it_answers_again(
    moor: Moor, git_repo: GitWorkspace, fault_proxy: FaultProxy, controllers: list[ControllerProcess], tmp_path: Path
) -> None:
    health_port = free_port()
    controller = start_controller(
        controllers, fault_proxy.kubeconfig, tmp_path / "controller", "--health-port", str(health_port)
    )
    set_up(moor, git_repo)

    fault_proxy.refuse()  # connection refused, every watch broken
    publish(git_repo, "v2")
    time.sleep(40)
    unhealthy = healthz(health_port)
    fault_proxy.accept()

    # The watches come back within seconds, and with them every object that failed meanwhile is retried
    # at once (its backoff had grown to 15 s).
    synced_at(moor, "v2", timeout=20)
    assert "the API server answers again; retrying" in controller.log()
    assert unhealthy[0] == 503, unhealthy
    assert "gitrepositories.moor.dev" in unhealthy[1]
    moor.wait_for("/healthz to answer ok again", lambda: healthz(health_port)[0] == 200, timeout=30)


def test_a_frozen_api_server_then_the_commit_pushed_meanwhile_is_applied_soon_after_it_thaws(
    moor: Moor,
    git_repo: GitWorkspace,
    private_cluster: ClusterInfo,
    controllers: list[ControllerProcess],
    tmp_path: Path,
) -> None:
    start_controller(controllers, private_cluster.kubeconfig, tmp_path / "controller")
    set_up(moor, git_repo)

    apiserver = private_cluster.pids["kube-apiserver"]
    os.kill(apiserver, signal.SIGSTOP)
    try:
        publish(git_repo, "v2")
        time.sleep(75)
    finally:
        os.kill(apiserver, signal.SIGCONT)

    synced_at(moor, "v2", timeout=RECOVERY)
    moor.wait_condition("sync", "app", "True", revision=git_repo.head, timeout=RECOVERY)


def test_a_kind_the_controller_may_not_list_fails_the_sync_naming_it_instead_of_hanging(
    moor: Moor, git_repo: GitWorkspace, fault_proxy: FaultProxy, controllers: list[ControllerProcess], tmp_path: Path
) -> None:
    start_controller(controllers, fault_proxy.kubeconfig, tmp_path / "controller")
    fault_proxy.respond(403, r"^/apis/apps/v1/deployments$", message='deployments.apps is forbidden: User "moor"')
    git_repo.write("app.yaml", manifest(deployment("web")))
    git_repo.commit("a Deployment")
    git_repo.push()
    moor.source_and_sync(git_repo)

    failed = moor.wait_condition("sync", "app", "False", reason="WatchFailed", timeout=45)
    assert "deployments.apps" in failed["message"]
    assert "forbidden" in failed["message"]
    assert not moor.exists("deployment", "web")


def test_a_record_cut_off_by_an_outage_says_so(
    moor: Moor, git_repo: GitWorkspace, fault_proxy: FaultProxy, controllers: list[ControllerProcess], tmp_path: Path
) -> None:
    start_controller(controllers, fault_proxy.kubeconfig, tmp_path / "controller", "--apply-concurrency", "1")
    set_up(moor, git_repo)

    # A slow apply of v2 (each object's dry run and write takes a second), and the API server goes away
    # while it is under way: its SyncRecord cannot be closed until the server is back.
    fault_proxy.stall(rf"/namespaces/{moor.namespace}/configmaps/", seconds=1, method="PATCH")
    publish(git_repo, "v2", count=30)
    moor.wait_for("the apply of v2 to start", lambda: reconciling(moor), timeout=60)
    fault_proxy.refuse()
    time.sleep(15)
    fault_proxy.clear()
    fault_proxy.accept()

    synced_at(moor, "v2", timeout=90)
    moor.wait_condition("sync", "app", "True", revision=git_repo.head, timeout=90)
    interrupted = [spec for spec in records(moor) if spec["result"] == "Interrupted"]
    assert interrupted, records(moor)
    assert interrupted[0]["detail"].startswith("interrupted: the API server was unreachable: "), interrupted
    assert not any("the controller stopped" in str(spec.get("detail")) for spec in records(moor))


def test_bookkeeping_moor_cannot_write_is_named_in_the_status(
    moor: Moor, git_repo: GitWorkspace, fault_proxy: FaultProxy, controllers: list[ControllerProcess], tmp_path: Path
) -> None:
    start_controller(controllers, fault_proxy.kubeconfig, tmp_path / "controller")
    set_up(moor, git_repo)

    forbidden = 'syncrecords.moor.dev is forbidden: User "moor" cannot create resource "syncrecords"'
    fault_proxy.respond(403, rf"/namespaces/{moor.namespace}/syncrecords$", method="POST", message=forbidden)
    publish(git_repo, "v2", count=2)  # a new object: its write waits until the attempt is recorded
    failed = moor.wait_condition("sync", "app", "False", reason="RecordFailed", timeout=45)
    assert "could not write a SyncRecord" in failed["message"]
    assert "forbidden" in failed["message"]
    assert applied_version(moor) == "v1"  # nothing is applied that its history would not show

    fault_proxy.clear()
    synced_at(moor, "v2", timeout=60)
    moor.wait_condition("sync", "app", "True", revision=git_repo.head, timeout=60)


def test_a_record_without_time_zones_is_counted_and_the_controller_stops_cleanly(
    moor: Moor, private_cluster: ClusterInfo, controllers: list[ControllerProcess], tmp_path: Path
) -> None:
    # A SyncRecord whose times carry no zone used to kill the delivery-metrics task (a TypeError comparing
    # them), which surfaced only at shutdown (exit 1, tracebacks). Now the times are read as UTC; that the
    # task would be restarted if it failed anyway is in tests/unit/test_supervised.py.
    started = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=1)
    moor.apply(
        manifest(
            {
                "apiVersion": "moor.dev/v1",
                "kind": "SyncRecord",
                "metadata": {"name": "app.000001", "labels": {"moor.dev/sync-name": "app"}},
                "spec": {
                    "sync": "app",
                    "sequence": 1,
                    "revision": "main@sha1:0123456789abcdef0123456789abcdef01234567",
                    "startedAt": started.isoformat(timespec="seconds"),
                    "finishedAt": (started + timedelta(minutes=1)).isoformat(timespec="seconds"),
                    "result": "Succeeded",
                    "trigger": "new revision",
                },
            }
        )
    )
    port = free_port()
    controller = start_controller(
        controllers, private_cluster.kubeconfig, tmp_path / "controller", "--metrics-port", str(port)
    )

    def deployments() -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
        return metric_value(text, "moor_deployments", namespace=moor.namespace, name="app")

    moor.wait_for("the record to be counted as a deployment", lambda: deployments() == 1, timeout=30)
    assert "background task 'delivery metrics' failed" not in controller.log()

    assert controller.stop() == 0
    shutdown = controller.log().rpartition("shutting down")[2]
    assert "Traceback" not in shutdown, shutdown


def reconciling(moor: Moor) -> bool:
    condition = moor.condition("sync", "app", "Reconciling")
    return condition is not None and condition["status"] == "True"


def healthz(port: int) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
