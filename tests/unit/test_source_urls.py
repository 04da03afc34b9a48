"""Repository URLs and credentials: what git gets, what users see, and that secrets never leak."""

import asyncio
from pathlib import Path

import pytest

from moor.source import (
    AuthenticationFailed,
    GitAuth,
    GitCommandFailed,
    GitUrl,
    HostKeyVerificationFailed,
    HostUnreachable,
    InvalidSourceSpec,
    RepositoryNotFound,
    redact_url,
)
from moor.source.git_cli import GitSession
from moor.source.urls import ScpLikeUrl


@pytest.mark.parametrize(
    ("url", "transport", "for_git", "redacted"),
    [
        ("https://git.example.com/org/apps.git", "https", "https://git.example.com/org/apps.git", None),
        ("https://bob:s3cret@git.example.com/a.git", "https", "https://git.example.com/a.git", None),
        ("http://tok@127.0.0.1:8080/a.git", "http", "http://127.0.0.1:8080/a.git", None),
        ("ssh://git@git.example.com:2222/org/a.git", "ssh", "ssh://git@git.example.com:2222/org/a.git", None),
        ("ssh://git:pw@host/a.git", "ssh", "ssh://git@host/a.git", None),
        ("git@github.com:org/apps.git", "ssh", "git@github.com:org/apps.git", None),
        ("github.com:org/apps.git", "ssh", "github.com:org/apps.git", None),
        ("file:///srv/git/apps.git", "file", "file:///srv/git/apps.git", None),
        ("HTTPS://[::1]:8443/a.git", "https", "https://[::1]:8443/a.git", None),
    ],
)
def test_supported_urls_are_given_to_git_without_http_credentials(
    url: str, transport: str, for_git: str, redacted: str | None
) -> None:
    parsed = GitUrl.parse(url)
    assert parsed.transport == transport
    assert parsed.for_git == for_git
    assert parsed.redacted == (redacted or for_git)


@pytest.mark.parametrize(
    ("url", "parts"),
    [
        ("git@github.com:org/apps.git", ("git", "github.com", "org/apps.git")),
        ("github.com:org/apps.git", (None, "github.com", "org/apps.git")),
        ("git@[::1]:srv/apps.git", ("git", "[::1]", "srv/apps.git")),
        ("git@h:apps.git", ("git", "h", "apps.git")),
        ("C:/repos/apps", None),
        ("/srv/git:x", None),
        ("https://host/a.git", None),
        ("git@host:", None),
    ],
)
def test_the_scp_like_syntax_is_read_into_user_host_and_path(
    url: str, parts: tuple[str | None, str, str] | None
) -> None:
    scp = ScpLikeUrl.parse(url)
    assert (None if scp is None else (scp.user, scp.host, scp.path)) == parts


def test_credentials_in_an_http_url_are_kept_aside_for_auth() -> None:
    parsed = GitUrl.parse("https://bob:p%40ss@git.example.com/a.git")
    assert (parsed.username, parsed.password) == ("bob", "p@ss")
    assert "p%40ss" not in repr(parsed) and "p@ss" not in repr(parsed)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("git://example.com/a.git", "unsupported scheme 'git'"),
        ("ftp://example.com/a.git", "unsupported scheme 'ftp'"),
        ("/srv/git/a.git", "is not supported"),
        ("relative/path", "is not supported"),
        ("-uhelp", "is not valid"),
        ("", "is not valid"),
        ("https:///nohost.git", "names no host"),
        ("file://relative", "absolute path"),
        ("https://host:notaport/a.git", "is not valid"),
        ("ext::sh -c whoami", "is not supported"),
    ],
)
def test_other_urls_are_refused_clearly(url: str, message: str) -> None:
    with pytest.raises(InvalidSourceSpec, match=message):
        GitUrl.parse(url)


def test_a_refused_url_does_not_echo_its_password() -> None:
    with pytest.raises(InvalidSourceSpec) as caught:
        GitUrl.parse("ftp://bob:hunter2@example.com/a.git")
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("https://user:token@host/a.git", "https://host/a.git"),
        ("https://token@host/a.git", "https://host/a.git"),
        ("ssh://git@host/a.git", "ssh://git@host/a.git"),
        ("ssh://git:pw@host/a.git", "ssh://git@host/a.git"),
        ("git@host:a.git", "git@host:a.git"),
        ("https://host/a.git", "https://host/a.git"),
    ],
)
def test_redacted_urls_carry_no_secret(url: str, redacted: str) -> None:
    assert redact_url(url) == redacted


def test_auth_is_read_from_a_secrets_data() -> None:
    basic = GitAuth.from_secret({"username": b"bob", "password": b"s3cret\n", "ca.crt": b"ignored"})
    assert (basic.username, basic.password) == ("bob", "s3cret")
    assert basic.authorization_header() == "Authorization: Basic Ym9iOnMzY3JldA=="
    token = GitAuth.from_secret({"bearerToken": b"tkn"})
    assert token.authorization_header() == "Authorization: Bearer tkn"
    ssh = GitAuth.from_secret({"identity": b"KEY", "known_hosts": b"host ssh-ed25519 AAAA"})
    assert (ssh.identity, ssh.known_hosts, ssh.authorization_header()) == (b"KEY", b"host ssh-ed25519 AAAA", None)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"password": b"x"}, "has a 'password' but no 'username'"),
        ({"username": b"u", "password": b"p", "bearerToken": b"t"}, "both a 'bearerToken' and a 'password'"),
        ({"username": b"\xff"}, "'username' is not UTF-8"),
    ],
)
def test_inconsistent_auth_secrets_are_refused(data: dict[str, bytes], message: str) -> None:
    with pytest.raises(InvalidSourceSpec, match=message):
        GitAuth.from_secret(data)


def test_auth_never_shows_its_secrets_in_repr() -> None:
    auth = GitAuth(username="bob", password="hunter2", identity=b"PRIVATE")
    assert repr(auth) == "GitAuth(username=<set>, password=<set>, identity=<set>)"


async def session_for(url: str, auth: GitAuth | None) -> GitSession:
    parsed = GitUrl.parse(url)
    return GitSession(parsed, auth, timeout=5, workdir=Path("/nonexistent"))


async def test_git_stderr_is_scrubbed_of_every_secret() -> None:
    auth = GitAuth(username="bob", password="hunter2")
    session = await session_for("https://host/a.git", auth)
    text = session.scrub("fatal: unable to access 'https://bob:hunter2@host/a.git/': header Ym9iOmh1bnRlcjI= hunter2")
    assert "hunter2" not in text and "Ym9iOmh1bnRlcjI=" not in text and "bob:" not in text


async def test_credentials_reach_git_only_through_the_environment() -> None:
    session = await session_for("https://host/a.git", GitAuth(bearer_token="tkn-123"))
    headers = [
        session.env[f"GIT_CONFIG_VALUE_{i}"]
        for i in range(int(session.env["GIT_CONFIG_COUNT"]))
        if session.env[f"GIT_CONFIG_KEY_{i}"] == "http.extraHeader"
    ]
    assert headers == ["Authorization: Bearer tkn-123"]
    assert session.env["GIT_TERMINAL_PROMPT"] == "0"
    assert session.env["GIT_CONFIG_NOSYSTEM"] == "1"
    assert session.env["HOME"] == "/nonexistent/home"


async def test_ssh_is_confined_to_the_given_key_and_known_hosts() -> None:
    auth = GitAuth(identity=b"KEY", known_hosts=b"host ssh-ed25519 AAAA")
    session = await session_for("git@host:org/a.git", auth)
    command = session.env["GIT_SSH_COMMAND"]
    for option in (
        "-F /dev/null",
        "IdentitiesOnly=yes",
        "StrictHostKeyChecking=yes",
        "UserKnownHostsFile=/nonexistent/ssh/known_hosts",
        "-i /nonexistent/ssh/identity",
    ):
        assert option in command
    assert "http.extraHeader" not in session.env.values()


@pytest.mark.parametrize(
    ("stderr", "error", "message"),
    [
        (
            "fatal: could not read Username for 'https://host': terminal prompts disabled",
            AuthenticationFailed,
            "authentication to https://host/a.git failed: the server rejected the credentials",
        ),
        (
            "git@host: Permission denied (publickey).\nfatal: Could not read from remote repository.",
            AuthenticationFailed,
            "authentication to https://host/a.git failed",
        ),
        (
            "Host key verification failed.\nfatal: Could not read from remote repository.",
            HostKeyVerificationFailed,
            "host key verification failed for https://host/a.git",
        ),
        (
            "fatal: unable to access 'https://host/a.git/': Failed to connect to host port 443: Connection refused",
            HostUnreachable,
            "cannot reach https://host/a.git: connection refused",
        ),
        (
            "fatal: unable to access 'https://host/a.git/': Could not resolve host: host",
            HostUnreachable,
            "cannot reach https://host/a.git: the host name does not resolve",
        ),
        (
            "remote: Repository not found.\nfatal: repository 'https://host/a.git/' not found",
            RepositoryNotFound,
            "the repository https://host/a.git was not found",
        ),
        (
            "fatal: '/srv/a.git' does not appear to be a git repository",
            RepositoryNotFound,
            "the repository https://host/a.git was not found",
        ),
        (
            "warning: x\nfatal: something odd happened with hunter2",
            GitCommandFailed,
            "git fetch of https://host/a.git failed: something odd happened with ***",
        ),
    ],
)
async def test_git_failures_become_one_sentence_naming_the_url_and_the_cause(
    stderr: str, error: type[Exception], message: str
) -> None:
    session = await session_for("https://host/a.git", GitAuth(username="bob", password="hunter2"))
    failure = session.failure("git fetch", stderr)
    assert type(failure) is error
    assert str(failure).startswith(message)
    assert "hunter2" not in str(failure)


async def test_without_credentials_an_auth_failure_says_none_were_given() -> None:
    session = await session_for("https://host/a.git", None)
    failure = session.failure("git ls-remote", "fatal: could not read Username for 'https://host'")
    assert (
        str(failure)
        == "authentication to https://host/a.git failed: the server asks for credentials and none were given"
    )


async def test_an_ssh_url_without_known_hosts_is_refused_before_git_runs() -> None:
    with pytest.raises(InvalidSourceSpec, match="needs 'known_hosts'"):
        async with GitSession.open(GitUrl.parse("ssh://git@host/a.git"), GitAuth(identity=b"KEY"), 5):
            pass
    with pytest.raises(InvalidSourceSpec, match="needs 'known_hosts'"):
        async with GitSession.open(GitUrl.parse("git@host:a.git"), None, 5):
            pass


async def test_an_ssh_key_for_an_https_url_is_refused() -> None:
    with pytest.raises(InvalidSourceSpec, match=r"holds an SSH key but https://host/a\.git is not an SSH URL"):
        async with GitSession.open(GitUrl.parse("https://host/a.git"), GitAuth(identity=b"K", known_hosts=b"h"), 5):
            pass


async def test_the_private_files_live_in_a_private_directory_removed_afterwards() -> None:
    auth = GitAuth(identity=b"KEY", known_hosts=b"host ssh-ed25519 AAAA")
    async with GitSession.open(GitUrl.parse("git@host:a.git"), auth, 5) as session:
        ssh_dir = Path(session.env["HOME"]).parent / "ssh"
        workdir = ssh_dir.parent
        assert workdir.stat().st_mode & 0o777 == 0o700
        assert ssh_dir.stat().st_mode & 0o777 == 0o700
        assert (ssh_dir / "identity").stat().st_mode & 0o777 == 0o600
        assert (ssh_dir / "identity").read_bytes() == b"KEY\n"
        assert (ssh_dir / "known_hosts").stat().st_mode & 0o777 == 0o600
    await asyncio.sleep(0)
    assert not workdir.exists()
