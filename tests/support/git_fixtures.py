"""Real Git remotes for tests: a repository over file://, a smart HTTP server and an SSH server.

Fixtures:
- `git_repo` (per test): a `GitWorkspace` whose bare repository is served over file:// (`.url`).
- `git_http_server` (per session): `git http-backend` behind a threaded HTTP server on 127.0.0.1
  that demands Basic auth or a Bearer token; `create_repo()` gives a `GitWorkspace` served by it.
- `git_ssh_server` (per session): Debian's sshd on 127.0.0.1 with one authorized key;
  `create_repo()` gives a `GitWorkspace` whose `.url` is `ssh://user@127.0.0.1:PORT/abs/path.git`.
- `signing_keys` (per test): new GPG and SSH signing keys (`GpgSigner`, `SshSigner`) for
  `GitWorkspace.commit(..., sign_with=...)` and `GitWorkspace.tag(..., sign_with=...)`.

Everything runs the git CLI with no system or global config and a fixed author, committer and clock,
so commit ids are reproducible.
"""

from __future__ import annotations

import base64
import getpass
import hmac
import itertools
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

import pytest

from tests.support.processes import stop_group

DEFAULT_AUTHOR = "Moor Test <test@moor.invalid>"
COMMITTER = ("Moor Committer", "committer@moor.invalid")
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
_LOOPBACK = "127.0.0.1"


def git_env(home: Path | None = None) -> dict[str, str]:
    """The environment the fixtures run git in: no system or global config, no prompts."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    env.update(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_TERMINAL_PROMPT="0",
        LC_ALL="C",
    )
    if home is not None:
        env["HOME"] = str(home)
    return env


def run_git(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None, strip: bool = True) -> str:
    """Runs git; a failure fails the test with git's own words."""
    result = subprocess.run(
        ["git", *(str(a) for a in args)],
        cwd=cwd,
        env=env or git_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"git {' '.join(str(a) for a in args)} failed: {result.stderr.strip()}")
    return result.stdout.strip() if strip else result.stdout


def _split_person(person: str) -> tuple[str, str]:
    name, _, email = person.partition("<")
    return name.strip(), email.rstrip(">").strip()


class GitWorkspace:
    """A bare repository (the remote everybody fetches from) and a working clone that pushes to it."""

    def __init__(self, bare: Path, work: Path, url: str, branch: str = "main") -> None:
        self.bare = bare
        self.work = work
        self.url = url
        """How Moor reaches the bare repository (file://, http:// or ssh://)."""
        self.branch = branch
        self._clock = itertools.count(1)

    @classmethod
    def create(cls, bare: Path, work: Path, url: str, branch: str = "main") -> GitWorkspace:
        run_git("init", "--quiet", "--bare", f"--initial-branch={branch}", bare)
        run_git("init", "--quiet", f"--initial-branch={branch}", work)
        run_git("remote", "add", "origin", bare, cwd=work)
        return cls(bare, work, url, branch)

    def write(self, relpath: str, text: str) -> Path:
        path = self.work / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    def remove(self, relpath: str) -> None:
        path = self.work / relpath
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()

    def commit(
        self,
        message: str,
        author: str = DEFAULT_AUTHOR,
        when: datetime | None = None,
        *,
        sign_with: Signer | None = None,
    ) -> str:
        """Commits every change in the working tree (empty commits too), signed with `sign_with` if
        given; returns the commit id."""
        when = when or EPOCH + timedelta(minutes=next(self._clock))
        name, email = _split_person(author)
        env = git_env()
        env.update(
            GIT_AUTHOR_NAME=name,
            GIT_AUTHOR_EMAIL=email,
            GIT_AUTHOR_DATE=when.isoformat(),
            GIT_COMMITTER_NAME=COMMITTER[0],
            GIT_COMMITTER_EMAIL=COMMITTER[1],
            GIT_COMMITTER_DATE=when.isoformat(),
        )
        config: list[str] = []
        sign: list[str] = []
        if sign_with is not None:
            env.update(sign_with.env())
            config, sign = sign_with.git_config(), ["--gpg-sign"]
        run_git("add", "--all", cwd=self.work, env=env)
        run_git(
            *config, "commit", *sign, "--quiet", "--allow-empty", "--no-verify", "-m", message, cwd=self.work, env=env
        )
        return self.head

    def tag(self, name: str, message: str | None = None, ref: str = "HEAD", *, sign_with: Signer | None = None) -> str:
        """A lightweight tag, or an annotated one when there is a message (signed with `sign_with` if
        given); returns the tagged commit."""
        if message is None:
            if sign_with is not None:
                raise ValueError("only an annotated tag (one with a message) can be signed")
            run_git("tag", name, ref, cwd=self.work)
        else:
            env = git_env()
            env.update(
                GIT_COMMITTER_NAME=COMMITTER[0],
                GIT_COMMITTER_EMAIL=COMMITTER[1],
                GIT_COMMITTER_DATE=(EPOCH + timedelta(minutes=next(self._clock))).isoformat(),
            )
            config, how = [], ["--annotate"]
            if sign_with is not None:
                env.update(sign_with.env())
                config, how = sign_with.git_config(), ["--sign"]
            run_git(*config, "tag", *how, "-m", message, name, ref, cwd=self.work, env=env)
        return self.rev_parse(f"{name}^{{commit}}")

    def rewrite_head_message(self, message: str) -> str:
        """Replaces the current commit by a copy whose message is `message` but whose headers, its
        signature included, stay as they were: a tampered commit. Returns its id (push to publish)."""
        raw = run_git("cat-file", "commit", "HEAD", cwd=self.work, strip=False)
        headers, _, _ = raw.partition("\n\n")
        forged = subprocess.run(
            ["git", "hash-object", "-w", "-t", "commit", "--stdin"],
            cwd=self.work,
            env=git_env(),
            input=f"{headers}\n\n{message}\n",
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.strip()
        run_git("update-ref", f"refs/heads/{self.branch}", forged, cwd=self.work)
        return forged

    def delete_tag(self, name: str) -> None:
        """Deletes a tag here and on the remote."""
        run_git("tag", "--delete", name, cwd=self.work)
        run_git("push", "--quiet", "origin", f":refs/tags/{name}", cwd=self.work)

    def checkout(self, branch: str, create: bool = False) -> None:
        """Switches the working clone to another branch (which later commits and pushes go to)."""
        run_git("checkout", "--quiet", *(["-b"] if create else []), branch, cwd=self.work)
        self.branch = branch

    def push(self, force: bool = False) -> None:
        """Pushes the current branch and every tag to the bare repository."""
        refspecs = [f"refs/heads/{self.branch}:refs/heads/{self.branch}", "refs/tags/*:refs/tags/*"]
        if force:
            refspecs = [f"+{spec}" for spec in refspecs]
        run_git("push", "--quiet", "origin", *refspecs, cwd=self.work)

    def reset_hard(self, sha: str) -> None:
        """Moves the current branch to `sha` (then `push(force=True)` rewrites the remote's history)."""
        run_git("reset", "--quiet", "--hard", sha, cwd=self.work)

    def rev_parse(self, ref: str) -> str:
        return run_git("rev-parse", "--verify", "--quiet", ref, cwd=self.work)

    def remote_rev_parse(self, ref: str) -> str:
        """An object id as the bare repository (what Moor fetches from) sees it."""
        return run_git("--git-dir", self.bare, "rev-parse", "--verify", "--quiet", ref)

    @property
    def head(self) -> str:
        return self.rev_parse("HEAD")

    def protect(self, branch: str, message: str) -> None:
        """Installs a pre-receive hook in the bare repository that refuses every push to `branch`,
        saying `message` (as a protected branch of a Git host does)."""
        hook = self.bare / "hooks" / "pre-receive"
        hook.parent.mkdir(exist_ok=True)
        hook.write_text(
            "#!/bin/sh\n"
            "while read old new ref; do\n"
            f'  if [ "$ref" = "refs/heads/{branch}" ]; then echo "{message}" >&2; exit 1; fi\n'
            "done\n"
            "exit 0\n"
        )
        hook.chmod(0o755)

    def remote_file(self, relpath: str, ref: str | None = None) -> str:
        """A file as the bare repository holds it at `ref` (default: the branch)."""
        return run_git("--git-dir", self.bare, "show", f"{ref or self.branch}:{relpath}", strip=False)

    def remote_log(self, ref: str | None = None) -> list[str]:
        """The full messages of the commits of `ref` (default: the branch) in the bare repository, newest first."""
        said = run_git("--git-dir", self.bare, "log", "--format=%B%x00", ref or self.branch, strip=False)
        return [entry.strip() for entry in said.split("\0") if entry.strip()]

    def __repr__(self) -> str:
        return f"GitWorkspace({self.url})"


@pytest.fixture
def git_repo(tmp_path: Path) -> GitWorkspace:
    """An empty repository reached over file://: write, commit and push to give it content."""
    bare = tmp_path / "remote.git"
    return GitWorkspace.create(bare, tmp_path / "work", url=f"file://{bare}")


# ---------------------------------------------------------------------------------------- smart HTTP


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: str
    status: int


class GitHttpServer:
    """`git http-backend` over HTTP on 127.0.0.1, serving every bare repository under `root`.

    Every request needs `Authorization: Basic` with `username`/`password` or `Authorization: Bearer`
    with `token`; anything else gets 401. Paths under `/legacy/` are served with protocol v0 only
    (no `Git-Protocol` passed on), as an old server would.
    """

    def __init__(self, root: Path, work_root: Path) -> None:
        self.root = root
        self.work_root = work_root
        self.username = "moor-test"
        self.password = f"pw-{secrets.token_hex(12)}"
        self.token = f"tok-{secrets.token_hex(16)}"
        self.requests: list[RecordedRequest] = []
        self._names = itertools.count(1)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((_LOOPBACK, 0), _handler_for(self))
        self._server.daemon_threads = True
        self.port = int(self._server.server_address[1])
        self.base_url = f"http://{_LOOPBACK}:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="git-http", daemon=True)

    def start(self) -> None:
        self._thread.start()
        _wait_for_port(self.port, what="the Git HTTP server")

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def create_repo(self, name: str | None = None) -> GitWorkspace:
        """A new empty repository served here; its workspace's `.url` carries no credentials."""
        name = name or f"repo-{next(self._names)}"
        return GitWorkspace.create(self.root / f"{name}.git", self.work_root / name, url=self.url(name))

    def url(self, name: str) -> str:
        return f"{self.base_url}/{name}.git"

    def legacy_url(self, name: str) -> str:
        """The same repository through a server that speaks only protocol v0."""
        return f"{self.base_url}/legacy/{name}.git"

    def basic_auth_secret(self) -> dict[str, bytes]:
        return {"username": self.username.encode(), "password": self.password.encode()}

    def token_secret(self) -> dict[str, bytes]:
        return {"bearerToken": self.token.encode()}

    def upload_pack_sessions(self, name: str) -> int:
        """How many git processes started to fetch from (or ls-remote) repository `name`, authorized."""
        with self._lock:
            return sum(
                1
                for r in self.requests
                if r.path.endswith(f"/{name}.git/info/refs")
                and "service=git-upload-pack" in r.query
                and r.status == HTTPStatus.OK
            )

    def authorized(self, header: str | None) -> bool:
        if not header:
            return False
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() == "bearer":
            return hmac.compare_digest(credentials.strip().encode(), self.token.encode())
        if scheme.lower() == "basic":
            try:
                pair = base64.b64decode(credentials.strip(), validate=True)
            except ValueError:
                return False
            return hmac.compare_digest(pair, f"{self.username}:{self.password}".encode())
        return False

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)


def _handler_for(server: GitHttpServer) -> type[BaseHTTPRequestHandler]:
    class GitHttpHandler(BaseHTTPRequestHandler):
        server_version = "moor-test-git/1"

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _serve(self) -> None:
            target = urlsplit(self.path)
            body = self._read_body()
            if not server.authorized(self.headers.get("Authorization")):
                self._send(HTTPStatus.UNAUTHORIZED, {"WWW-Authenticate": 'Basic realm="moor-test"'}, b"")
                server.record(RecordedRequest(self.command, target.path, target.query, HTTPStatus.UNAUTHORIZED))
                return
            path = unquote(target.path)
            legacy = path.startswith("/legacy/")
            status, headers, payload = self._backend(path.removeprefix("/legacy"), target.query, body, legacy)
            self._send(status, headers, payload)
            server.record(RecordedRequest(self.command, target.path, target.query, status))

        def _read_body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks: list[bytes] = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _backend(self, path: str, query: str, body: bytes, legacy: bool) -> tuple[int, dict[str, str], bytes]:
            env = git_env()
            env.update(
                GIT_PROJECT_ROOT=str(server.root),
                GIT_HTTP_EXPORT_ALL="1",
                REQUEST_METHOD=self.command,
                PATH_INFO=path,
                QUERY_STRING=query,
                CONTENT_TYPE=self.headers.get("Content-Type", ""),
                CONTENT_LENGTH=str(len(body)),
                REMOTE_USER=server.username,
                REMOTE_ADDR=self.client_address[0],
                SERVER_PROTOCOL="HTTP/1.1",
                GATEWAY_INTERFACE="CGI/1.1",
            )
            if self.headers.get("Content-Encoding"):
                env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
            if self.headers.get("Git-Protocol") and not legacy:
                env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
            result = subprocess.run(
                ["git", "http-backend"], input=body, env=env, capture_output=True, timeout=120, check=False
            )
            return _parse_cgi(result.stdout)

        def _send(self, status: int, headers: dict[str, str], payload: bytes) -> None:
            self.send_response(status)
            for key, value in headers.items():
                if key.lower() not in ("content-length", "status"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(payload)

    return GitHttpHandler


def _parse_cgi(output: bytes) -> tuple[int, dict[str, str], bytes]:
    """A CGI response: header lines, a blank line, the body; `Status:` sets the HTTP status."""
    for separator in (b"\r\n\r\n", b"\n\n"):
        head, found, body = output.partition(separator)
        if found:
            break
    else:
        return HTTPStatus.BAD_GATEWAY, {}, b"git http-backend gave no headers"
    status = HTTPStatus.OK.value
    headers: dict[str, str] = {}
    for line in head.decode("latin-1").splitlines():
        key, _, value = line.partition(":")
        if key.lower() == "status":
            status = int(value.strip().split()[0])
        elif key:
            headers[key.strip()] = value.strip()
    return status, headers, body


@pytest.fixture(scope="session")
def git_http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitHttpServer]:
    root = tmp_path_factory.mktemp("git-http")
    (root / "repos").mkdir()
    (root / "work").mkdir()
    server = GitHttpServer(root / "repos", root / "work")
    server.start()
    yield server
    server.stop()


# ---------------------------------------------------------------------------------------------- SSH


def generate_ssh_key(path: Path, comment: str = "moor-test") -> bytes:
    """A new ed25519 key pair at `path` and `path.pub` (no passphrase); returns the private key."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return path.read_bytes()


class GitSshServer:
    """sshd on 127.0.0.1 that lets one key in and runs git-upload-pack/receive-pack for any path."""

    def __init__(self, directory: Path, sshd: Path) -> None:
        self.directory = directory
        self.repos = directory / "repos"
        self.work_root = directory / "work"
        self.user = getpass.getuser()
        self._sshd = sshd
        self._process: subprocess.Popen[bytes] | None = None
        self._names = itertools.count(1)
        self.port = 0
        for sub in (self.repos, self.work_root):
            sub.mkdir()
        self.private_key = generate_ssh_key(directory / "client_key")
        """The authorized client's private key (OpenSSH format), as a Secret's `identity`."""
        generate_ssh_key(directory / "host_key", comment="moor-test-host")
        self.host_public_key = (directory / "host_key.pub").read_text().split()[:2]
        (directory / "authorized_keys").write_bytes((directory / "client_key.pub").read_bytes())

    @property
    def known_hosts(self) -> bytes:
        """The known_hosts line for this server: `[127.0.0.1]:PORT ssh-ed25519 AAAA…`."""
        return f"[{_LOOPBACK}]:{self.port} {' '.join(self.host_public_key)}\n".encode()

    def auth_secret(self) -> dict[str, bytes]:
        return {"identity": self.private_key, "known_hosts": self.known_hosts}

    def unauthorized_key(self) -> bytes:
        """A valid private key this server does not accept."""
        path = self.directory / f"stranger_{secrets.token_hex(4)}"
        return generate_ssh_key(path, comment="stranger")

    def wrong_known_hosts(self) -> bytes:
        """A known_hosts line for this host and port, but with another server's key."""
        path = self.directory / f"other_host_{secrets.token_hex(4)}"
        generate_ssh_key(path, comment="other-host")
        key = " ".join((path.with_suffix(".pub")).read_text().split()[:2])
        return f"[{_LOOPBACK}]:{self.port} {key}\n".encode()

    def url(self, bare: Path) -> str:
        return f"ssh://{self.user}@{_LOOPBACK}:{self.port}{bare.resolve()}"

    def create_repo(self, name: str | None = None) -> GitWorkspace:
        name = name or f"repo-{next(self._names)}"
        bare = self.repos / f"{name}.git"
        return GitWorkspace.create(bare, self.work_root / name, url=self.url(bare))

    def start(self) -> None:
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
        last_error = ""
        for _ in range(5):
            self.port = _free_port()
            config = self._write_config()
            log = (self.directory / "sshd.log").open("ab")
            self._process = subprocess.Popen(
                [str(self._sshd), "-D", "-e", "-f", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
            log.close()
            try:
                _wait_for_ssh_banner(self.port, self._process)
                return
            except RuntimeError as error:
                last_error = f"{error}; sshd log: {(self.directory / 'sshd.log').read_text()[-2000:]}"
                self.stop()
        raise RuntimeError(f"sshd did not start: {last_error}")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        stop_group(process)

    def _write_config(self) -> Path:
        d = self.directory
        config = d / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"ListenAddress {_LOOPBACK}:{self.port}",
                    f"HostKey {d / 'host_key'}",
                    f"PidFile {d / 'sshd.pid'}",
                    f"AuthorizedKeysFile {d / 'authorized_keys'}",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "UsePAM no",
                    "PermitRootLogin prohibit-password",
                    "StrictModes no",
                    "AcceptEnv GIT_PROTOCOL",
                    "PrintMotd no",
                    "X11Forwarding no",
                    "AllowTcpForwarding no",
                    "LogLevel INFO",
                    "",
                ]
            )
        )
        return config


@pytest.fixture(scope="session")
def git_ssh_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitSshServer]:
    sshd = shutil.which("sshd") or ("/usr/sbin/sshd" if Path("/usr/sbin/sshd").exists() else None)
    if sshd is None or shutil.which("ssh-keygen") is None or shutil.which("ssh") is None:
        pytest.fail("sshd, ssh or ssh-keygen is missing: install openssh-server (make setup)", pytrace=False)
    server = GitSshServer(tmp_path_factory.mktemp("git-ssh"), Path(sshd))
    server.start()
    yield server
    server.stop()


# ------------------------------------------------------------------------------------- signing keys


class Signer(Protocol):
    """A key that git can sign commits and tags with."""

    def git_config(self) -> list[str]:
        """`-c` options for git that select this key."""
        ...

    def env(self) -> dict[str, str]:
        """Environment variables git needs to find it."""
        ...


@dataclass(frozen=True)
class GpgSigner:
    """A GPG key pair in its own GNUPGHOME (no passphrase)."""

    home: Path
    fingerprint: str
    uid: str
    public_key: bytes
    """The armored public key, as a trust Secret's `<name>.asc` holds it."""

    def git_config(self) -> list[str]:
        return ["-c", "gpg.format=openpgp", "-c", f"user.signingkey={self.fingerprint}"]

    def env(self) -> dict[str, str]:
        return {"GNUPGHOME": str(self.home)}


@dataclass(frozen=True)
class SshSigner:
    """An ed25519 SSH key pair (no passphrase) and the principal it signs as."""

    private_key: Path
    principal: str
    public_key: str
    """`ssh-ed25519 AAAA…`"""
    fingerprint: str
    """`SHA256:…`, as ssh-keygen names the key."""

    def git_config(self) -> list[str]:
        return ["-c", "gpg.format=ssh", "-c", f"user.signingkey={self.private_key}"]

    def env(self) -> dict[str, str]:
        return {}

    def allowed_signer(self, options: str = "") -> str:
        """This key's line in an ALLOWED SIGNERS file, with `options` (e.g. `valid-before="20200101"`)."""
        return " ".join(part for part in (self.principal, options, self.public_key) if part) + "\n"


class SigningKeys:
    """Makes signing keys for one test; `close()` stops the gpg-agents signing started and removes them.

    Each GPG key gets its own short GNUPGHOME under the system temp dir (gpg-agent's socket path must
    stay short), never the user's keyring.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._homes: list[Path] = []

    def gpg(self, name: str = "Alice Signer", email: str | None = None, expires: str = "1y") -> GpgSigner:
        """A new ed25519 signing key; `expires` as gpg takes it (`1y`, `seconds=3`, `never`)."""
        email = email or f"{name.split()[0].lower()}@moor.invalid"
        uid = f"{name} <{email}>"
        home = Path(tempfile.mkdtemp(prefix="moor-test-gpg-"))
        self._homes.append(home)
        home.chmod(0o700)
        env = {**os.environ, "GNUPGHOME": str(home)}
        gpg = ["gpg", "--batch", "--no-tty", "--quiet"]
        subprocess.run(
            [*gpg, "--passphrase", "", "--quick-gen-key", uid, "ed25519", "sign", expires],
            env=env,
            check=True,
            capture_output=True,
            timeout=60,
        )
        listing = subprocess.run(
            [*gpg, "--with-colons", "--list-keys", uid], env=env, check=True, capture_output=True, text=True
        ).stdout
        fingerprint = next(line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr:"))
        public_key = subprocess.run(
            [*gpg, "--armor", "--export", fingerprint], env=env, check=True, capture_output=True
        ).stdout
        return GpgSigner(home=home, fingerprint=fingerprint, uid=uid, public_key=public_key)

    def ssh(self, principal: str = "bob@moor.invalid") -> SshSigner:
        """A new ed25519 key pair that signs as `principal`."""
        path = self.directory / f"ssh-signer-{secrets.token_hex(4)}"
        generate_ssh_key(path, comment=principal)
        public_key = " ".join(path.with_suffix(".pub").read_text().split()[:2])
        listing = subprocess.run(
            ["ssh-keygen", "-l", "-E", "sha256", "-f", str(path)], check=True, capture_output=True, text=True
        ).stdout
        return SshSigner(private_key=path, principal=principal, public_key=public_key, fingerprint=listing.split()[1])

    def close(self) -> None:
        for home in self._homes:
            subprocess.run(
                ["gpgconf", "--homedir", str(home), "--kill", "all"], capture_output=True, timeout=30, check=False
            )
            shutil.rmtree(home, ignore_errors=True)
        self._homes.clear()


@pytest.fixture
def signing_keys(tmp_path: Path) -> Iterator[SigningKeys]:
    if shutil.which("gpg") is None or shutil.which("ssh-keygen") is None:
        pytest.fail("gpg or ssh-keygen is missing: install gnupg and openssh-client (make setup)", pytrace=False)
    directory = tmp_path / "signing-keys"
    directory.mkdir()
    keys = SigningKeys(directory)
    yield keys
    keys.close()


# ------------------------------------------------------------------------------------------ helpers


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((_LOOPBACK, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} does not accept connections on port {port}") from None
            time.sleep(0.05)


def _wait_for_ssh_banner(port: int, process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited with status {process.returncode}")
        try:
            with socket.create_connection((_LOOPBACK, port), timeout=2) as sock:
                if sock.recv(64).startswith(b"SSH-"):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"sshd does not answer on port {port}")
