"""pytest fixtures for the local control plane: one cluster per session, a fresh namespace per test.

Set MOOR_TEST_CLUSTER_DIR to a directory to keep one cluster across sessions: a cluster already
running there is reused, otherwise one is started there; either way it is left running afterwards
(stop it with `moor cluster down --dir DIR`). Under pytest-xdist every worker has a cluster of its own
(`DIR/gw0`, `DIR/gw1`, ...): tests of one worker never see another's controller.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from moor import binaries
from moor.devcluster import ClusterInfo, running_cluster, start_cluster, stop_cluster

REUSE_ENV = "MOOR_TEST_CLUSTER_DIR"
TEST_NAMESPACE_LABEL = "moor.dev/test-namespace"


class KubectlFailed(subprocess.CalledProcessError):
    """A kubectl run that was expected to succeed; its message shows the command and stderr."""

    def __str__(self) -> str:
        return f"`kubectl {' '.join(self.cmd[2:])}` exited with {self.returncode}: {str(self.stderr).strip()}"


class Kubectl:
    """The built kubectl, pointed at one cluster: `kubectl("get", "pods", "-n", ns).stdout`."""

    def __init__(self, binary: Path, kubeconfig: Path) -> None:
        self.binary = binary
        self.kubeconfig = kubeconfig

    def __call__(
        self, *args: str, check: bool = True, input: str | None = None, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        argv = [str(self.binary), f"--kubeconfig={self.kubeconfig}", *args]
        result = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise KubectlFailed(result.returncode, argv, result.stdout, result.stderr)
        return result


def namespace_name(test_name: str) -> str:
    """A valid, unique DNS label (at most 63 characters) that still says which test made it."""
    base = re.sub(r"[^a-z0-9]+", "-", test_name.lower()).strip("-")
    base = base.removeprefix("test-") or "test"
    suffix = secrets.token_hex(3)
    return f"{base[: 62 - len(suffix)].rstrip('-')}-{suffix}"


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterInfo]:
    """The session's control plane (see the module docstring for reusing one across sessions)."""
    reuse = os.environ.get(REUSE_ENV)
    if reuse:
        directory = Path(reuse) / os.environ.get("PYTEST_XDIST_WORKER", "")
        yield running_cluster(directory) or start_cluster(directory)
        return
    directory = tmp_path_factory.mktemp("cluster")
    info = start_cluster(directory)
    try:
        yield info
    finally:
        stop_cluster(directory)


@pytest.fixture(scope="session")
def kubeconfig(cluster: ClusterInfo) -> Path:
    """The admin kubeconfig of the session's cluster (client certificate in system:masters)."""
    return cluster.kubeconfig


@pytest.fixture(scope="session")
def kubectl(kubeconfig: Path) -> Kubectl:
    return Kubectl(binaries.locate("kubectl"), kubeconfig)


@pytest.fixture
def namespace(request: pytest.FixtureRequest, kubectl: Kubectl) -> Iterator[str]:
    """A fresh namespace named after the test; deleted afterwards without waiting for it to go."""
    name = namespace_name(request.node.name)
    kubectl(
        "create",
        "-f",
        "-",
        input=(
            "apiVersion: v1\nkind: Namespace\n"
            f"metadata:\n  name: {name}\n  labels:\n    {TEST_NAMESPACE_LABEL}: 'true'\n"
        ),
    )
    # Pods are refused until the namespace's default ServiceAccount exists; the controller manager
    # creates it within moments, so wait here rather than in every test.
    kubectl("wait", "--for=create", "serviceaccount/default", "-n", name, "--timeout=60s")
    yield name
    kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Marks every test that needs the cluster (directly or through another fixture) with `cluster`,
    so `pytest -m "not cluster"` runs the tests that need none."""
    for item in items:
        if "cluster" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.cluster)
