"""The write-back of image updates against real Git servers (smart HTTP with auth, SSH): pushes that race
all land, a protected branch is refused with the server's words, signed commits pass `verify`, a review
branch is replaced only while its tip is the automation's own. No cluster needed."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest

from moor.automation.writeback import Author, Edit, PushRejected, SigningKey, Target, write_back
from moor.source.auth import GitAuth
from moor.source.errors import VerificationFailed
from moor.source.refs import GitRef, ResolvedRevision
from moor.source.verify import TrustedKeys, VerificationPolicy, verify_revision
from tests.support.git_fixtures import GitHttpServer, GitSshServer, GitWorkspace, GpgSigner, SigningKeys, run_git

AUTHOR = Author("Moor Automation", "automation@moor.invalid")


def seeded(repo: GitWorkspace) -> str:
    repo.write("README.md", "images\n")
    sha = repo.commit("Start")
    repo.push()
    return sha


def setter(relpath: str, text: str, message: str) -> Edit:
    """An edit that writes `text` to `relpath` unless it already holds it."""

    async def edit(tree: Path) -> str | None:
        path = tree / relpath
        if path.exists() and path.read_text() == text:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return message

    return edit


def http_target(
    server: GitHttpServer, repo: GitWorkspace, push_branch: str = "main", replace_own: str | None = None
) -> Target:
    auth = GitAuth(username=server.username, password=server.password)
    return Target(repo.url, auth, "main", push_branch, replace_own=replace_own)


def gpg_secret_key(signer: GpgSigner) -> bytes:
    """The armoured secret key, as an ImageUpdate's signing Secret holds it in `git.asc`."""
    command = ["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "", "--armor"]
    return subprocess.run(
        [*command, "--export-secret-keys", signer.fingerprint],
        env={**os.environ, "GNUPGHOME": str(signer.home)},
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout


async def test_pushes_racing_on_one_branch_all_land_without_force(git_ssh_server: GitSshServer) -> None:
    repo = git_ssh_server.create_repo()
    start = seeded(repo)
    auth = GitAuth.from_secret(git_ssh_server.auth_secret())
    target = Target(repo.url, auth, "main", "main")

    pushed = await asyncio.gather(
        *(write_back(target, setter(f"app-{n}.yaml", f"n: {n}\n", f"Update app {n}"), AUTHOR) for n in range(4))
    )

    assert all(result is not None for result in pushed)
    messages = repo.remote_log()
    assert sorted(messages[:4]) == [f"Update app {n}" for n in range(4)]
    assert messages[4] == "Start"
    head = repo.remote_rev_parse("main")
    run_git("--git-dir", repo.bare, "merge-base", "--is-ancestor", start, head)
    assert {result.commit for result in pushed if result} <= set(
        run_git("--git-dir", repo.bare, "rev-list", "main").split()
    )
    assert max(result.attempts for result in pushed if result) > 1, "at least one push found the branch moved"


async def test_nothing_to_change_makes_no_commit(git_http_server: GitHttpServer) -> None:
    repo = git_http_server.create_repo()
    seeded(repo)
    edit = setter("a.yaml", "a: 1\n", "Set a")
    assert await write_back(http_target(git_http_server, repo), edit, AUTHOR) is not None
    head = repo.remote_rev_parse("main")

    assert await write_back(http_target(git_http_server, repo), edit, AUTHOR) is None
    assert repo.remote_rev_parse("main") == head


async def test_a_protected_branch_is_refused_with_the_servers_words(git_http_server: GitHttpServer) -> None:
    repo = git_http_server.create_repo()
    start = seeded(repo)
    repo.protect("main", "main is protected: open a pull request")

    with pytest.raises(PushRejected, match="main is protected: open a pull request") as refused:
        await write_back(http_target(git_http_server, repo), setter("a.yaml", "a: 1\n", "Set a"), AUTHOR)

    assert "the push to main of" in str(refused.value) and git_http_server.password not in str(refused.value)
    assert repo.remote_rev_parse("main") == start


async def test_signed_commits_satisfy_verify_with_the_matching_key(
    git_http_server: GitHttpServer, signing_keys: SigningKeys
) -> None:
    repo = git_http_server.create_repo()
    seeded(repo)
    ssh = signing_keys.ssh("automation@moor.invalid")
    gpg = signing_keys.gpg("Moor Automation", "automation@moor.invalid")
    gpg_secret = await asyncio.to_thread(gpg_secret_key, gpg)
    trust = TrustedKeys(gpg_keys=(("automation.asc", gpg.public_key),), allowed_signers=ssh.allowed_signer().encode())

    for n, key in enumerate([SigningKey("ssh", ssh.private_key.read_bytes()), SigningKey("gpg", gpg_secret)]):
        pushed = await write_back(
            http_target(git_http_server, repo), setter("a.yaml", f"a: {n}\n", f"Set a to {n}"), AUTHOR, key
        )
        assert pushed is not None
        resolved = ResolvedRevision(GitRef(branch="main"), pushed.commit, "refs/heads/main")
        signatures = await verify_revision(repo.bare, resolved, VerificationPolicy(trust), timeout=60)
        assert signatures.commit is not None and signatures.commit.method == key.method

    unsigned = await write_back(http_target(git_http_server, repo), setter("a.yaml", "a: x\n", "Set a"), AUTHOR)
    assert unsigned is not None
    with pytest.raises(VerificationFailed, match="is not signed"):
        resolved = ResolvedRevision(GitRef(branch="main"), unsigned.commit, "refs/heads/main")
        await verify_revision(repo.bare, resolved, VerificationPolicy(trust), timeout=60)


async def test_a_review_branch_is_replaced_only_while_its_tip_is_the_automations_own(
    git_http_server: GitHttpServer,
) -> None:
    repo = git_http_server.create_repo()
    start = seeded(repo)
    own = "Moor-Automation: apps/auto"
    review = http_target(git_http_server, repo, push_branch="moor/image-apps-app", replace_own=own)

    first = await write_back(review, setter("a.yaml", "a: 1\n", f"Set a to 1\n\n{own}"), AUTHOR)
    second = await write_back(review, setter("a.yaml", "a: 2\n", f"Set a to 2\n\n{own}"), AUTHOR)

    assert first is not None and second is not None
    assert repo.remote_rev_parse("main") == start, "the checkout branch is left alone"
    assert repo.remote_log("moor/image-apps-app") == [f"Set a to 2\n\n{own}", "Start"], "one proposal, on main"
    repo.checkout("moor/image-apps-app", create=True)
    run_git("fetch", "--quiet", "origin", cwd=repo.work)
    run_git("reset", "--quiet", "--hard", "origin/moor/image-apps-app", cwd=repo.work)
    repo.write("a.yaml", "a: reviewed\n")
    repo.commit("A reviewer's change")
    repo.push()

    with pytest.raises(PushRejected, match="has a commit this automation did not write"):
        await write_back(review, setter("a.yaml", "a: 3\n", f"Set a to 3\n\n{own}"), AUTHOR)
    assert repo.remote_log("moor/image-apps-app")[0] == "A reviewer's change"
