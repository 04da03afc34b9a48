"""OCI URLs: what an OCIRepository's `url` and `moor push artifact` accept, and why the rest is refused."""

from __future__ import annotations

import dataclasses

import pytest

from moor.source import InvalidSourceSpec
from moor.source.oci import OciReference

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("url", "registry", "repository", "tag", "digest"),
    [
        ("oci://ghcr.io/team/app", "ghcr.io", "team/app", None, None),
        ("oci://ghcr.io/team/app:1.2.3", "ghcr.io", "team/app", "1.2.3", None),
        (
            "oci://127.0.0.1:5000/manifests/podinfo:v6.1.0-rc.1",
            "127.0.0.1:5000",
            "manifests/podinfo",
            "v6.1.0-rc.1",
            None,
        ),
        (f"oci://Registry.Example:443/a/b@{DIGEST}", "registry.example:443", "a/b", None, DIGEST),
        (f"oci://host/a/b:latest@{DIGEST}", "host", "a/b", "latest", DIGEST),
        ("oci://[::1]:5000/app", "[::1]:5000", "app", None, None),
        ("oci://host/a.b/c_d/e__f/g--h", "host", "a.b/c_d/e__f/g--h", None, None),
    ],
)
def test_a_reference_names_registry_repository_tag_and_digest(
    url: str, registry: str, repository: str, tag: str | None, digest: str | None
) -> None:
    reference = OciReference.parse(url)
    assert (reference.registry, reference.repository, reference.tag, reference.digest) == (
        registry,
        repository,
        tag,
        digest,
    )


def test_the_digest_is_what_is_asked_for_when_both_are_given() -> None:
    assert OciReference.parse(f"oci://host/app:1.0@{DIGEST}").ref == DIGEST
    assert OciReference.parse("oci://host/app:1.0").ref == "1.0"
    assert OciReference.parse("oci://host/app").ref is None


def test_a_reference_prints_as_it_is_written_without_the_scheme_case() -> None:
    reference = OciReference.parse(f"OCI://Host:5000/team/app:1.0@{DIGEST}")
    assert str(reference) == f"oci://host:5000/team/app:1.0@{DIGEST}"
    assert reference.repository_url == "oci://host:5000/team/app"


@pytest.mark.parametrize(
    ("url", "cause"),
    [
        ("ghcr.io/team/app", "starts with oci://"),
        ("https://ghcr.io/team/app", "starts with oci://"),
        ("oci://", "names no registry host"),
        ("oci://ghcr.io", "names no repository"),
        ("oci://ghcr.io/", "names no repository"),
        ("oci://ghcr.io/team/../app", "dot segment '..'"),
        ("oci://ghcr.io/./app", "dot segment '.'"),
        ("oci://ghcr.io/team//app", "empty segment"),
        ("oci://ghcr.io/team/app/", "empty segment"),
        ("oci://ghcr.io/Team/App", "must be lower case, not 'Team'"),
        ("oci://ghcr.io/team/-app", "not a valid repository path segment"),
        ("oci://ghcr.io/app@sha256:abc", "needs 64 lower-case hex digits"),
        ("oci://ghcr.io/app@sha256:" + "A" * 64, "needs 64 lower-case hex digits"),
        ("oci://ghcr.io/app@md5:" + "a" * 32, "write sha256:"),
        ("oci://ghcr.io/app:.hidden", "the tag '.hidden' is not valid"),
        ("oci://ghcr.io/app:" + "v" * 129, "is not valid"),
        ("oci://ghcr.io/app:", "the tag '' is not valid"),
        ("oci://ghcr.io/app?x=1", "?"),
        ("oci://ghcr.io/my app", "a space"),
        ("oci://ghcr.io:99999/app", "the port 99999 is not valid"),
        ("oci://ghc_r.io/app", "not a host name"),
    ],
)
def test_a_bad_url_is_refused_naming_it_and_the_cause(url: str, cause: str) -> None:
    with pytest.raises(InvalidSourceSpec) as refused:
        OciReference.parse(url)
    assert cause in str(refused.value)
    assert "is not valid" in str(refused.value)


def test_credentials_in_the_url_are_refused_without_being_repeated() -> None:
    with pytest.raises(InvalidSourceSpec, match="credentials do not belong in the URL") as refused:
        OciReference.parse("oci://bob:s3cret@ghcr.io/team/app:1.0")
    assert "s3cret" not in str(refused.value)
    assert refused.value.url == "oci://ghcr.io/team/app:1.0"


def test_a_tag_set_later_is_checked_too() -> None:
    reference = OciReference.parse("oci://host/app")
    assert dataclasses.replace(reference, tag="2.0").tag == "2.0"
    with pytest.raises(InvalidSourceSpec, match="the tag 'a/b' is not valid"):
        dataclasses.replace(reference, tag="a/b")
