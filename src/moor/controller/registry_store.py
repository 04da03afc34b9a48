"""From an OCIRepository object to its registry: credentials and certificates from its Secrets, the
version its ref names, and that version's files in the artifact cache Git fetches share (keyed by the
manifest's digest, so a version is pulled once however many Syncs use it).

A revision reads `<tag>@sha256:<digest>` (`sha256:<digest>` for a digest ref). With `spec.verify`, the
digest the ref resolved to must carry a cosign signature by a key of the trust Secret before anything of
it is pulled (`source.oci.cosign`). An earlier revision (to roll back to) is pulled again by its digest
when the cache no longer holds it: it was verified when it became the artifact, and its digest pins it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from moor import source
from moor.cluster.api import KubeApi
from moor.controller.secrets import ClientSecrets, SecretMissing, read_client_secrets, read_secret
from moor.errors import MoorError
from moor.objects import KubeObject, ObjectRef
from moor.resources.conditions import parse_time
from moor.resources.ocirepository import OCIRepositorySpec
from moor.source.artifact import TREE_DIR, CommitInfo
from moor.source.oci import OciReference, PulledArtifact, RegistryClient, choose_tag, pull
from moor.source.oci.cosign import CosignKeys, CosignSignature, verify_signed
from moor.source.oci.manifest import (
    ANNOTATION_CREATED,
    ANNOTATION_REVISION,
    ANNOTATION_SOURCE,
    ImageManifest,
    parse_manifest,
)


@dataclass(frozen=True)
class RegistryAccess:
    """What it takes to talk to one registry: the repository, credentials, certificates and timeout."""

    repository: OciReference
    secrets: ClientSecrets
    insecure: bool
    timeout: float

    def client(self) -> RegistryClient:
        return RegistryClient(
            self.repository.registry,
            self.secrets.credentials,
            ca_pem=self.secrets.ca_pem,
            cert_pem=self.secrets.cert_pem,
            key_pem=self.secrets.key_pem,
            timeout=self.timeout,
            insecure_http=self.insecure,
        )


@dataclass(frozen=True)
class PulledVersion:
    """The version an OCIRepository's ref names now: its files, and where its content came from."""

    artifact: source.Artifact
    digest: str
    origin: str
    """`org.opencontainers.image.source` (a Git URL for `moor push artifact` and `flux push artifact`)."""
    origin_revision: str
    """`org.opencontainers.image.revision` (the commit there)."""
    signature: CosignSignature | None = None
    """The trusted signature found, when `spec.verify` asked for one."""


class RegistryStore:
    """Resolves and pulls versions for OCIRepository objects."""

    def __init__(self, api: KubeApi, cache: source.ArtifactCache) -> None:
        self.api = api
        self.cache = cache

    async def access(self, repository: KubeObject, spec: OCIRepositorySpec) -> RegistryAccess:
        secrets = await read_client_secrets(
            self.api,
            repository,
            secret_name=spec.secret_name,
            cert_secret_name=spec.cert_secret_name,
            host=spec.repository.registry,
        )
        return RegistryAccess(spec.repository, secrets, spec.insecure, spec.timeout.total_seconds())

    async def trusted_keys(self, repository: KubeObject, spec: OCIRepositorySpec) -> CosignKeys | None:
        """The cosign public keys `spec.verify` trusts; None without it. A trust Secret that is missing or
        holds no usable key is a VerificationFailed: nothing can be verified, so no new version is used."""
        if spec.verify is None:
            return None
        name = spec.verify.secret_name
        try:
            data = (await read_secret(self.api, repository, name)).data
        except SecretMissing as error:
            raise source.VerificationFailed(f"{error}, so no artifact can be verified") from None
        return CosignKeys.from_secret(data, f"the trust Secret {ObjectRef.of(repository).namespace}/{name}")

    async def latest(
        self, access: RegistryAccess, spec: OCIRepositorySpec, keys: CosignKeys | None = None
    ) -> PulledVersion:
        """The version the ref names now (one tag list for a semver ref, one manifest read), verified
        against `keys` when given (VerificationFailed: it is not pulled), then pulled unless the cache has it."""
        repository = access.repository
        async with access.client() as client:
            tag = spec.ref.tag
            if spec.ref.semver is not None:
                tag = choose_tag(await client.tags(repository.repository), spec.ref.semver, str(repository))
            wanted = replace(repository, tag=tag, digest=spec.ref.digest)
            fetched = await client.resolve(repository.repository, spec.ref.digest or str(tag))
            manifest = parse_manifest(fetched.raw, fetched.media_type, str(wanted))
            annotations = manifest.annotations if isinstance(manifest, ImageManifest) else {}
            revision = f"{tag}@{fetched.digest}" if tag else fetched.digest
            resolved = replace(wanted, digest=fetched.digest)
            signature = None if keys is None else await verify_signed(client, resolved, keys)
            artifact = await self._obtain(client, resolved, revision, spec)
        return PulledVersion(
            artifact=artifact,
            digest=fetched.digest,
            origin=str(annotations.get(ANNOTATION_SOURCE, "")),
            origin_revision=str(annotations.get(ANNOTATION_REVISION, "")),
            signature=signature,
        )

    async def artifact(self, repository: KubeObject, revision: str | None = None) -> source.Artifact:
        """The files of `revision` (default: the one the OCIRepository's status names), from the cache or
        pulled again by digest (after a restart, or for an earlier revision to roll back to)."""
        spec = OCIRepositorySpec.from_object(repository)
        revision = revision or str((((repository.get("status") or {}).get("artifact")) or {}).get("revision", ""))
        if not revision:
            raise MoorError(f"{ObjectRef.of(repository)} has no artifact yet")
        tag, _, digest = revision.rpartition("@")
        cached = await self.cache.get(digest)
        if cached is not None:
            return source.Artifact.of(revision, cached)
        access = await self.access(repository, spec)
        async with access.client() as client:
            wanted = replace(access.repository, tag=tag or None, digest=digest)
            return await self._obtain(client, wanted, revision, spec)

    async def _obtain(
        self, client: RegistryClient, reference: OciReference, revision: str, spec: OCIRepositorySpec
    ) -> source.Artifact:
        assert reference.digest is not None

        async def populate(staging: Path) -> CommitInfo:
            pulled = await pull(client, reference, staging / TREE_DIR, self.cache.limits, spec.media_type)
            return _version_info(pulled)

        entry = await self.cache.obtain(reference.digest, populate)
        return source.Artifact.of(revision, entry)


def _version_info(pulled: PulledArtifact) -> CommitInfo:
    """What a pulled version says of itself, as the history shows a commit: its origin as the message,
    its creation time (or now) as the commit's time."""
    origin = " ".join(part for part in (pulled.origin_source, pulled.origin_revision) if part)
    return CommitInfo(
        commit=pulled.digest,
        author="",
        message=origin or f"{pulled.reference}",
        committed_at=created_time(pulled.annotations.get(ANNOTATION_CREATED)),
    )


def created_time(text: str | None) -> datetime:
    """When an artifact or chart was made, as its annotation or index entry says, in UTC; now when it
    does not say (its commit time in history and lead times)."""
    return (parse_time(text) or datetime.now(UTC)).astimezone(UTC)
