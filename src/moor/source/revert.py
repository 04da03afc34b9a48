"""Making Git the truth again after a rollback: a commit that reverts a branch to an earlier revision,
pushed with the GitRepository's own credentials (`moor rollback --revert`)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

from moor.source.auth import GitAuth
from moor.source.errors import GitCommandFailed
from moor.source.git_cli import GitSession
from moor.source.urls import GitUrl


async def push_revert(
    url: str,
    branch: str,
    target_commit: str,
    auth: GitAuth | None,
    *,
    author: tuple[str, str],
    message: str,
    timeout: float = 120.0,
) -> str:
    """Commits, on `branch`, the revert of every commit after `target_commit`, pushes it, returns its id."""
    remote = GitUrl.parse(url)
    work = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="moor-revert-"))
    name, email = author
    identity = ("-c", f"user.name={name}", "-c", f"user.email={email}")
    try:
        async with GitSession.open(remote, auth, timeout) as git:
            await git.run(
                "clone",
                "--quiet",
                "--single-branch",
                "--branch",
                branch,
                "--",
                remote.for_git,
                work,
                operation="git clone",
            )
            if await _head(git, work) == target_commit:
                raise GitCommandFailed(
                    f"{branch} of {remote.redacted} is already at {target_commit}", url=remote.redacted
                )
            reverted = await git.try_run(
                "-C", work, "revert", "--no-commit", f"{target_commit}..HEAD", operation="git revert"
            )
            if not reverted.ok:
                raise GitCommandFailed(
                    f"cannot revert {branch} of {remote.redacted} to {target_commit}: {reverted.stderr.strip()}",
                    url=remote.redacted,
                )
            await git.run("-C", work, *identity, "commit", "--quiet", "-m", message, operation="git commit")
            await git.run("-C", work, "push", "--quiet", "origin", f"HEAD:refs/heads/{branch}", operation="git push")
            return await _head(git, work)
    finally:
        await asyncio.to_thread(shutil.rmtree, work, True)


async def _head(git: GitSession, work: Path) -> str:
    return (await git.run("-C", work, "rev-parse", "HEAD", operation="git rev-parse")).strip()
