"""Reading a registry's manifests and choosing the layer to extract (pure: bytes in, values out).

An image manifest lists a config and layers; an index lists manifests. Moor extracts one layer, a
gzip'd tarball: the first of media type `layerSelector.mediaType` when the spec names one, else the
first of Flux's content type, else the first generic OCI `tar+gzip` layer. An index is followed only
when it lists exactly one manifest; artifacts are rarely indexes and guessing a platform would be wrong.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from moor.source.errors import InvalidSourceSpec
from moor.source.oci.errors import RegistryError, UnsupportedArtifact
from moor.source.oci.reference import check_digest

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES = (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST)
"""What a client accepts when it asks for a manifest, in order of preference."""

FLUX_CONFIG = "application/vnd.cncf.flux.config.v1+json"
FLUX_CONTENT = "application/vnd.cncf.flux.content.v1.tar+gzip"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
ACCEPTED_LAYERS = (FLUX_CONTENT, OCI_LAYER)
"""The layer types chosen without a `layerSelector`, in order of preference."""

ANNOTATION_SOURCE = "org.opencontainers.image.source"
ANNOTATION_REVISION = "org.opencontainers.image.revision"
ANNOTATION_CREATED = "org.opencontainers.image.created"

_GZIP_TARBALL_SUFFIXES = ("tar+gzip", "tar.gzip")


@dataclass(frozen=True)
class Descriptor:
    """A pointer to content in the registry: its type, digest and size."""

    media_type: str
    digest: str
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict)
    artifact_type: str = ""
    """What an index entry says the manifest is (OCI 1.1 `artifactType`, e.g. a Sigstore bundle); mostly empty."""

    def as_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.annotations:
            document["annotations"] = dict(self.annotations)
        if self.artifact_type:
            document["artifactType"] = self.artifact_type
        return document


@dataclass(frozen=True)
class ImageManifest:
    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]
    annotations: Mapping[str, str] = field(default_factory=dict)

    def as_json(self) -> bytes:
        """The manifest as it is pushed (keys in a fixed order, so the same manifest has the same digest)."""
        document: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": self.media_type,
            "config": self.config.as_json(),
            "layers": [layer.as_json() for layer in self.layers],
        }
        if self.annotations:
            document["annotations"] = dict(self.annotations)
        return json.dumps(document, separators=(",", ":")).encode()


@dataclass(frozen=True)
class ImageIndex:
    media_type: str
    manifests: tuple[Descriptor, ...]


def sha256_digest(data: bytes) -> str:
    """The content address of `data`, as registries write it."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def referrers_tag(digest: str) -> str:
    """Where the referrers of `digest` are listed in a registry without the referrers API (the OCI 1.1
    referrers tag schema): the tag `<algorithm>-<hex>`."""
    algorithm, _, hex_digest = digest.partition(":")
    return f"{algorithm}-{hex_digest}"


def parse_manifest(raw: bytes, content_type: str | None, what: str) -> ImageManifest | ImageIndex:
    """Reads a manifest or an index; the body's `mediaType` wins over the Content-Type header."""
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise RegistryError(f"the manifest of {what} is not JSON") from None
    if not isinstance(document, dict):
        raise RegistryError(f"the manifest of {what} is not a JSON object")
    media_type = document.get("mediaType") or (content_type or "").partition(";")[0].strip()
    if media_type in (OCI_INDEX, DOCKER_MANIFEST_LIST) or (not media_type and "manifests" in document):
        return ImageIndex(media_type or OCI_INDEX, _descriptors(document.get("manifests"), what, "manifests"))
    if media_type in (OCI_MANIFEST, DOCKER_MANIFEST) or (not media_type and "layers" in document):
        config = document.get("config")
        if not isinstance(config, dict):
            raise RegistryError(f"the manifest of {what} has no config")
        return ImageManifest(
            media_type=media_type or OCI_MANIFEST,
            config=_descriptor(config, what, "config"),
            layers=_descriptors(document.get("layers"), what, "layers"),
            annotations=_annotations(document.get("annotations"), what),
        )
    raise UnsupportedArtifact(f"{what} is a {media_type or 'document of no media type'}, not a manifest or an index")


def single_manifest(index: ImageIndex, what: str) -> Descriptor:
    """The one manifest an index lists; an index of several is refused (which one would be a guess)."""
    if len(index.manifests) != 1:
        raise UnsupportedArtifact(
            f"{what} is an index of {len(index.manifests)} manifests; Moor reads an index only when it lists "
            "exactly one (point the URL at the manifest's digest instead)"
        )
    return index.manifests[0]


def select_layer(manifest: ImageManifest, media_type: str | None, what: str) -> Descriptor:
    """The layer to extract: the first of `media_type` if given, else the first of an accepted type."""
    wanted = (media_type,) if media_type else ACCEPTED_LAYERS
    if media_type and not media_type.endswith(_GZIP_TARBALL_SUFFIXES):
        raise InvalidSourceSpec(
            f"the layer media type {media_type!r} does not name a gzip'd tarball (…tar+gzip), "
            "the only kind Moor extracts"
        )
    for kind in wanted:
        for layer in manifest.layers:
            if layer.media_type == kind:
                return layer
    present = ", ".join(sorted({layer.media_type for layer in manifest.layers})) or "no layers at all"
    raise UnsupportedArtifact(f"{what} has no layer of type {' or '.join(wanted)}: it has {present}")


def _descriptors(value: Any, what: str, key: str) -> tuple[Descriptor, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise RegistryError(f"the manifest of {what}: {key!r} is not a list")
    return tuple(_descriptor(item, what, key) for item in value)


def _descriptor(value: Any, what: str, key: str) -> Descriptor:
    if not isinstance(value, dict):
        raise RegistryError(f"the manifest of {what}: an entry of {key!r} is not an object")
    media_type, digest, size = value.get("mediaType"), value.get("digest"), value.get("size")
    if not isinstance(media_type, str) or not isinstance(digest, str) or type(size) is not int or size < 0:
        raise RegistryError(f"the manifest of {what}: an entry of {key!r} lacks a mediaType, digest or size")
    try:
        check_digest(digest, what)
    except InvalidSourceSpec:
        raise RegistryError(f"the manifest of {what}: {digest!r} in {key!r} is not a digest") from None
    artifact_type = value.get("artifactType")
    annotations = _annotations(value.get("annotations"), what)
    return Descriptor(media_type, digest, size, annotations, artifact_type if isinstance(artifact_type, str) else "")


def _annotations(value: Any, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise RegistryError(f"the manifest of {what}: annotations are not a map of strings")
    return dict(value)
