"""A real OCI registry and a real Helm chart server on loopback, both over TLS from one test CA.

Fixtures (per session):
- `registry_ca`: the `TestCA` that signs both servers' certificates; `.bundle` is its PEM.
- `registry`: the CNCF distribution registry (built by `make setup`) with htpasswd auth (a module may
  start one of its own with `Registry(directory, ca, notify=Notifications(url, token))`, whose events go
  to a webhook receiver with `Authorization: Bearer <token>`; with `token_auth=True` it demands Bearer
  tokens from `tests.support.token_server` instead of Basic), as a
  `Registry`: `.host` (`127.0.0.1:PORT`), `.ca_bundle`, `.username`/`.password`,
  `.docker_config_json()` (a `kubernetes.io/dockerconfigjson` Secret's `.dockerconfigjson`) and
  `.env`, the environment in which crane, oras, helm and cosign reach it authenticated and trusting
  the CA (`.run(tool, ...)` runs one). `push_flux_artifact` pushes a directory as `flux push artifact`
  does (with oras), `push_image_layer` as a generic OCI image layer (with crane), `push_chart` a
  packaged chart (with `helm push`); `sign`/`verify` run `cosign sign --key`/`verify --key`, offline.
- `cosign_keys`: a cosign key pair (`generate_cosign_keys` makes more, e.g. a stranger's).
- `chart_server`: an HTTPS chart repository (`index.yaml` + packaged charts) that demands Basic auth,
  as a `ChartServer`: `.publish(chart_dir)` packages a chart with the real helm and re-indexes.

Each fixture's directory holds its process's log (`registry.log`, `chart-server.log`), kept after the
session for reading a failure; the registry is stopped at session end.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import io
import json
import os
import secrets
import socket
import ssl
import subprocess
import tarfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import bcrypt
import pytest

from moor import binaries
from moor.devcluster import pki
from tests.support.processes import stop_group
from tests.support.token_server import TokenServer

FLUX_CONTENT_MEDIA_TYPE = "application/vnd.cncf.flux.content.v1.tar+gzip"
FLUX_CONFIG_MEDIA_TYPE = "application/vnd.cncf.flux.config.v1+json"
OCI_LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
SOURCE_ANNOTATION = "org.opencontainers.image.source"
REVISION_ANNOTATION = "org.opencontainers.image.revision"

_LOOPBACK = "127.0.0.1"
_START_TIMEOUT = 30.0
_TOOL_TIMEOUT = 120.0


class ToolFailed(AssertionError):
    """A registry client run by a fixture failed; the message has its command and stderr."""


# ------------------------------------------------------------------------------------------ the CA


@dataclass(frozen=True)
class TestCA:
    """The test CA both servers' certificates chain to (ECDSA P-256, from `moor.devcluster.pki`)."""

    __test__ = False  # a fixture value, not a test class for pytest to collect

    directory: Path
    key_pair: pki.KeyPair

    @property
    def bundle(self) -> Path:
        """The CA certificate (PEM): what a client is given to trust the servers."""
        return pki.cert_files(self.directory, "ca").cert

    def server_certificate(self, stem: str) -> pki.CertFiles:
        """A serving certificate for 127.0.0.1 and localhost, written as `<stem>.crt`/`.key`."""
        pair = pki.issue_certificate(
            self.key_pair, stem, server=True, dns_names=pki.LOOPBACK_NAMES, ip_addresses=pki.LOOPBACK_IPS
        )
        return pki.write_key_pair(pair, self.directory, stem)


@pytest.fixture(scope="session")
def registry_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    directory = tmp_path_factory.mktemp("registry-ca")
    ca = pki.create_ca("moor-test-registry-ca")
    pki.write_key_pair(ca, directory, "ca")
    return TestCA(directory, ca)


def client_ssl_context(ca: TestCA) -> ssl.SSLContext:
    """An SSL context that trusts only the test CA (for Python clients in tests)."""
    return ssl.create_default_context(cafile=str(ca.bundle))


# ------------------------------------------------------------------------------- running the tools


def tool_env(directory: Path, ca: TestCA) -> dict[str, str]:
    """Settings under which crane, oras, helm and cosign keep their state in `directory` and trust
    the test CA: Go reads SSL_CERT_FILE, the Docker config holds the registry's credentials."""
    docker = directory / "docker"
    helm = directory / "helm"
    return {
        "DOCKER_CONFIG": str(docker),
        "SSL_CERT_FILE": str(ca.bundle),
        "HELM_REGISTRY_CONFIG": str(docker / "config.json"),
        "HELM_CACHE_HOME": str(helm / "cache"),
        "HELM_CONFIG_HOME": str(helm / "config"),
        "HELM_DATA_HOME": str(helm / "data"),
        "TUF_ROOT": str(directory / "sigstore"),
    }


def run_tool(
    tool: str, *args: str | Path, env: dict[str, str], cwd: Path | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Runs a built tool (crane, oras, helm, cosign) with `env` over the inherited environment."""
    argv = [str(binaries.locate(tool)), *(str(a) for a in args)]
    result = subprocess.run(
        argv,
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=_TOOL_TIMEOUT,
        check=False,
    )
    if check and result.returncode != 0:
        raise ToolFailed(f"`{tool} {' '.join(argv[1:])}` exited with {result.returncode}: {result.stderr.strip()}")
    return result


def gzip_tarball(directory: Path, destination: Path) -> Path:
    """`directory`'s files as a reproducible .tar.gz (sorted, no owners, no times), paths relative to it."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for path in sorted(directory.rglob("*")):
            info = archive.gettarinfo(str(path), arcname=path.relative_to(directory).as_posix())
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0
            if info.isfile():
                with path.open("rb") as content:
                    archive.addfile(info, content)
            else:
                archive.addfile(info)
    destination.write_bytes(gzip.compress(buffer.getvalue(), mtime=0))
    return destination


def _layer_file(content: Path, destination: Path) -> Path:
    """`content` itself when it is a file, else the directory tarred and gzipped at `destination`."""
    if content.is_file():
        destination.write_bytes(content.read_bytes())
        return destination
    return gzip_tarball(content, destination)


def package_chart(chart: Path, destination: Path, env: dict[str, str]) -> Path:
    """`helm package` of a chart directory into `destination`; returns the .tgz."""
    destination.mkdir(parents=True, exist_ok=True)
    output = run_tool("helm", "package", chart, "--destination", destination, env=env).stdout
    saved = output.strip().rpartition(": ")[2]
    return Path(saved)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((_LOOPBACK, 0))
        return int(probe.getsockname()[1])


# -------------------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class CosignKeys:
    """A key pair from `cosign generate-key-pair`; the private key is encrypted with `password`."""

    private_key: Path
    public_key: Path
    password: str


def generate_cosign_keys(directory: Path, env: dict[str, str], name: str = "cosign") -> CosignKeys:
    """`cosign generate-key-pair` into `directory` as `<name>.key` and `<name>.pub`."""
    directory.mkdir(parents=True, exist_ok=True)
    password = f"pw-{secrets.token_hex(8)}"
    run_tool(
        "cosign",
        "generate-key-pair",
        "--output-key-prefix",
        name,
        cwd=directory,
        env={**env, "COSIGN_PASSWORD": password},
    )
    return CosignKeys(directory / f"{name}.key", directory / f"{name}.pub", password)


@dataclass(frozen=True)
class PushedArtifact:
    """What a push made: `reference` is `host/repository:tag`, `digest` the manifest's `sha256:…`."""

    reference: str
    digest: str

    @property
    def pinned(self) -> str:
        """`host/repository@sha256:…`: the reference by digest (what is signed and verified)."""
        return f"{self.reference.rpartition(':')[0]}@{self.digest}"


@dataclass(frozen=True)
class Notifications:
    """A receiver of the registry's events (`notifications.endpoints`): its URL and the static bearer token
    the registry shows it in `Authorization`."""

    url: str
    token: str


class Registry:
    """The distribution registry on loopback, with TLS and one htpasswd user (see module docstring).

    One registry serves the whole session: give each test repository names of its own.
    """

    def __init__(
        self, directory: Path, ca: TestCA, *, notify: Notifications | None = None, token_auth: bool = False
    ) -> None:
        self.directory = directory
        self.ca = ca
        self.notify = notify
        """Where the registry sends its events (a webhook receiver), when given."""
        self.username = "moor-test"
        self.password = f"pw-{secrets.token_hex(12)}"
        self.port = 0
        self.env = tool_env(directory, ca)
        """The environment (over the inherited one) in which the CLIs push and pull authenticated."""
        self.log = directory / "registry.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._certificate = ca.server_certificate("registry")
        htpasswd = bcrypt.hashpw(self.password.encode(), bcrypt.gensalt(rounds=4)).decode()
        (directory / "htpasswd").write_text(f"{self.username}:{htpasswd}\n")
        self.token_server = TokenServer(ca, self.username, self.password).start() if token_auth else None
        """With `token_auth`: the token service the registry sends clients to (the Bearer flow), instead of htpasswd."""

    @property
    def host(self) -> str:
        """`127.0.0.1:PORT`, as references and `oci://` URLs name the registry."""
        return f"{_LOOPBACK}:{self.port}"

    @property
    def ca_bundle(self) -> Path:
        return self.ca.bundle

    def oci_url(self, repository: str) -> str:
        return f"oci://{self.host}/{repository}"

    def docker_config_json(self) -> bytes:
        """A Docker config naming this registry's credentials (`kubernetes.io/dockerconfigjson`)."""
        auth = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        entry = {"username": self.username, "password": self.password, "auth": auth}
        return json.dumps({"auths": {self.host: entry}}).encode()

    def run(
        self,
        tool: str,
        *args: str | Path,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """Runs crane, oras, helm or cosign against this registry, logged in and trusting its CA
        (`env` adds to that environment)."""
        return run_tool(tool, *args, env={**self.env, **(env or {})}, cwd=cwd, check=check)

    def push_flux_artifact(
        self,
        content: Path,
        repository: str,
        tag: str,
        *,
        source: str | None = None,
        revision: str | None = None,
    ) -> PushedArtifact:
        """Pushes `content` as `flux push artifact` does: one tar+gzip layer of Flux's content type,
        Flux's config type, source and revision annotations (and oras's `created`). `content` is a
        directory (tarred here) or a ready .tar.gz pushed as it is (e.g. a hostile one)."""
        work = self._scratch()
        _layer_file(content, work / "artifact.tgz")
        (work / "config.json").write_text("{}")
        annotations: list[str] = []
        for key, value in ((SOURCE_ANNOTATION, source), (REVISION_ANNOTATION, revision)):
            if value is not None:
                annotations += ["--annotation", f"{key}={value}"]
        reference = f"{self.host}/{repository}:{tag}"
        result = self.run(
            "oras",
            "push",
            "--format",
            "json",
            "--config",
            f"config.json:{FLUX_CONFIG_MEDIA_TYPE}",
            *annotations,
            reference,
            f"artifact.tgz:{FLUX_CONTENT_MEDIA_TYPE}",
            cwd=work,
        )
        return PushedArtifact(reference, str(json.loads(result.stdout)["digest"]))

    def push_image_layer(
        self, content: Path, repository: str, tag: str, *, annotations: dict[str, str] | None = None
    ) -> PushedArtifact:
        """Pushes `content` (a directory, or a ready .tar.gz) as the one
        `application/vnd.oci.image.layer.v1.tar+gzip` layer of an OCI image (`crane append` onto an
        empty OCI base, then `crane mutate` for any annotations)."""
        layer = _layer_file(content, self._scratch() / "layer.tar.gz")
        reference = f"{self.host}/{repository}:{tag}"
        self.run("crane", "append", "--oci-empty-base", "-f", layer, "-t", reference)
        if annotations:
            flags = [arg for key, value in annotations.items() for arg in ("--annotation", f"{key}={value}")]
            self.run("crane", "mutate", *flags, "-t", reference, reference)
        return PushedArtifact(reference, self.run("crane", "digest", reference).stdout.strip())

    def push_chart(self, chart: Path, repository: str) -> PushedArtifact:
        """`helm package` (when `chart` is a directory) and `helm push` to `oci://HOST/<repository>`;
        the chart lands at `<repository>/<chart name>:<version>`."""
        package = package_chart(chart, self._scratch(), self.env) if chart.is_dir() else chart
        result = self.run("helm", "push", package, self.oci_url(repository))
        pushed = {
            key.strip(): value.strip() for key, _, value in (line.partition(":") for line in result.stdout.splitlines())
        }
        if "Pushed" not in pushed or "Digest" not in pushed:
            raise ToolFailed(f"`helm push` did not say what it pushed: {result.stdout.strip()}")
        return PushedArtifact(pushed["Pushed"], pushed["Digest"])

    def sign(self, artifact: PushedArtifact, keys: CosignKeys, *, sigstore_bundle: bool = False) -> None:
        """Signs the artifact's digest with `cosign sign --key`, offline (no transparency log): by
        default as a `sha256-<digest>.sig` tag (what cosign v2 and Flux use), with `sigstore_bundle`
        as a Sigstore bundle referring to it (cosign v3's default)."""
        self.run(
            "cosign", "sign", "--yes", "--key", keys.private_key, "--use-signing-config=false", "--tlog-upload=false",
            f"--new-bundle-format={str(sigstore_bundle).lower()}", artifact.pinned,
            env={"COSIGN_PASSWORD": keys.password},
        )  # fmt: skip

    def verify(self, artifact: PushedArtifact, keys: CosignKeys) -> subprocess.CompletedProcess[str]:
        """`cosign verify --key` of the artifact's digest (offline); check `.returncode`."""
        return self.run(
            "cosign", "verify", "--key", keys.public_key, "--insecure-ignore-tlog=true", artifact.pinned, check=False
        )

    def start(self) -> None:
        last_error = ""
        for _ in range(5):
            self.port = _free_port()
            config = self._write_config()
            with self.log.open("ab") as log:
                self._process = subprocess.Popen(
                    [str(binaries.locate("registry")), "serve", str(config)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                )
            try:
                self._wait_until_serving()
                return
            except RuntimeError as error:
                last_error = f"{error}; log: {self.log.read_text()[-2000:]}"
                self._stop_process()
        raise RuntimeError(f"the registry did not start: {last_error}")

    def stop(self) -> None:
        self._stop_process()
        if self.token_server is not None:
            self.token_server.stop()

    def _stop_process(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            stop_group(process)

    def _scratch(self) -> Path:
        path = self.directory / "scratch" / secrets.token_hex(6)
        path.mkdir(parents=True)
        return path

    def _write_config(self) -> Path:
        """The registry's config for the current port, and the clients' Docker config naming it."""
        docker = Path(self.env["DOCKER_CONFIG"])
        docker.mkdir(parents=True, exist_ok=True)
        (docker / "config.json").write_bytes(self.docker_config_json())
        config = self.directory / "config.yml"
        settings: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "info", "accesslog": {"disabled": False}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.directory / "data")},
                "delete": {"enabled": True},
            },
            "http": {
                "addr": self.host,
                "secret": secrets.token_hex(16),
                "tls": {"certificate": str(self._certificate.cert), "key": str(self._certificate.key)},
            },
            "auth": (
                self.token_server.registry_auth()
                if self.token_server is not None
                else {"htpasswd": {"realm": "moor-test", "path": str(self.directory / "htpasswd")}}
            ),
        }
        if self.notify is not None:
            endpoint = {
                "name": "moor",
                "url": self.notify.url,
                "headers": {"Authorization": [f"Bearer {self.notify.token}"]},
                "timeout": "5s",
                "threshold": 3,
                "backoff": "1s",
            }
            settings["notifications"] = {"events": {"includereferences": True}, "endpoints": [endpoint]}
        config.write_text(json.dumps(settings, indent=2))  # JSON is YAML
        return config

    def _wait_until_serving(self) -> None:
        """Until `/v2/` answers 401 (it is up and demands auth), or the process exits."""
        context = client_ssl_context(self.ca)
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(f"registry exited with {self._process.returncode}")
            try:
                urllib.request.urlopen(f"https://{self.host}/v2/", context=context, timeout=2)
            except urllib.error.HTTPError as error:
                if error.code == HTTPStatus.UNAUTHORIZED:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"registry did not answer on {self.host} within {_START_TIMEOUT:.0f}s")


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory, registry_ca: TestCA) -> Iterator[Registry]:
    try:
        binaries.locate("registry")
    except binaries.BinaryNotFound as error:
        pytest.fail(str(error), pytrace=False)
    server = Registry(tmp_path_factory.mktemp("registry"), registry_ca)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def cosign_keys(tmp_path_factory: pytest.TempPathFactory, registry: Registry) -> CosignKeys:
    """One cosign key pair for the session (`generate_cosign_keys` makes others, e.g. a wrong one)."""
    return generate_cosign_keys(tmp_path_factory.mktemp("cosign-keys"), registry.env)


# ---------------------------------------------------------------------------------- chart server


@dataclass(frozen=True)
class ServedRequest:
    method: str
    path: str
    status: int
    authorized: bool


class ChartServer:
    """A Helm chart repository over HTTPS (Python's http.server in a thread) demanding Basic auth.

    `.directory` is what it serves: `publish()` packages a chart into it with the real helm and
    rewrites `index.yaml` with `helm repo index` (merging, so earlier entries keep their `created`).
    Every file is served with an ETag of its content and honours If-None-Match (304); `.requests`
    records each request (`requests_for(path)`), e.g. to count index downloads.
    """

    def __init__(self, root: Path, ca: TestCA) -> None:
        self.root = root
        self.ca = ca
        self.directory = root / "charts"
        self.directory.mkdir()
        self.username = "moor-charts"
        self.password = f"pw-{secrets.token_hex(12)}"
        self.env = tool_env(root, ca)
        self.log = root / "chart-server.log"
        self.requests: list[ServedRequest] = []
        self._lock = threading.Lock()
        certificate = ca.server_certificate("chart-server")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certificate.cert, certificate.key)
        self._server = ThreadingHTTPServer((_LOOPBACK, 0), _chart_handler_for(self))
        self._server.daemon_threads = True
        # The handshake runs in each request's thread, so one silent client cannot stall the others.
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True, do_handshake_on_connect=False)
        self.port = int(self._server.server_address[1])
        self.url = f"https://{_LOOPBACK}:{self.port}"
        """The repository URL (`helm repo add NAME URL`, a HelmRepository's `url`)."""
        self._thread = threading.Thread(target=self._server.serve_forever, name="chart-server", daemon=True)

    @property
    def ca_bundle(self) -> Path:
        return self.ca.bundle

    def basic_auth_secret(self) -> dict[str, bytes]:
        return {"username": self.username.encode(), "password": self.password.encode()}

    def publish(self, chart: Path) -> Path:
        """Packages the chart directory into the served directory and re-indexes; returns the .tgz."""
        package = package_chart(chart, self.directory, self.env)
        index = self.directory / "index.yaml"
        merge: list[str | Path] = ["--merge", index] if index.exists() else []
        run_tool("helm", "repo", "index", self.directory, "--url", self.url, *merge, env=self.env)
        return package

    def requests_for(self, path: str) -> list[ServedRequest]:
        with self._lock:
            return [request for request in self.requests if request.path == path]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def authorized(self, header: str | None) -> bool:
        scheme, _, credentials = (header or "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            pair = base64.b64decode(credentials.strip(), validate=True)
        except ValueError:
            return False
        return hmac.compare_digest(pair, f"{self.username}:{self.password}".encode())

    def record(self, request: ServedRequest, line: str) -> None:
        with self._lock:
            self.requests.append(request)
        self.write_log(line)

    def write_log(self, line: str) -> None:
        with self._lock, self.log.open("a") as log:
            log.write(line + "\n")


def _chart_handler_for(server: ChartServer) -> Callable[..., SimpleHTTPRequestHandler]:
    class ChartHandler(SimpleHTTPRequestHandler):
        server_version = "moor-test-charts/1"
        _authorized = False
        _etag: str | None = None

        def do_GET(self) -> None:
            if self._authorize():
                super().do_GET()

        def do_HEAD(self) -> None:
            if self._authorize():
                super().do_HEAD()

        def _authorize(self) -> bool:
            self._authorized = server.authorized(self.headers.get("Authorization"))
            if not self._authorized:
                self.send_response(HTTPStatus.UNAUTHORIZED)
                self.send_header("WWW-Authenticate", 'Basic realm="moor-charts"')
                self.send_header("Content-Length", "0")
                self.end_headers()
            return self._authorized

        def send_head(self) -> Any:
            """Files carry a strong ETag of their content, as static hosts send; a request whose
            If-None-Match names it gets 304 Not Modified."""
            path = Path(self.translate_path(self.path))
            self._etag = f'"{hashlib.sha256(path.read_bytes()).hexdigest()[:32]}"' if path.is_file() else None
            wanted = [tag.strip() for tag in self.headers.get("If-None-Match", "").split(",")]
            if self._etag is not None and (self._etag in wanted or "*" in wanted):
                self.send_response(HTTPStatus.NOT_MODIFIED)
                self.end_headers()
                return None
            return super().send_head()

        def end_headers(self) -> None:
            if self._etag is not None:
                self.send_header("ETag", self._etag)
            super().end_headers()

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            status = int(code) if str(code).isdigit() else 0
            path = self.path.split("?", 1)[0]
            server.record(
                ServedRequest(self.command, path, status, self._authorized),
                f'{self.log_date_time_string()} "{self.requestline}" {code} {size} authorized={self._authorized}',
            )

        def log_message(self, format: str, *args: object) -> None:
            server.write_log(f"{self.log_date_time_string()} {format % args}")

    return partial(ChartHandler, directory=str(server.directory))


@pytest.fixture(scope="session")
def chart_server(tmp_path_factory: pytest.TempPathFactory, registry_ca: TestCA) -> Iterator[ChartServer]:
    server = ChartServer(tmp_path_factory.mktemp("chart-server"), registry_ca)
    server.start()
    yield server
    server.stop()
