"""A repository too large to check out is refused at fetch time, before its files are written."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from moor.source import ArtifactCache, ArtifactLimits, ArtifactTooLarge, GitRef, fetch, resolve, resolve_and_fetch
from tests.support.git_fixtures import GitWorkspace

pytestmark = pytest.mark.git

KIB = 1024


def cache_with(tmp_path: Path, **limits: int) -> ArtifactCache:
    return ArtifactCache(tmp_path / "cache", limits=ArtifactLimits(**limits))


def stored(cache: ArtifactCache) -> list[str]:
    """Everything in the cache's directory, staging directories included."""
    return sorted(path.name for path in cache.root.iterdir()) if cache.root.exists() else []


async def test_too_many_files_are_refused(git_repo: GitWorkspace, tmp_path: Path) -> None:
    for number in range(30):
        git_repo.write(f"app/cm-{number:02d}.yaml", f"n: {number}\n")
    commit = git_repo.commit("thirty files")
    git_repo.push()
    cache = cache_with(tmp_path, max_files=20)

    with pytest.raises(ArtifactTooLarge) as refused:
        await resolve_and_fetch(git_repo.url, GitRef(branch="main"), cache=cache)
    assert str(refused.value) == (
        f"revision main@sha1:{commit} of {git_repo.url} is too large: it holds more than 20 files, "
        "the limit (moor run --max-artifact-files)"
    )
    assert refused.value.reason == "ArtifactTooLarge"
    assert stored(cache) == [], "nothing of a refused revision stays on disk"


async def test_highly_compressible_content_is_refused_by_its_real_size(git_repo: GitWorkspace, tmp_path: Path) -> None:
    """A "zip bomb": a few KiB over the wire, far more once checked out. Counted from the tree, not the pack."""
    git_repo.write("app/config.yaml", "a: 1\n")
    git_repo.write("padding.txt", "0" * (600 * KIB))
    git_repo.commit("a small pack, a large tree")
    git_repo.push()
    cache = cache_with(tmp_path, max_bytes=512 * KIB)

    with pytest.raises(ArtifactTooLarge, match=r"is too large: its files take more than 512 KiB, the limit"):
        await resolve_and_fetch(git_repo.url, GitRef(branch="main"), cache=cache)
    assert stored(cache) == []


async def test_incompressible_objects_are_refused_by_what_was_fetched(git_repo: GitWorkspace, tmp_path: Path) -> None:
    git_repo.write("random.bin", os.urandom(700 * KIB).hex()[: 700 * KIB])
    git_repo.commit("700 KiB that do not compress much")
    git_repo.push()
    cache = cache_with(tmp_path, max_bytes=256 * KIB)

    with pytest.raises(
        ArtifactTooLarge, match=r"is too large: git fetched .* of objects for it, over the limit of 256"
    ):
        await resolve_and_fetch(git_repo.url, GitRef(branch="main"), cache=cache)


async def test_a_revision_at_the_limits_is_fetched(git_repo: GitWorkspace, tmp_path: Path) -> None:
    for number in range(9):
        git_repo.write(f"app/cm-{number}.yaml", "x" * 100)
    git_repo.write("app/link.yaml", "")
    (git_repo.work / "app" / "link.yaml").unlink()
    (git_repo.work / "app" / "link.yaml").symlink_to("cm-0.yaml")  # a symlink is a file too
    git_repo.commit("ten files")
    git_repo.push()
    cache = cache_with(tmp_path, max_files=10, max_bytes=64 * KIB)

    artifact = await resolve_and_fetch(git_repo.url, GitRef(branch="main"), cache=cache)
    assert len(list((artifact.path / "app").iterdir())) == 10


async def test_a_refused_commit_is_refused_again_without_fetching_it(git_repo: GitWorkspace, tmp_path: Path) -> None:
    for number in range(5):
        git_repo.write(f"f{number}.txt", "x\n")
    git_repo.commit("five files")
    git_repo.push()
    cache = cache_with(tmp_path, max_files=3)
    with pytest.raises(ArtifactTooLarge) as first:
        await resolve_and_fetch(git_repo.url, GitRef(branch="main"), cache=cache)
    resolved = await resolve(git_repo.url, GitRef(branch="main"))
    shutil.rmtree(git_repo.bare)  # a second fetch would fail with "repository not found"
    with pytest.raises(ArtifactTooLarge) as second:
        await fetch(git_repo.url, resolved, cache=cache)
    assert str(second.value) == str(first.value)
