"""Resolving and fetching over file://, smart HTTP (basic auth, bearer token) and SSH, with real servers."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from moor.source import (
    ArtifactCache,
    AuthenticationFailed,
    GitAuth,
    GitRef,
    GitTimeout,
    HostKeyVerificationFailed,
    HostUnreachable,
    InvalidSourceSpec,
    RefNotFound,
    RepositoryNotFound,
    SourceError,
    fetch,
    resolve,
)
from tests.support.git_fixtures import GitHttpServer, GitSshServer, GitWorkspace

pytestmark = pytest.mark.git

MAIN = GitRef(branch="main")


def publish(workspace: GitWorkspace, text: str = "kind: ConfigMap\n") -> str:
    workspace.write("app/config.yaml", text)
    sha = workspace.commit("Add the app")
    workspace.push()
    return sha


async def assert_resolves_and_fetches(
    workspace: GitWorkspace, url: str, auth: GitAuth | None, cache_dir: Path, sha: str
) -> None:
    resolved = await resolve(url, MAIN, auth, timeout=30)
    assert resolved.revision == f"main@sha1:{sha}"
    artifact = await fetch(url, resolved, auth, cache=ArtifactCache(cache_dir), timeout=30)
    assert artifact.commit == sha
    assert (artifact.path / "app" / "config.yaml").read_text() == "kind: ConfigMap\n"


def assert_no_secret_in(error: BaseException, *secrets: str | bytes) -> None:
    message = str(error)
    for secret in secrets:
        text = secret.decode() if isinstance(secret, bytes) else secret
        for line in text.splitlines():
            if len(line.strip()) >= 8:
                assert line.strip() not in message, "a secret leaked into the error message"


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never says a word."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


# ------------------------------------------------------------------------------------------- file://


async def test_file_urls_resolve_and_fetch(git_repo: GitWorkspace, tmp_path: Path) -> None:
    sha = publish(git_repo)
    await assert_resolves_and_fetches(git_repo, git_repo.url, None, tmp_path / "cache", sha)


async def test_a_missing_local_repository_is_named(tmp_path: Path) -> None:
    url = f"file://{tmp_path}/nothing.git"
    with pytest.raises(RepositoryNotFound, match=f"the repository {url} was not found"):
        await resolve(url, MAIN)


# ---------------------------------------------------------------------------------------- smart HTTP


async def test_http_with_basic_auth_resolves_and_fetches(git_http_server: GitHttpServer, tmp_path: Path) -> None:
    workspace = git_http_server.create_repo()
    sha = publish(workspace)
    auth = GitAuth.from_secret(git_http_server.basic_auth_secret())
    await assert_resolves_and_fetches(workspace, workspace.url, auth, tmp_path / "cache", sha)


async def test_http_with_a_bearer_token_resolves_and_fetches(git_http_server: GitHttpServer, tmp_path: Path) -> None:
    workspace = git_http_server.create_repo()
    sha = publish(workspace)
    auth = GitAuth.from_secret(git_http_server.token_secret())
    await assert_resolves_and_fetches(workspace, workspace.url, auth, tmp_path / "cache", sha)


async def test_http_credentials_in_the_url_are_used_without_being_shown(
    git_http_server: GitHttpServer, tmp_path: Path
) -> None:
    workspace = git_http_server.create_repo()
    sha = publish(workspace)
    user, password = git_http_server.username, git_http_server.password
    url = workspace.url.replace("http://", f"http://{user}:{password}@")
    await assert_resolves_and_fetches(workspace, url, None, tmp_path / "cache", sha)
    with pytest.raises(RefNotFound) as caught:
        await resolve(url, GitRef(branch="nope"))
    assert password not in str(caught.value)
    assert workspace.url in str(caught.value)


@pytest.mark.parametrize(
    "secret",
    [
        {"username": b"moor-test", "password": b"wrong-password-123"},
        {"bearerToken": b"wrong-token-4567890"},
    ],
    ids=["wrong-password", "wrong-token"],
)
async def test_http_with_wrong_credentials_fails_as_an_authentication_error(
    git_http_server: GitHttpServer, secret: dict[str, bytes]
) -> None:
    workspace = git_http_server.create_repo()
    publish(workspace)
    with pytest.raises(AuthenticationFailed) as caught:
        await resolve(workspace.url, MAIN, GitAuth.from_secret(secret), timeout=30)
    assert str(caught.value) == f"authentication to {workspace.url} failed: the server rejected the credentials"
    assert_no_secret_in(caught.value, *secret.values())


async def test_http_without_credentials_says_none_were_given(git_http_server: GitHttpServer) -> None:
    workspace = git_http_server.create_repo()
    publish(workspace)
    with pytest.raises(AuthenticationFailed, match="the server asks for credentials and none were given"):
        await resolve(workspace.url, MAIN, timeout=30)


async def test_a_missing_http_repository_is_named(git_http_server: GitHttpServer) -> None:
    url = git_http_server.url("does-not-exist")
    auth = GitAuth.from_secret(git_http_server.token_secret())
    with pytest.raises(RepositoryNotFound) as caught:
        await resolve(url, MAIN, auth, timeout=30)
    assert str(caught.value) == f"the repository {url} was not found"


async def test_a_server_speaking_only_protocol_v0_still_serves_every_ref_kind(
    git_http_server: GitHttpServer, tmp_path: Path
) -> None:
    workspace = git_http_server.create_repo()
    first = publish(workspace, "one\n")
    second = publish(workspace, "two\n")
    url = git_http_server.legacy_url(workspace.bare.name.removesuffix(".git"))
    auth = GitAuth.from_secret(git_http_server.token_secret())
    cache = ArtifactCache(tmp_path / "cache")
    branch = await fetch(url, await resolve(url, MAIN, auth), auth, cache=cache)
    assert branch.commit == second
    old = await fetch(url, await resolve(url, GitRef(commit=first), auth), auth, cache=cache)
    assert (old.path / "app" / "config.yaml").read_text() == "one\n"


async def test_http_credentials_never_appear_in_any_process_arguments(
    silent_port: int, git_http_server: GitHttpServer
) -> None:
    password = "argv-canary-" + "9" * 12
    auth = GitAuth(username="bob", password=password)
    url = f"http://127.0.0.1:{silent_port}/repo.git"
    task = asyncio.create_task(resolve(url, MAIN, auth, timeout=10))
    seen_git = False
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not seen_git:
        await asyncio.sleep(0.1)
        for cmdline in _all_command_lines():
            assert password not in cmdline
            assert "Ym9iOmFyZ3Yt" not in cmdline  # base64 of "bob:argv-"
            seen_git = seen_git or str(silent_port) in cmdline
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, SourceError):
        await task
    assert seen_git, "git never ran against the silent server"


# ---------------------------------------------------------------------------------------------- SSH


async def test_ssh_with_key_and_known_hosts_resolves_and_fetches(git_ssh_server: GitSshServer, tmp_path: Path) -> None:
    workspace = git_ssh_server.create_repo()
    sha = publish(workspace)
    auth = GitAuth.from_secret(git_ssh_server.auth_secret())
    await assert_resolves_and_fetches(workspace, workspace.url, auth, tmp_path / "cache", sha)


async def test_ssh_with_an_unknown_key_fails_as_an_authentication_error(git_ssh_server: GitSshServer) -> None:
    workspace = git_ssh_server.create_repo()
    publish(workspace)
    stranger = git_ssh_server.unauthorized_key()
    auth = GitAuth(identity=stranger, known_hosts=git_ssh_server.known_hosts)
    with pytest.raises(AuthenticationFailed) as caught:
        await resolve(workspace.url, MAIN, auth, timeout=30)
    assert str(caught.value) == f"authentication to {workspace.url} failed: the server rejected the credentials"
    assert_no_secret_in(caught.value, stranger)


async def test_ssh_to_a_host_whose_key_is_not_known_fails_host_key_verification(
    git_ssh_server: GitSshServer,
) -> None:
    workspace = git_ssh_server.create_repo()
    publish(workspace)
    auth = GitAuth(identity=git_ssh_server.private_key, known_hosts=git_ssh_server.wrong_known_hosts())
    with pytest.raises(HostKeyVerificationFailed) as caught:
        await resolve(workspace.url, MAIN, auth, timeout=30)
    assert str(caught.value).startswith(f"host key verification failed for {workspace.url}")
    assert_no_secret_in(caught.value, git_ssh_server.private_key)


async def test_ssh_without_known_hosts_is_refused(git_ssh_server: GitSshServer) -> None:
    workspace = git_ssh_server.create_repo()
    with pytest.raises(InvalidSourceSpec, match="needs 'known_hosts'"):
        await resolve(workspace.url, MAIN, GitAuth(identity=git_ssh_server.private_key))


async def test_a_missing_ssh_repository_is_named(git_ssh_server: GitSshServer, tmp_path: Path) -> None:
    url = git_ssh_server.url(tmp_path / "absent.git")
    auth = GitAuth.from_secret(git_ssh_server.auth_secret())
    with pytest.raises(RepositoryNotFound, match="was not found"):
        await resolve(url, MAIN, auth, timeout=30)


# ------------------------------------------------------------------------------------ unreachable


@pytest.mark.parametrize("scheme", ["http", "ssh"])
async def test_a_closed_port_is_reported_as_unreachable(
    scheme: str, closed_port: int, git_ssh_server: GitSshServer
) -> None:
    url = f"{scheme}://git@127.0.0.1:{closed_port}/repo.git"
    auth = (
        GitAuth(username="u", password="p") if scheme == "http" else GitAuth.from_secret(git_ssh_server.auth_secret())
    )
    with pytest.raises(HostUnreachable) as caught:
        await resolve(url, MAIN, auth, timeout=30)
    shown = url if scheme == "ssh" else f"http://127.0.0.1:{closed_port}/repo.git"
    assert str(caught.value) == f"cannot reach {shown}: connection refused"


async def test_a_server_that_never_answers_times_out_and_git_is_killed(silent_port: int) -> None:
    url = f"http://127.0.0.1:{silent_port}/repo.git"
    started = time.monotonic()
    with pytest.raises(GitTimeout) as caught:
        await resolve(url, MAIN, timeout=1.5)
    assert time.monotonic() - started < 10
    assert str(caught.value) == f"git ls-remote of {url} timed out after 1.5s"
    await asyncio.sleep(0.2)
    assert not [c for c in _all_command_lines() if f"127.0.0.1:{silent_port}" in c]


def _all_command_lines() -> list[str]:
    lines = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                lines.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace"))
    return lines
