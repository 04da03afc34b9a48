"""1,100 slow clients on `moor run`'s listeners: deliveries are still answered, metrics still served,
commits still applied, the slow connections closed, and the log stays small.

Each slow client opens a connection and sends its request head one byte every two seconds (a
"slowloris"), from this machine's loopback addresses, under an open-file limit of 1,024 for the
controller (a common default).
"""

from __future__ import annotations

import contextlib
import errno
import http.client
import json
import resource
import secrets
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from moor import binaries
from moor.devcluster import ClusterInfo
from moor.web.push import sign
from moor.web.receiver import HOOK_PATH
from tests.support.cluster_fixtures import Kubectl
from tests.support.git_fixtures import GitWorkspace
from tests.support.moor_fixtures import ControllerProcess, Moor, config_map, free_port, manifest

pytestmark = pytest.mark.cluster

TOKEN = f"slow-token-{secrets.token_hex(8)}"
NAMESPACE = "slow-clients"
CONTROLLER_FILE_LIMIT = 1024
SLOW_CLIENTS = {"webhooks": 800, "metrics": 300}
HEADER_TIMEOUT = 10.0  # moor.web.listener.ListenerLimits.header_timeout
LOG_GROWTH_LIMIT = 256 * 1024


@dataclass
class Controller:
    process: ControllerProcess
    webhook_port: int
    metrics_port: int


@pytest.fixture(scope="module")
def controller(private_cluster: ClusterInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Controller]:
    kubectl = Kubectl(binaries.locate("kubectl"), private_cluster.kubeconfig)
    kubectl("create", "namespace", NAMESPACE, check=False)
    kubectl("create", "secret", "generic", "hooks", "-n", NAMESPACE, f"--from-literal=token={TOKEN}")
    webhook_port, metrics_port = free_port(), free_port()
    process = ControllerProcess(
        private_cluster.kubeconfig,
        tmp_path_factory.mktemp("slow-clients-controller"),
        *("--webhook-port", str(webhook_port), "--webhook-address", "127.0.0.1"),
        *("--webhook-secret", f"{NAMESPACE}/hooks", "--metrics-port", str(metrics_port)),
    )
    process.start()
    assert process.process is not None
    resource.prlimit(process.process.pid, resource.RLIMIT_NOFILE, (CONTROLLER_FILE_LIMIT, CONTROLLER_FILE_LIMIT))
    try:
        yield Controller(process, webhook_port, metrics_port)
    finally:
        assert process.stop() == 0, "moor run exits 0 on SIGTERM"


@dataclass
class SlowClients:
    """Connections that send their request head one byte at a time and never finish it."""

    sockets: list[socket.socket] = field(default_factory=list)
    refused: int = 0

    def open(self, port: int, count: int, sources: list[str]) -> None:
        for index in range(count):
            connection = socket.socket()
            connection.settimeout(5)
            try:
                connection.bind((sources[index % len(sources)], 0))
                connection.connect(("127.0.0.1", port))
                connection.sendall(b"POST " + HOOK_PATH.encode() + b" HTTP/1.1\r\nHost: moor\r\n")
            except OSError:
                self.refused += 1
                connection.close()
                continue
            connection.setblocking(False)
            self.sockets.append(connection)

    def dribble(self) -> None:
        for connection in self.sockets:
            with contextlib.suppress(OSError):  # closed by the server: what it should do
                connection.send(b"X")

    def still_open(self) -> int:
        """Connections the server has not closed (no end of stream, no reset)."""
        count = 0
        for connection in self.sockets:
            try:
                if connection.recv(1) == b"":
                    continue
            except BlockingIOError:
                pass
            except OSError as error:
                if error.errno in (errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED):
                    continue
                raise
            count += 1
        return count

    def close(self) -> None:
        for connection in self.sockets:
            connection.close()


@pytest.fixture
def slow_clients() -> Iterator[SlowClients]:
    needed = sum(SLOW_CLIENTS.values()) + 256
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"this test opens {needed} sockets; the open-file limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
    clients = SlowClients()
    try:
        yield clients
    finally:
        clients.close()


def deliver(port: int, url: str) -> tuple[int, dict[str, object], float]:
    """A signed push delivery: its status, its document, and how long the answer took."""
    body = json.dumps({"repository": url, "ref": "refs/heads/main"}).encode()
    headers = {"Content-Type": "application/json", "X-Moor-Signature-256": sign(body, TOKEN.encode())}
    started = time.monotonic()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("POST", HOOK_PATH, body=body, headers=headers)
        response = connection.getresponse()
        document = json.loads(response.read() or b"{}")
        return response.status, document, time.monotonic() - started
    finally:
        connection.close()


def scrape(port: int) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", "/metrics")
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def test_1100_slow_clients_do_not_stop_deliveries_metrics_or_reconciles(
    controller: Controller, private_cluster: ClusterInfo, slow_clients: SlowClients, git_repo: GitWorkspace
) -> None:
    moor = Moor(Kubectl(binaries.locate("kubectl"), private_cluster.kubeconfig), private_cluster.kubeconfig, NAMESPACE)
    git_repo.write("app/settings.yaml", manifest(config_map("settings", {"version": "1"})))
    git_repo.commit("version 1")
    git_repo.push()
    moor.source_and_sync(git_repo, "./app")
    moor.wait_condition("sync", "app", "True", timeout=90)
    log_before = Path(controller.process.log_path).stat().st_size

    # Slow clients from the delivery's own address and from twenty others.
    sources = ["127.0.0.1", *(f"127.0.2.{n}" for n in range(1, 21))]
    slow_clients.open(controller.webhook_port, SLOW_CLIENTS["webhooks"], sources)
    slow_clients.open(controller.metrics_port, SLOW_CLIENTS["metrics"], sources)
    slow_clients.dribble()

    git_repo.write("app/settings.yaml", manifest(config_map("settings", {"version": "2"})))
    commit = git_repo.commit("version 2")
    git_repo.push()
    status, document, took = deliver(controller.webhook_port, git_repo.url)
    assert status == 202, document
    assert document["triggered"] == [f"{NAMESPACE}/app"]
    assert took < 5, f"the delivery took {took:.2f}s to be answered"

    scraped, text = scrape(controller.metrics_port)
    assert scraped == 200 and "moor_" in text
    assert controller.process.process is not None
    descriptors = len(list(Path(f"/proc/{controller.process.process.pid}/fd").iterdir()))
    assert descriptors < CONTROLLER_FILE_LIMIT // 2, f"the listeners leave room for the rest: {descriptors} open"

    def applied() -> bool:
        slow_clients.dribble()
        return (moor.get("configmap", "settings") or {}).get("data") == {"version": "2"}

    moor.wait_for(f"commit {commit[:12]} applied", applied, timeout=90)

    deadline = time.monotonic() + HEADER_TIMEOUT + 30
    while (left := slow_clients.still_open()) > 0:
        assert time.monotonic() < deadline, f"{left} slow connections are still open past the header timeout"
        slow_clients.dribble()
        time.sleep(1)

    log = controller.process.log()
    grown = Path(controller.process.log_path).stat().st_size - log_before
    assert grown < LOG_GROWTH_LIMIT, f"the log grew by {grown} bytes"
    assert "Too many open files" not in log and "out of system resource" not in log
    assert controller.process.process is not None and controller.process.process.poll() is None
