"""pytest fixtures for Moor itself: its CRDs installed once, one `moor run` controller per session,
and a small vocabulary for tests: a Git repository of manifests, a GitRepository + Sync pointing at
it, and waits on what a user would see (conditions, objects, exit codes)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from moor.devcluster import ClusterInfo, start_cluster, stop_cluster
from tests.support.cluster_fixtures import Kubectl
from tests.support.git_fixtures import GitWorkspace

MOOR = [sys.executable, "-m", "moor"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def metric_value(text: str, metric_name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        sample, _, value = line.rpartition(" ")
        metric, _, label_text = sample.partition("{")
        found = ",".join(sorted(label_text.rstrip("}").split(","))) if label_text else ""
        if metric == metric_name and found == wanted:
            return float(value)
    return 0.0


def moor_cli(kubeconfig: Path, *args: str, timeout: float = 180.0) -> subprocess.CompletedProcess[str]:
    """Runs the `moor` command line as a user would, against the test cluster."""
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run([*MOOR, *args], capture_output=True, text=True, timeout=timeout, env=env, check=False)


LOG_TAIL_LINES = 60


class ControllerProcess:
    """`moor run` in a subprocess, its log in a file; stopped with SIGTERM (or killed, for crash tests).

    Every controller started in a test session is remembered, so that a failing test's report ends with
    the tail of the log of each controller it may have run against."""

    started: list[ControllerProcess] = []

    def __init__(self, kubeconfig: Path, directory: Path, *extra: str) -> None:
        self.kubeconfig = kubeconfig
        self.directory = directory
        self.log_path = directory / "moor-run.log"
        self.extra = extra
        self.process: subprocess.Popen[bytes] | None = None
        self.metrics_url = ""

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        starts_before = self.log().count("controller started")
        log = self.log_path.open("ab")
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        argv = [*MOOR, "run", "--artifact-dir", str(self.directory / "artifacts"), *self.extra]
        self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        if self not in ControllerProcess.started:
            ControllerProcess.started.append(self)
        deadline = time.monotonic() + 30
        while self.log().count("controller started") == starts_before:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"moor run did not start:\n{self.log()}")
            time.sleep(0.1)

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    def stop(self) -> int:
        """SIGTERM and wait; returns the exit code (0 for a graceful shutdown)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=10)

    def tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return "\n".join(self.log().splitlines()[-lines:])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    """A failing test's report shows the end of each controller's log (the newest controller first)."""
    report: pytest.TestReport = yield
    if report.failed and call.when == "call":
        for process in reversed(ControllerProcess.started):
            report.sections.append((f"moor run log, last {LOG_TAIL_LINES} lines ({process.log_path})", process.tail()))
    return report


@pytest.fixture(scope="module")
def private_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterInfo]:
    """A control plane of the test module's own, Moor's CRDs installed, for tests that run their own
    controller (killing it, or with flags the session's controller lacks)."""
    directory = tmp_path_factory.mktemp("private-cluster")
    info = start_cluster(directory)
    try:
        assert moor_cli(info.kubeconfig, "install").returncode == 0
        yield info
    finally:
        stop_cluster(directory)


@pytest.fixture(scope="session")
def moor_installed(kubeconfig: Path) -> Path:
    result = moor_cli(kubeconfig, "install")
    assert result.returncode == 0, result.stderr
    return kubeconfig


@pytest.fixture(scope="session")
def controller(moor_installed: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControllerProcess]:
    """The session's `moor run`, watching every namespace, serving metrics on `metrics_url`."""
    port = free_port()
    process = ControllerProcess(moor_installed, tmp_path_factory.mktemp("controller"), "--metrics-port", str(port))
    process.metrics_url = f"http://127.0.0.1:{port}/metrics"
    process.start()
    yield process
    process.stop()


@dataclass
class Moor:
    """One test's view: its namespace, kubectl and the moor CLI."""

    kubectl: Kubectl
    kubeconfig: Path
    namespace: str

    def apply(self, manifest: str) -> None:
        self.kubectl("apply", "-n", self.namespace, "-f", "-", input=textwrap.dedent(manifest))

    def cli(self, *args: str, timeout: float = 180.0) -> subprocess.CompletedProcess[str]:
        return moor_cli(self.kubeconfig, *args, "-n", self.namespace, timeout=timeout)

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        result = self.kubectl("get", kind, name, "-n", namespace or self.namespace, "-o", "json", check=False)
        if result.returncode != 0:
            if "NotFound" in result.stderr:
                return None
            raise AssertionError(result.stderr)
        document: dict[str, Any] = json.loads(result.stdout)
        return document

    def exists(self, kind: str, name: str, namespace: str | None = None) -> bool:
        return self.get(kind, name, namespace) is not None

    def condition(self, kind: str, name: str, type_: str = "Ready") -> dict[str, Any] | None:
        obj = self.get(kind, name) or {}
        for entry in (obj.get("status") or {}).get("conditions") or []:
            if entry["type"] == type_:
                return dict(entry)
        return None

    def wait_for(self, what: str, check: Any, timeout: float = 60.0) -> Any:
        """Polls `check()` until it returns something truthy; fails naming `what` after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
            time.sleep(0.25)

    def wait_condition(
        self,
        kind: str,
        name: str,
        status: str,
        *,
        reason: str | None = None,
        revision: str | None = None,
        timeout: float = 60.0,
        type_: str = "Ready",
    ) -> dict[str, Any]:
        """Waits until condition `type_` has `status` (and `reason`, and mentions `revision`)."""

        def matches() -> dict[str, Any] | None:
            condition = self.condition(kind, name, type_)
            if condition is None or condition["status"] != status:
                return None
            if reason is not None and condition["reason"] != reason:
                return None
            if revision is not None and revision not in condition["message"]:
                return None
            return condition

        try:
            result: dict[str, Any] = self.wait_for(f"{kind} {name} {type_}={status}", matches, timeout)
        except AssertionError as error:
            raise AssertionError(f"{error}; last seen: {self.condition(kind, name, type_)}") from None
        return result

    def source_and_sync(
        self, repo: GitWorkspace, path: str = ".", *, name: str = "app", sync_spec: str = "", source_spec: str = ""
    ) -> None:
        """A GitRepository `name` on `repo`'s main branch and a Sync `name` of `path`, both in this namespace.

        `sync_spec` and `source_spec` are YAML snippets merged into the specs (e.g. "prune: false").
        """
        source = {"url": repo.url, "ref": {"branch": "main"}, "interval": "1h"}
        sync = {
            "sourceRef": {"kind": "GitRepository", "name": name},
            "path": path,
            "interval": "1h",
            "retryInterval": "2s",
            "timeout": "30s",
        }
        source.update(yaml.safe_load(textwrap.dedent(source_spec)) or {})
        sync.update(yaml.safe_load(textwrap.dedent(sync_spec)) or {})
        self.apply(
            manifest(
                {"apiVersion": "moor.dev/v1", "kind": "GitRepository", "metadata": {"name": name}, "spec": source},
                {"apiVersion": "moor.dev/v1", "kind": "Sync", "metadata": {"name": name}, "spec": sync},
            )
        )

    def reconcile(self, name: str = "app", *, with_source: bool = True) -> subprocess.CompletedProcess[str]:
        args = ["reconcile", "sync", name, "--timeout", "90"]
        return self.cli(*args, "--with-source") if with_source else self.cli(*args)


@pytest.fixture
def moor(controller: ControllerProcess, kubectl: Kubectl, kubeconfig: Path, namespace: str) -> Moor:
    return Moor(kubectl, kubeconfig, namespace)


def manifest(*documents: dict[str, Any]) -> str:
    return yaml.safe_dump_all(documents, sort_keys=False)


def config_map(name: str, data: dict[str, str], **metadata: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, **metadata}, "data": data}


def deployment(name: str, *, replicas: int = 1, image: str = "nginx:1.27", never_ready: bool = False) -> dict[str, Any]:
    labels = {"app": name}
    pod_labels = {**labels, "moor.dev/never-ready": "true"} if never_ready else labels
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {"containers": [{"name": name, "image": image}]},
            },
        },
    }
