"""Why a source could not be read: a short hierarchy of errors, each one clear sentence naming the URL.

Every message is fit to show a user: URLs appear without credentials and git's own words are scrubbed
of secrets before they are quoted. `reason` is a CamelCase word for a Kubernetes condition.
"""

from __future__ import annotations

from typing import ClassVar

from moor.errors import MoorError


class SourceError(MoorError):
    """A Git source could not be resolved or fetched."""

    reason: ClassVar[str] = "GitOperationFailed"

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url
        """The repository's URL without credentials, when the error concerns one."""


class InvalidSourceSpec(SourceError):
    """The URL, ref or credentials are malformed: retrying will not help until the spec changes."""

    reason = "InvalidSpec"


class AuthenticationFailed(SourceError):
    reason = "AuthenticationFailed"


class RepositoryNotFound(SourceError):
    reason = "RepositoryNotFound"


class RefNotFound(SourceError):
    """The branch, tag or commit the ref names does not exist in the repository."""

    reason = "RefNotFound"


class NoMatchingTag(RefNotFound):
    reason = "NoMatchingTag"


class HostUnreachable(SourceError):
    reason = "HostUnreachable"


class HostKeyVerificationFailed(SourceError):
    reason = "HostKeyVerificationFailed"


class GitTimeout(SourceError):
    reason = "Timeout"


class GitCommandFailed(SourceError):
    """Git failed for a reason none of the other errors names; the message quotes git."""

    reason = "GitOperationFailed"


class VerificationFailed(SourceError):
    """The revision is not signed by a trusted key (unsigned, unknown or expired key, altered object)."""

    reason = "VerificationFailed"


class AnsweredWithError(SourceError):
    """A registry or chart repository answered with an error none of the narrower classes names; the
    message quotes it. `status` and `retry_after` decide whether to ask again."""

    def __init__(
        self, message: str, *, url: str | None = None, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, url=url)
        self.status = status
        self.retry_after = retry_after
        """Seconds the server asked to wait (Retry-After of a 429 or 503), if it said."""


class RegistryUnreachable(HostUnreachable):
    """No answer from a registry or chart repository: the name does not resolve, the connection is
    refused or reset."""


class RegistryTimeout(RegistryUnreachable):
    reason = "Timeout"


class CertificateRejected(RegistryUnreachable):
    """The server's TLS certificate is not trusted (or it refused ours): retrying will not help."""

    reason = "CertificateRejected"
