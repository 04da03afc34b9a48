"""Image names as users write them, and the name Moor records (status.canonicalImageName)."""

from __future__ import annotations

import pytest

from moor.images.names import ImageName
from moor.source.errors import InvalidSourceSpec


@pytest.mark.parametrize(
    ("written", "canonical", "api_host"),
    [
        ("127.0.0.1:5000/team/app", "127.0.0.1:5000/team/app", "127.0.0.1:5000"),
        ("ghcr.io/org/app", "ghcr.io/org/app", "ghcr.io"),
        ("nginx", "docker.io/library/nginx", "registry-1.docker.io"),
        ("bitnami/redis", "docker.io/bitnami/redis", "registry-1.docker.io"),
        ("localhost/app", "localhost/app", "localhost"),
    ],
)
def test_names_are_read_as_docker_reads_them(written: str, canonical: str, api_host: str) -> None:
    name = ImageName.parse(written)
    assert str(name) == canonical
    assert name.api_host == api_host


@pytest.mark.parametrize(
    ("written", "problem"),
    [
        ("ghcr.io/org/app:1.0", "must not name a tag"),
        ("https://ghcr.io/org/app", "without a scheme"),
        ("ghcr.io/Org/App", "lower case"),
        ("ghcr.io/org/../app", "dot segment"),
    ],
)
def test_bad_names_are_refused_with_the_reason(written: str, problem: str) -> None:
    with pytest.raises(InvalidSourceSpec, match=problem):
        ImageName.parse(written)


def test_a_tag_and_a_digest_are_appended() -> None:
    name = ImageName.parse("ghcr.io/org/app")
    assert name.with_tag("1.3.0") == "ghcr.io/org/app:1.3.0"
    assert name.with_tag("1.3.0", "sha256:" + "a" * 64) == "ghcr.io/org/app:1.3.0@sha256:" + "a" * 64
