"""A HelmRepository's spec as a typed value: where the charts are (an index over HTTP(S), or an OCI
registry), how it is reached, how often it is read."""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from moor.resources.fields import FieldReader
from moor.source.errors import InvalidSourceSpec
from moor.source.oci.reference import OciReference

DEFAULT_INTERVAL = timedelta(minutes=10)
DEFAULT_TIMEOUT = timedelta(seconds=60)


class HelmRepositoryType(enum.StrEnum):
    DEFAULT = "default"
    """An index.yaml over HTTP(S)."""
    OCI = "oci"


@dataclass(frozen=True)
class HelmRepositorySpec:
    url: str
    """`https://…` (or `http://` on a loopback host) for `default`; `oci://host/path` for `oci`."""
    type: HelmRepositoryType = HelmRepositoryType.DEFAULT
    secret_name: str | None = None
    """A Secret with username/password or a .dockerconfigjson."""
    cert_secret_name: str | None = None
    """A Secret with ca.crt and/or tls.crt + tls.key."""
    insecure: bool = False
    """Plain HTTP to an OCI registry."""
    interval: timedelta = DEFAULT_INTERVAL
    timeout: timedelta = DEFAULT_TIMEOUT
    suspend: bool = False

    @property
    def oci_repository(self) -> OciReference:
        """The registry path charts live under (`type: oci` only); a chart is `<path>/<chart>`."""
        return OciReference.parse(self.url)

    @property
    def host(self) -> str:
        """`host` or `host:port`, the only place credentials are sent."""
        if self.type is HelmRepositoryType.OCI:
            return self.oci_repository.registry
        return urlsplit(self.url).netloc

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> HelmRepositorySpec:
        """Reads and checks a HelmRepository custom resource, filling in the CRD's defaults."""
        spec = FieldReader.spec_of(obj)
        kind = spec.choice("type", HelmRepositoryType, HelmRepositoryType.DEFAULT)
        url = spec.required_str("url", max_length=2048).strip()
        problem = _oci_url_problem(url) if kind is HelmRepositoryType.OCI else _http_url_problem(url)
        if problem:
            raise spec.error("url", problem)
        insecure = spec.boolean("insecure", False)
        if insecure and kind is not HelmRepositoryType.OCI:
            raise spec.error("insecure", "applies to type oci only (for HTTP, write an http:// URL on loopback)")
        return cls(
            url=url.rstrip("/"),
            type=kind,
            secret_name=_secret_name(spec.child("secretRef")),
            cert_secret_name=_secret_name(spec.child("certSecretRef")),
            insecure=insecure,
            interval=spec.duration("interval", DEFAULT_INTERVAL),
            timeout=spec.duration("timeout", DEFAULT_TIMEOUT),
            suspend=spec.boolean("suspend", False),
        )


def _http_url_problem(url: str) -> str | None:
    if url.lower().startswith("oci://"):
        return f"{url!r} is an OCI URL: set type: oci"
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return f"{url!r} is not a URL"
    if parts.scheme not in ("https", "http") or not host:
        return f"{url!r} must be an https:// URL"
    if parts.username is not None or parts.password is not None:
        return "credentials do not belong in the URL: give them in spec.secretRef"
    if parts.query or parts.fragment or any(c.isspace() for c in url):
        return f"{url!r} must not hold a query, a fragment or spaces"
    if parts.scheme == "http" and not _is_loopback(host):
        return f"{url!r} is plain http to a host that is not loopback: use https"
    return None


def _oci_url_problem(url: str) -> str | None:
    try:
        reference = OciReference.parse(url)
    except InvalidSourceSpec as error:
        return str(error)
    if reference.ref is not None:
        return f"{url!r} must not name a tag or digest: a Sync names the chart and its version"
    return None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _secret_name(ref: FieldReader | None) -> str | None:
    return None if ref is None else ref.required_name("name")
