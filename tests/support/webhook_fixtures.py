"""`moor run` with the webhook receiver on a module's private cluster, and a registry whose notifications reach it.

A module that needs them imports the fixtures it names, as `browser` is imported (`# noqa: F401`, and
`# noqa: F811` where a test names one).
The receiver's token is in a Secret; the controller's log is checked at the end never to hold it.
"""

from __future__ import annotations

import http.client
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from moor import binaries
from moor.devcluster import ClusterInfo
from moor.web.receiver import HOOK_PATH
from tests.support.cluster_fixtures import Kubectl, namespace_name
from tests.support.moor_fixtures import ControllerProcess, Moor, free_port
from tests.support.registry_fixtures import Notifications, Registry, TestCA

SECRET_NAMESPACE = "webhook-system"
SECRET_NAME = "registry-hooks"


@dataclass
class Receiver:
    port: int
    token: str
    controller: ControllerProcess

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{HOOK_PATH}"

    def post(self, body: bytes, headers: dict[str, str], query: str = "") -> tuple[int, dict[str, Any]]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request("POST", HOOK_PATH + query, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, json.loads(response.read() or b"{}")
        finally:
            connection.close()


@pytest.fixture(scope="module")
def receiver_kubectl(private_cluster: ClusterInfo) -> Kubectl:
    return Kubectl(binaries.locate("kubectl"), private_cluster.kubeconfig)


@pytest.fixture(scope="module")
def receiver(
    private_cluster: ClusterInfo, receiver_kubectl: Kubectl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Receiver]:
    """The module's controller, its webhook receiver on loopback with a token of its own."""
    token = f"registry-hook-{secrets.token_hex(12)}"
    receiver_kubectl("create", "namespace", SECRET_NAMESPACE, check=False)
    receiver_kubectl(
        "create", "secret", "generic", SECRET_NAME, "-n", SECRET_NAMESPACE, f"--from-literal=token={token}"
    )
    port = free_port()
    controller = ControllerProcess(
        private_cluster.kubeconfig,
        tmp_path_factory.mktemp("webhook-controller"),
        *("--webhook-port", str(port), "--webhook-address", "127.0.0.1"),
        *("--webhook-secret", f"{SECRET_NAMESPACE}/{SECRET_NAME}"),
    )
    controller.start()
    try:
        yield Receiver(port, token, controller)
    finally:
        assert controller.stop() == 0
        assert token not in controller.log(), "the token never reaches the log"


@pytest.fixture(scope="module")
def notifying_registry(
    receiver: Receiver, registry_ca: TestCA, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Registry]:
    """A registry (TLS, htpasswd) that tells the receiver of every push."""
    server = Registry(
        tmp_path_factory.mktemp("notifying-registry"), registry_ca, notify=Notifications(receiver.url, receiver.token)
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def receiver_moor(request: pytest.FixtureRequest, private_cluster: ClusterInfo, receiver_kubectl: Kubectl) -> Moor:
    """A namespace of the test's own on the module's cluster."""
    name = namespace_name(request.node.name)
    receiver_kubectl("create", "namespace", name)
    return Moor(receiver_kubectl, private_cluster.kubeconfig, name)
