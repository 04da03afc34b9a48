"""An OCIRepository's spec as a typed value: which artifact, which version of it, how often, how reached."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from enum import StrEnum
from typing import Any

from moor.resources.fields import FieldReader
from moor.source.errors import InvalidSourceSpec
from moor.source.oci.reference import OciReference, check_digest
from moor.source.semver_range import SemverRange

DEFAULT_INTERVAL = timedelta(minutes=1)
DEFAULT_TIMEOUT = timedelta(seconds=60)
DEFAULT_TAG = "latest"
_MEDIA_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*")


@dataclass(frozen=True)
class OciRef:
    """At most one of tag, semver (a range over tags) or digest; the tag `latest` when none is set."""

    tag: str | None = None
    semver: SemverRange | None = None
    digest: str | None = None

    def __str__(self) -> str:
        if self.semver is not None:
            return f"semver {self.semver}"
        return f"digest {self.digest}" if self.digest else f"tag {self.tag}"


class VerifyProvider(StrEnum):
    """Who made the signatures an artifact must carry."""

    COSIGN = "cosign"


@dataclass(frozen=True)
class OciVerifySpec:
    """spec.verify: the artifact must carry a valid signature by one of the keys in a Secret."""

    provider: VerifyProvider
    secret_name: str
    """A Secret whose keys ending in `.pub` are trusted PEM public keys."""


@dataclass(frozen=True)
class OCIRepositorySpec:
    repository: OciReference
    """The artifact's repository (no tag, no digest)."""
    ref: OciRef
    media_type: str | None = None
    """The layer holding the files (layerSelector.mediaType); None: Flux's or the generic tar+gzip."""
    secret_name: str | None = None
    """A Secret with username/password or a .dockerconfigjson."""
    cert_secret_name: str | None = None
    """A Secret with ca.crt and/or tls.crt + tls.key."""
    insecure: bool = False
    interval: timedelta = DEFAULT_INTERVAL
    timeout: timedelta = DEFAULT_TIMEOUT
    suspend: bool = False
    verify: OciVerifySpec | None = None

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> OCIRepositorySpec:
        """Reads and checks an OCIRepository custom resource, filling in the CRD's defaults."""
        spec = FieldReader.spec_of(obj)
        url = spec.required_str("url", max_length=2048)
        try:
            repository = OciReference.parse(url)
        except InvalidSourceSpec as error:
            raise spec.error("url", str(error)) from None
        if repository.ref is not None:
            raise spec.error("url", f"must not name a tag or digest ({url!r}): set spec.ref instead")
        selector = spec.child("layerSelector")
        return cls(
            repository=repository,
            ref=_read_ref(spec, repository),
            media_type=None if selector is None else selector.required_str("mediaType", pattern=_MEDIA_TYPE),
            secret_name=_secret_name(spec.child("secretRef")),
            cert_secret_name=_secret_name(spec.child("certSecretRef")),
            insecure=spec.boolean("insecure", False),
            interval=spec.duration("interval", DEFAULT_INTERVAL),
            timeout=spec.duration("timeout", DEFAULT_TIMEOUT),
            suspend=spec.boolean("suspend", False),
            verify=_read_verify(spec.child("verify")),
        )


def _read_ref(spec: FieldReader, repository: OciReference) -> OciRef:
    ref = spec.child("ref")
    if ref is None:
        return OciRef(tag=DEFAULT_TAG)
    chosen = [kind for kind in ("tag", "semver", "digest") if ref.has(kind)]
    if len(chosen) > 1:
        raise spec.error("ref", f"must set at most one of tag, semver or digest (it sets {' and '.join(chosen)})")
    if not chosen:
        return OciRef(tag=DEFAULT_TAG)
    kind = chosen[0]
    value = ref.required_str(kind, max_length=255)
    try:
        if kind == "semver":
            return OciRef(semver=SemverRange.parse(value))
        if kind == "digest":
            check_digest(value, f"{spec.field('ref')}.digest")
            return OciRef(digest=value)
        replace(repository, tag=value)  # checks the tag as registries do
    except InvalidSourceSpec as error:
        raise ref.error(kind, str(error)) from None
    return OciRef(tag=value)


def _secret_name(ref: FieldReader | None) -> str | None:
    return None if ref is None else ref.required_name("name")


def _read_verify(verify: FieldReader | None) -> OciVerifySpec | None:
    if verify is None:
        return None
    secret = verify.child("secretRef")
    if secret is None:
        raise verify.error("secretRef", "is required: name the Secret holding the trusted cosign public keys")
    return OciVerifySpec(
        provider=verify.choice("provider", VerifyProvider, VerifyProvider.COSIGN),
        secret_name=secret.required_name("name"),
    )
