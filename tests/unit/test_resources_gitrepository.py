from datetime import timedelta
from typing import Any

import pytest

from moor.resources import GitRepositorySpec, SpecError, VerifyMode, VerifySpec
from moor.source import GitRef, GitUrl, InvalidSourceSpec


def gitrepository(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "moor.dev/v1",
        "kind": "GitRepository",
        "metadata": {"name": "apps", "namespace": "moor-system"},
        "spec": spec,
    }


def test_the_api_example_reads_completely() -> None:
    spec = GitRepositorySpec.from_object(
        gitrepository(
            url="https://git.example.com/org/apps.git",
            ref={"branch": "main"},
            interval="1m",
            timeout="60s",
            secretRef={"name": "git-auth"},
            verify={"mode": "HEAD", "secretRef": {"name": "trusted-keys"}},
            suspend=False,
        )
    )
    assert spec == GitRepositorySpec(
        url="https://git.example.com/org/apps.git",
        ref=GitRef(branch="main"),
        interval=timedelta(minutes=1),
        timeout=timedelta(seconds=60),
        secret_name="git-auth",
        verify=VerifySpec(mode=VerifyMode.HEAD, secret_name="trusted-keys"),
        suspend=False,
    )


def test_defaults_match_the_crd() -> None:
    spec = GitRepositorySpec.from_object(gitrepository(url="file:///srv/git/apps.git", ref={"tag": "v1.4.2"}))
    assert spec.interval == timedelta(minutes=1)
    assert spec.timeout == timedelta(seconds=60)
    assert spec.secret_name is None
    assert spec.verify is None
    assert spec.suspend is False


def test_verify_mode_defaults_to_head() -> None:
    spec = GitRepositorySpec.from_object(
        gitrepository(url="ssh://git@host/apps.git", ref={"branch": "main"}, verify={"secretRef": {"name": "k"}})
    )
    assert spec.verify == VerifySpec(mode=VerifyMode.HEAD, secret_name="k")


@pytest.mark.parametrize(
    ("ref", "kind", "value"),
    [
        ({"branch": "main"}, "branch", "main"),
        ({"tag": "v1.4.2"}, "tag", "v1.4.2"),
        ({"semver": ">=1.0.0 <2.0.0"}, "semver", ">=1.0.0 <2.0.0"),
        ({"commit": "3f2a" * 10}, "commit", "3f2a" * 10),
    ],
)
def test_each_kind_of_ref(ref: dict[str, str], kind: str, value: str) -> None:
    spec = GitRepositorySpec.from_object(gitrepository(url="git@example.com:org/apps.git", ref=ref))
    assert (spec.ref.kind, spec.ref.value) == (kind, value)
    assert value in str(spec.ref)


@pytest.mark.parametrize(
    "url",
    [
        "https://git.example.com/org/apps.git",
        "http://127.0.0.1:3000/apps.git",
        "ssh://git@git.example.com:2222/org/apps.git",
        "git@github.com:org/apps.git",
        "file:///srv/git/apps.git",
    ],
)
def test_accepted_urls(url: str) -> None:
    assert GitRepositorySpec.from_object(gitrepository(url=url, ref={"branch": "main"})).url == url


@pytest.mark.parametrize("url", ["git@h:apps.git", "git@github.com:org/apps.git", "ssh://git@h/apps.git"])
def test_an_admitted_url_is_one_git_is_given(url: str) -> None:
    spec = GitRepositorySpec.from_object(gitrepository(url=url, ref={"branch": "main"}))
    assert GitUrl.parse(spec.url).for_git == url


@pytest.mark.parametrize(
    "url",
    ["git.example.com/org/apps", "ftp://host/apps.git", "ssh://-oProxyCommand=evil/x", "-u@host:x", "/srv/git"],
)
def test_refused_urls(url: str) -> None:
    with pytest.raises(SpecError, match=r"GitRepository moor-system/apps: spec.url must be an http\(s\)://"):
        GitRepositorySpec.from_object(gitrepository(url=url, ref={"branch": "main"}))


@pytest.mark.parametrize(
    ("ref", "found"),
    [
        ({"branch": "main", "tag": "v1"}, "it sets branch and tag"),
        ({}, "it sets none"),
        ({"semver": "1.x", "commit": "a" * 40}, "it sets semver and commit"),
    ],
)
def test_a_ref_names_exactly_one_revision(ref: dict[str, str], found: str) -> None:
    with pytest.raises(SpecError) as caught:
        GitRepositorySpec.from_object(gitrepository(url="file:///r", ref=ref))
    assert str(caught.value) == (
        f"GitRepository moor-system/apps: spec.ref must set exactly one of branch, tag, semver or commit ({found})"
    )


def test_the_ref_is_required() -> None:
    with pytest.raises(SpecError, match=r"spec.ref is required"):
        GitRepositorySpec.from_object(gitrepository(url="file:///r"))


@pytest.mark.parametrize("commit", ["abc123", "G" * 40, "A" * 40, "a" * 41])
def test_a_commit_is_forty_lower_case_hex_digits(commit: str) -> None:
    with pytest.raises(SpecError, match=r"spec.ref.commit must be 40 lower-case hex digits"):
        GitRepositorySpec.from_object(gitrepository(url="file:///r", ref={"commit": commit}))


@pytest.mark.parametrize("branch", ["-upload-pack=touch", "feature branch", "a:b", "x~1"])
def test_a_branch_must_be_a_ref_name_that_cannot_pass_for_an_option(branch: str) -> None:
    with pytest.raises(SpecError, match=r"spec.ref.branch must be a valid Git ref name"):
        GitRepositorySpec.from_object(gitrepository(url="file:///r", ref={"branch": branch}))


def test_a_bad_interval_names_the_field_and_the_syntax() -> None:
    with pytest.raises(SpecError) as caught:
        GitRepositorySpec.from_object(gitrepository(url="file:///r", ref={"branch": "main"}, interval="1 minute"))
    assert str(caught.value).startswith(
        "GitRepository moor-system/apps: spec.interval is invalid: '1 minute' is not a duration"
    )


def test_a_zero_timeout_is_refused() -> None:
    with pytest.raises(SpecError, match=r"spec.timeout must be longer than zero"):
        GitRepositorySpec.from_object(gitrepository(url="file:///r", ref={"branch": "main"}, timeout="0s"))


def test_an_unknown_verify_mode_lists_the_choices() -> None:
    with pytest.raises(SpecError, match=r"spec.verify.mode must be one of HEAD, Tag, TagAndHEAD, not 'head'"):
        GitRepositorySpec.from_object(
            gitrepository(url="file:///r", ref={"tag": "v1"}, verify={"mode": "head", "secretRef": {"name": "k"}})
        )


def test_verify_needs_a_secret() -> None:
    with pytest.raises(SpecError, match=r"spec.verify.secretRef is required"):
        GitRepositorySpec.from_object(gitrepository(url="file:///r", ref={"tag": "v1"}, verify={"mode": "Tag"}))


def test_secret_names_are_dns_names() -> None:
    with pytest.raises(SpecError, match=r"spec.secretRef.name must be a DNS-1123 subdomain"):
        GitRepositorySpec.from_object(
            gitrepository(url="file:///r", ref={"branch": "main"}, secretRef={"name": "Git_Auth"})
        )


def test_a_missing_spec_is_reported() -> None:
    obj = gitrepository()
    del obj["spec"]
    with pytest.raises(SpecError, match=r"GitRepository moor-system/apps: spec.url is required"):
        GitRepositorySpec.from_object(obj)


def test_suspend_must_be_a_boolean() -> None:
    with pytest.raises(SpecError, match=r"spec.suspend must be true or false, not 'yes'"):
        GitRepositorySpec.from_object(gitrepository(url="file:///r", ref={"branch": "main"}, suspend="yes"))


def test_a_ref_value_holds_exactly_one_revision() -> None:
    with pytest.raises(InvalidSourceSpec):
        GitRef(branch="main", tag="v1")
    with pytest.raises(InvalidSourceSpec):
        GitRef()
