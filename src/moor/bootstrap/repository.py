"""Bootstrap's files committed to the repository: one commit when they changed, none when they did not,
and a clear answer instead of a failure when the credentials may read but not write."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from moor.source.auth import GitAuth
from moor.source.errors import AuthenticationFailed, GitCommandFailed
from moor.source.git_cli import GitSession
from moor.source.urls import GitUrl

# Words of git's stderr when a push is refused for want of write access (HTTP 403, a read-only key,
# a protected branch, a server that does not accept pushes at all).
_READ_ONLY = ("403", "permission", "denied", "read-only", "read only", "protected branch", "not allowed", "forbidden")


@dataclass(frozen=True)
class RepositoryWrite:
    """What happened to the files: `commit` is the new commit (None when nothing changed or nothing
    could be pushed), `head` the branch's commit afterwards, `refused` why the push was refused."""

    head: str
    commit: str | None = None
    refused: str = ""


async def commit_files(
    url: str,
    branch: str,
    files: Mapping[str, str],
    auth: GitAuth | None,
    *,
    author: tuple[str, str],
    message: str,
    timeout: float = 120.0,
) -> RepositoryWrite:
    """Writes `files` (path relative to the root -> text) on `branch` of the repository at `url` and
    pushes one commit when any differs; a branch that does not exist yet is created."""
    remote = GitUrl.parse(url)
    work = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="moor-bootstrap-"))
    name, email = author
    identity = ("-c", f"user.name={name}", "-c", f"user.email={email}")
    try:
        async with GitSession.open(remote, auth, timeout) as git:
            await git.run("init", "--quiet", work, operation="git init")
            fetched = await git.try_run(
                "-C", work, "fetch", "--quiet", "--depth=1", remote.for_git, f"refs/heads/{branch}",
                operation="git fetch",
            )  # fmt: skip
            if fetched.ok:
                await git.run("-C", work, "checkout", "--quiet", "-B", branch, "FETCH_HEAD", operation="git checkout")
            elif "couldn't find remote ref" in fetched.stderr.lower():
                await git.run("-C", work, "checkout", "--quiet", "--orphan", branch, operation="git checkout")
            else:
                raise git.failure("git fetch", fetched.stderr)
            await asyncio.to_thread(_write, work, files)
            await git.run("-C", work, "add", "--", *files, operation="git add")
            status = await git.run("-C", work, "status", "--porcelain", "--", *files, operation="git status")
            if not status.strip():
                return RepositoryWrite(await _head(git, work))
            await git.run("-C", work, *identity, "commit", "--quiet", "-m", message, operation="git commit")
            commit = await _head(git, work)
            pushed = await git.try_run(
                "-C", work, "push", "--quiet", remote.for_git, f"HEAD:refs/heads/{branch}", operation="git push"
            )
            if pushed.ok:
                return RepositoryWrite(commit, commit)
            error = git.failure("git push", pushed.stderr)
            if isinstance(error, AuthenticationFailed) or _read_only(pushed.stderr):
                head = await git.try_run("-C", work, "rev-parse", "FETCH_HEAD", operation="git rev-parse")
                said = _server_words(pushed.stderr) or str(error)
                return RepositoryWrite(head.stdout.strip() if head.ok else "", None, refused=said)
            raise error
    finally:
        await asyncio.to_thread(shutil.rmtree, work, True)


def _write(work: Path, files: Mapping[str, str]) -> None:
    for relative, text in files.items():
        target = (work / relative).resolve()
        if work.resolve() not in target.parents:
            raise GitCommandFailed(f"{relative!r} is outside the repository")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")


def _server_words(stderr: str) -> str:
    """What the server said (git's `remote:` lines), which names the cause better than git's summary."""
    lines = [line.removeprefix("remote:").strip() for line in stderr.splitlines() if line.startswith("remote:")]
    return "; ".join(line for line in lines if line)


def _read_only(stderr: str) -> bool:
    lowered = stderr.lower()
    return any(words in lowered for words in _READ_ONLY)


async def _head(git: GitSession, work: Path) -> str:
    result = await git.try_run("-C", work, "rev-parse", "HEAD", operation="git rev-parse")
    return result.stdout.strip() if result.ok else ""
