"""Runs the git CLI for one source operation: isolated, credentials kept out of argv, bounded in time.

A `GitSession` owns a private temporary directory (the empty HOME, the SSH key and known_hosts) and
the environment every git process of the operation gets:
- no system or global config, no terminal prompts, C locale (so failures can be recognised);
- only the https, http, ssh and file protocols;
- HTTP credentials as an `Authorization` header in `GIT_CONFIG_*` variables, never in argv;
- SSH with only the given key and only the given known_hosts (strict host key checking).
Every git process runs through the one process runner (`moor.processes`): in its own process group,
which is killed when the session's deadline passes or the calling task is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shlex
import shutil
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from moor.binaries import locate
from moor.private_files import write_private
from moor.processes import Completed, ProcessLimits, ProcessTimedOut, run_process
from moor.source.auth import GitAuth
from moor.source.errors import (
    AuthenticationFailed,
    GitCommandFailed,
    GitTimeout,
    HostKeyVerificationFailed,
    HostUnreachable,
    InvalidSourceSpec,
    RepositoryNotFound,
    SourceError,
)
from moor.source.urls import GitUrl, redact_text

# Variables a git process may inherit: finding programs, proxies and CA bundles. Nothing else.
_INHERITED = (
    "PATH",
    "TMPDIR",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "GIT_SSL_CAINFO",
    "GIT_EXEC_PATH",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "all_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "ALL_PROXY",
)
_BASE_CONFIG = (
    ("protocol.allow", "never"),
    ("protocol.https.allow", "always"),
    ("protocol.http.allow", "always"),
    ("protocol.ssh.allow", "always"),
    ("protocol.file.allow", "always"),
    ("credential.helper", ""),
    ("core.askPass", ""),
    ("init.defaultBranch", "moor"),
    ("advice.detachedHead", "false"),
    ("gc.auto", "0"),
    ("maintenance.auto", "false"),
)
_STDERR_LIMIT = 400


@cache
def git_program() -> str:
    """The git binary every source operation runs."""
    return str(locate("git"))


def git_environment(home: Path, extra_config: Sequence[tuple[str, str]] = ()) -> dict[str, str]:
    """The environment of an isolated git process: only PATH, proxies and CA bundles inherited, `home`
    as HOME, no system or global config (Moor's own settings and `extra_config` as GIT_CONFIG_*
    variables instead), no prompts, the C locale."""
    env = {key: os.environ[key] for key in _INHERITED if key in os.environ}
    env.setdefault("PATH", os.defpath)
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_TERMINAL_PROMPT="0",
        LC_ALL="C",
        LANGUAGE="C",
    )
    config = [*_BASE_CONFIG, *extra_config]
    env["GIT_CONFIG_COUNT"] = str(len(config))
    for index, (key, value) in enumerate(config):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env


async def run_isolated(argv: Sequence[str | Path], *, env: Mapping[str, str], timeout: float) -> Completed:
    """Runs a program of a source operation (git, gpg) with no stdin, through the one process runner: past
    `timeout` (or when the caller is cancelled) its whole process group is killed (ProcessTimedOut)."""
    return await run_process(argv, what=Path(argv[0]).name, env=env, limits=ProcessLimits(timeout=timeout))


@dataclass(frozen=True)
class _Failure:
    patterns: tuple[str, ...]
    error: type[SourceError]


# Checked in order: the first whose pattern appears in git's stderr names the cause.
_FAILURES = (
    _Failure(
        (
            "host key verification failed",
            "remote host identification has changed",
            "host key for .* has changed",
            "no .* host key is known",
        ),
        HostKeyVerificationFailed,
    ),
    _Failure(
        (
            "authentication failed",
            "could not read username",
            "could not read password",
            "terminal prompts disabled",
            r"permission denied \(",
            "permission denied, please try again",
            "returned error: 401",
            "returned error: 403",
            "http basic: access denied",
            "invalid credentials",
        ),
        AuthenticationFailed,
    ),
    _Failure(
        (
            "could not resolve host",
            "connection refused",
            "couldn't connect to server",
            "failed to connect",
            "no route to host",
            "network is unreachable",
            "connection timed out",
            "operation timed out",
            "connection reset",
            "connection closed by",
            "name or service not known",
            "temporary failure in name resolution",
            "kex_exchange_identification",
        ),
        HostUnreachable,
    ),
    _Failure(
        (
            "repository not found",
            "does not appear to be a git repository",
            "returned error: 404",
            r"repository '.*' not found",
        ),
        RepositoryNotFound,
    ),
)


@dataclass(frozen=True)
class GitResult:
    ok: bool
    stdout: str
    stderr: str


class GitSession:
    """The environment and temp dir for the git processes of one resolve or fetch."""

    def __init__(self, url: GitUrl, auth: GitAuth | None, timeout: float, workdir: Path) -> None:
        self.url = url
        self.auth = auth
        self.timeout = timeout
        self._deadline = asyncio.get_running_loop().time() + timeout
        self._workdir = workdir
        self._secrets = [s for s in (auth.secrets() if auth else []) if len(s) >= 3]
        if url.password:
            self._secrets.append(url.password)
        self.env = self._environment()

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls,
        url: GitUrl,
        auth: GitAuth | None,
        timeout: float,
    ) -> AsyncIterator[GitSession]:
        auth = _effective_auth(url, auth)
        workdir = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="moor-git-"))
        try:
            await asyncio.to_thread(_write_private_files, workdir, url, auth)
            yield cls(url, auth, timeout, workdir)
        finally:
            await asyncio.to_thread(shutil.rmtree, workdir, True)

    async def run(self, *args: str | Path, operation: str) -> str:
        """Runs `git <args>` and returns its stdout; a failure becomes the SourceError naming its cause."""
        result = await self.try_run(*args, operation=operation)
        if not result.ok:
            raise self.failure(operation, result.stderr)
        return result.stdout

    async def try_run(self, *args: str | Path, operation: str) -> GitResult:
        """Runs `git <args>` and reports how it went (stderr already scrubbed); only a timeout raises."""
        remaining = self._deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            raise self._timeout(operation)
        try:
            output = await run_isolated((git_program(), *args), env=self.env, timeout=remaining)
        except ProcessTimedOut:
            raise self._timeout(operation) from None
        return GitResult(
            ok=output.returncode == 0,
            stdout=output.stdout.decode("utf-8", "replace"),
            stderr=self.scrub(output.stderr.decode("utf-8", "replace")),
        )

    def failure(self, operation: str, stderr: str) -> SourceError:
        """The error that git's stderr describes, in one sentence naming the URL (secrets scrubbed)."""
        text = self.scrub(stderr)
        lowered = text.lower()
        url = self.url.redacted
        for failure in _FAILURES:
            if any(re.search(p, lowered) for p in failure.patterns):
                return _describe(failure.error, url, text, given_credentials=self._has_credentials())
        return GitCommandFailed(f"{operation} of {url} failed: {_summary(text)}", url=url)

    def scrub(self, text: str) -> str:
        """Git's words with every credential and every URL's userinfo removed."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return redact_text(text)

    def _has_credentials(self) -> bool:
        if self.url.transport == "ssh":
            return self.auth is not None and self.auth.identity is not None
        return self.auth is not None and self.auth.has_http_credentials

    def _timeout(self, operation: str) -> GitTimeout:
        return GitTimeout(
            f"{operation} of {self.url.redacted} timed out after {self.timeout:g}s", url=self.url.redacted
        )

    def _environment(self) -> dict[str, str]:
        header = self.auth.authorization_header() if self.auth else None
        config = [("http.extraHeader", header)] if self.url.transport in ("http", "https") and header else []
        env = git_environment(self._workdir / "home", config)
        if self.url.transport == "ssh":
            env["GIT_SSH_COMMAND"] = self._ssh_command()
            env["GIT_SSH_VARIANT"] = "ssh"
        return env

    def _ssh_command(self) -> str:
        ssh_dir = self._workdir / "ssh"
        options = [
            "ssh",
            "-F",
            os.devnull,
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            f"UserKnownHostsFile={ssh_dir / 'known_hosts'}",
            "-o",
            f"GlobalKnownHostsFile={os.devnull}",
            "-o",
            "UpdateHostKeys=no",
            "-o",
            "IdentityAgent=none",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            f"ConnectTimeout={max(1, int(self.timeout))}",
        ]
        if self.auth is not None and self.auth.identity is not None:
            options += ["-i", str(ssh_dir / "identity")]
        else:
            options += ["-o", "PubkeyAuthentication=no"]
        return shlex.join(options)


def _effective_auth(url: GitUrl, auth: GitAuth | None) -> GitAuth | None:
    """The credentials that apply to this URL's transport; refuses SSH that could not check the host."""
    if url.transport == "file":
        return None
    if url.transport == "ssh":
        if auth is None or auth.known_hosts is None:
            raise InvalidSourceSpec(
                f"{url.redacted} is an SSH URL and needs 'known_hosts' in the auth secret "
                "to verify the server's host key",
                url=url.redacted,
            )
        return auth
    if auth is not None and not auth.has_http_credentials:
        if auth.identity is not None:
            raise InvalidSourceSpec(
                f"the auth secret holds an SSH key but {url.redacted} is not an SSH URL: "
                "give 'username' and 'password' or 'bearerToken' for HTTP(S)",
                url=url.redacted,
            )
        auth = None
    if auth is None and url.username is not None:
        return GitAuth(username=url.username, password=url.password)
    return auth


def _write_private_files(workdir: Path, url: GitUrl, auth: GitAuth | None) -> None:
    """The empty HOME and, for SSH, the key and known_hosts: 0700 directories, 0600 files."""
    workdir.chmod(0o700)
    (workdir / "home").mkdir(mode=0o700)
    if url.transport != "ssh" or auth is None:
        return
    ssh_dir = workdir / "ssh"
    ssh_dir.mkdir(mode=0o700)
    if auth.known_hosts is not None:
        _write_ssh_file(ssh_dir / "known_hosts", auth.known_hosts)
    if auth.identity is not None:
        _write_ssh_file(ssh_dir / "identity", auth.identity)


def _write_ssh_file(path: Path, content: bytes) -> None:
    content = content.replace(b"\r\n", b"\n")
    if not content.endswith(b"\n"):
        content += b"\n"  # OpenSSH rejects a key without its final newline
    write_private(path, content)


def _describe(error: type[SourceError], url: str, stderr: str, *, given_credentials: bool) -> SourceError:
    if error is AuthenticationFailed:
        cause = (
            "the server rejected the credentials"
            if given_credentials
            else "the server asks for credentials and none were given"
        )
        return AuthenticationFailed(f"authentication to {url} failed: {cause}", url=url)
    if error is HostKeyVerificationFailed:
        return HostKeyVerificationFailed(
            f"host key verification failed for {url}: the server's key does not match known_hosts", url=url
        )
    if error is HostUnreachable:
        return HostUnreachable(f"cannot reach {url}: {_unreachable_cause(stderr)}", url=url)
    if error is RepositoryNotFound:
        return RepositoryNotFound(f"the repository {url} was not found", url=url)
    return error(f"{url}: {_summary(stderr)}", url=url)


def _unreachable_cause(stderr: str) -> str:
    lowered = stderr.lower()
    for needle, cause in (
        ("connection refused", "connection refused"),
        ("couldn't connect to server", "connection refused"),
        ("could not resolve", "the host name does not resolve"),
        ("name or service not known", "the host name does not resolve"),
        ("temporary failure in name resolution", "the host name does not resolve"),
        ("no route to host", "no route to host"),
        ("network is unreachable", "the network is unreachable"),
        ("timed out", "the connection timed out"),
    ):
        if needle in lowered:
            return cause
    return _summary(stderr)


def _summary(stderr: str) -> str:
    """The most telling line of git's stderr: the first `fatal:` or `error:` line, else the last line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if not lines:
        return "git gave no reason"
    for line in lines:
        for prefix in ("fatal: ", "error: "):
            if line.startswith(prefix):
                return line.removeprefix(prefix)[:_STDERR_LIMIT]
    return lines[-1][:_STDERR_LIMIT]
