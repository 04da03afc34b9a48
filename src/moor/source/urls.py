"""Repository URLs: which transport they use, how git is given them, and how they are shown safely."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import unquote, urlsplit, urlunsplit

from moor.source.errors import InvalidSourceSpec

Transport = Literal["https", "http", "ssh", "file"]

_SCHEMES: dict[str, Transport] = {"https": "https", "http": "http", "ssh": "ssh", "file": "file"}
_SCP_LIKE = re.compile(r"(?:(?P<user>[^@/:\s]+)@)?(?P<host>\[[^\]/]+\]|[^:/\s\[\]]+):(?P<path>\S+)")
_USERINFO_IN_TEXT = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]*@")
_SUPPORTED = "https://, http://, ssh://, git@host:path or file://"


@dataclass(frozen=True)
class ScpLikeUrl:
    """git's scp-like syntax: `git@host:path`, `host:path`, `[v6::addr]:path` (no scheme, a colon before any slash)."""

    user: str | None
    host: str
    """As written: an IPv6 address keeps its brackets."""
    path: str

    @classmethod
    def parse(cls, url: str) -> ScpLikeUrl | None:
        """The parts of `url`, or None when it is not scp-like; a lone letter before the colon is a Windows
        drive (`C:/repos`), not a host."""
        scp = None if "://" in url else _SCP_LIKE.fullmatch(url)
        if scp is None or (scp["user"] is None and len(scp["host"]) == 1):
            return None
        return cls(user=scp["user"], host=scp["host"], path=scp["path"])


def repository_path(path: str) -> str:
    """A repository's path in one spelling: no repeated or trailing slashes, no `.git` suffix (as hosts
    serve `org/app.git/` and `org//app` as `org/app`)."""
    path = re.sub(r"/{2,}", "/", path).rstrip("/")
    if path.lower().endswith(".git"):
        path = path[: -len(".git")].rstrip("/")
    return path


@dataclass(frozen=True)
class GitUrl:
    """A repository URL, checked, with its credentials (if any) taken out of what git and users see."""

    transport: Transport
    for_git: str
    """What git is given: userinfo of http(s) URLs removed so that no password is ever in argv."""
    redacted: str
    """What messages show: no password, no token; an SSH user name (not a secret) is kept."""
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, url: str) -> GitUrl:
        url = url.strip()
        if not url or url.startswith("-") or any(c in url for c in "\r\n\0"):
            raise InvalidSourceSpec(f"the repository URL {redact_url(url)!r} is not valid", url=redact_url(url))
        if "://" in url:
            return cls._parse_with_scheme(url)
        if ScpLikeUrl.parse(url) is not None:
            return cls(transport="ssh", for_git=url, redacted=url)
        raise InvalidSourceSpec(f"the repository URL {url!r} is not supported: use {_SUPPORTED}", url=redact_url(url))

    @classmethod
    def _parse_with_scheme(cls, url: str) -> GitUrl:
        try:
            parts = urlsplit(url)
            port = parts.port  # raises on a malformed port
        except ValueError:
            raise InvalidSourceSpec(
                f"the repository URL {redact_url(url)!r} is not valid", url=redact_url(url)
            ) from None
        transport = _SCHEMES.get(parts.scheme.lower())
        if transport is None:
            raise InvalidSourceSpec(
                f"the repository URL {redact_url(url)!r} uses the unsupported scheme {parts.scheme!r}: "
                f"use {_SUPPORTED}",
                url=redact_url(url),
            )
        if transport == "file":
            if not parts.path.startswith("/"):
                raise InvalidSourceSpec(f"the file URL {url!r} needs an absolute path", url=url)
            return cls(transport="file", for_git=url, redacted=url)
        if not parts.hostname:
            raise InvalidSourceSpec(f"the repository URL {redact_url(url)!r} names no host", url=redact_url(url))
        host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        hostport = host if port is None else f"{host}:{port}"
        without_userinfo = urlunsplit((parts.scheme, hostport, parts.path, parts.query, ""))
        if transport == "ssh":
            user = f"{parts.username}@" if parts.username else ""
            safe = urlunsplit((parts.scheme, user + hostport, parts.path, parts.query, ""))
            return cls(transport="ssh", for_git=safe, redacted=safe)
        return cls(
            transport=transport,
            for_git=without_userinfo,
            redacted=without_userinfo,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )

    def __str__(self) -> str:
        return self.redacted


def redact_url(url: str) -> str:
    """The URL as it may be shown: userinfo of http(s) URLs and any password removed (SSH keeps its user)."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return redact_text(url)
    if "://" not in url or not parts.netloc or "@" not in parts.netloc:
        return url.strip()
    hostport = parts.netloc.rpartition("@")[2]
    keep_user = parts.scheme.lower() == "ssh" and parts.username
    netloc = f"{parts.username}@{hostport}" if keep_user else hostport
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def redact_text(text: str) -> str:
    """Removes the userinfo of every URL in a piece of text (git quotes URLs in its messages)."""
    return _USERINFO_IN_TEXT.sub(r"\g<scheme>", text)
