"""Where an artifact lives: `oci://host[:port]/repository[:tag][@sha256:…]`, checked as registries check it.

The repository follows the distribution spec's grammar (lower-case components of letters and digits
joined by `.`, `_`, `__` or dashes, separated by `/`); a tag is at most 128 letters, digits, `_`, `.`
or `-`, not starting with `.` or `-`; a digest is `sha256:` with 64 or `sha512:` with 128 lower-case
hex digits. Credentials never go in the URL: they come from a Secret or the docker config.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from moor.source.errors import InvalidSourceSpec
from moor.source.urls import redact_url

SCHEME = "oci://"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_HOST = re.compile(rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:.]+\])(?::(?P<port>[0-9]{{1,5}}))?")
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST_LENGTHS = {"sha256": 64, "sha512": 128}
_HEX = re.compile(r"[0-9a-f]+")
_MAX_REPOSITORY = 255


@dataclass(frozen=True)
class OciReference:
    """A repository in a registry, optionally one tag and/or one digest of it (the digest wins when both)."""

    registry: str
    """`host` or `host:port`, lower case."""
    repository: str
    tag: str | None = None
    digest: str | None = None

    def __post_init__(self) -> None:
        if self.tag is not None and not _TAG.fullmatch(self.tag):
            raise _invalid(
                str(self), f"the tag {self.tag!r} is not valid (1 to 128 of A-Z a-z 0-9 _ . -, not first . or -)"
            )
        if self.digest is not None:
            check_digest(self.digest, str(self))

    @classmethod
    def parse(cls, url: str) -> OciReference:
        text = url.strip()
        shown = redact_url(text)
        if not text.lower().startswith(SCHEME):
            raise _invalid(shown, "an OCI URL starts with oci://")
        host, _, rest = text[len(SCHEME) :].partition("/")
        if "@" in host:
            raise _invalid(shown, "credentials do not belong in the URL: give them in a Secret (or --creds)")
        if any(c.isspace() or ord(c) < 0x20 or c in "?#\\" for c in text):
            raise _invalid(shown, "it holds a space, a control character, ?, # or \\")
        registry = _registry(shown, host)
        path_and_tag, at, digest = rest.partition("@")
        path, tag = _split_tag(path_and_tag)
        _check_repository(shown, path)
        return cls(registry=registry, repository=path, tag=tag, digest=digest if at else None)

    @property
    def repository_url(self) -> str:
        """`oci://host/repository`: the artifact without tag or digest, as messages name it."""
        return f"{SCHEME}{self.registry}/{self.repository}"

    @property
    def ref(self) -> str | None:
        """What to ask the registry for: the digest if there is one, else the tag."""
        return self.digest or self.tag

    def __str__(self) -> str:
        tag = f":{self.tag}" if self.tag else ""
        digest = f"@{self.digest}" if self.digest else ""
        return f"{self.repository_url}{tag}{digest}"


def check_digest(digest: str, what: str) -> None:
    """Refuses a digest that is not `sha256:<64 hex>` or `sha512:<128 hex>` (lower case)."""
    algorithm, colon, encoded = digest.partition(":")
    length = _DIGEST_LENGTHS.get(algorithm)
    if not colon or length is None:
        raise _invalid(what, f"the digest {digest!r} is not valid: write sha256:<64 hex digits> (or sha512:)")
    if len(encoded) != length or not _HEX.fullmatch(encoded):
        raise _invalid(what, f"the digest {digest!r} is not valid: {algorithm} needs {length} lower-case hex digits")


def _registry(url: str, host: str) -> str:
    if not host:
        raise _invalid(url, "it names no registry host")
    match = _HOST.fullmatch(host)
    if match is None:
        raise _invalid(url, f"{host!r} is not a host name or host:port")
    port = match["port"]
    if port is not None and not 0 < int(port) < 65536:
        raise _invalid(url, f"the port {port} is not valid")
    return host.lower()


def _split_tag(path_and_tag: str) -> tuple[str, str | None]:
    """A tag follows the last `:` of the last path component (an earlier `:` would be inside the path)."""
    head, slash, last = path_and_tag.rpartition("/")
    name, colon, tag = last.partition(":")
    return head + slash + name, tag if colon else None


def _check_repository(url: str, path: str) -> None:
    if not path.strip("/"):
        raise _invalid(url, "it names no repository (write oci://host/path)")
    if len(path) > _MAX_REPOSITORY:
        raise _invalid(url, f"the repository path is longer than {_MAX_REPOSITORY} characters")
    for component in path.split("/"):
        if component in (".", ".."):
            raise _invalid(url, f"the repository path holds the dot segment {component!r}")
        if not component:
            raise _invalid(url, "the repository path holds an empty segment (a leading, doubled or trailing /)")
        if component != component.lower():
            raise _invalid(url, f"the repository path must be lower case, not {component!r}")
        if not _COMPONENT.fullmatch(component):
            raise _invalid(url, f"{component!r} is not a valid repository path segment (a-z 0-9 joined by . _ __ or -)")


def _invalid(url: str, cause: str) -> InvalidSourceSpec:
    return InvalidSourceSpec(f"the OCI URL {url!r} is not valid: {cause}", url=url)
