"""Where a commit can be seen: the web page of a commit, and the project a commit status goes to.

Pure: a repository URL as written in a GitRepository's `spec.url` in, a link or a project path out.
Credentials in the URL are never carried over.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from moor.source.urls import ScpLikeUrl, repository_path

_COMMIT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


@dataclass(frozen=True)
class RepositoryAddress:
    """A repository on a web host: `github.com` and `org/app` (no `.git`, no credentials)."""

    scheme: str
    """The scheme of the web pages: the URL's own for http(s), https for SSH."""
    host: str
    """With the port for http(s) URLs; an SSH port is not the web server's, so it is dropped."""
    path: str

    @property
    def web_url(self) -> str:
        return f"{self.scheme}://{self.host}/{self.path}"

    @property
    def owner_and_name(self) -> tuple[str, str] | None:
        """GitHub's `owner` and `repo`; None when the path is not exactly two segments."""
        parts = self.path.split("/")
        if len(parts) != 2 or not all(parts):
            return None
        return parts[0], parts[1]

    @property
    def project_id(self) -> str:
        """GitLab's URL-encoded project path: `group/sub/app` -> `group%2Fsub%2Fapp`."""
        return quote(self.path, safe="")


def repository_address(url: str) -> RepositoryAddress | None:
    """The web host and path of an http(s), ssh:// or scp-like repository URL; None for file:// and the like."""
    text = url.strip()
    if "://" in text:
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError:
            return None
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https", "ssh") or not parts.hostname:
            return None
        host = parts.hostname.lower()
        if scheme != "ssh" and port is not None:
            host = f"{host}:{port}"
        return _address("https" if scheme == "ssh" else scheme, host, parts.path)
    scp = ScpLikeUrl.parse(text)
    if scp is None:
        return None
    return _address("https", scp.host.lower(), scp.path)


def _address(scheme: str, host: str, path: str) -> RepositoryAddress | None:
    path = repository_path(path).lstrip("/")
    if not path:
        return None
    return RepositoryAddress(scheme, host, path)


def commit_url(repository_url: str, commit: str) -> str:
    """The web page of `commit` on GitHub, GitLab or Bitbucket (known by the host's name); '' otherwise."""
    address = repository_address(repository_url)
    if address is None or not _COMMIT.fullmatch(commit):
        return ""
    host = address.host.partition(":")[0]
    if "github" in host:
        return f"{address.web_url}/commit/{commit}"
    if "gitlab" in host:
        return f"{address.web_url}/-/commit/{commit}"
    if "bitbucket" in host:
        return f"{address.web_url}/commits/{commit}"
    return ""
