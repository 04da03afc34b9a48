"""Where the API server is and who Moor is to it: a kubeconfig context or the in-cluster account."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from moor.errors import MoorError

IN_CLUSTER_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class ConfigError(MoorError):
    pass


@dataclass(frozen=True)
class Credentials:
    """How to reach and authenticate to one API server. PEM values are bytes, never paths."""

    server: str
    ca_pem: bytes | None = None
    client_cert_pem: bytes | None = None
    client_key_pem: bytes | None = None
    token: str | None = None
    token_file: Path | None = None
    insecure: bool = False
    namespace: str = "default"
    context: str = ""

    def bearer_token(self) -> str | None:
        """The token to send, re-read from its file each time (projected tokens rotate)."""
        if self.token_file is not None:
            return self.token_file.read_text().strip()
        return self.token


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
        token_file=IN_CLUSTER_ACCOUNT / "token",
        namespace=namespace_file.read_text().strip() if namespace_file.exists() else "default",
        context="in-cluster",
    )


def load_kubeconfig(path: Path, context: str | None = None) -> Credentials:
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
    if "exec" in user or "auth-provider" in user:
        raise ConfigError(f"kubeconfig {path}: user of context {chosen!r} uses an exec/auth plugin, not supported")
    token_file = user.get("tokenFile")
    return Credentials(
        server=str(cluster.get("server", "")).rstrip("/"),
        ca_pem=_pem(cluster, "certificate-authority", base),
        client_cert_pem=_pem(user, "client-certificate", base),
        client_key_pem=_pem(user, "client-key", base),
        token=user.get("token"),
        token_file=(base / token_file) if token_file else None,
        insecure=bool(cluster.get("insecure-skip-tls-verify", False)),
        namespace=str(ctx.get("namespace") or "default"),
        context=chosen,
    )


def _named(document: dict[str, Any], section: str, name: str, path: Path) -> dict[str, Any]:
    for entry in document.get(section) or []:
        if entry.get("name") == name:
            return dict(entry)
    raise ConfigError(f"kubeconfig {path} has no {section[:-1]} named {name!r}")


def _pem(section: dict[str, Any], key: str, base: Path) -> bytes | None:
    data = section.get(f"{key}-data")
    if data:
        return base64.b64decode(data)
    file = section.get(key)
    return (base / file).read_bytes() if file else None
