"""Where the API server is and who Moor is to it: a kubeconfig context or the in-cluster account.

A bearer token can come from the kubeconfig itself, from a file (re-read at most once a minute, as a
projected ServiceAccount token rotates) or from an exec credential plugin (`users[].user.exec`, as
EKS, GKE and AKS kubeconfigs use): the plugin runs when the kubeconfig is loaded, and again, off the
event loop, shortly before the credential it printed expires. A plugin that prints a client
certificate is run once: the certificate is part of the TLS context for the life of the process.
Plugins run with Moor's own environment, so exec belongs only in an operator's own kubeconfig.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import yaml

from moor.errors import MoorError

IN_CLUSTER_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
TOKEN_FILE_MAX_AGE = 60.0
EXEC_API_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")
EXEC_TIMEOUT = 60.0
EXEC_REFRESH_MARGIN = timedelta(seconds=60)
STDERR_EXCERPT = 300


class ConfigError(MoorError):
    pass


class TokenSource(Protocol):
    """Where a changing bearer token comes from; `expire` makes the next `token` fetch a new one."""

    async def token(self) -> str: ...

    def expire(self) -> None: ...


@dataclass(frozen=True)
class Credentials:
    """How to reach and authenticate to one API server. PEM values are bytes, never paths."""

    server: str
    ca_pem: bytes | None = None
    client_cert_pem: bytes | None = None
    client_key_pem: bytes | None = None
    token: str | None = None
    token_source: TokenSource | None = field(default=None, compare=False, repr=False)
    insecure: bool = False
    namespace: str = "default"
    context: str = ""

    async def bearer_token(self) -> str | None:
        """The token to send now: from the token source when there is one (it may change), else the fixed one."""
        if self.token_source is not None:
            return await self.token_source.token()
        return self.token


class TokenFile:
    """A token kept in a file, re-read at most once every `max_age` seconds, in a thread."""

    def __init__(
        self, path: Path, *, max_age: float = TOKEN_FILE_MAX_AGE, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.path = path
        self._max_age = max_age
        self._clock = clock
        self._token: str | None = None
        self._read_at = 0.0

    async def token(self) -> str:
        now = self._clock()
        if self._token is None or now - self._read_at >= self._max_age:
            self._token = await asyncio.to_thread(self._read)
            self._read_at = now
        return self._token

    def expire(self) -> None:
        self._token = None

    def _read(self) -> str:
        try:
            return self.path.read_text().strip()
        except OSError as error:
            raise ConfigError(f"cannot read the token file {self.path}: {error.strerror or error}") from None


@dataclass(frozen=True)
class ExecPlugin:
    """A kubeconfig user's `exec` section: the command that prints an ExecCredential."""

    kubeconfig: Path
    api_version: str
    command: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    install_hint: str = ""
    exec_info: str = ""

    @classmethod
    def from_kubeconfig(cls, section: Mapping[str, Any], kubeconfig: Path, cluster: Mapping[str, Any]) -> ExecPlugin:
        api_version = str(section.get("apiVersion", ""))
        command = str(section.get("command") or "")
        if not command:
            raise ConfigError(f"kubeconfig {kubeconfig}: the exec section names no command")
        if api_version not in EXEC_API_VERSIONS:
            raise ConfigError(
                f"kubeconfig {kubeconfig}: exec plugin `{command}` asks for apiVersion {api_version!r}; "
                f"supported: {', '.join(EXEC_API_VERSIONS)}"
            )
        if section.get("interactiveMode") == "Always":
            raise ConfigError(
                f"kubeconfig {kubeconfig}: exec plugin `{command}` needs a terminal (interactiveMode: Always); "
                "moor runs plugins without one"
            )
        if os.sep in command and not Path(command).is_absolute():
            command = str(kubeconfig.parent / command)  # as kubectl: a relative path is the kubeconfig's
        spec: dict[str, Any] = {"interactive": False}
        if section.get("provideClusterInfo"):
            spec["cluster"] = _cluster_info(cluster, kubeconfig)
        return cls(
            kubeconfig=kubeconfig,
            api_version=api_version,
            command=command,
            args=tuple(str(arg) for arg in section.get("args") or ()),
            env=_exec_env(section.get("env") or [], kubeconfig, command),
            install_hint=str(section.get("installHint") or "").strip(),
            exec_info=json.dumps({"apiVersion": api_version, "kind": "ExecCredential", "spec": spec}),
        )

    @property
    def name(self) -> str:
        return Path(self.command).name

    def run(self) -> IssuedCredential:
        """Runs the plugin (blocking, without a terminal) and parses the credential it prints."""
        environment = {**os.environ, **dict(self.env), "KUBERNETES_EXEC_INFO": self.exec_info}
        started = datetime.now(UTC)
        try:
            done = subprocess.run(
                [self.command, *self.args],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                env=environment,
                timeout=EXEC_TIMEOUT,
                check=False,
            )
        except FileNotFoundError:
            hint = f": {self.install_hint}" if self.install_hint else ""
            raise self.failure(f"not found{hint}") from None
        except subprocess.TimeoutExpired:
            raise self.failure(f"printed no credential within {EXEC_TIMEOUT:.0f} s") from None
        except OSError as error:
            raise self.failure(f"could not start: {error.strerror or error}") from None
        if done.returncode != 0:
            stderr = " ".join(done.stderr.decode(errors="replace").split())[-STDERR_EXCERPT:]
            raise self.failure(f"exit {done.returncode}" + (f": {stderr}" if stderr else ""))
        return self._parse(done.stdout, started)

    def _parse(self, stdout: bytes, started: datetime) -> IssuedCredential:
        try:
            document = json.loads(stdout)
        except ValueError:
            raise self.failure("printed something that is not JSON") from None
        if not isinstance(document, dict) or document.get("kind") != "ExecCredential":
            raise self.failure("printed something that is not an ExecCredential")
        if document.get("apiVersion") != self.api_version:
            raise self.failure(f"printed apiVersion {document.get('apiVersion')!r}, not {self.api_version}")
        status = document.get("status") or {}
        token = status.get("token") or None
        cert, key = status.get("clientCertificateData"), status.get("clientKeyData")
        if bool(cert) != bool(key):
            raise self.failure("printed a client certificate without its key, or a key without its certificate")
        if not token and not cert:
            raise self.failure("printed neither a token nor a client certificate")
        expires = None
        if status.get("expirationTimestamp"):
            try:
                expires = datetime.fromisoformat(str(status["expirationTimestamp"]))
                expires = expires if expires.tzinfo is not None else expires.replace(tzinfo=UTC)
            except ValueError:
                raise self.failure(f"printed a bad expirationTimestamp {status['expirationTimestamp']!r}") from None
        return IssuedCredential(
            token=str(token) if token else None,
            client_cert_pem=str(cert).encode() if cert else None,
            client_key_pem=str(key).encode() if key else None,
            issued=started,
            expires=expires,
        )

    def failure(self, problem: str) -> ConfigError:
        return ConfigError(f"kubeconfig {self.kubeconfig}: exec plugin `{self.name}` failed: {problem}")


@dataclass(frozen=True)
class IssuedCredential:
    """What an exec plugin printed, and when it stops being good (None: for as long as the process lives)."""

    token: str | None
    client_cert_pem: bytes | None
    client_key_pem: bytes | None
    issued: datetime
    expires: datetime | None = None

    def fresh(self, now: datetime) -> bool:
        """Whether to keep using it: until a fifth of its lifetime (at most a minute) is left."""
        if self.expires is None:
            return True
        margin = min(EXEC_REFRESH_MARGIN, (self.expires - self.issued) / 5)
        return now < self.expires - margin


class IssuedCredentials:
    """The last credential each exec plugin printed, shared by every load of the same kubeconfig user."""

    def __init__(self) -> None:
        self._issued: dict[ExecPlugin, IssuedCredential] = {}
        self._lock = threading.Lock()

    def current(self, plugin: ExecPlugin) -> IssuedCredential | None:
        """The credential if it is still fresh, without running anything."""
        issued = self._issued.get(plugin)
        return issued if issued is not None and issued.fresh(datetime.now(UTC)) else None

    def fetch(self, plugin: ExecPlugin) -> IssuedCredential:
        """A fresh credential, running the plugin (once for all threads waiting) when there is none."""
        with self._lock:
            issued = self.current(plugin)
            if issued is None:
                issued = self._issued[plugin] = plugin.run()
            return issued

    def expire(self, plugin: ExecPlugin) -> None:
        self._issued.pop(plugin, None)


ISSUED = IssuedCredentials()


class ExecToken:
    """The token an exec plugin prints: reused while fresh, refreshed by running the plugin in a thread."""

    def __init__(self, plugin: ExecPlugin, issued: IssuedCredentials = ISSUED) -> None:
        self.plugin = plugin
        self._issued = issued

    async def token(self) -> str:
        issued = self._issued.current(self.plugin)
        if issued is None:
            issued = await asyncio.to_thread(self._issued.fetch, self.plugin)
        if issued.token is None:
            raise self.plugin.failure("printed no token this time")
        return issued.token

    def expire(self) -> None:
        self._issued.expire(self.plugin)


def default_kubeconfig_path() -> Path:
    first = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    return Path(first) if first else Path.home() / ".kube" / "config"


def load_credentials(kubeconfig: Path | None = None, context: str | None = None) -> Credentials:
    """The explicit kubeconfig, else $KUBECONFIG or ~/.kube/config, else the in-cluster account."""
    path = kubeconfig or default_kubeconfig_path()
    if kubeconfig is None and not path.exists() and (IN_CLUSTER_ACCOUNT / "token").exists():
        return load_in_cluster()
    return load_kubeconfig(path, context)


def load_in_cluster() -> Credentials:
    host = os.environ.get("KUBERNETES_SERVICE_HOST")
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if not host:
        raise ConfigError("running in a pod but KUBERNETES_SERVICE_HOST is not set")
    namespace_file = IN_CLUSTER_ACCOUNT / "namespace"
    return Credentials(
        server=f"https://{host}:{port}",
        ca_pem=(IN_CLUSTER_ACCOUNT / "ca.crt").read_bytes(),
        token_source=TokenFile(IN_CLUSTER_ACCOUNT / "token"),
        namespace=namespace_file.read_text().strip() if namespace_file.exists() else "default",
        context="in-cluster",
    )


def load_kubeconfig(path: Path, context: str | None = None) -> Credentials:
    """The credentials of `context` (default: current-context), running its exec plugin if it has one."""
    try:
        document = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"kubeconfig {path} does not exist") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"kubeconfig {path} is not valid YAML: {error}") from None
    if not isinstance(document, dict):
        raise ConfigError(f"kubeconfig {path} is not a kubeconfig document")
    chosen = context or document.get("current-context")
    if not chosen:
        raise ConfigError(f"kubeconfig {path} has no current-context; pass --context")
    ctx = _named(document, "contexts", chosen, path).get("context") or {}
    cluster = _named(document, "clusters", ctx.get("cluster", ""), path).get("cluster") or {}
    user = _named(document, "users", ctx.get("user", ""), path).get("user") or {} if ctx.get("user") else {}
    base = path.parent
    if "auth-provider" in user:
        raise ConfigError(
            f"kubeconfig {path}: user of context {chosen!r} uses an auth-provider plugin, which is not supported "
            "(kubectl removed them too); use an exec plugin"
        )
    client_cert, client_key = _pem(user, "client-certificate", base), _pem(user, "client-key", base)
    token_source: TokenSource | None = None
    if user.get("exec"):
        plugin = ExecPlugin.from_kubeconfig(user["exec"], path, cluster)
        issued = ISSUED.fetch(plugin)  # now: a client certificate it prints must be in the TLS context
        client_cert, client_key = issued.client_cert_pem or client_cert, issued.client_key_pem or client_key
        token_source = ExecToken(plugin) if issued.token else None
    elif user.get("tokenFile"):
        token_source = TokenFile(base / user["tokenFile"])
    return Credentials(
        server=str(cluster.get("server", "")).rstrip("/"),
        ca_pem=_pem(cluster, "certificate-authority", base),
        client_cert_pem=client_cert,
        client_key_pem=client_key,
        token=user.get("token"),
        token_source=token_source,
        insecure=bool(cluster.get("insecure-skip-tls-verify", False)),
        namespace=str(ctx.get("namespace") or "default"),
        context=chosen,
    )


def _named(document: dict[str, Any], section: str, name: str, path: Path) -> dict[str, Any]:
    for entry in document.get(section) or []:
        if entry.get("name") == name:
            return dict(entry)
    raise ConfigError(f"kubeconfig {path} has no {section[:-1]} named {name!r}")


def _pem(section: Mapping[str, Any], key: str, base: Path) -> bytes | None:
    data = section.get(f"{key}-data")
    if data:
        return base64.b64decode(data)
    file = section.get(key)
    return (base / file).read_bytes() if file else None


def _exec_env(entries: Any, kubeconfig: Path, command: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(entries, list) or not all(isinstance(item, dict) and item.get("name") for item in entries):
        raise ConfigError(f"kubeconfig {kubeconfig}: exec plugin `{command}`: env must be a list of name/value pairs")
    return tuple((str(item["name"]), str(item.get("value", ""))) for item in entries)


def _cluster_info(cluster: Mapping[str, Any], kubeconfig: Path) -> dict[str, Any]:
    """The cluster as an exec plugin with `provideClusterInfo` is told about it (CA as base64, as the API has it)."""
    ca = _pem(cluster, "certificate-authority", kubeconfig.parent)
    info: dict[str, Any] = {"server": str(cluster.get("server", ""))}
    if ca:
        info["certificate-authority-data"] = base64.b64encode(ca).decode()
    if cluster.get("insecure-skip-tls-verify"):
        info["insecure-skip-tls-verify"] = True
    if cluster.get("tls-server-name"):
        info["tls-server-name"] = str(cluster["tls-server-name"])
    for extension in cluster.get("extensions") or ():
        if extension.get("name") == "client.authentication.k8s.io/exec":
            info["config"] = extension.get("extension")
    return info
