"""Registry webhooks: the real distribution registry, configured to notify `moor run --webhook-port`
with a static `Authorization: Bearer` token, makes a `crane push` scan the ImageRepositories of that
image at once (their interval is an hour: only the webhook can explain the scan), and the ImagePolicy
follows. Docker Hub's form (`?token=` in the URL) triggers too; a wrong token triggers nothing.

The module runs its own control plane and controller (the session's has no receiver) and its own
registry (whose notifications name this receiver).
"""

from __future__ import annotations

import http.client
import json
import secrets
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from moor import binaries
from moor.devcluster import ClusterInfo
from moor.web.receiver import HOOK_PATH
from moor.web.registry_events import DISTRIBUTION_EVENTS
from tests.integration.test_image_scan import image_policy, image_repository, push, registry_secrets, wait_status
from tests.support.cluster_fixtures import Kubectl, namespace_name
from tests.support.moor_fixtures import ControllerProcess, Moor
from tests.support.registry_fixtures import Notifications, Registry, TestCA

pytestmark = pytest.mark.cluster

TOKEN = f"registry-hook-{secrets.token_hex(12)}"
SECRET_NAMESPACE = "webhook-system"
SECRET_NAME = "registry-hooks"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Receiver:
    port: int
    controller: ControllerProcess

    def post(self, body: bytes, headers: dict[str, str], query: str = "") -> tuple[int, dict[str, Any]]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request("POST", HOOK_PATH + query, body=body, headers=headers)
            response = connection.getresponse()
            text = response.read()
            return response.status, json.loads(text) if text else {}
        finally:
            connection.close()


@pytest.fixture(scope="module")
def hook_kubectl(private_cluster: ClusterInfo) -> Kubectl:
    return Kubectl(binaries.locate("kubectl"), private_cluster.kubeconfig)


@pytest.fixture(scope="module")
def receiver(
    private_cluster: ClusterInfo, hook_kubectl: Kubectl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Receiver]:
    hook_kubectl("create", "namespace", SECRET_NAMESPACE, check=False)
    hook_kubectl("create", "secret", "generic", SECRET_NAME, "-n", SECRET_NAMESPACE, f"--from-literal=token={TOKEN}")
    port = free_port()
    controller = ControllerProcess(
        private_cluster.kubeconfig,
        tmp_path_factory.mktemp("registry-hook-controller"),
        *("--webhook-port", str(port), "--webhook-address", "127.0.0.1"),
        *("--webhook-secret", f"{SECRET_NAMESPACE}/{SECRET_NAME}"),
    )
    controller.start()
    try:
        yield Receiver(port, controller)
    finally:
        assert controller.stop() == 0
        assert TOKEN not in controller.log(), "the token never reaches the log"


@pytest.fixture(scope="module")
def notifying_registry(
    receiver: Receiver, registry_ca: TestCA, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Registry]:
    server = Registry(
        tmp_path_factory.mktemp("notifying-registry"),
        registry_ca,
        notify=Notifications(f"http://127.0.0.1:{receiver.port}{HOOK_PATH}", TOKEN),
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def hook_moor(request: pytest.FixtureRequest, private_cluster: ClusterInfo, hook_kubectl: Kubectl) -> Moor:
    name = namespace_name(request.node.name)
    hook_kubectl("create", "namespace", name)
    return Moor(hook_kubectl, private_cluster.kubeconfig, name)


def test_a_push_to_the_registry_scans_its_image_repositories_at_once(
    hook_moor: Moor, notifying_registry: Registry, receiver: Receiver, tmp_path: Path
) -> None:
    moor, registry = hook_moor, notifying_registry
    repository = f"hooks/{moor.namespace}/app"
    push(registry, tmp_path, repository, "1.0.0")
    registry_secrets(moor, registry)
    image_repository(moor, registry, repository)  # interval 1h
    image_policy(moor, {"policy": {"semver": {"range": ">=1.0.0"}}})
    wait_status(moor, "imagepolicy", "latest tag 1.0.0", lambda s: s.get("latestTag") == "1.0.0")

    push(registry, tmp_path, repository, "1.1.0")
    scanned = wait_status(
        moor, "imagerepository", "the pushed tag scanned", lambda s: s.get("tagCount") == 2, timeout=30
    )
    assert scanned["newestTags"][0] == "1.1.0"
    wait_status(moor, "imagepolicy", "latest tag 1.1.0", lambda s: s.get("latestTag") == "1.1.0", timeout=30)
    assert "distribution push of" in receiver.controller.log()


def test_a_wrong_token_triggers_nothing_and_docker_hubs_form_is_accepted(
    hook_moor: Moor, notifying_registry: Registry, receiver: Receiver, tmp_path: Path
) -> None:
    moor, registry = hook_moor, notifying_registry
    repository = f"hooks/{moor.namespace}/hub"
    push(registry, tmp_path, repository, "1.0.0")
    registry_secrets(moor, registry)
    image_repository(moor, registry, repository)
    wait_status(moor, "imagerepository", "first scan", lambda s: s.get("tagCount") == 1)

    event = {
        "events": [
            {
                "action": "push",
                "target": {
                    "repository": repository,
                    "tag": "1.0.0",
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                },
                "request": {"host": registry.host},
            }
        ]
    }
    body = json.dumps(event).encode()
    status, answer = receiver.post(body, {"Content-Type": DISTRIBUTION_EVENTS, "Authorization": "Bearer wrong"})
    assert status == 401 and "does not match" in answer["error"]
    status, answer = receiver.post(body, {"Content-Type": DISTRIBUTION_EVENTS})
    assert status == 401

    status, answer = receiver.post(body, {"Content-Type": DISTRIBUTION_EVENTS, "Authorization": f"Bearer {TOKEN}"})
    assert (status, answer["triggered"]) == (202, [f"{moor.namespace}/app"])
    hub = json.dumps({"push_data": {"tag": "x"}, "repository": {"repo_name": "nobody/nothing"}}).encode()
    status, answer = receiver.post(hub, {"Content-Type": "application/json"}, query=f"?token={TOKEN}")
    assert (status, answer["triggered"]) == (200, [])
