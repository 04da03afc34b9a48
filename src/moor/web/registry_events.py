"""Registry deliveries, pure: "an image was pushed" from the distribution registry, Docker Hub or GHCR,
whether the sender knows the receiver's token, and which ImageRepositories that concerns.

- The distribution registry (and registries built on it, e.g. Harbor's) sends its notification
  envelope, `Content-Type: application/vnd.docker.distribution.events.v1+json` (`v2+json` from
  distribution v3), `{"events": [...]}`;
  a push of a manifest is an event with `action: push`, `target.repository`, `target.tag` (or a
  manifest media type) and `request.host`. It cannot sign, but sends the static headers its
  `notifications.endpoints[].headers` configures: `Authorization: Bearer <token>` is checked.
- Docker Hub's webhook (`push_data`, `repository.repo_name`) sends no header Moor could check: the
  token goes in the URL, `/hook?token=<token>`.
- GHCR's pushes arrive as GitHub's `package` event (`X-GitHub-Event: package`), signed like GitHub's
  pushes (`X-Hub-Signature-256`): the signature is checked by `moor.web.push.verify_signature`.

A delivery names an image by `host/path`; it concerns the ImageRepositories whose image is that one
(as `moor.images.names` reads both: `nginx` is `docker.io/library/nginx`).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from moor.images.names import DOCKER_HUB, ImageName
from moor.objects import KubeObject
from moor.source.errors import InvalidSourceSpec
from moor.source.oci.manifest import MANIFEST_TYPES
from moor.web.push import MalformedPayload, Unauthorized, json_object

DISTRIBUTION_EVENTS = "application/vnd.docker.distribution.events.v1+json"
DISTRIBUTION_EVENT_TYPES = (DISTRIBUTION_EVENTS, "application/vnd.docker.distribution.events.v2+json")
"""v1 up to distribution 2.x, v2 from v3 (the same envelope)."""
GHCR = "ghcr.io"
TOKEN_QUERY = "token"

RegistrySender = Literal["distribution", "dockerhub", "ghcr"]


@dataclass(frozen=True)
class ImagePushEvent:
    """Pushes of one or more images, each named `host/path` (deduplicated, in order)."""

    sender: RegistrySender
    images: tuple[str, ...]
    tags: tuple[str, ...] = ()


def registry_sender(headers: Mapping[str, str], body: bytes) -> Literal["distribution", "dockerhub"] | None:
    """Which registry sent a delivery that is not a Git host's (GHCR's come as GitHub's), or None."""
    lowered = {key.lower(): value for key, value in headers.items()}
    if lowered.get("content-type", "").partition(";")[0].strip().lower() in DISTRIBUTION_EVENT_TYPES:
        return "distribution"
    if any(name in lowered for name in ("x-github-event", "x-gitlab-event", "x-moor-signature-256")):
        return None
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    if isinstance(document, dict) and "push_data" in document and isinstance(document.get("repository"), dict):
        return "dockerhub"
    return None


def verify_token(headers: Mapping[str, str], query: Mapping[str, str], secret: bytes) -> None:
    """The sender shows the receiver's token as `Authorization: Bearer <token>` or `?token=`; Unauthorized if not.

    Comparisons take constant time."""
    if not secret:
        raise Unauthorized("the receiver has no token to check requests against")
    lowered = {key.lower(): value for key, value in headers.items()}
    scheme, _, given = lowered.get("authorization", "").strip().partition(" ")
    token = given.strip() if scheme.lower() in ("bearer", "token") else query.get(TOKEN_QUERY)
    if not token:
        raise Unauthorized(f"the request carries no Authorization: Bearer header and no ?{TOKEN_QUERY}= in its URL")
    if not hmac.compare_digest(token.encode("utf-8", "replace"), secret):
        raise Unauthorized("the token of the request does not match the receiver's token")


def parse_distribution(body: bytes) -> ImagePushEvent:
    """The manifest pushes in a distribution notification envelope (maybe none)."""
    document = json_object(body)
    events = document.get("events")
    if not isinstance(events, list):
        raise MalformedPayload("the notification envelope has no list of events")
    images: list[str] = []
    tags: list[str] = []
    for event in events:
        if not isinstance(event, dict) or event.get("action") != "push":
            continue
        target, request = _section(event, "target"), _section(event, "request")
        repository, host = target.get("repository"), request.get("host")
        if not isinstance(repository, str) or not isinstance(host, str):
            continue
        tag = target.get("tag")
        if not isinstance(tag, str) and target.get("mediaType") not in MANIFEST_TYPES:
            continue  # a blob, not an image
        _add(images, f"{host}/{repository}")
        if isinstance(tag, str):
            _add(tags, tag)
    return ImagePushEvent("distribution", tuple(images), tuple(tags))


def parse_docker_hub(body: bytes) -> ImagePushEvent:
    document = json_object(body)
    repository = _section(document, "repository")
    name = repository.get("repo_name")
    if not isinstance(name, str) or not name:
        raise MalformedPayload("the Docker Hub payload has no repository.repo_name")
    tag = _section(document, "push_data").get("tag")
    return ImagePushEvent("dockerhub", (f"{DOCKER_HUB}/{name}",), (tag,) if isinstance(tag, str) else ())


def parse_ghcr_package(body: bytes) -> ImagePushEvent | None:
    """A GitHub `package` event: the container image published, or None for any other package action."""
    document = json_object(body)
    package = _section(document, "package")
    if document.get("action") not in ("published", "updated") or package.get("package_type") not in (
        "container",
        "CONTAINER",
        "docker",
    ):
        return None
    name = package.get("name")
    owner = _section(package, "owner").get("login") or package.get("namespace")
    if not isinstance(name, str) or not isinstance(owner, str):
        raise MalformedPayload("the package event names no package.name and package.owner.login")
    version = _section(package, "package_version")
    tag = _section(_section(version, "container_metadata"), "tag").get("name")
    return ImagePushEvent(
        "ghcr", (f"{GHCR}/{owner.lower()}/{name.lower()}",), (tag,) if isinstance(tag, str) and tag else ()
    )


def select_image_repositories(event: ImagePushEvent, repositories: Iterable[KubeObject]) -> list[KubeObject]:
    """The ImageRepositories whose image is one the event pushed."""
    pushed = {_canonical(image) for image in event.images} - {None}
    return [obj for obj in repositories if _canonical((obj.get("spec") or {}).get("image")) in pushed]


def _canonical(image: object) -> str | None:
    if not isinstance(image, str):
        return None
    try:
        return str(ImageName.parse(image))
    except InvalidSourceSpec:
        return None


def _section(document: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = document.get(key)
    return value if isinstance(value, dict) else {}


def _add(found: list[str], value: str) -> None:
    if value not in found:
        found.append(value)
