"""Revisions from Git: resolve a ref to a commit, fetch that commit into an on-disk cache.

Knows nothing of Kubernetes: the controller turns a GitRepository into a URL, a `GitRef`, a
`GitAuth` and optionally a `VerificationPolicy`, and gets back an `Artifact` (a directory, the
commit's metadata and the trusted signatures found) or a `SourceError`.
"""

from moor.source.artifact import Artifact, ArtifactCache, CommitInfo
from moor.source.auth import GitAuth
from moor.source.errors import (
    AuthenticationFailed,
    GitCommandFailed,
    GitTimeout,
    HostKeyVerificationFailed,
    HostUnreachable,
    InvalidSourceSpec,
    NoMatchingTag,
    RefNotFound,
    RepositoryNotFound,
    SourceError,
    VerificationFailed,
)
from moor.source.limits import ArtifactLimits, ArtifactTooLarge, parse_size
from moor.source.refs import GitRef, RemoteRefs, ResolvedRevision, format_revision, revision_commit
from moor.source.remote import fetch, resolve, resolve_and_fetch
from moor.source.semver_range import SemverRange
from moor.source.urls import GitUrl, redact_url
from moor.source.verify import Signatures, TrustedKeys, Verification, VerificationPolicy

__all__ = [
    "Artifact",
    "ArtifactCache",
    "ArtifactLimits",
    "ArtifactTooLarge",
    "AuthenticationFailed",
    "CommitInfo",
    "GitAuth",
    "GitCommandFailed",
    "GitRef",
    "GitTimeout",
    "GitUrl",
    "HostKeyVerificationFailed",
    "HostUnreachable",
    "InvalidSourceSpec",
    "NoMatchingTag",
    "RefNotFound",
    "RemoteRefs",
    "RepositoryNotFound",
    "ResolvedRevision",
    "SemverRange",
    "Signatures",
    "SourceError",
    "TrustedKeys",
    "Verification",
    "VerificationFailed",
    "VerificationPolicy",
    "fetch",
    "format_revision",
    "parse_size",
    "redact_url",
    "resolve",
    "resolve_and_fetch",
    "revision_commit",
]
