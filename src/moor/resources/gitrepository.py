"""A GitRepository's spec as a typed value: which repository, which revision, how often, how trusted."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from moor.resources.fields import FieldReader
from moor.source.errors import InvalidSourceSpec
from moor.source.refs import GitRef
from moor.source.urls import ScpLikeUrl

DEFAULT_INTERVAL = timedelta(minutes=1)
DEFAULT_TIMEOUT = timedelta(seconds=60)

# What the CRD's rule on spec.url admits: http(s)://, ssh://, file:// URLs, or scp-like user@host:path.
# Neither a host nor a user may start with '-', so a URL can never be read as an option by git or ssh.
_SCHEMED_URL = re.compile(r"(https?|ssh|file)://[^\s-]\S*")
_SCP_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
_SCP_HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]*")
# A branch or tag name as git-check-ref-format allows it (roughly), never starting with '-'.
REF_NAME_PATTERN = re.compile(r"[^-\s~^:?*\[\\][^\s~^:?*\[\\]*")
COMMIT_PATTERN = re.compile(r"[0-9a-f]{40}")
REF_KINDS = ("branch", "tag", "semver", "commit")


class VerifyMode(StrEnum):
    """What must carry a trusted signature before a revision is used."""

    HEAD = "HEAD"  # the commit the ref resolves to
    TAG = "Tag"  # the annotated tag (ref.tag or ref.semver)
    TAG_AND_HEAD = "TagAndHEAD"  # both


@dataclass(frozen=True)
class VerifySpec:
    mode: VerifyMode
    secret_name: str  # Secret with *.asc GPG public keys and/or `allowed_signers`


@dataclass(frozen=True)
class GitRepositorySpec:
    url: str
    ref: GitRef
    interval: timedelta = DEFAULT_INTERVAL
    timeout: timedelta = DEFAULT_TIMEOUT
    secret_name: str | None = None  # Secret with username/password, bearerToken, or identity/known_hosts
    verify: VerifySpec | None = None
    suspend: bool = False

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> GitRepositorySpec:
        """Reads and checks a GitRepository custom resource, filling in the CRD's defaults."""
        spec = FieldReader.spec_of(obj)
        url = spec.required_str("url", max_length=2048)
        if not _admitted_url(url):
            raise spec.error("url", f"must be an http(s)://, ssh:// or file:// URL or user@host:path, not {url!r}")
        return cls(
            url=url,
            ref=_read_ref(spec),
            interval=spec.duration("interval", DEFAULT_INTERVAL),
            timeout=spec.duration("timeout", DEFAULT_TIMEOUT),
            secret_name=_secret_name(spec.child("secretRef")),
            verify=_read_verify(spec.child("verify")),
            suspend=spec.boolean("suspend", False),
        )


def _admitted_url(url: str) -> bool:
    if _SCHEMED_URL.fullmatch(url):
        return True
    scp = ScpLikeUrl.parse(url)
    return (
        scp is not None
        and scp.user is not None
        and bool(_SCP_USER.fullmatch(scp.user) and _SCP_HOST.fullmatch(scp.host))
    )


def _read_ref(spec: FieldReader) -> GitRef:
    ref = spec.child("ref")
    if ref is None:
        raise spec.error("ref", "is required: set one of branch, tag, semver or commit")
    chosen = [kind for kind in REF_KINDS if ref.has(kind)]
    if len(chosen) != 1:
        found = f"it sets {' and '.join(chosen)}" if chosen else "it sets none"
        raise spec.error("ref", f"must set exactly one of branch, tag, semver or commit ({found})")
    kind = chosen[0]
    patterns = {"branch": REF_NAME_PATTERN, "tag": REF_NAME_PATTERN, "commit": COMMIT_PATTERN}
    value = ref.required_str(kind, max_length=255)
    pattern = patterns.get(kind)
    if pattern is not None and not pattern.fullmatch(value):
        what = "40 lower-case hex digits" if kind == "commit" else "a valid Git ref name"
        raise ref.error(kind, f"must be {what}, not {value!r}")
    try:
        return GitRef(**{kind: value})
    except InvalidSourceSpec as error:
        raise ref.error(kind, str(error)) from None


def _secret_name(ref: FieldReader | None) -> str | None:
    return None if ref is None else ref.required_name("name")


def _read_verify(verify: FieldReader | None) -> VerifySpec | None:
    if verify is None:
        return None
    secret = verify.child("secretRef")
    if secret is None:
        raise verify.error("secretRef", "is required: name the Secret holding the trusted keys")
    return VerifySpec(mode=verify.choice("mode", VerifyMode, VerifyMode.HEAD), secret_name=secret.required_name("name"))
