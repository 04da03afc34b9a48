"""Writing image updates to Git: clone the branch, edit, commit (signed if asked), push; never force.

One `write_back` is one attempt to land one commit. It clones the branch shallowly through a
`GitSession` (the GitRepository's own credentials, isolated git), runs the edit on the work tree and,
when something changed, commits with the given author and message. If the branch moved meanwhile
(the push is not a fast-forward, or the server lost a race for the ref), it fetches the new head,
applies the edit again on it (which is safer than `git rebase`: the setters decide on the new
content) and tries again, a bounded number of times. A push refused for another reason (a
pre-receive hook, a protected branch) is a `PushRejected`. A review branch (`replace_own`) may be
replaced, with a lease, only while its tip is this automation's own commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from moor.binaries import locate
from moor.errors import MoorError
from moor.private_files import write_private
from moor.source.auth import GitAuth
from moor.source.git_cli import GitSession, git_environment, run_isolated
from moor.source.urls import GitUrl

MAX_ATTEMPTS = 5
_MOVED = ("non-fast-forward", "fetch first", "cannot lock ref", "failed to lock", "incorrect old value", "stale info")
_REFUSED = ("hook declined", "remote rejected", "protected branch", "[rejected]")


class WriteBackError(MoorError):
    reason = "GitOperationFailed"


class PushRejected(WriteBackError):
    """The server refused the push for a reason retrying will not change (a hook, a protected branch)."""

    reason = "PushRejected"


class BranchKeptMoving(WriteBackError):
    """Every attempt found the branch moved again before its push landed."""

    reason = "BranchKeptMoving"


class SigningFailed(WriteBackError):
    reason = "SigningFailed"


@dataclass(frozen=True, repr=False)
class SigningKey:
    """A private key commits are signed with: an OpenSSH key (method ssh) or an armoured GPG key."""

    method: Literal["ssh", "gpg"]
    key: bytes

    def __repr__(self) -> str:
        return f"SigningKey({self.method})"


@dataclass(frozen=True)
class Target:
    """Where a write goes: the repository, the branch to start from and the branch to push."""

    url: str
    auth: GitAuth | None
    checkout_branch: str
    push_branch: str
    timeout: float = 120.0
    replace_own: str | None = None
    """For a review branch: the trailer line that marks this automation's own tip, which may be replaced."""
    workdir: Path | None = None
    """Where the work tree is cloned (None: the system's temporary directory)."""


@dataclass(frozen=True)
class Author:
    name: str
    email: str


Edit = Callable[[Path], Awaitable[str | None]]
"""Edits the work tree in place and returns the commit message; None when nothing needed to change.
May raise (a MoorError) to stop the write; runs again on the new head when the branch moved."""


@dataclass(frozen=True)
class Pushed:
    commit: str
    branch: str
    attempts: int


async def write_back(target: Target, edit: Edit, author: Author, signing: SigningKey | None = None) -> Pushed | None:
    """Lands one commit made by `edit` on `target.push_branch`; None when the branch already holds it."""
    remote = GitUrl.parse(target.url)
    if target.workdir is not None:
        await asyncio.to_thread(target.workdir.mkdir, 0o700, True, True)
    work = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="moor-image-update-", dir=target.workdir))
    try:
        async with (
            GitSession.open(remote, target.auth, target.timeout) as git,
            _signer(signing, target.timeout) as sign,
        ):
            git.env.update(sign.env)
            identity = (
                "-c",
                f"user.name={author.name}",
                "-c",
                f"user.email={author.email}",
                *sign.config,
            )
            tree = work / "tree"
            start = await _clone(git, remote, target, tree)
            for attempt in range(1, MAX_ATTEMPTS + 1):
                message = await edit(tree)
                if message is None:
                    return None
                await git.run("-C", tree, "add", "--all", operation="git add")
                staged = await git.try_run("-C", tree, "diff", "--cached", "--quiet", operation="git diff")
                if staged.ok:
                    return None
                committed = await git.try_run(
                    "-C", tree, *identity, "commit", "--quiet", "--no-verify", *sign.flag, "-m", message,
                    operation="git commit",
                )  # fmt: skip
                if not committed.ok:
                    if sign.flag:
                        raise SigningFailed(f"cannot sign the commit for {remote.redacted}: {committed.stderr.strip()}")
                    raise git.failure("git commit", committed.stderr)
                lease = (
                    (f"--force-with-lease=refs/heads/{target.push_branch}:{start.remote_tip}",) if start.replace else ()
                )
                pushed = await git.try_run(
                    "-C",
                    tree,
                    "push",
                    "--porcelain",
                    *lease,
                    "origin",
                    f"HEAD:refs/heads/{target.push_branch}",
                    operation="git push",
                )
                said = f"{pushed.stdout}\n{pushed.stderr}".lower()
                if pushed.ok:
                    head = (await git.run("-C", tree, "rev-parse", "HEAD", operation="git rev-parse")).strip()
                    return Pushed(head, target.push_branch, attempt)
                if not any(word in said for word in _MOVED):
                    if any(word in said for word in _REFUSED):
                        raise PushRejected(
                            f"the push to {target.push_branch} of {remote.redacted} was refused: "
                            f"{_refusal(pushed.stdout + pushed.stderr)}"
                        )
                    raise git.failure("git push", pushed.stderr)
                start = await _refetch(git, remote, target, tree)
            raise BranchKeptMoving(
                f"{target.push_branch} of {remote.redacted} moved before each of {MAX_ATTEMPTS} pushes landed"
            )
    finally:
        await asyncio.to_thread(shutil.rmtree, work, True)


# ------------------------------------------------------------------------------------------ private


@dataclass(frozen=True)
class _Start:
    remote_tip: str
    """The push branch's tip as last seen ('' when it does not exist yet)."""
    replace: bool
    """Whether the push replaces the tip (a review branch of our own) rather than building on it."""


async def _clone(git: GitSession, remote: GitUrl, target: Target, tree: Path) -> _Start:
    """The checkout branch cloned; the push branch checked out on it when it exists and is built upon."""
    await git.run(
        "clone",
        "--quiet",
        "--depth",
        "1",
        "--single-branch",
        "--branch",
        target.checkout_branch,
        "--",
        remote.for_git,
        tree,
        operation="git clone",
    )
    if target.push_branch == target.checkout_branch:
        return _Start(await _head(git, tree), replace=False)
    return await _refetch(git, remote, target, tree, first=True)


async def _refetch(git: GitSession, remote: GitUrl, target: Target, tree: Path, *, first: bool = False) -> _Start:
    """The push branch's new tip fetched and the work tree reset to it (or, for a review branch, to the
    checkout branch's tip, with the review branch's tip remembered for the lease)."""
    branch = target.push_branch
    fetched = await git.try_run(
        "-C",
        tree,
        "fetch",
        "--quiet",
        "--depth",
        "1",
        "origin",
        f"+refs/heads/{branch}:refs/remotes/origin/{branch}",
        operation="git fetch",
    )
    exists = fetched.ok
    if not exists and "couldn't find remote ref" not in fetched.stderr.lower():
        raise git.failure("git fetch", fetched.stderr)
    if target.replace_own is not None:
        if not first:
            await _reset_to_remote(git, tree, target.checkout_branch)
        if not exists:
            return _Start("", replace=False)
        tip = (
            await git.run("-C", tree, "rev-parse", f"refs/remotes/origin/{branch}", operation="git rev-parse")
        ).strip()
        said = await git.run("-C", tree, "log", "-1", "--format=%B", tip, operation="git log")
        if target.replace_own not in said.splitlines():
            raise PushRejected(
                f"{branch} of {remote.redacted} has a commit this automation did not write; "
                "merge or delete the branch to get new proposals"
            )
        return _Start(tip, replace=True)
    if exists:
        await git.run("-C", tree, "reset", "--quiet", "--hard", f"refs/remotes/origin/{branch}", operation="git reset")
    elif not first:
        await _reset_to_remote(git, tree, target.checkout_branch)
    return _Start(await _head(git, tree), replace=False)


async def _reset_to_remote(git: GitSession, tree: Path, branch: str) -> None:
    """The work tree at the remote's tip of `branch` (fetched again: it may have moved since the clone)."""
    refspec = f"+refs/heads/{branch}:refs/remotes/origin/{branch}"
    await git.run("-C", tree, "fetch", "--quiet", "--depth", "1", "origin", refspec, operation="git fetch")
    await git.run("-C", tree, "reset", "--quiet", "--hard", f"refs/remotes/origin/{branch}", operation="git reset")


async def _head(git: GitSession, tree: Path) -> str:
    return (await git.run("-C", tree, "rev-parse", "HEAD", operation="git rev-parse")).strip()


def _refusal(said: str) -> str:
    """The server's own words about why it refused: its `remote:` lines, else git's summary."""
    remote_lines = [line.removeprefix("remote:").strip() for line in said.splitlines() if line.startswith("remote:")]
    remote_lines = [line for line in remote_lines if line]
    if remote_lines:
        return "; ".join(remote_lines)[:400]
    lines = [line.strip() for line in said.splitlines() if line.strip() and not line.startswith("To ")]
    return (lines[-1] if lines else "no reason given")[:400]


@dataclass(frozen=True)
class _Signer:
    config: tuple[str, ...] = ()
    flag: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)


@contextlib.asynccontextmanager
async def _signer(signing: SigningKey | None, timeout: float) -> AsyncIterator[_Signer]:
    """The git options (and for GPG the private GNUPGHOME) that sign a commit with `signing`."""
    if signing is None:
        yield _Signer()
        return
    directory = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="moor-sign-"))
    try:
        await asyncio.to_thread(directory.chmod, 0o700)
        if signing.method == "ssh":
            key = directory / "signing_key"
            content = signing.key.replace(b"\r\n", b"\n")
            await asyncio.to_thread(write_private, key, content if content.endswith(b"\n") else content + b"\n")
            config = (
                "-c",
                "gpg.format=ssh",
                "-c",
                f"gpg.ssh.program={locate('ssh-keygen')}",
                "-c",
                f"user.signingkey={key}",
            )
            yield _Signer(config=config, flag=("-S",))
            return
        gnupg = directory / "g"
        await asyncio.to_thread(gnupg.mkdir, 0o700)
        fingerprint = await _import_gpg_key(gnupg, directory, signing.key, timeout)
        gpg = str(locate("gpg"))
        config = ("-c", "gpg.format=openpgp", "-c", f"gpg.program={gpg}", "-c", f"user.signingkey={fingerprint}")
        try:
            yield _Signer(config=config, flag=("-S",), env={"GNUPGHOME": str(gnupg)})
        finally:
            env = {**git_environment(directory), "GNUPGHOME": str(gnupg)}
            with contextlib.suppress(Exception):
                await run_isolated((str(locate("gpgconf")), "--kill", "all"), env=env, timeout=10)
    finally:
        await asyncio.to_thread(shutil.rmtree, directory, True)


async def _import_gpg_key(gnupg: Path, directory: Path, armoured: bytes, timeout: float) -> str:
    """Imports the secret key into the private GNUPGHOME and returns its fingerprint."""
    key_file = directory / "key.asc"
    await asyncio.to_thread(write_private, key_file, armoured)
    env = {**git_environment(directory), "GNUPGHOME": str(gnupg)}
    gpg = str(locate("gpg"))
    imported = await run_isolated((gpg, "--batch", "--no-tty", "--import", key_file), env=env, timeout=timeout)
    listing = await run_isolated(
        (gpg, "--batch", "--no-tty", "--with-colons", "--list-secret-keys"), env=env, timeout=timeout
    )
    for line in listing.stdout.decode("utf-8", "replace").splitlines():
        if line.startswith("fpr:"):
            return line.split(":")[9]
    said = imported.stderr.decode("utf-8", "replace").strip().splitlines()
    raise SigningFailed(f"the signing key holds no GPG secret key ({said[-1] if said else 'gpg gave no reason'})")
