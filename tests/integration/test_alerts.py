"""Alerts and commit statuses, end to end: the session's `moor run` sends to real HTTP servers on loopback.

One receiver plays every destination: a generic webhook, Slack, Teams, Alertmanager, and the GitHub
and GitLab commit status APIs. It records each request as it arrived (path, headers, body) and can
answer 500 a few times first, to show retries.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.support.git_fixtures import GitHttpServer, GitWorkspace
from tests.support.moor_fixtures import ControllerProcess, Moor, config_map, manifest, metric_value


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    """Lower-case names."""
    body: bytes
    status: int

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """An HTTP server on 127.0.0.1 that records every POST and answers as planned (200 by default)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[Received] = []
        self._plans: dict[str, list[int]] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="receiver", daemon=True)

    def url(self, path: str) -> str:
        return self.base + path

    def fail_first(self, path: str, *statuses: int) -> None:
        with self._lock:
            self._plans[path] = list(statuses)

    def received(self, prefix: str) -> list[Received]:
        with self._lock:
            return [request for request in self._requests if request.path.startswith(prefix)]

    def everything(self) -> list[Received]:
        with self._lock:
            return list(self._requests)

    def _reply(self, path: str) -> int:
        with self._lock:
            plan = self._plans.get(path) or []
            return plan.pop(0) if plan else 200

    def _record(self, request: Received) -> None:
        with self._lock:
            self._requests.append(request)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = receiver._reply(self.path)
                headers = {key.lower(): value for key, value in self.headers.items()}
                receiver._record(Received(self.path, headers, body, status))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.start()
    yield server
    server.stop()


def secret(name: str, **data: str) -> dict[str, Any]:
    encoded = {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": "Opaque", "data": encoded}


def provider(name: str, type_: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "moor.dev/v1",
        "kind": "Provider",
        "metadata": {"name": name},
        "spec": {"type": type_, **spec},
    }


def alert(name: str, provider_name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "moor.dev/v1",
        "kind": "Alert",
        "metadata": {"name": name},
        "spec": {"providerRef": {"name": provider_name}, "eventSources": [{"kind": "Sync", "name": "app"}], **spec},
    }


def publish(repo: GitWorkspace, message: str, data: dict[str, str], name: str = "a") -> str:
    repo.write("a.yaml", manifest(config_map(name, data)))
    sha = repo.commit(message, author="Jane Doe <jane@example.com>")
    repo.push()
    return sha


def notifications(controller: ControllerProcess, namespace: str, name: str, result: str) -> float:
    with urllib.request.urlopen(controller.metrics_url, timeout=10) as response:
        text = response.read().decode()
    return metric_value(text, "moor_notifications_total", namespace=namespace, name=name, result=result)


def test_generic_webhook_is_signed_retried_deduplicated_and_secret_free(
    moor: Moor, git_repo: GitWorkspace, receiver: Receiver, controller: ControllerProcess
) -> None:
    hidden_path = f"/generic/{moor.namespace}/{secrets.token_hex(16)}"
    token, key = f"tok-{secrets.token_hex(12)}", f"key-{secrets.token_hex(12)}"
    receiver.fail_first(hidden_path, 500, 500)
    moor.apply(
        manifest(
            secret("hook", address=receiver.url(hidden_path), token=token, hmacKey=key),
            provider("hook", "generic", secretRef={"name": "hook"}),
            alert("all", "hook"),
            alert("again", "hook"),  # a second Alert to the same Provider: still one delivery per event
        )
    )
    v1 = publish(git_repo, "v1", {"v": "1"})
    moor.source_and_sync(git_repo)
    moor.wait_condition("sync", "app", "True", revision=v1)

    def by_reason(reason: str) -> list[Received]:
        """The deliveries of one reason that the receiver accepted."""
        return [r for r in receiver.received(hidden_path) if r.status == 200 and r.json()["reason"] == reason]

    applied = moor.wait_for("the Applied notification", lambda: by_reason("Applied"), timeout=30)
    first = receiver.received(hidden_path)[:3]
    assert [r.status for r in first] == [500, 500, 200], "retried after two 500s"
    assert len({r.body for r in first}) == 1, "the same request each time"
    assert len(by_reason("Progressing")) == 1, "one delivery per event, for two Alerts"
    [sent] = applied
    document = sent.json()
    assert document["involvedObject"] == {
        "apiVersion": "moor.dev/v1",
        "kind": "Sync",
        "namespace": moor.namespace,
        "name": "app",
    }
    assert document["summary"] == f"Sync {moor.namespace}/app: revision applied"
    assert document["severity"] == "info" and document["commit"] == v1
    assert document["revision"].endswith(v1) and document["author"] == "Jane Doe <jane@example.com>"
    assert "1 created" in document["message"]
    expected = "sha256=" + hmac.new(key.encode(), sent.body, hashlib.sha256).hexdigest()
    assert sent.headers["x-moor-signature"] == expected
    assert sent.headers["authorization"] == f"Bearer {token}"

    # The same news again (the Sync deleted and created anew applies the same revision with the same
    # result): the Provider is not told twice within the window.
    moor.kubectl("delete", "sync", "app", "-n", moor.namespace, "--wait=true")
    moor.wait_for("the pruned ConfigMap", lambda: not moor.exists("configmap", "a"), timeout=30)
    moor.source_and_sync(git_repo)
    moor.wait_condition("sync", "app", "True", revision=v1)
    moor.wait_for(
        "two deduplicated notifications",
        lambda: notifications(controller, moor.namespace, "hook", "deduplicated") >= 2,
        timeout=30,
    )
    assert len(by_reason("Applied")) == 1 and len(by_reason("Progressing")) == 1
    delivered = [r for r in receiver.received(hidden_path) if r.status == 200]
    assert notifications(controller, moor.namespace, "hook", "sent") == len(delivered)

    for request in receiver.received(hidden_path):
        for leak in (token, key, hidden_path.rsplit("/", 1)[1]):
            assert leak.encode() not in request.body


def test_slack_teams_and_alertmanager_with_severity_and_exclusions(
    moor: Moor, git_repo: GitWorkspace, receiver: Receiver
) -> None:
    slack_path, teams_path = f"/slack/{secrets.token_hex(12)}", f"/teams/{secrets.token_hex(12)}"
    moor.apply(
        manifest(
            secret("slack", address=receiver.url(slack_path)),
            secret("teams", address=receiver.url(teams_path)),
            provider("slack", "slack", secretRef={"name": "slack"}),
            provider("teams", "msteams", secretRef={"name": "teams"}),
            provider("alertmanager", "alertmanager", address=receiver.base),
            alert("chat", "slack", exclusionList=["^applying revision", "has no artifact yet"]),
            alert("teams", "teams", eventSeverity="error"),
            alert("pager", "alertmanager", eventSeverity="error"),
        )
    )
    v1 = publish(git_repo, "v1", {"v": "1"})
    moor.source_and_sync(git_repo)
    moor.wait_condition("sync", "app", "True", revision=v1)
    publish(git_repo, "v2: not a valid name", {"v": "2"}, name="Not_A_Valid_Name")
    assert moor.reconcile().returncode == 1
    moor.wait_condition("sync", "app", "False", reason="ValidationFailed")

    def slack_texts() -> list[str]:
        return [r.json()["text"] for r in receiver.received(slack_path)]

    moor.wait_for("Slack to hear of the failure", lambda: len(slack_texts()) >= 2, timeout=30)
    assert slack_texts() == [f"Sync {moor.namespace}/app: revision applied", f"Sync {moor.namespace}/app: sync failed"]
    failure = receiver.received(slack_path)[1].json()["attachments"][0]
    assert failure["color"] == "danger" and "Not_A_Valid_Name" in failure["text"]
    fields = {field["title"]: field["value"] for field in failure["fields"]}
    assert fields["Author"] == "Jane Doe <jane@example.com>"

    [card] = moor.wait_for("Teams to hear of the failure", lambda: receiver.received(teams_path), timeout=30)
    content = card.json()["attachments"][0]["content"]
    assert content["body"][0]["text"] == f"Sync {moor.namespace}/app: sync failed", "info events are not sent"

    def alerts_here() -> list[dict[str, Any]]:
        found = [a for r in receiver.received("/api/v2/alerts") for a in r.json()]
        return [a for a in found if a["labels"]["namespace"] == moor.namespace]

    [fired] = moor.wait_for("Alertmanager to hear of the failure", alerts_here, timeout=30)
    assert fired["labels"]["alertname"] == "MoorSyncValidationFailed"
    assert fired["labels"]["severity"] == "error" and fired["labels"]["name"] == "app"
    assert "Not_A_Valid_Name" in fired["annotations"]["message"]


def test_commit_statuses_on_github_and_gitlab(moor: Moor, git_http_server: GitHttpServer, receiver: Receiver) -> None:
    project = f"shop-{secrets.token_hex(4)}"
    repo = git_http_server.create_repo(f"acme/{project}")
    auth = {key: value.decode() for key, value in git_http_server.basic_auth_secret().items()}
    token = f"ghp_{secrets.token_hex(16)}"
    moor.apply(
        manifest(
            secret("git-auth", **auth),
            secret("forge-token", token=token),
            provider("github", "github", address=receiver.url("/github"), secretRef={"name": "forge-token"}),
            provider("gitlab", "gitlab", address=receiver.url("/gitlab/"), secretRef={"name": "forge-token"}),
            alert("github", "github"),
            alert("gitlab", "gitlab"),
        )
    )
    v1 = publish(repo, "v1", {"v": "1"})
    moor.source_and_sync(repo, source_spec="secretRef: {name: git-auth}", sync_spec="{rollback: {onFailure: true}}")
    moor.wait_condition("sync", "app", "True", revision=v1)

    def github(sha: str) -> list[Received]:
        return receiver.received(f"/github/repos/acme/{project}/statuses/{sha}")

    def gitlab(sha: str) -> list[Received]:
        return receiver.received(f"/gitlab/api/v4/projects/acme%2F{project}/statuses/{sha}")

    moor.wait_for("success on GitHub and GitLab", lambda: len(github(v1)) == 2 and len(gitlab(v1)) == 2, timeout=30)
    assert [r.json()["state"] for r in github(v1)] == ["pending", "success"]
    assert [r.json()["state"] for r in gitlab(v1)] == ["pending", "success"]
    status = github(v1)[1]
    assert status.json()["context"] == f"moor/{moor.namespace}/app"
    assert status.json()["description"] == "applied and healthy"
    assert status.headers["authorization"] == f"Bearer {token}"
    assert gitlab(v1)[1].headers["private-token"] == token
    assert gitlab(v1)[1].json()["name"] == f"moor/{moor.namespace}/app"

    v2 = publish(repo, "v2: rejected", {"v": "2"}, name="Not_A_Valid_Name")
    assert moor.reconcile().returncode == 1
    moor.wait_condition("sync", "app", "False", reason="RolledBack")
    moor.wait_for("failure on GitHub and GitLab", lambda: len(github(v2)) == 2 and len(gitlab(v2)) == 2, timeout=30)
    assert [r.json()["state"] for r in github(v2)] == ["pending", "failure"]
    assert [r.json()["state"] for r in gitlab(v2)] == ["pending", "failed"]
    description = github(v2)[1].json()["description"]
    assert description.startswith(f"RolledBack: revision main@sha1:{v2} failed (ValidationFailed)")
    assert len(description) <= 140

    # Held at v1 after the rollback, later passes say nothing new: no status is posted again.
    assert moor.reconcile(with_source=False).returncode == 1
    assert moor.reconcile(with_source=False).returncode == 1
    assert (len(github(v1)), len(github(v2)), len(gitlab(v1)), len(gitlab(v2))) == (2, 2, 2, 2)
    for request in receiver.received("/git"):
        assert token.encode() not in request.body
