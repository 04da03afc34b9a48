"""Image scanning against registries that misbehave, and the protocol's cheaper paths, with a scripted
registry (Python's http.server on loopback, plain HTTP: `insecure: true`) whose every answer is chosen
by the test: garbage, a body too large, an answer too slow, a redirect of the tag list to another host,
tag names with shell and path characters, ETags (an unchanged repository costs one request), `Link`
pages, and the Bearer token flow with the token service on another origin (the token is kept until it
expires, the credentials go to the service the registry named and nowhere else)."""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.integration.test_image_scan import image_policy, status_of, wait_status
from tests.support.moor_fixtures import Moor, manifest

USER, PASSWORD = "scanner", "s3cret-pass"
TOKEN = "token-for-scanner"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


@dataclass
class Seen:
    path: str
    query: dict[str, list[str]]
    authorization: str | None
    if_none_match: str | None
    status: int


@dataclass
class Script:
    """What the scripted servers answer, and every request they saw."""

    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    registry_port: int = 0
    token_port: int = 0

    def requests(self, prefix: str) -> list[Seen]:
        with self.lock:
            return [entry for entry in self.seen if entry.path.startswith(prefix)]


Answer = tuple[int, dict[str, str], bytes]
PAGED_TAGS = [f"1.{n // 1000}.{n % 1000}" for n in range(100_000)]
PAGED_INDEX = {tag: index for index, tag in enumerate(PAGED_TAGS)}


def tags_body(name: str, tags: list[str]) -> bytes:
    return json.dumps({"name": name, "tags": tags}).encode()


def registry_answer(script: Script, path: str, query: dict[str, list[str]], headers: Any) -> Answer:
    """The scripted registry: the repository's first path segment after `hostile/` picks the behaviour."""
    if path.startswith("/v2/elsewhere/"):  # where the redirect points: tags Moor must not believe
        return 200, {}, tags_body("elsewhere", ["6.6.6"])
    case = path.removeprefix("/v2/hostile/").partition("/")[0]
    name = f"hostile/{case}"
    if case == "garbage":
        return 200, {"Content-Type": "application/json"}, b"<html>this is not json"
    if case == "huge":
        return 200, {}, tags_body(name, ["x" * 100] * 60_000)
    if case == "slow":
        time.sleep(4)
        return 200, {}, tags_body(name, ["1.0.0"])
    if case == "redirect":
        return 307, {"Location": f"http://localhost:{script.registry_port}/v2/elsewhere/tags/list"}, b""
    if case == "weird":
        return 200, {}, tags_body(name, ["1.0.0", "../../etc/passwd", "$(touch /tmp/pwned)", "a;b", "1.1.0"])
    if case == "etag":
        etag = '"tags-v1"'
        if headers.get("If-None-Match") == etag:
            return 304, {"ETag": etag}, b""
        return 200, {"ETag": etag}, tags_body(name, ["1.0.0", "1.1.0"])
    if case == "paged":
        every = PAGED_TAGS
        size = int(query.get("n", ["1000"])[0])
        last = query.get("last", [""])[0]
        start = PAGED_INDEX[last] + 1 if last else 0
        page = every[start : start + size]
        link = {}
        if start + size < len(every):
            link = {"Link": f'</v2/{name}/tags/list?n={size}&last={page[-1]}>; rel="next"'}
        return 200, link, tags_body(name, page)
    if case == "bearer":
        if headers.get("Authorization") != f"Bearer {TOKEN}":
            realm = f"http://127.0.0.1:{script.token_port}/token"
            challenge = f'Bearer realm="{realm}",service="scripted",scope="repository:{name}:pull"'
            return 401, {"WWW-Authenticate": challenge}, b'{"errors": [{"code": "UNAUTHORIZED"}]}'
        return 200, {}, tags_body(name, ["2.0.0"])
    return 404, {}, b'{"errors": [{"code": "NAME_UNKNOWN", "message": "no such repository"}]}'


def token_answer(script: Script, path: str, query: dict[str, list[str]], headers: Any) -> Answer:
    if headers.get("Authorization") != BASIC:
        return 401, {}, b""
    return 200, {}, json.dumps({"token": TOKEN, "expires_in": 600}).encode()


def serve(script: Script, answer: Callable[[Script, str, dict[str, list[str]], Any], Answer]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            status, headers, body = answer(script, parts.path, query, self.headers)
            with script.lock:
                script.seen.append(
                    Seen(
                        f"{self.server.server_address[1]}{parts.path}",
                        query,
                        self.headers.get("Authorization"),
                        self.headers.get("If-None-Match"),
                        status,
                    )
                )
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(OSError):  # a client that gave up (the slow case)
                self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def script() -> Iterator[Script]:
    script = Script()
    registry = serve(script, registry_answer)
    token = serve(script, token_answer)
    script.registry_port = int(registry.server_address[1])
    script.token_port = int(token.server_address[1])
    yield script
    for server in (registry, token):
        server.shutdown()
        server.server_close()


def scripted_repository(moor: Moor, script: Script, case: str, **spec: Any) -> None:
    body = {"image": f"127.0.0.1:{script.registry_port}/hostile/{case}", "insecure": True, "interval": "1h", **spec}
    moor.apply(
        manifest({"apiVersion": "moor.dev/v1", "kind": "ImageRepository", "metadata": {"name": "app"}, "spec": body})
    )


def credentials(moor: Moor) -> None:
    data = {
        "username": base64.b64encode(USER.encode()).decode(),
        "password": base64.b64encode(PASSWORD.encode()).decode(),
    }
    moor.apply(manifest({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "scripted-auth"}, "data": data}))


def registry_requests(script: Script, case: str) -> list[Seen]:
    return script.requests(f"{script.registry_port}/v2/hostile/{case}/")


@pytest.mark.parametrize(
    ("case", "reason", "phrase", "spec"),
    [
        ("garbage", "RegistryError", "the list of tags is not JSON", {}),
        ("huge", "RegistryError", "larger than 4 MiB; refused", {}),
        ("slow", "Timeout", "no answer from the registry", {"timeout": "1s"}),
        ("redirect", "RegistryError", "sent its list of tags to localhost, another host; refused", {}),
    ],
)
def test_a_misbehaving_registry_is_a_clear_condition(
    moor: Moor, script: Script, case: str, reason: str, phrase: str, spec: dict[str, Any]
) -> None:
    scripted_repository(moor, script, case, **spec)
    condition = moor.wait_condition("imagerepository", "app", "False", reason=reason, timeout=120)
    assert phrase in condition["message"]
    assert "tagCount" not in status_of(moor, "imagerepository")


def test_tag_names_with_shell_and_path_characters_are_dropped(moor: Moor, script: Script) -> None:
    scripted_repository(moor, script, "weird")
    scanned = wait_status(moor, "imagerepository", "2 tags kept", lambda s: s.get("tagCount") == 2)
    assert scanned["newestTags"] == ["1.1.0", "1.0.0"]
    condition = moor.wait_condition("imagerepository", "app", "True")
    assert "dropped 3 that are not valid tag names" in condition["message"]


def test_an_unchanged_repository_costs_one_conditional_request(moor: Moor, script: Script) -> None:
    scripted_repository(moor, script, "etag")
    wait_status(moor, "imagerepository", "2 tags", lambda s: s.get("tagCount") == 2)
    image_policy(moor, {"policy": {"semver": {"range": "*"}}})
    wait_status(moor, "imagepolicy", "latest 1.1.0", lambda s: s.get("latestTag") == "1.1.0")
    before = len(registry_requests(script, "etag"))
    assert moor.cli("reconcile", "image-repository", "app", "--timeout", "60").returncode == 0
    again = registry_requests(script, "etag")[before:]
    assert [(entry.if_none_match, entry.status) for entry in again] == [('"tags-v1"', 304)]
    assert status_of(moor, "imagerepository")["tagCount"] == 2
    assert status_of(moor, "imagepolicy")["latestTag"] == "1.1.0"


def test_a_hundred_thousand_tags_are_followed_page_by_page(moor: Moor, script: Script) -> None:
    scripted_repository(moor, script, "paged")
    scanned = wait_status(moor, "imagerepository", "100,000 tags", lambda s: s.get("tagCount") == 100_000)
    assert scanned["newestTags"][:2] == ["1.99.999", "1.99.998"]
    pages = registry_requests(script, "paged")
    assert len(pages) == 100, "one request per page of 1,000"
    assert all(entry.query["n"] == ["1000"] for entry in pages)


def test_the_bearer_flow_keeps_its_token_and_sends_the_credentials_only_to_the_named_service(
    moor: Moor, script: Script
) -> None:
    credentials(moor)
    scripted_repository(moor, script, "bearer", secretRef={"name": "scripted-auth"})
    wait_status(moor, "imagerepository", "the tag behind the token", lambda s: s.get("tagCount") == 1)
    assert moor.cli("reconcile", "image-repository", "app", "--timeout", "60").returncode == 0
    tokens = script.requests(f"{script.token_port}/token")
    assert len(tokens) == 1 and tokens[0].authorization == BASIC
    assert tokens[0].query["scope"] == ["repository:hostile/bearer:pull"]
    seen = registry_requests(script, "bearer")
    assert [entry.status for entry in seen] == [401, 200, 200]  # the second scan: one request, token kept
    assert {entry.authorization for entry in seen} <= {None, f"Bearer {TOKEN}"}
