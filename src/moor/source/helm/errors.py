"""Why a chart repository or one of its charts could not be read, completing moor.source.errors.

Refused credentials are an `AuthenticationFailed`, an unreachable host a `RegistryUnreachable` (and its
Timeout and CertificateRejected kinds), a tarball that fails a check a `DigestMismatch` or an
`UnsafeArtifact`: the same classes, and so the same reasons, as an OCI registry's.
"""

from __future__ import annotations

from moor.source.errors import AnsweredWithError, NoMatchingTag, RefNotFound, SourceError


class IndexTooLarge(SourceError):
    """The repository's index.yaml is larger than the cap (`IndexLimits.max_bytes`, 32 MiB by default)."""

    reason = "IndexTooLarge"


class InvalidIndex(SourceError):
    """The index is not YAML Moor reads (bad syntax, an alias bomb, too many nodes, a chart name with `/`)."""

    reason = "InvalidIndex"


class ChartRepositoryError(AnsweredWithError):
    """The chart repository answered with an error none of the narrower classes names."""

    reason = "ChartRepositoryError"


class ChartNotFound(RefNotFound):
    """The repository holds no chart of that name."""

    reason = "ChartNotFound"


class NoMatchingVersion(NoMatchingTag):
    """The chart has versions, but none that the Sync's version (exact or a range) admits."""

    reason = "NoMatchingVersion"
