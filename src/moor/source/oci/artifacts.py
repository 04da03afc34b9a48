"""Artifacts as Flux lays them out: pull one into a directory, push a directory as one.

A pushed artifact is an OCI image manifest with the config `application/vnd.cncf.flux.config.v1+json`
(an empty JSON object), one layer `application/vnd.cncf.flux.content.v1.tar+gzip` (the directory as a
deterministic tarball) and the annotations `org.opencontainers.image.source`, `.revision` and
`.created`, so that `flux pull artifact`, oras and crane read it, and Moor reads what `flux push
artifact` wrote. Pulling resolves the tag or digest, verifies every digest on the way, and extracts the
chosen layer with the tarball rules (tarball.py): nothing is extracted from content that failed a check.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from moor.source.errors import InvalidSourceSpec, NoMatchingTag
from moor.source.limits import ArtifactLimits, ArtifactTooLarge, format_size
from moor.source.oci.client import RegistryClient
from moor.source.oci.errors import UnsupportedArtifact
from moor.source.oci.manifest import (
    ANNOTATION_CREATED,
    ANNOTATION_REVISION,
    ANNOTATION_SOURCE,
    FLUX_CONFIG,
    FLUX_CONTENT,
    OCI_MANIFEST,
    Descriptor,
    ImageIndex,
    ImageManifest,
    parse_manifest,
    select_layer,
    single_manifest,
)
from moor.source.oci.reference import OciReference
from moor.source.oci.tarball import extract_tarball, pack_directory
from moor.source.semver_range import SemverRange

EMPTY_CONFIG = b"{}"


@dataclass(frozen=True)
class PulledArtifact:
    reference: OciReference
    """What was asked for, with the digest it resolved to."""
    digest: str
    """Of the manifest the tag pointed to (of the index, when the tag names a one-manifest index)."""
    directory: Path
    layer: Descriptor
    annotations: Mapping[str, str] = field(default_factory=dict)

    @property
    def revision(self) -> str:
        """`<tag>@sha256:<digest>`, or the digest alone when the artifact was asked for by digest."""
        return f"{self.reference.tag}@{self.digest}" if self.reference.tag else self.digest

    @property
    def origin_source(self) -> str | None:
        """Where the content came from (`org.opencontainers.image.source`: a Git URL for `flux push`)."""
        return self.annotations.get(ANNOTATION_SOURCE)

    @property
    def origin_revision(self) -> str | None:
        return self.annotations.get(ANNOTATION_REVISION)

    @property
    def created(self) -> str | None:
        return self.annotations.get(ANNOTATION_CREATED)


def choose_tag(tags: Iterable[str], semver: SemverRange, what: str) -> str:
    """The highest tag in the range; NoMatchingTag naming the range (and a few tags) when none is."""
    listed = list(tags)
    chosen = semver.highest(listed)
    if chosen is None:
        sample = ", ".join(sorted(listed)[-5:]) or "none"
        raise NoMatchingTag(f"{what}: no tag matches the semver range {semver} (tags include: {sample})", url=what)
    return chosen


async def pull(
    client: RegistryClient,
    reference: OciReference,
    into: Path,
    limits: ArtifactLimits,
    media_type: str | None = None,
) -> PulledArtifact:
    """Resolves the reference, downloads the chosen layer and extracts it into the new directory `into`."""
    what = str(reference)
    ref = reference.ref
    if ref is None:
        raise InvalidSourceSpec(f"{what}: name a tag or a digest of the artifact to pull", url=what)
    fetched = await client.resolve(reference.repository, ref)
    manifest = parse_manifest(fetched.raw, fetched.media_type, what)
    if isinstance(manifest, ImageIndex):
        inner = await client.resolve(reference.repository, single_manifest(manifest, what).digest)
        manifest = parse_manifest(inner.raw, inner.media_type, what)
        if isinstance(manifest, ImageIndex):
            raise UnsupportedArtifact(f"{what} is an index of an index; Moor reads one manifest", url=what)
    layer = select_layer(manifest, media_type, what)
    if layer.size > limits.max_bytes:
        raise ArtifactTooLarge(
            f"{what} is too large: its layer takes {format_size(layer.size)}, over the limit of "
            f"{format_size(limits.max_bytes)} (moor run --max-artifact-size)",
            url=what,
        )
    download = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix=f".{into.name}.", dir=into.parent))
    try:
        archive = download / "layer.tar.gz"
        await client.blob_to(reference.repository, layer.digest, archive, limits.max_bytes)
        await asyncio.to_thread(extract_tarball, archive, into, limits, what)
    finally:
        await asyncio.to_thread(shutil.rmtree, download, True)
    resolved = OciReference(reference.registry, reference.repository, reference.tag, fetched.digest)
    return PulledArtifact(
        reference=resolved, digest=fetched.digest, directory=into, layer=layer, annotations=manifest.annotations
    )


async def push(
    client: RegistryClient,
    reference: OciReference,
    directory: Path,
    *,
    source: str,
    revision: str,
    created: datetime | None = None,
) -> str:
    """Pushes `directory` under the reference's tag in Flux's layout and returns the manifest's digest."""
    what = str(reference)
    if reference.tag is None or reference.digest is not None:
        raise InvalidSourceSpec(f"{what}: an artifact is pushed to a tag (oci://host/repository:tag)", url=what)
    content = await asyncio.to_thread(pack_directory, directory)
    layer = Descriptor(FLUX_CONTENT, await client.push_blob(reference.repository, content), len(content))
    config = Descriptor(FLUX_CONFIG, await client.push_blob(reference.repository, EMPTY_CONFIG), len(EMPTY_CONFIG))
    when = (created or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    manifest = ImageManifest(
        media_type=OCI_MANIFEST,
        config=config,
        layers=(layer,),
        annotations={ANNOTATION_CREATED: when, ANNOTATION_SOURCE: source, ANNOTATION_REVISION: revision},
    )
    return await client.push_manifest(reference.repository, reference.tag, manifest.as_json(), OCI_MANIFEST)
