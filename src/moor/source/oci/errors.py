"""Why an OCI artifact could not be read or written: the registry's failures as typed errors.

These complete moor.source.errors, whose classes are reused where they fit: a bad reference or secret
is an `InvalidSourceSpec`, refused credentials an `AuthenticationFailed`, an unknown repository a
`RepositoryNotFound`. Every message names the artifact (`oci://host/repository…`), never a credential.
"""

from __future__ import annotations

from moor.source.errors import AnsweredWithError, RefNotFound, SourceError


class RegistryError(AnsweredWithError):
    """The registry answered with an error none of the narrower classes names; the message quotes it."""

    reason = "RegistryError"


class ArtifactNotFound(RefNotFound):
    """The tag, digest or blob does not exist in the repository."""

    reason = "ArtifactNotFound"


class DigestMismatch(SourceError):
    """What the registry sent is not what its digest says: it is thrown away, never extracted."""

    reason = "DigestMismatch"


class UnsupportedArtifact(SourceError):
    """The manifest is not one Moor reads: an index of several manifests, or no layer of an accepted type."""

    reason = "UnsupportedArtifact"


class UnsafeArtifact(SourceError):
    """The artifact's tarball holds an entry Moor refuses to extract (a link, a device, a path outside it)."""

    reason = "UnsafeArtifact"
