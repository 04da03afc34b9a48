"""Which GitRepositories a push concerns: the same repository (however its URL is spelled) and a ref it moves."""

from __future__ import annotations

from typing import Any

import pytest

from moor.web.push import PushEvent, normalise_url, ref_matches, select_repositories


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/acme/apps.git",
        "https://github.com/acme/apps",
        "https://github.com/acme/apps/",
        "https://github.com/acme/apps.git/",
        "http://github.com/acme/apps",
        "HTTPS://GitHub.com/Acme/Apps.git",
        "https://user:pa55@github.com/acme/apps.git",
        "https://github.com:443/acme/apps",
        "https://github.com//acme//apps",
        "https://github.com/acme/apps.git?ref=main#readme",
        "ssh://git@github.com/acme/apps.git",
        "ssh://git@github.com:22/acme/apps",
        "git@github.com:acme/apps.git",
        "git@github.com:/acme/apps",
        "github.com:acme/apps",
        "git://github.com/acme/apps.git",
        "  https://github.com/acme/apps.git \n",
    ],
)
def test_every_spelling_of_one_repository_is_the_same(url: str) -> None:
    assert normalise_url(url) == "github.com/acme/apps"


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("https://github.com/acme/apps", "https://github.com/acme/apps-infra"),
        ("https://github.com/acme/apps", "https://gitlab.com/acme/apps"),
        ("https://github.com/acme/apps", "https://github.com/other/apps"),
        ("git@github.com:acme/apps.git", "git@github.com:acme/apps.git/sub"),
        ("file:///srv/git/apps.git", "https://srv/git/apps"),
    ],
)
def test_different_repositories_stay_different(one: str, other: str) -> None:
    assert normalise_url(one) != normalise_url(other)


def test_nested_groups_ipv6_hosts_and_local_paths() -> None:
    assert normalise_url("git@gitlab.example.com:group/sub/project.git") == "gitlab.example.com/group/sub/project"
    assert normalise_url("https://gitlab.example.com/group/sub/project") == "gitlab.example.com/group/sub/project"
    assert normalise_url("ssh://git@[::1]:2222/srv/apps.git") == "::1/srv/apps"
    assert normalise_url("file:///srv/git/apps.git") == "/srv/git/apps"
    assert normalise_url("file://localhost/srv/git/apps.git/") == "/srv/git/apps"
    assert normalise_url("/srv/git/apps.git") == "/srv/git/apps"
    assert normalise_url("") == ""


@pytest.mark.parametrize(
    ("pushed", "ref", "expected"),
    [
        ("refs/heads/main", {"branch": "main"}, True),
        ("refs/heads/dev", {"branch": "main"}, False),
        ("refs/heads/feature/main", {"branch": "main"}, False),
        ("refs/tags/main", {"branch": "main"}, False),
        ("refs/tags/v1.2.0", {"tag": "v1.2.0"}, True),
        ("refs/tags/v1.3.0", {"tag": "v1.2.0"}, False),
        ("refs/heads/v1.2.0", {"tag": "v1.2.0"}, False),
        ("refs/tags/v1.3.0", {"semver": ">=1.0.0"}, True),
        ("refs/heads/main", {"semver": ">=1.0.0"}, False),
        ("refs/heads/main", {"commit": "a" * 40}, False),
        ("refs/tags/v1", {"commit": "a" * 40}, False),
        (None, {"branch": "main"}, True),
        (None, {"commit": "a" * 40}, True),
        ("refs/heads/main", None, False),
        ("refs/heads/main", "main", False),
    ],
)
def test_a_push_matches_the_refs_whose_revision_it_can_change(pushed: str | None, ref: Any, expected: bool) -> None:
    assert ref_matches(pushed, ref) is expected


def repository(namespace: str, name: str, url: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "moor.dev/v1",
        "kind": "GitRepository",
        "metadata": {"namespace": namespace, "name": name},
        "spec": {"url": url, "ref": {"branch": "main"}, **spec},
    }


def names(repositories: list[dict[str, Any]]) -> list[str]:
    return [f"{r['metadata']['namespace']}/{r['metadata']['name']}" for r in repositories]


def test_select_finds_the_repository_in_every_namespace_by_any_of_its_urls() -> None:
    event = PushEvent("github", ("https://github.com/acme/apps.git", "git@github.com:acme/apps.git"), "refs/heads/main")
    repositories = [
        repository("team-b", "apps", "ssh://git@github.com/acme/apps"),
        repository("team-a", "apps", "https://github.com/acme/apps"),
        repository("team-a", "infra", "https://github.com/acme/infra"),
        repository("team-a", "apps-dev", "https://github.com/acme/apps", ref={"branch": "dev"}),
        repository("team-a", "releases", "https://github.com/acme/apps", ref={"semver": ">=1"}),
        repository("team-c", "paused", "https://github.com/acme/apps", suspend=True),
    ]
    assert names(select_repositories(event, repositories)) == ["team-a/apps", "team-b/apps"]


def test_select_skips_objects_without_a_usable_spec() -> None:
    event = PushEvent("generic", ("https://github.com/acme/apps",), None)
    broken: list[dict[str, Any]] = [
        {"metadata": {"namespace": "a", "name": "no-spec"}},
        {"metadata": {"namespace": "a", "name": "no-url"}, "spec": {"ref": {"branch": "main"}}},
        {"metadata": {"namespace": "a", "name": "url-not-text"}, "spec": {"url": 3, "ref": {"branch": "main"}}},
        {"metadata": {"namespace": "a", "name": "no-ref"}, "spec": {"url": "https://github.com/acme/apps"}},
    ]
    assert select_repositories(event, broken) == []


def test_an_empty_url_matches_nothing() -> None:
    event = PushEvent("generic", ("   ",), None)
    assert select_repositories(event, [repository("a", "empty", "")]) == []


def test_scp_like_text_without_a_path_names_no_repository() -> None:
    # `git@host:` is refused as a GitRepository's spec.url (scp-like wants a path), so a push naming it
    # must not reach the repositories on that host, nor its root.
    assert normalise_url("git@github.com:") != normalise_url("https://github.com")
    event = PushEvent("generic", ("git@github.com:",), None)
    on_that_host = [
        repository("a", "root", "https://github.com"),
        repository("a", "root-over-ssh", "ssh://git@github.com/"),
        repository("a", "apps", "git@github.com:acme/apps.git"),
    ]
    assert select_repositories(event, on_that_host) == []
