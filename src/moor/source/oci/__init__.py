"""Artifacts from OCI registries: references, credentials, the registry client, and Flux's artifact layout.

The controller turns an OCIRepository into an `OciReference`, `RegistryCredentials` and a
`RegistryClient`, then `pull`s into a new directory and gets a `PulledArtifact` (revision
`<tag>@sha256:<digest>`, origin source and revision) or a SourceError. `moor push artifact` is `push`.
"""

from moor.source.errors import CertificateRejected, RegistryTimeout, RegistryUnreachable
from moor.source.oci.artifacts import PulledArtifact, choose_tag, pull, push
from moor.source.oci.client import FetchedManifest, RegistryClient
from moor.source.oci.credentials import RegistryCredentials, from_docker_config
from moor.source.oci.errors import (
    ArtifactNotFound,
    DigestMismatch,
    RegistryError,
    UnsafeArtifact,
    UnsupportedArtifact,
)
from moor.source.oci.manifest import ACCEPTED_LAYERS, FLUX_CONFIG, FLUX_CONTENT, OCI_LAYER
from moor.source.oci.reference import OciReference
from moor.source.oci.tarball import extract_tarball, pack_directory

__all__ = [
    "ACCEPTED_LAYERS",
    "FLUX_CONFIG",
    "FLUX_CONTENT",
    "OCI_LAYER",
    "ArtifactNotFound",
    "CertificateRejected",
    "DigestMismatch",
    "FetchedManifest",
    "OciReference",
    "PulledArtifact",
    "RegistryClient",
    "RegistryCredentials",
    "RegistryError",
    "RegistryTimeout",
    "RegistryUnreachable",
    "UnsafeArtifact",
    "UnsupportedArtifact",
    "choose_tag",
    "extract_tarball",
    "from_docker_config",
    "pack_directory",
    "pull",
    "push",
]
