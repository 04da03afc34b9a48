"""`moor run --webhook-port`: a push from GitHub, GitLab or a script reconciles the GitRepositories
that follow the pushed repository, and nothing else gets through.

These tests run their own control plane and a controller with the receiver on a free loopback port
(the session's controller has none), which reaches the API server through a fault proxy (it injects
nothing unless a test asks). Requests are real HTTP from this process. To keep a control plane across
runs, set MOOR_WEBHOOK_TEST_CLUSTER_DIR (it is started there if needed and left running).
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import socket
import time
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from moor import binaries
from moor.devcluster import ClusterInfo, running_cluster, start_cluster, stop_cluster
from moor.web.push import sign
from moor.web.receiver import HOOK_PATH
from tests.support.cluster_fixtures import Kubectl, namespace_name
from tests.support.fault_proxy import FaultProxy
from tests.support.git_fixtures import GitWorkspace
from tests.support.moor_fixtures import ControllerProcess, manifest, moor_cli

pytestmark = pytest.mark.cluster

REUSE_ENV = "MOOR_WEBHOOK_TEST_CLUSTER_DIR"
TOKEN = f"webhook-token-{secrets.token_hex(12)}"
SECRET_NAMESPACE = "webhook-system"
SECRET_NAME = "push-hooks"
GITREPOSITORIES = r"^/apis/moor\.dev/v1/gitrepositories$"
"""The path of a list (or watch) of GitRepositories in all namespaces, as the fault proxy matches it."""


@pytest.fixture(scope="module")
def webhook_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterInfo]:
    reuse = os.environ.get(REUSE_ENV)
    directory = Path(reuse) if reuse else tmp_path_factory.mktemp("webhook-cluster")
    info = (running_cluster(directory) if reuse else None) or start_cluster(directory)
    try:
        result = moor_cli(info.kubeconfig, "install")
        assert result.returncode == 0, result.stderr
        yield info
    finally:
        if not reuse:
            stop_cluster(directory)


@pytest.fixture(scope="module")
def webhook_kubectl(webhook_cluster: ClusterInfo) -> Kubectl:
    return Kubectl(binaries.locate("kubectl"), webhook_cluster.kubeconfig)


@dataclass(frozen=True)
class Reply:
    status: int
    document: dict[str, Any]
    headers: Mapping[str, str]


@pytest.fixture(scope="module")
def api_proxy(webhook_cluster: ClusterInfo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultProxy]:
    proxy = FaultProxy(webhook_cluster, tmp_path_factory.mktemp("webhook-proxy")).start()
    try:
        yield proxy
    finally:
        proxy.stop()


@dataclass
class Receiver:
    port: int
    controller: ControllerProcess
    proxy: FaultProxy

    def post(
        self,
        body: bytes | Iterable[bytes],
        headers: Mapping[str, str],
        *,
        source: str = "127.0.0.1",
        method: str = "POST",
    ) -> Reply:
        """One request on a fresh connection from `source` (any 127.0.0.0/8 address is this machine)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30, source_address=(source, 0))
        try:
            chunked = not isinstance(body, bytes)
            all_headers = {"Content-Type": "application/json", **headers}
            if chunked:
                all_headers["Transfer-Encoding"] = "chunked"
            connection.request(method, HOOK_PATH, body=body, headers=all_headers, encode_chunked=chunked)
            response = connection.getresponse()
            text = response.read()
            return Reply(response.status, json.loads(text) if text else {}, dict(response.getheaders()))
        finally:
            connection.close()

    def github(self, document: Any, *, event: str = "push", secret: str = TOKEN) -> Reply:
        body = json.dumps(document).encode()
        return self.post(body, {"X-GitHub-Event": event, "X-Hub-Signature-256": sign(body, secret.encode())})

    def generic(self, document: Any, *, secret: str = TOKEN, source: str = "127.0.0.1") -> Reply:
        body = json.dumps(document).encode()
        return self.post(body, {"X-Moor-Signature-256": sign(body, secret.encode())}, source=source)

    def gitrepository_lists(self) -> int:
        """How many lists of GitRepositories the controller (its reconcilers' watch and the receiver's) sent."""
        return sum(
            1
            for method, path, _ in self.proxy.requests_to(GITREPOSITORIES[:-1] + r"(\?|$)")
            if method == "GET" and "watch=" not in path
        )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def receiver(
    api_proxy: FaultProxy, webhook_kubectl: Kubectl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Receiver]:
    kubectl = webhook_kubectl
    kubectl("create", "namespace", SECRET_NAMESPACE, check=False)
    kubectl("delete", "secret", SECRET_NAME, "-n", SECRET_NAMESPACE, "--ignore-not-found")
    kubectl("create", "secret", "generic", SECRET_NAME, "-n", SECRET_NAMESPACE, f"--from-literal=token={TOKEN}")
    port = free_port()
    controller = ControllerProcess(
        api_proxy.kubeconfig,
        tmp_path_factory.mktemp("webhook-controller"),
        *("--webhook-port", str(port), "--webhook-address", "127.0.0.1"),
        *("--webhook-secret", f"{SECRET_NAMESPACE}/{SECRET_NAME}"),
    )
    controller.start()
    assert f"webhook receiver listening on 127.0.0.1:{port}" in controller.log()
    try:
        yield Receiver(port, controller, api_proxy)
    finally:
        assert controller.stop() == 0, "moor run exits 0 on SIGTERM"
        log = controller.log()
        assert TOKEN not in log, "the token never reaches the log"


@dataclass
class Repositories:
    """The GitRepositories of one test's namespace in the webhook cluster."""

    kubectl: Kubectl
    namespace: str

    def create(self, name: str, url: str, ref: Mapping[str, str] | None = None) -> None:
        """Creates a GitRepository and waits until the controller has handled it: the receiver knows
        GitRepositories from a watch, so a push sent the instant kubectl returns could come before it."""
        spec = {"url": url, "ref": dict(ref or {"branch": "main"}), "interval": "1h"}
        document = {"apiVersion": "moor.dev/v1", "kind": "GitRepository", "metadata": {"name": name}, "spec": spec}
        self.kubectl("apply", "-n", self.namespace, "-f", "-", input=manifest(document))
        self.wait_for(f"GitRepository {name} handled by the controller", lambda: self.status(name).get("conditions"))

    def get(self, name: str) -> dict[str, Any]:
        result = self.kubectl("get", "gitrepository", name, "-n", self.namespace, "-o", "json")
        document: dict[str, Any] = json.loads(result.stdout)
        return document

    def annotation(self, name: str) -> str | None:
        annotations = self.get(name)["metadata"].get("annotations") or {}
        value: str | None = annotations.get("moor.dev/reconcile")
        return value

    def status(self, name: str) -> dict[str, Any]:
        status: dict[str, Any] = self.get(name).get("status") or {}
        return status

    def wait_for(self, what: str, check: Any, timeout: float = 60.0) -> Any:
        deadline = time.monotonic() + timeout
        while not (value := check()):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
            time.sleep(0.25)
        return value

    def wait_revision(self, name: str, commit: str) -> dict[str, Any]:
        def stored() -> dict[str, Any] | None:
            status = self.status(name)
            return status if commit in ((status.get("artifact") or {}).get("revision") or "") else None

        result: dict[str, Any] = self.wait_for(f"GitRepository {name} at {commit[:12]}", stored)
        return result


@pytest.fixture
def repositories(
    request: pytest.FixtureRequest, receiver: Receiver, webhook_kubectl: Kubectl
) -> Iterator[Repositories]:
    kubectl = webhook_kubectl
    name = namespace_name(request.node.name)
    kubectl("create", "namespace", name)
    yield Repositories(kubectl, name)
    kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


def committed(repo: GitWorkspace, message: str) -> str:
    repo.write("app.yaml", f"# {message}\n")
    commit = repo.commit(message)
    repo.push()
    return commit


def github_push(url: str, ref: str = "refs/heads/main") -> dict[str, Any]:
    """The parts of GitHub's push payload Moor reads (and some it does not)."""
    return {
        "ref": ref,
        "before": "0" * 40,
        "after": "1" * 40,
        "repository": {"full_name": "acme/apps", "clone_url": url, "html_url": "https://github.invalid/acme/apps"},
        "pusher": {"name": "someone"},
    }


# -- pushes that trigger ---------------------------------------------------------------------------


def test_github_push_with_a_good_signature_fetches_the_new_commit_now(
    receiver: Receiver, repositories: Repositories, git_repo: GitWorkspace
) -> None:
    first = committed(git_repo, "first")
    repositories.create("app", git_repo.url)
    repositories.create("app-dev", git_repo.url, {"branch": "dev"})
    repositories.create("elsewhere", "https://git.invalid/acme/other.git")
    repositories.wait_revision("app", first)
    second = committed(git_repo, "second")

    # The host's spelling of the URL differs from spec.url (no .git suffix, a trailing slash).
    reply = receiver.github(github_push(git_repo.url.removesuffix(".git") + "/"))

    assert reply.status == 202, reply.document
    assert reply.document["triggered"] == [f"{repositories.namespace}/app"]
    requested_at = reply.document["requestedAt"]
    status = repositories.wait_revision("app", second)  # the interval is 1h: only the webhook explains this
    assert status["lastHandledReconcileAt"] == requested_at
    assert repositories.annotation("app-dev") is None, "a push to main does not concern the dev branch"
    assert repositories.annotation("elsewhere") is None


def test_gitlab_push_with_the_token_triggers(
    receiver: Receiver, repositories: Repositories, git_repo: GitWorkspace
) -> None:
    repositories.create("app", git_repo.url)
    body = json.dumps(
        {"object_kind": "push", "ref": "refs/heads/main", "project": {"git_http_url": git_repo.url}}
    ).encode()

    wrong = receiver.post(body, {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "guess"})
    assert wrong.status == 401, wrong.document
    assert repositories.annotation("app") is None

    reply = receiver.post(body, {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": TOKEN})
    assert reply.status == 202, reply.document
    assert reply.document["triggered"] == [f"{repositories.namespace}/app"]
    assert repositories.annotation("app") == reply.document["requestedAt"]


def test_generic_push_without_a_ref_triggers_every_ref_of_the_repository(
    receiver: Receiver, repositories: Repositories, git_repo: GitWorkspace
) -> None:
    repositories.create("main", git_repo.url)
    repositories.create("dev", git_repo.url, {"branch": "dev"})
    repositories.create("pinned", git_repo.url, {"commit": "a" * 40})

    only_dev = receiver.generic({"repository": git_repo.url, "ref": "refs/heads/dev"})
    assert only_dev.status == 202, only_dev.document
    assert only_dev.document["triggered"] == [f"{repositories.namespace}/dev"]

    every_ref = receiver.generic({"repository": git_repo.url})
    assert every_ref.status == 202, every_ref.document
    assert every_ref.document["triggered"] == [f"{repositories.namespace}/{n}" for n in ("dev", "main", "pinned")]


def test_a_push_nobody_follows_is_answered_200_with_nothing_triggered(
    receiver: Receiver, repositories: Repositories
) -> None:
    repositories.create("app", f"https://git.invalid/{repositories.namespace}/app.git")
    reply = receiver.github(github_push("https://git.invalid/acme/another-app.git"))
    assert reply.status == 200, reply.document
    assert reply.document == {"triggered": []}
    assert repositories.annotation("app") is None


def test_github_ping_is_answered_without_triggering(receiver: Receiver, repositories: Repositories) -> None:
    repositories.create("app", f"https://git.invalid/{repositories.namespace}/app.git")
    reply = receiver.github({"zen": "Design for failure.", "hook_id": 1}, event="ping")
    assert reply.status == 200, reply.document
    assert reply.document == {"triggered": [], "message": "pong"}
    assert repositories.annotation("app") is None


def test_pushes_find_gitrepositories_created_after_the_receiver_started_without_listing_them(
    receiver: Receiver, repositories: Repositories, git_repo: GitWorkspace
) -> None:
    lists_before = receiver.gitrepository_lists()
    repositories.create("app", git_repo.url)

    replies = [receiver.generic({"repository": git_repo.url}) for _ in range(4)]

    assert [reply.status for reply in replies] == [202] * 4, [reply.document for reply in replies]
    assert all(reply.document["triggered"] == [f"{repositories.namespace}/app"] for reply in replies)
    lists = receiver.gitrepository_lists() - lists_before
    assert lists <= 1, f"{lists} lists of GitRepositories for 4 pushes: pushes are matched against a watch"


# -- requests that are refused ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "signature",
    [None, "sha256=" + "0" * 64, "made-with-another-secret"],
    ids=["missing", "bad", "other-secret"],
)
def test_a_bad_or_missing_signature_gets_401_and_triggers_nothing(
    receiver: Receiver, repositories: Repositories, signature: str | None
) -> None:
    url = f"https://git.invalid/{repositories.namespace}/app.git"
    repositories.create("app", url)
    body = json.dumps(github_push(url)).encode()
    headers = {"X-GitHub-Event": "push"}
    if signature == "made-with-another-secret":
        signature = sign(body, b"guess")
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature

    reply = receiver.post(body, headers)

    assert reply.status == 401
    assert "X-Hub-Signature-256" in reply.document["error"]
    assert repositories.annotation("app") is None
    if signature is not None:
        assert signature.removeprefix("sha256=") not in receiver.controller.log(), "no signature in the log"


def test_malformed_json_with_a_good_signature_gets_400_in_one_sentence(receiver: Receiver) -> None:
    body = b'{"ref": "refs/heads/main", "repository": '
    reply = receiver.post(body, {"X-GitHub-Event": "push", "X-Hub-Signature-256": sign(body, TOKEN.encode())})
    assert reply.status == 400
    assert reply.document == {"error": "the body is not valid JSON"}

    missing = receiver.generic({"ref": "refs/heads/main"})
    assert missing.status == 400
    assert missing.document == {"error": 'the payload has no "repository" URL'}


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_body_over_one_mebibyte_gets_413(receiver: Receiver, framing: str) -> None:
    big = b" " * (1024 * 1024 + 1)
    body: bytes | Iterable[bytes] = big if framing == "content-length" else iter([big[:600_000], big[600_000:]])
    reply = receiver.post(body, {"X-Moor-Signature-256": sign(big, TOKEN.encode())})
    assert reply.status == 413
    assert reply.document == {"error": "the body is larger than 1 MiB"}


def test_other_methods_get_405(receiver: Receiver) -> None:
    reply = receiver.post(b"", {}, method="GET")
    assert reply.status == 405
    assert reply.headers["Allow"] == "POST"


def test_a_burst_from_one_address_gets_429_while_others_still_get_through(receiver: Receiver) -> None:
    flooder = "127.0.0.2"
    started = time.monotonic()
    replies = [receiver.post(b"{}", {}, source=flooder) for _ in range(40)]
    elapsed = time.monotonic() - started
    statuses = [reply.status for reply in replies]
    assert statuses[:20] == [401] * 20, "the burst (20) reaches the signature check"
    assert 429 in statuses, statuses
    assert statuses.count(401) <= 20 + 10 * elapsed + 1, f"more than 10/s got through in {elapsed:.2f}s"
    refused = next(reply for reply in replies if reply.status == 429)
    assert refused.document == {"error": "too many requests from this address: retry later"}
    assert int(refused.headers["Retry-After"]) >= 1
    assert receiver.post(b"{}", {}, source="127.0.0.3").status == 401, "another address is not limited"


# -- configuration ---------------------------------------------------------------------------------


def _set_token(kubectl: Kubectl, token: str | None) -> None:
    if token is None:
        kubectl("delete", "secret", SECRET_NAME, "-n", SECRET_NAMESPACE, "--ignore-not-found")
        return
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": SECRET_NAME, "namespace": SECRET_NAMESPACE},
        "stringData": {"token": token},
    }
    kubectl("apply", "-f", "-", input=manifest(secret))


def test_a_rotated_token_is_used_within_seconds_and_a_missing_secret_gets_503(
    receiver: Receiver, webhook_kubectl: Kubectl
) -> None:
    source = "127.0.0.4"  # a bucket of its own: polling must not meet the rate limit of other tests
    nobody = {"repository": "https://git.invalid/rotation/nobody.git"}

    def status_with(token: str) -> int:
        body = json.dumps(nobody).encode()
        return receiver.post(body, {"X-Moor-Signature-256": sign(body, token.encode())}, source=source).status

    def wait_until(what: str, check: Any) -> None:
        deadline = time.monotonic() + 20
        while not check():
            assert time.monotonic() < deadline, f"timed out waiting until {what}"
            time.sleep(0.5)

    rotated = f"rotated-{secrets.token_hex(8)}"
    try:
        _set_token(webhook_kubectl, rotated)
        wait_until("the rotated token is accepted", lambda: status_with(rotated) == 200)
        assert status_with(TOKEN) == 401, "the old token no longer passes"

        _set_token(webhook_kubectl, None)
        wait_until("a missing Secret is noticed", lambda: status_with(rotated) == 503)
        reply = receiver.post(b"{}", {"X-Moor-Signature-256": "sha256=00"}, source=source)
        assert reply.document == {"error": "the webhook receiver is not configured: see the controller's log"}
        assert f"webhook Secret {SECRET_NAMESPACE}/{SECRET_NAME} does not exist" in receiver.controller.log()
    finally:
        _set_token(webhook_kubectl, TOKEN)
    wait_until("the original token is accepted again", lambda: status_with(TOKEN) == 200)
    assert rotated not in receiver.controller.log()


def test_a_busy_webhook_port_is_one_clear_error(webhook_cluster: ClusterInfo) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = moor_cli(
            webhook_cluster.kubeconfig,
            *("run", "--webhook-port", str(port), "--webhook-address", "127.0.0.1"),
            timeout=60,
        )
    assert result.returncode == 1
    assert f"cannot receive webhooks on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


# -- while the receiver cannot know the GitRepositories ---------------------------------------------

LISTENING = "webhook receiver listening"


def test_a_push_before_the_receiver_has_listed_the_gitrepositories_gets_503_saying_it_triggered_nothing(
    receiver: Receiver, repositories: Repositories, git_repo: GitWorkspace
) -> None:
    repositories.create("app", git_repo.url)
    assert receiver.controller.stop() == 0
    restarts = receiver.controller.log().count(LISTENING)
    receiver.proxy.stall(GITREPOSITORIES, seconds=12, method="GET", watch=False)
    with ThreadPoolExecutor(1) as pool:
        started = pool.submit(receiver.controller.start)  # returns once the reconcilers' own list came
        try:
            repositories.wait_for(
                "the receiver to listen again", lambda: receiver.controller.log().count(LISTENING) > restarts
            )
            early = receiver.generic({"repository": git_repo.url})
        finally:
            receiver.proxy.clear()
            started.result(timeout=90)

    assert early.status == 503, early.document
    assert early.document == {
        "error": "the receiver has not read the GitRepositories yet: this push triggered nothing; retry later"
    }
    assert repositories.annotation("app") is None
    later = receiver.generic({"repository": git_repo.url})
    assert later.status == 202, later.document
    assert later.document["triggered"] == [f"{repositories.namespace}/app"]


def test_while_the_watch_of_gitrepositories_fails_a_push_gets_503_saying_why(receiver: Receiver) -> None:
    source = "127.0.0.5"  # a bucket of its own: polling must not meet the rate limit of other tests
    nobody = {"repository": "https://git.invalid/watch-failure/nobody.git"}

    def status() -> int:
        return receiver.generic(nobody, source=source).status

    def wait_until(what: str, check: Any) -> None:
        deadline = time.monotonic() + 60
        while not check():
            assert time.monotonic() < deadline, f"timed out waiting until {what}"
            time.sleep(0.5)

    assert status() == 200
    receiver.proxy.respond(403, GITREPOSITORIES, method="GET")  # lists and watches of every namespace
    try:
        receiver.proxy.drop_watches()
        wait_until("the receiver's watch fails", lambda: status() == 503)
        reply = receiver.generic(nobody, source=source)
        assert reply.document == {
            "error": "the receiver cannot read the GitRepositories now (forbidden): this push triggered nothing; "
            "retry later"
        }
    finally:
        receiver.proxy.clear()
    wait_until("the receiver lists the GitRepositories again", lambda: status() == 200)
    assert "webhook: a push finds no GitRepositories to match: cannot list gitrepositories.moor.dev: forbidden" in (
        receiver.controller.log()
    )
