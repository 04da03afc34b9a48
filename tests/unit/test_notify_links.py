"""Links to commits and the project a commit status goes to, from every spelling of a repository URL."""

from __future__ import annotations

import pytest

from moor.notify.links import commit_url, repository_address

SHA = "3f2a5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://github.com/acme/shop.git", f"https://github.com/acme/shop/commit/{SHA}"),
        ("https://github.com/acme/shop", f"https://github.com/acme/shop/commit/{SHA}"),
        ("https://x-access-token:s3cr3t@github.com/acme/shop.git", f"https://github.com/acme/shop/commit/{SHA}"),
        ("git@github.com:acme/shop.git", f"https://github.com/acme/shop/commit/{SHA}"),
        ("ssh://git@github.com:22/acme/shop.git", f"https://github.com/acme/shop/commit/{SHA}"),
        ("https://github.example.com:8443/acme/shop.git", f"https://github.example.com:8443/acme/shop/commit/{SHA}"),
        ("https://gitlab.com/group/sub/shop.git", f"https://gitlab.com/group/sub/shop/-/commit/{SHA}"),
        ("git@gitlab.example.org:group/shop.git", f"https://gitlab.example.org/group/shop/-/commit/{SHA}"),
        ("https://bitbucket.org/team/shop.git", f"https://bitbucket.org/team/shop/commits/{SHA}"),
        ("https://git.example.com/acme/shop.git", ""),
        ("file:///srv/git/shop.git", ""),
        ("not a url", ""),
    ],
)
def test_commit_links(url: str, expected: str) -> None:
    assert commit_url(url, SHA) == expected


def test_no_link_without_a_commit_id() -> None:
    assert commit_url("https://github.com/acme/shop", "main") == ""


def test_credentials_never_reach_a_link() -> None:
    link = commit_url("https://user:hunter22@github.com/acme/shop.git", SHA)
    assert "hunter22" not in link and "user" not in link


@pytest.mark.parametrize(
    ("url", "owner_and_name", "project_id"),
    [
        ("https://github.com/acme/shop.git", ("acme", "shop"), "acme%2Fshop"),
        ("http://127.0.0.1:8080/acme/shop.git", ("acme", "shop"), "acme%2Fshop"),
        ("git@gitlab.com:group/sub/shop.git", None, "group%2Fsub%2Fshop"),
        ("https://gitlab.com//group//shop.git/", ("group", "shop"), "group%2Fshop"),
    ],
)
def test_the_project_of_a_repository(url: str, owner_and_name: tuple[str, str] | None, project_id: str) -> None:
    address = repository_address(url)
    assert address is not None
    assert address.owner_and_name == owner_and_name
    assert address.project_id == project_id


@pytest.mark.parametrize("url", ["file:///srv/shop.git", "https://github.com/", "/srv/shop.git", "C:/repos/shop"])
def test_urls_that_name_no_web_project(url: str) -> None:
    assert repository_address(url) is None
