"""Registry deliveries: the distribution registry's envelope, Docker Hub's and GHCR's events, their
tokens, and which ImageRepositories a push concerns."""

from __future__ import annotations

import json
from typing import Any

import pytest

from moor.web.push import MalformedPayload, Unauthorized
from moor.web.registry_events import (
    DISTRIBUTION_EVENTS,
    ImagePushEvent,
    parse_distribution,
    parse_docker_hub,
    parse_ghcr_package,
    registry_sender,
    select_image_repositories,
    verify_token,
)

MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def envelope(*events: dict[str, Any]) -> bytes:
    return json.dumps({"events": list(events)}).encode()


def push(
    repository: str, *, tag: str | None = "1.0.0", media_type: str = MANIFEST, action: str = "push"
) -> dict[str, Any]:
    target: dict[str, Any] = {"repository": repository, "mediaType": media_type, "digest": "sha256:" + "a" * 64}
    if tag is not None:
        target["tag"] = tag
    return {"action": action, "target": target, "request": {"host": "127.0.0.1:5000"}}


def repository(image: str, name: str = "app") -> dict[str, Any]:
    return {"kind": "ImageRepository", "metadata": {"namespace": "team", "name": name}, "spec": {"image": image}}


def test_a_distribution_envelope_names_the_pushed_images_and_tags() -> None:
    body = envelope(
        push("team/app"),
        push("team/app", tag="1.1.0"),
        push("team/app", tag=None, media_type="application/vnd.oci.image.layer.v1.tar+gzip"),
        push("team/other", action="pull"),
    )
    assert registry_sender({"Content-Type": DISTRIBUTION_EVENTS}, body) == "distribution"
    v3 = "application/vnd.docker.distribution.events.v2+json; charset=utf-8"
    assert registry_sender({"content-type": v3}, body) == "distribution"
    event = parse_distribution(body)
    assert event.images == ("127.0.0.1:5000/team/app",)
    assert event.tags == ("1.0.0", "1.1.0")


def test_a_push_by_digest_only_still_counts_but_a_blob_does_not() -> None:
    assert parse_distribution(envelope(push("a/b", tag=None))).images == ("127.0.0.1:5000/a/b",)
    assert parse_distribution(envelope(push("a/b", tag=None, media_type="application/octet-stream"))).images == ()


def test_docker_hub_is_known_by_its_payload_and_names_docker_io() -> None:
    body = json.dumps({"push_data": {"tag": "v2"}, "repository": {"repo_name": "org/app"}}).encode()
    assert registry_sender({"Content-Type": "application/json"}, body) == "dockerhub"
    assert parse_docker_hub(body) == ImagePushEvent("dockerhub", ("docker.io/org/app",), ("v2",))


def test_git_deliveries_are_not_registry_deliveries() -> None:
    body = json.dumps({"push_data": {}, "repository": {}}).encode()
    assert registry_sender({"X-GitHub-Event": "push"}, body) is None
    assert registry_sender({}, b'{"ref": "refs/heads/main", "repository": {"url": "x"}}') is None


def test_a_ghcr_package_event_names_the_container_image() -> None:
    document = {
        "action": "published",
        "package": {
            "name": "App",
            "package_type": "CONTAINER",
            "owner": {"login": "Org"},
            "package_version": {"container_metadata": {"tag": {"name": "1.2.0"}}},
        },
    }
    event = parse_ghcr_package(json.dumps(document).encode())
    assert event == ImagePushEvent("ghcr", ("ghcr.io/org/app",), ("1.2.0",))
    npm = {**document, "package": {**document["package"], "package_type": "npm"}}
    assert parse_ghcr_package(json.dumps(npm).encode()) is None


def test_the_token_is_checked_from_the_header_or_the_url() -> None:
    verify_token({"Authorization": "Bearer s3cret"}, {}, b"s3cret")
    verify_token({}, {"token": "s3cret"}, b"s3cret")
    with pytest.raises(Unauthorized, match="does not match"):
        verify_token({"Authorization": "Bearer wrong"}, {}, b"s3cret")
    with pytest.raises(Unauthorized, match="carries no Authorization"):
        verify_token({"Authorization": "Basic czNjcmV0"}, {}, b"s3cret")


def test_malformed_deliveries_are_refused() -> None:
    for body in (b"not json", b"[]", b'{"events": 5}'):
        with pytest.raises(MalformedPayload):
            parse_distribution(body)
    with pytest.raises(MalformedPayload, match="repo_name"):
        parse_docker_hub(b'{"push_data": {}, "repository": {}}')


def test_a_push_concerns_the_repositories_of_that_image_however_written() -> None:
    repositories = [
        repository("127.0.0.1:5000/team/app", "local"),
        repository("127.0.0.1:5000/team/other", "other"),
        repository("nginx", "hub"),
        repository("not a valid image", "broken"),
    ]
    event = ImagePushEvent("distribution", ("127.0.0.1:5000/team/app", "docker.io/library/nginx"))
    chosen = [obj["metadata"]["name"] for obj in select_image_repositories(event, repositories)]
    assert chosen == ["local", "hub"]
