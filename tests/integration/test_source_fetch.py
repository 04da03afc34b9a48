"""Resolving every kind of ref and fetching commits into the cache, against real repositories."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from moor.source import (
    Artifact,
    ArtifactCache,
    GitAuth,
    GitRef,
    NoMatchingTag,
    RefNotFound,
    RepositoryNotFound,
    fetch,
    resolve,
    resolve_and_fetch,
)
from tests.support.git_fixtures import GitHttpServer, GitWorkspace

pytestmark = pytest.mark.git


@pytest.fixture
def cache(tmp_path: Path) -> ArtifactCache:
    return ArtifactCache(tmp_path / "cache")


def commit_file(workspace: GitWorkspace, text: str, message: str = "Change the app") -> str:
    workspace.write("app/config.yaml", text)
    return workspace.commit(message)


def content(artifact: Artifact) -> str:
    return (artifact.path / "app" / "config.yaml").read_text()


async def test_a_branch_is_fetched_at_its_newest_commit(git_repo: GitWorkspace, cache: ArtifactCache) -> None:
    commit_file(git_repo, "one\n")
    newest = commit_file(git_repo, "two\n")
    git_repo.push()
    artifact = await resolve_and_fetch(git_repo.url, GitRef(branch="main"), cache=cache)
    assert artifact.revision == f"main@sha1:{newest}"
    assert artifact.commit == newest
    assert content(artifact) == "two\n"


async def test_the_artifact_holds_the_files_but_no_git_metadata(git_repo: GitWorkspace, cache: ArtifactCache) -> None:
    git_repo.write("app/config.yaml", "a: 1\n")
    git_repo.write("app/nested/deep.yaml", "b: 2\n")
    git_repo.commit("Files")
    git_repo.push()
    artifact = await resolve_and_fetch(git_repo.url, GitRef(branch="main"), cache=cache)
    files = sorted(str(p.relative_to(artifact.path)) for p in artifact.path.rglob("*") if p.is_file())
    assert files == ["app/config.yaml", "app/nested/deep.yaml"]


async def test_the_artifact_carries_the_commits_author_message_and_time(
    git_repo: GitWorkspace, cache: ArtifactCache
) -> None:
    git_repo.write("app/config.yaml", "x\n")
    when = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
    message = "Scale the web tier\n\nBecause traffic doubled.\nReviewed-by: Ops"
    sha = git_repo.commit(message, author="Ada Lovelace <ada@example.com>", when=when)
    git_repo.push()
    artifact = await resolve_and_fetch(git_repo.url, GitRef(branch="main"), cache=cache)
    assert artifact.commit == sha
    assert artifact.author == "Ada Lovelace <ada@example.com>"
    assert artifact.message == message
    assert artifact.committed_at == when
    assert artifact.committed_at.tzinfo is not None


async def test_lightweight_and_annotated_tags_fetch_the_tagged_commit(
    git_repo: GitWorkspace, cache: ArtifactCache
) -> None:
    light = commit_file(git_repo, "light\n")
    git_repo.tag("v1.0.0")
    annotated = commit_file(git_repo, "annotated\n")
    git_repo.tag("v1.1.0", message="Release 1.1.0")
    commit_file(git_repo, "after\n")
    git_repo.push()
    assert git_repo.remote_rev_parse("v1.1.0") != annotated  # the tag object, not the commit

    first = await resolve_and_fetch(git_repo.url, GitRef(tag="v1.0.0"), cache=cache)
    assert (first.revision, content(first)) == (f"v1.0.0@sha1:{light}", "light\n")
    second = await resolve_and_fetch(git_repo.url, GitRef(tag="v1.1.0"), cache=cache)
    assert (second.revision, content(second)) == (f"v1.1.0@sha1:{annotated}", "annotated\n")


async def test_a_semver_range_fetches_its_highest_tag(git_repo: GitWorkspace, cache: ArtifactCache) -> None:
    for version in ("v1.0.0", "v1.2.0", "v1.10.0", "v2.0.0-rc.1", "v2.0.0"):
        commit_file(git_repo, f"{version}\n")
        git_repo.tag(version, message=f"Release {version}" if version.endswith("0.0") else None)
    git_repo.push()

    in_one = await resolve_and_fetch(git_repo.url, GitRef(semver=">=1.0.0 <2.0.0"), cache=cache)
    assert in_one.revision.startswith("v1.10.0@sha1:")
    assert content(in_one) == "v1.10.0\n"
    newest = await resolve_and_fetch(git_repo.url, GitRef(semver="*"), cache=cache)
    assert content(newest) == "v2.0.0\n"
    with pytest.raises(NoMatchingTag) as caught:
        await resolve(git_repo.url, GitRef(semver=">=3.0.0"))
    assert str(caught.value) == f"no tag in {git_repo.url} matches the semver range '>=3.0.0'"


async def test_a_commit_ref_fetches_that_commit_even_when_it_is_not_a_branch_head(
    git_repo: GitWorkspace, cache: ArtifactCache
) -> None:
    old = commit_file(git_repo, "old\n")
    commit_file(git_repo, "new\n")
    git_repo.push()
    artifact = await resolve_and_fetch(git_repo.url, GitRef(commit=old), cache=cache)
    assert artifact.revision == f"sha1:{old}"
    assert content(artifact) == "old\n"


async def test_a_commit_the_repository_does_not_have_is_named(git_repo: GitWorkspace, cache: ArtifactCache) -> None:
    commit_file(git_repo, "x\n")
    git_repo.push()
    missing = "0123456789" * 4
    with pytest.raises(RefNotFound) as caught:
        await resolve_and_fetch(git_repo.url, GitRef(commit=missing), cache=cache)
    assert str(caught.value) == f"commit {missing} was not found in {git_repo.url}"


@pytest.mark.parametrize(
    ("ref", "message"), [(GitRef(branch="develop"), "branch 'develop'"), (GitRef(tag="v9.9.9"), "tag 'v9.9.9'")]
)
async def test_a_missing_branch_or_tag_is_named(git_repo: GitWorkspace, ref: GitRef, message: str) -> None:
    commit_file(git_repo, "x\n")
    git_repo.tag("v1.0.0")
    git_repo.push()
    with pytest.raises(RefNotFound) as caught:
        await resolve(git_repo.url, ref)
    assert str(caught.value) == f"{message} was not found in {git_repo.url}"


async def test_a_force_pushed_branch_resolves_to_its_new_commit_and_fetches(
    git_repo: GitWorkspace, cache: ArtifactCache
) -> None:
    base = commit_file(git_repo, "base\n")
    commit_file(git_repo, "doomed\n")
    git_repo.push()
    before = await resolve_and_fetch(git_repo.url, GitRef(branch="main"), cache=cache)
    assert content(before) == "doomed\n"

    git_repo.reset_hard(base)
    rewritten = commit_file(git_repo, "rewritten\n", message="Rewrite history")
    git_repo.push(force=True)

    after = await resolve_and_fetch(git_repo.url, GitRef(branch="main"), cache=cache)
    assert after.revision == f"main@sha1:{rewritten}"
    assert content(after) == "rewritten\n"
    assert content(before) == "doomed\n"  # the old artifact is untouched


async def test_a_cached_commit_is_served_without_touching_the_remote(
    git_repo: GitWorkspace, cache: ArtifactCache
) -> None:
    commit_file(git_repo, "cached\n")
    git_repo.push()
    resolved = await resolve(git_repo.url, GitRef(branch="main"))
    first = await fetch(git_repo.url, resolved, cache=cache)

    git_repo.bare.rename(git_repo.bare.with_name("gone.git"))
    with pytest.raises(RepositoryNotFound):
        await resolve(git_repo.url, GitRef(branch="main"))
    second = await fetch(git_repo.url, resolved, cache=cache)
    assert second == first
    assert content(second) == "cached\n"


async def test_one_commit_under_two_names_shares_one_cache_entry(git_repo: GitWorkspace, cache: ArtifactCache) -> None:
    sha = commit_file(git_repo, "x\n")
    git_repo.tag("v1.0.0")
    git_repo.push()
    by_branch = await resolve_and_fetch(git_repo.url, GitRef(branch="main"), cache=cache)
    by_tag = await resolve_and_fetch(git_repo.url, GitRef(tag="v1.0.0"), cache=cache)
    assert (by_branch.revision, by_tag.revision) == (f"main@sha1:{sha}", f"v1.0.0@sha1:{sha}")
    assert by_branch.path == by_tag.path
    assert await cache.commits() == [sha]


async def test_concurrent_fetches_of_one_commit_run_git_once(git_http_server: GitHttpServer, tmp_path: Path) -> None:
    workspace = git_http_server.create_repo()
    commit_file(workspace, "shared\n")
    workspace.push()
    name = workspace.bare.name.removesuffix(".git")
    auth = GitAuth.from_secret(git_http_server.basic_auth_secret())
    resolved = await resolve(workspace.url, GitRef(branch="main"), auth)
    assert git_http_server.upload_pack_sessions(name) == 1

    cache = ArtifactCache(tmp_path / "cache")
    artifacts = await asyncio.gather(*(fetch(workspace.url, resolved, auth, cache=cache) for _ in range(5)))
    assert len({a.path for a in artifacts}) == 1
    assert git_http_server.upload_pack_sessions(name) == 2  # one ls-remote, one fetch


async def test_the_cache_keeps_only_the_newest_entries(git_repo: GitWorkspace, tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path / "cache", max_entries=2)
    fetched = []
    for text in ("one\n", "two\n", "three\n"):
        commit_file(git_repo, text)
        git_repo.push()
        fetched.append(await resolve_and_fetch(git_repo.url, GitRef(branch="main"), cache=cache))
    assert await cache.commits() == [fetched[2].commit, fetched[1].commit]
    assert not fetched[0].path.exists()
    assert content(fetched[2]) == "three\n"
    assert [p.name for p in (tmp_path / "cache").iterdir()] != []
    assert not [p for p in (tmp_path / "cache").iterdir() if p.name.startswith(".staging-")]


async def test_a_failed_fetch_leaves_nothing_in_the_cache(git_repo: GitWorkspace, cache: ArtifactCache) -> None:
    with pytest.raises(RefNotFound):
        await resolve_and_fetch(git_repo.url, GitRef(commit="ab" * 20), cache=cache)
    assert await cache.commits() == []
    assert not [p for p in cache.root.iterdir() if p.name.startswith(".staging-")]


async def test_each_revision_shows_exactly_the_files_of_its_commit(
    git_repo: GitWorkspace, cache: ArtifactCache
) -> None:
    git_repo.write("app/config.yaml", "a\n")
    git_repo.write("app/old.yaml", "old\n")
    git_repo.commit("Two files")
    git_repo.push()
    before = await resolve_and_fetch(git_repo.url, GitRef(branch="main"), cache=cache)
    git_repo.remove("app/old.yaml")
    git_repo.commit("Drop one")
    git_repo.push()
    after = await resolve_and_fetch(git_repo.url, GitRef(branch="main"), cache=cache)
    assert (before.path / "app" / "old.yaml").exists()
    assert not (after.path / "app" / "old.yaml").exists()


async def test_other_branches_and_deleted_tags(git_repo: GitWorkspace, cache: ArtifactCache) -> None:
    on_main = commit_file(git_repo, "main\n")
    git_repo.tag("v1.0.0")
    git_repo.push()
    git_repo.checkout("release/1.x", create=True)
    on_release = commit_file(git_repo, "release\n")
    git_repo.push()
    assert (await resolve(git_repo.url, GitRef(branch="main"))).commit == on_main
    release = await resolve_and_fetch(git_repo.url, GitRef(branch="release/1.x"), cache=cache)
    assert (release.revision, content(release)) == (f"release/1.x@sha1:{on_release}", "release\n")
    git_repo.delete_tag("v1.0.0")
    with pytest.raises(RefNotFound, match=r"tag 'v1\.0\.0' was not found"):
        await resolve(git_repo.url, GitRef(tag="v1.0.0"))
