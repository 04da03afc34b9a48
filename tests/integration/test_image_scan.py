"""Image scanning against the real distribution registry (TLS, htpasswd): crane pushes tags, an
ImageRepository lists them (cosign's .sig tags left out), an ImagePolicy chooses the latest by its rule
with the digest pinned, moves forward when a newer tag is pushed, never proposes a tag the ImageUpdate
controller marked failed, and a registry refusing the credentials is a clear Ready=False. A second
registry demands Bearer tokens from a token service (the flow of Docker Hub, GHCR and Harbor): Moor
asks for a token once and keeps it until it expires."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_ocirepository import registry_secrets
from tests.support.moor_fixtures import Moor, config_map, manifest
from tests.support.registry_fixtures import PushedArtifact, Registry, TestCA


def push(registry: Registry, tmp_path: Path, repository: str, tag: str) -> PushedArtifact:
    content = tmp_path / f"content-{tag}"
    content.mkdir()
    (content / "app.yaml").write_text(manifest(config_map("app", {"version": tag})))
    return registry.push_image_layer(content, repository, tag)


def image_repository(moor: Moor, registry: Registry, repository: str, name: str = "app") -> None:
    spec = {
        "image": f"{registry.host}/{repository}",
        "interval": "1h",
        "secretRef": {"name": "registry-auth"},
        "certSecretRef": {"name": "registry-ca"},
    }
    moor.apply(
        manifest({"apiVersion": "moor.dev/v1", "kind": "ImageRepository", "metadata": {"name": name}, "spec": spec})
    )


def image_policy(moor: Moor, spec: dict[str, Any], name: str = "app") -> None:
    spec = {"imageRepositoryRef": {"name": "app"}, **spec}
    moor.apply(manifest({"apiVersion": "moor.dev/v1", "kind": "ImagePolicy", "metadata": {"name": name}, "spec": spec}))


def status_of(moor: Moor, kind: str, name: str = "app") -> dict[str, Any]:
    return dict((moor.get(kind, name) or {}).get("status") or {})


def wait_status(moor: Moor, kind: str, what: str, check: Any, name: str = "app", timeout: float = 90) -> dict[str, Any]:
    def matches() -> dict[str, Any] | None:
        status = status_of(moor, kind, name)
        return status if check(status) else None

    try:
        result: dict[str, Any] = moor.wait_for(what, matches, timeout)
    except AssertionError as error:
        raise AssertionError(f"{error}; last seen: {status_of(moor, kind, name)}") from None
    return result


def test_tags_are_scanned_and_the_policy_follows_the_newest_release(
    moor: Moor, registry: Registry, tmp_path: Path
) -> None:
    repository = f"scan/{moor.namespace}/app"
    pushed = {tag: push(registry, tmp_path, repository, tag) for tag in ("1.2.0", "1.3.0", "1.4.0-rc.1")}
    registry.run("crane", "tag", pushed["1.3.0"].reference, "sha256-0123.sig")
    registry_secrets(moor, registry)
    image_repository(moor, registry, repository)
    image_policy(moor, {"policy": {"semver": {"range": ">=1.0.0"}}, "resolveDigest": True})

    scanned = wait_status(moor, "imagerepository", "3 tags scanned", lambda s: s.get("tagCount") == 3)
    assert scanned["canonicalImageName"] == f"{registry.host}/{repository}"
    assert scanned["newestTags"] == ["1.4.0-rc.1", "1.3.0", "1.2.0"]
    assert scanned["lastScanTime"]
    moor.wait_condition("imagerepository", "app", "True", reason="Succeeded")

    chosen = wait_status(moor, "imagepolicy", "latest tag 1.3.0", lambda s: s.get("latestTag") == "1.3.0")
    assert chosen["latestDigest"] == pushed["1.3.0"].digest
    assert chosen["latestImage"] == f"{registry.host}/{repository}:1.3.0@{pushed['1.3.0'].digest}"
    moor.wait_condition("imagepolicy", "app", "True", revision="1.3.0")

    push(registry, tmp_path, repository, "1.4.0")
    result = moor.cli("reconcile", "image-repository", "app", "--timeout", "60")
    assert result.returncode == 0, result.stderr
    moved = wait_status(moor, "imagepolicy", "latest tag 1.4.0", lambda s: s.get("latestTag") == "1.4.0")
    assert moved["previousTag"] == "1.3.0"

    listed = moor.cli("get", "images", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    kinds = json.loads(listed.stdout)
    assert [obj["status"]["tagCount"] for obj in kinds["ImageRepository"]] == [4]
    assert [obj["status"]["latestTag"] for obj in kinds["ImagePolicy"]] == ["1.4.0"]
    table = moor.cli("get", "images").stdout
    assert "TAGS" in table and "4 tags (scanned" in table and "1.4.0 (was 1.3.0)" in table

    assert moor.cli("suspend", "image-repository", "app").returncode == 0
    assert (moor.get("imagerepository", "app") or {})["spec"]["suspend"] is True
    assert moor.cli("resume", "image-repository", "app").returncode == 0
    assert (moor.get("imagerepository", "app") or {})["spec"]["suspend"] is False


def test_a_tag_marked_failed_is_not_chosen_and_the_mark_is_kept(moor: Moor, registry: Registry, tmp_path: Path) -> None:
    repository = f"scan/{moor.namespace}/failed"
    for tag in ("2.0.0", "2.1.0"):
        push(registry, tmp_path, repository, tag)
    registry_secrets(moor, registry)
    image_repository(moor, registry, repository)
    image_policy(moor, {"policy": {"semver": {"range": "^2"}}})
    wait_status(moor, "imagepolicy", "latest tag 2.1.0", lambda s: s.get("latestTag") == "2.1.0")

    failed = [
        {
            "tag": "2.1.0",
            "reason": "HealthCheckFailed",
            "sync": "app",
            "revision": "main@sha1:abc",
            "at": "2026-01-01T00:00:00Z",
        }
    ]
    patch = json.dumps({"status": {"failedTags": failed}})
    moor.kubectl(
        "patch", "imagepolicy", "app", "-n", moor.namespace, "--subresource=status", "--type=merge", "-p", patch
    )

    back = wait_status(moor, "imagepolicy", "back to 2.0.0", lambda s: s.get("latestTag") == "2.0.0")
    assert back["failedTags"] == failed
    assert back["previousTag"] == "2.1.0"
    push(registry, tmp_path, repository, "2.1.1")
    assert moor.cli("reconcile", "image-repository", "app", "--timeout", "60").returncode == 0
    onward = wait_status(moor, "imagepolicy", "on to 2.1.1", lambda s: s.get("latestTag") == "2.1.1")
    assert onward["failedTags"] == failed


def test_refused_credentials_are_a_clear_status(moor: Moor, registry: Registry, tmp_path: Path) -> None:
    repository = f"scan/{moor.namespace}/denied"
    push(registry, tmp_path, repository, "1.0.0")
    registry_secrets(moor, registry, password="wrong")
    image_repository(moor, registry, repository)
    condition = moor.wait_condition("imagerepository", "app", "False", reason="AuthenticationFailed", timeout=90)
    assert registry.username in condition["message"]
    assert "wrong" not in condition["message"]


@pytest.fixture(scope="module")
def token_registry(registry_ca: TestCA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """The distribution registry demanding Bearer tokens from a token service (tests.support.token_server)."""
    server = Registry(tmp_path_factory.mktemp("token-registry"), registry_ca, token_auth=True)
    server.start()
    yield server
    server.stop()


def test_the_bearer_token_flow_with_a_real_registry_asks_for_a_token_once(
    moor: Moor, token_registry: Registry, tmp_path: Path
) -> None:
    registry = token_registry
    assert registry.token_server is not None
    repository = f"scan/{moor.namespace}/token"
    push(registry, tmp_path, repository, "3.0.0")  # crane goes through the token flow too
    registry_secrets(moor, registry)
    image_repository(moor, registry, repository)
    wait_status(moor, "imagerepository", "the tag behind the token", lambda s: s.get("tagCount") == 1)
    asked = len(registry.token_server.token_requests())
    push(registry, tmp_path, repository, "3.1.0")
    pushed = len(registry.token_server.token_requests())
    assert moor.cli("reconcile", "image-repository", "app", "--timeout", "60").returncode == 0
    assert status_of(moor, "imagerepository")["tagCount"] == 2
    assert len(registry.token_server.token_requests()) == pushed, "the token of the first scan is kept"
    moor_requests = registry.token_server.token_requests()[:asked]
    assert any(r.authenticated and f"repository:{repository}:pull" in r.scopes for r in moor_requests)


def test_refused_credentials_at_the_token_service_are_a_clear_status(
    moor: Moor, token_registry: Registry, tmp_path: Path
) -> None:
    registry = token_registry
    repository = f"scan/{moor.namespace}/token-denied"
    push(registry, tmp_path, repository, "1.0.0")
    registry_secrets(moor, registry, password="wrong")
    image_repository(moor, registry, repository)
    condition = moor.wait_condition("imagerepository", "app", "False", reason="AuthenticationFailed", timeout=90)
    assert "the token service localhost" in condition["message"]
