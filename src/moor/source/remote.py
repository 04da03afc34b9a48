"""Talking to a Git remote: resolve a ref to a commit, fetch exactly that commit into the cache.

`resolve` costs one `git ls-remote` (no objects move), so asking "did the branch move?" is cheap.
`fetch` downloads one commit, shallow, only when the cache does not have it already (with the
annotated tag object when the ref is such a tag), and checks its signatures when asked to.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from moor.source.artifact import GIT_DIR, TREE_DIR, Artifact, ArtifactCache, CommitInfo
from moor.source.auth import GitAuth
from moor.source.errors import RefNotFound
from moor.source.git_cli import GitSession, git_program
from moor.source.limits import ArtifactLimits, check_fetched_objects, check_tree
from moor.source.refs import GitRef, RemoteRefs, ResolvedRevision
from moor.source.urls import GitUrl
from moor.source.verify import VerificationPolicy, verify_revision

DEFAULT_TIMEOUT = 60.0
_FETCHED_REF = "refs/moor/fetched"
# How servers refuse a `want` for an object id: protocol v0 without allowReachableSHA1InWant says
# the first; v2 (and v0 for an id it does not have) says the others.
_UNADVERTISED = "unadvertised object"
_REFUSED = (_UNADVERTISED, "not our ref", "couldn't find remote ref", "no such remote ref")


async def resolve(
    url: str,
    ref: GitRef,
    auth: GitAuth | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> ResolvedRevision:
    """The commit `ref` names in the repository now, found with one `git ls-remote`."""
    remote = GitUrl.parse(url)
    async with GitSession.open(remote, auth, timeout) as git:
        listing = await git.run("ls-remote", "--", remote.for_git, *ref.ls_remote_patterns(), operation="git ls-remote")
    return RemoteRefs.parse(listing).select(ref, remote.redacted)


async def fetch(
    url: str,
    resolved: ResolvedRevision,
    auth: GitAuth | None = None,
    *,
    cache: ArtifactCache,
    timeout: float = DEFAULT_TIMEOUT,
    verify: VerificationPolicy | None = None,
) -> Artifact:
    """The files and metadata of a resolved commit, from the cache or else fetched shallowly into it.

    With `verify`, the signatures it asks for are checked before the artifact is returned (its
    `signatures` says what was found); VerificationFailed means the revision must not be used.
    """
    remote = GitUrl.parse(url)
    entry = await cache.get(resolved.commit)
    if entry is None:

        async def populate(staging: Path) -> CommitInfo:
            async with GitSession.open(remote, auth, timeout) as git:
                return await _download(git, resolved, staging, cache.limits)

        entry = await cache.obtain(resolved.commit, populate)
    artifact = Artifact.of(resolved.revision, entry)
    if verify is None:
        return artifact
    if verify.tag and resolved.tag_object is not None:
        await _ensure_tag_object(remote, auth, timeout, entry.git_dir, resolved)
    signatures = await verify_revision(entry.git_dir, resolved, verify, timeout=timeout)
    return replace(artifact, signatures=signatures)


async def resolve_and_fetch(
    url: str,
    ref: GitRef,
    auth: GitAuth | None = None,
    *,
    cache: ArtifactCache,
    timeout: float = DEFAULT_TIMEOUT,
    verify: VerificationPolicy | None = None,
) -> Artifact:
    """`resolve` then `fetch`, for callers that do not keep the resolved revision in between."""
    resolved = await resolve(url, ref, auth, timeout=timeout)
    return await fetch(url, resolved, auth, cache=cache, timeout=timeout, verify=verify)


async def _download(git: GitSession, resolved: ResolvedRevision, staging: Path, limits: ArtifactLimits) -> CommitInfo:
    """Fetches one commit into `staging/git` and, unless it is over `limits`, checks it out into `staging/tree`."""
    git_dir, tree = staging / GIT_DIR, staging / TREE_DIR
    await git.run("init", "--quiet", "--bare", git_dir, operation="git init")
    await _fetch_commit(git, git_dir, resolved)
    what = f"revision {resolved.revision} of {git.url.redacted}"
    await check_fetched_objects(git_dir, git.env, limits, what, git=git_program(), timeout=git.timeout)
    await check_tree(git_dir, resolved.commit, git.env, limits, what, git=git_program(), timeout=git.timeout)
    await asyncio.to_thread(tree.mkdir)
    await git.run(
        "--git-dir",
        git_dir,
        "--work-tree",
        tree,
        "checkout",
        "--quiet",
        "--force",
        "--detach",
        resolved.commit,
        operation="git checkout",
    )
    return await _commit_info(git, git_dir, resolved.commit)


async def _fetch_commit(git: GitSession, git_dir: Path, resolved: ResolvedRevision) -> None:
    """Shallow-fetches the commit (through its annotated tag object, if any, so that comes too) by id;
    where the server refuses ids, fetches the ref and finds them."""
    url = git.url.for_git
    want = resolved.tag_object or resolved.commit
    fetch = ("--git-dir", git_dir, "fetch", "--quiet", "--no-tags", "--no-write-fetch-head")
    by_id = await git.try_run(*fetch, "--depth=1", "--", url, want, operation="git fetch")
    if by_id.ok:
        return
    refused = by_id.stderr.lower()
    if not any(reason in refused for reason in _REFUSED):
        raise git.failure("git fetch", by_id.stderr)
    if resolved.refname is not None:
        refspec = f"+{resolved.refname}:{_FETCHED_REF}"
        await git.run(*fetch, "--", url, refspec, operation="git fetch")
        needed = [f"{resolved.commit}^{{commit}}", *([resolved.tag_object] if resolved.tag_object else [])]
        if not all([await _has_object(git, git_dir, name) for name in needed]):
            raise RefNotFound(
                f"{resolved.ref} moved away from {resolved.commit} in {git.url.redacted} while it was "
                "being fetched; the next attempt uses its new commit",
                url=git.url.redacted,
            )
        return
    if _UNADVERTISED in refused:  # a v0 server: the commit may be anywhere, so fetch everything
        await git.run(
            *fetch, "--", url, "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*", operation="git fetch"
        )
        if await _has_object(git, git_dir, f"{resolved.commit}^{{commit}}"):
            return
    raise RefNotFound(f"{resolved.ref} was not found in {git.url.redacted}", url=git.url.redacted)


async def _ensure_tag_object(
    remote: GitUrl, auth: GitAuth | None, timeout: float, git_dir: Path, resolved: ResolvedRevision
) -> None:
    """Fetches the annotated tag object into a cached commit's git dir when the commit was cached
    under another name (a branch, or another tag), so the tag's signature can be checked."""
    assert resolved.tag_object is not None
    async with GitSession.open(remote, auth, timeout) as git:
        if not await _has_object(git, git_dir, resolved.tag_object):
            await _fetch_commit(git, git_dir, resolved)


async def _has_object(git: GitSession, git_dir: Path, name: str) -> bool:
    """Whether `name` (an object id, or `<id>^{commit}` to insist on a commit) is in the repository."""
    result = await git.try_run("--git-dir", git_dir, "cat-file", "-e", name, operation="git cat-file")
    return result.ok


async def _commit_info(git: GitSession, git_dir: Path, commit: str) -> CommitInfo:
    output = await git.run(
        "--git-dir",
        git_dir,
        "show",
        "--no-patch",
        "--no-show-signature",
        "--format=%an%x00%ae%x00%ct%x00%B",
        commit,
        operation="git show",
    )
    name, email, timestamp, message = output.split("\0", 3)
    return CommitInfo(
        commit=commit,
        author=f"{name} <{email}>",
        message=message.rstrip("\n"),
        committed_at=datetime.fromtimestamp(int(timestamp), UTC),
    )
