"""Image names as users write them (`host:5000/team/app`, `ghcr.io/org/app`, `nginx`) and as Moor names them.

A name without a registry host is Docker Hub's, as docker reads it: `nginx` is
`docker.io/library/nginx`, whose API answers at `registry-1.docker.io`. A first component is a host
when it holds a `.` or a `:` or is `localhost`. Tags and digests do not belong in an ImageRepository's
image: a policy chooses the tag.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from moor.source.errors import InvalidSourceSpec
from moor.source.oci.reference import SCHEME, OciReference

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
"""A tag as the distribution spec allows it: what a scan keeps, and what can be written into YAML safely."""


@dataclass(frozen=True)
class ImageName:
    registry: str
    """`host[:port]`, lower case, as users and manifests name it (`docker.io` for Docker Hub)."""
    repository: str

    @classmethod
    def parse(cls, text: str) -> ImageName:
        """Reads `[host[:port]/]path`; InvalidSourceSpec (naming the image) for anything else."""
        image = text.strip()
        if "://" in image:
            raise InvalidSourceSpec(f"the image {image!r} is not valid: write host/path, without a scheme")
        first, slash, rest = image.partition("/")
        if not slash or not (first == "localhost" or "." in first or ":" in first):
            first, rest = DOCKER_HUB, image if "/" in image else f"library/{image}"
        try:
            reference = OciReference.parse(f"{SCHEME}{first}/{rest}")
        except InvalidSourceSpec as error:
            raise InvalidSourceSpec(f"the image {image!r} is not valid: {_cause(error)}") from None
        if reference.ref is not None:
            raise InvalidSourceSpec(
                f"the image {image!r} must not name a tag or digest: an ImagePolicy chooses the tag"
            )
        registry = DOCKER_HUB if reference.registry == "index.docker.io" else reference.registry
        return cls(registry, reference.repository)

    @property
    def api_host(self) -> str:
        """Where the registry's /v2/ API answers (Docker Hub's differs from its name)."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    def with_tag(self, tag: str, digest: str | None = None) -> str:
        """`host/path:tag`, or `host/path:tag@sha256:…` when the digest is known."""
        return f"{self}:{tag}" + (f"@{digest}" if digest else "")

    def __str__(self) -> str:
        return f"{self.registry}/{self.repository}"


def _cause(error: InvalidSourceSpec) -> str:
    return str(error).partition(": ")[2] or str(error)
